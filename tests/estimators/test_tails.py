"""The tail shape k̂ (estimators/truth/tails.py) against samples whose tail is known:
generalized Pareto draws (the exceedances of a GPD over any threshold are a GPD of the same
k, so k̂ must be right within its standard error), heavier tails than any finite mean
allows, and lattices, which have no tail."""

import numpy as np
import pytest
from scipy import stats

from estimators.truth import tails

N = 2**18  # a truth's pass: its tail is the 1,536 largest terms


@pytest.mark.parametrize("k", [0.0, 0.5, 1.0, 2.0])
def test_the_shape_of_a_generalized_pareto_sample_within_5_se(k):
    sample = stats.genpareto.rvs(k, size=N, random_state=np.random.default_rng(7))
    tail = tails.tail_size(N)
    se = (1 + k) / np.sqrt(tail)  # maximum likelihood's asymptotic SE, k > -1/2
    assert abs(tails.pareto_k(sample) - k) < 5 * se


def test_a_tail_as_heavy_as_k_2_is_never_taken_for_a_lattice():
    # The squared Cauchy: k = 2. Its largest exceedance is ~10⁹ times its smallest; ties
    # judged against the largest made 4 of these 30 samples a lattice (NaN, read as light).
    shapes = [tails.pareto_k(stats.cauchy.rvs(size=N, random_state=np.random.default_rng(s))
                             ** 2) for s in range(30)]
    assert all(k >= tails.NO_MEAN for k in shapes), np.round(shapes, 2)


@pytest.mark.parametrize("sample", [
    pytest.param(np.random.default_rng(0).binomial(1, 0.3, N).astype(float), id="bernoulli"),
    pytest.param(np.round(np.random.default_rng(0).normal(size=N), 1), id="rounded"),
    pytest.param(np.random.default_rng(0).poisson(0.2, N)
                 + 1e-12 * np.random.default_rng(1).normal(size=N), id="lattice-noise"),
])
def test_a_lattice_has_no_tail(sample):
    assert np.isnan(tails.pareto_k(sample))
