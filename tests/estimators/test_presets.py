"""The preset names are shorthands: a preset, its canonical label and the composed estimator
give the same numbers for the same seed."""

import numpy as np
import pytest

import estimators as E


@pytest.mark.parametrize("preset", sorted(E.PRESETS))
def test_preset_label_and_composition_agree(preset):
    head, options = E.PRESETS[preset]
    composed = E.get_estimator(head, **options)
    assert E.ESTIMATORS[preset].label == composed.label
    problem = E.problems.get("gaussian_cos")
    kwargs = dict(n_samples=32, n_replicates=5, seed=11, backend="graph")
    by_preset = E.estimate(preset, problem, [0.5, 1.2], **kwargs)
    np.testing.assert_array_equal(by_preset, E.estimate(composed.label, problem, [0.5, 1.2],
                                                        **kwargs))
    np.testing.assert_array_equal(by_preset, E.estimate(composed, problem, [0.5, 1.2], **kwargs))
