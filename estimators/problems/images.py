"""Binary images for the discrete VAEs (issue 28): loaded, checked and split once per source.

``grey_images(source)`` returns ``(train [N, P], test [M, P])`` float64 grey levels in
[0, 1], one row per image flattened to P pixels; ``binary_images(source, binarize, seed)``
turns them into 0/1 pixels:

* ``binarize="threshold"``: a pixel is 1 where its grey level is above ½ (for scikit-learn's
  digits, whose levels are 0..16: above 8, 29% of the pixels);
* ``binarize="dynamic"``: a pixel is 1 with probability its grey level (Salakhutdinov &
  Murray 2008's dynamic binarization), one draw per image from ``seed``; training runs draw
  afresh at every step.

``source`` is ``"digits"`` — scikit-learn's bundled 1,797 handwritten digits, 8 × 8 pixels
(P = 64), read offline — split once by a fixed permutation (``SPLIT_SEED``) into 1,497
training and 300 test images; or the path of a ``.npz`` file with arrays ``x_train`` and
``x_test`` of images of any shape (``[N, 28, 28]`` for MNIST), values in [0, 1] or whole
numbers in [0, 255].
"""

from __future__ import annotations

import functools

import numpy as np

from estimators.problems.datasets import DataError, data_file

BUILT_IN = ("digits",)
SPLIT_SEED = 20261204
"""The permutation that splits the digits into training and test images."""
DIGITS_TEST = 300
THRESHOLD = 0.5
BINARIZATIONS = ("threshold", "dynamic")


@functools.lru_cache(maxsize=8)
def grey_images(source: str) -> tuple[np.ndarray, np.ndarray]:
    """Training and test images as grey levels in [0, 1], ``[N, P]`` float64 each (module
    docstring); the arrays are read-only (cached).

    Raises:
      DataError: an unknown name; a missing, unreadable or malformed file; values outside
        [0, 1] or [0, 255]; train and test images of different sizes.
    """
    if source in BUILT_IN:
        from sklearn.datasets import load_digits  # bundled with scikit-learn

        images = load_digits().data.astype(np.float64) / 16.0  # [1797, 64], levels 0..16
        order = np.random.default_rng(SPLIT_SEED).permutation(len(images))
        train, test = images[order[DIGITS_TEST:]], images[order[:DIGITS_TEST]]
    else:
        train, test = _read_npz(source)
    for array in (train, test):
        array.setflags(write=False)
    return train, test


def binary_images(source: str, binarize: str = "threshold", seed: int = 0
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Training and test images as 0/1 pixels, ``[N, P]`` float64 (module docstring).

    Raises:
      ValueError: ``binarize`` not one of ``BINARIZATIONS``.
      DataError: as :func:`grey_images`.
    """
    if binarize not in BINARIZATIONS:
        raise ValueError(f"binarize must be one of {', '.join(map(repr, BINARIZATIONS))}, "
                         f"got {binarize!r}.")
    train, test = grey_images(source)
    if binarize == "threshold":
        return (train > THRESHOLD).astype(np.float64), (test > THRESHOLD).astype(np.float64)
    rng = np.random.default_rng(seed)
    return tuple((rng.uniform(size=images.shape) < images).astype(np.float64)
                 for images in (train, test))


def _read_npz(source: str) -> tuple[np.ndarray, np.ndarray]:
    path = data_file(source, ".npz", "give 'digits' or the path of a .npz file with arrays "
                     "x_train and x_test (images, values in [0, 1] or [0, 255])")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in ("x_train", "x_test") if key not in archive.files]
            if missing:
                raise DataError(f"data {source!r}: has no array {missing[0]} (it holds "
                                f"{', '.join(archive.files) or 'nothing'}); save the images "
                                "as x_train and x_test.")
            arrays = [np.asarray(archive[key]) for key in ("x_train", "x_test")]
    except DataError:
        raise
    except Exception as error:  # noqa: BLE001 - a corrupt or non-npz file
        raise DataError(f"data {source!r}: is not a readable .npz file "
                        f"({type(error).__name__}).") from None
    flat = []
    for key, array in zip(("x_train", "x_test"), arrays):
        if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype,
                                                                       np.complexfloating):
            raise DataError(f"data {source!r}: {key} holds {array.dtype} values, not numbers.")
        if array.ndim < 2 or array.shape[0] < 1 or array[0].size < 1:
            raise DataError(f"data {source!r}: {key} must hold at least one image (an array "
                            f"[N, ...]), got shape {list(array.shape)}.")
        flat.append(array.reshape(array.shape[0], -1).astype(np.float64))
    if flat[0].shape[1] != flat[1].shape[1]:
        raise DataError(f"data {source!r}: x_train's images have {flat[0].shape[1]} pixels "
                        f"and x_test's {flat[1].shape[1]}; they must be the same size.")
    both = np.concatenate(flat)
    if not np.all(np.isfinite(both)):
        raise DataError(f"data {source!r}: has missing or infinite values.")
    low, high = both.min(), both.max()
    if low < 0 or high > 255:
        raise DataError(f"data {source!r}: pixel values must lie in [0, 1] or [0, 255], got "
                        f"{low:g} to {high:g}.")
    if high > 1:
        if not np.all(both == np.round(both)):
            raise DataError(f"data {source!r}: values above 1 are read as levels 0..255 and "
                            "must be whole numbers; scale the images to [0, 1] instead.")
        flat = [array / 255.0 for array in flat]
    return flat[0], flat[1]
