"""Binary images for the discrete VAEs: the bundled digits, binarized and split as
documented, and a user's .npz file, with one-sentence errors for files that cannot be used."""

import numpy as np
import pytest

from estimators.problems import images
from estimators.problems.datasets import DataError


def test_the_digits_are_split_and_thresholded_as_documented():
    grey_train, grey_test = images.grey_images("digits")
    assert grey_train.shape == (1497, 64) and grey_test.shape == (300, 64)
    assert grey_train.min() == 0.0 and grey_train.max() == 1.0
    train, test = images.binary_images("digits")
    np.testing.assert_array_equal(train, grey_train > 0.5)
    assert set(np.unique(test)) == {0.0, 1.0}
    # 29% of the digits' pixels are above level 8 of 16 (the whole set, 1,797 images).
    both = np.concatenate([train, test])
    assert abs(both.mean() - 0.2929) < 5e-4
    with pytest.raises(ValueError, match="read-only"):
        grey_train[0, 0] = 1.0


def test_dynamic_binarization_draws_each_pixel_with_its_grey_level():
    grey, _ = images.grey_images("digits")
    first, _ = images.binary_images("digits", "dynamic", seed=3)
    again, _ = images.binary_images("digits", "dynamic", seed=3)
    other, _ = images.binary_images("digits", "dynamic", seed=4)
    np.testing.assert_array_equal(first, again)
    assert (first != other).any()
    # E[pixel] = its grey level: the mean over all pixels within 5 SE.
    se = np.sqrt((grey * (1 - grey)).sum()) / grey.size
    assert abs(first.mean() - grey.mean()) < 5 * se
    with pytest.raises(ValueError, match="^binarize must be one of 'threshold', 'dynamic', "
                                         "got 'otsu'.$"):
        images.binary_images("digits", "otsu")


def test_a_users_npz_in_0_255_or_0_1(tmp_path):
    rng = np.random.default_rng(0)
    levels = rng.integers(0, 256, size=(6, 4, 4)).astype(np.uint8)
    path = tmp_path / "mine.npz"
    np.savez(path, x_train=levels, x_test=levels[:2])
    train, test = images.grey_images(str(path))
    assert train.shape == (6, 16) and test.shape == (2, 16)
    np.testing.assert_allclose(train, levels.reshape(6, 16) / 255.0)
    unit = tmp_path / "unit.npz"
    np.savez(unit, x_train=levels / 255.0, x_test=levels[:1] / 255.0)
    np.testing.assert_allclose(images.grey_images(str(unit))[0], train)


@pytest.mark.parametrize("arrays, message", [
    ({"x_train": np.zeros((2, 4))}, "has no array x_test (it holds x_train); save the images"),
    ({"x_train": np.zeros((2, 4)), "x_test": np.zeros((2, 5))},
     "x_train's images have 4 pixels and x_test's 5"),
    ({"x_train": np.full((2, 4), 300.0), "x_test": np.zeros((1, 4))},
     "pixel values must lie in [0, 1] or [0, 255], got 0 to 300"),
    ({"x_train": np.full((2, 4), 2.5), "x_test": np.zeros((1, 4))},
     "values above 1 are read as levels 0..255 and must be whole numbers"),
    ({"x_train": np.zeros(4), "x_test": np.zeros((1, 4))},
     "x_train must hold at least one image (an array [N, ...]), got shape [4]"),
    ({"x_train": np.array([["a", "b"]]), "x_test": np.zeros((1, 2))},
     "x_train holds <U1 values, not numbers"),
    ({"x_train": np.full((2, 4), np.nan), "x_test": np.zeros((1, 4))},
     "has missing or infinite values"),
], ids=["no-test", "sizes", "range", "fractions", "one-image", "text", "nan"])
def test_bad_npz_files_are_refused_in_one_sentence(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError) as error:
        images.grey_images(str(path))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_paths_that_are_not_npz_files(tmp_path):
    with pytest.raises(DataError, match="give 'digits' or the path of a .npz file"):
        images.grey_images("mnist")
    with pytest.raises(DataError, match="no such file"):
        images.grey_images(str(tmp_path / "missing.npz"))
    broken = tmp_path / "broken.npz"
    broken.write_text("not a zip archive")
    with pytest.raises(DataError, match="is not a readable .npz file"):
        images.grey_images(str(broken))
