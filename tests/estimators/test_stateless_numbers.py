"""Stateless estimators keep their numbers through the estimator protocol (issue 26).

``data/stateless_estimates.npz`` holds estimates computed by the code before the protocol
(commit ac954b5): every registered estimator (presets included), the delta method with
both identities, antithetic and QMC score functions, non-default settings (``OPTIONS``)
and forward-mode programs (``FORWARD``) on a scalar, a vector and a binary problem, XLA
and graph backends, with two batches per estimate. On the machine that wrote it the new
code reproduced every one bit for bit; the test checks the XLA half and allows float32
rounding (1e-6 relative), so that a CPU with other vector units cannot fail it while any
change to an estimator's mathematics or its draws still does.

Regenerate (only when an estimator's numbers change on purpose, saying why in the
commit): ``python tests/estimators/test_stateless_numbers.py``.
"""

from pathlib import Path

import numpy as np
import pytest

import estimators as E

DATA = Path(__file__).parent / "data" / "stateless_estimates.npz"
CASES = {
    "seed_dependence": ({}, -1.0),
    "gaussian_square_nd": ({"D": 5}, [0.5] * 5 + [1.0] * 5),
    "bernoulli_quadratic": ({"D": 3}, [0.2, -0.1, 0.4]),
}
GRID_RULES = ("trapz", "dependence")  # one batch: their grid is the batch
OPTIONS = ("score_function(control_variate=delta)", "reparameterization(control_variate=delta)",
           "score_function(sampling=antithetic)", "score_function(sampling=qmc)",
           "gumbel_softmax(temperature=0.1)", "rebar(eta=0.5, temperature=0.3)")
"""Options and settings beyond the registered names."""
FORWARD = ("reparameterization", "score_function", "rebar")
"""Run again with batches of 100 on the one-parameter problem: forward-mode programs."""


def compute(backends=("xla", "graph"), names=None) -> dict[str, np.ndarray]:
    """Every applicable (problem, estimator, backend) estimate: 8 replicates of 64 draws
    (``names``: only these estimators, e.g. those the file holds)."""
    out = {}
    for problem_name, (kwargs, theta) in CASES.items():
        problem = E.problems.get(problem_name, **kwargs)
        runs = [(name, 64 if name in GRID_RULES else 32, 64)
                for name in sorted(E.PRESETS) + sorted(E.IDENTITIES) + list(OPTIONS)]
        if problem.dim == 1:
            runs += [(f"{name}|forward", 100, 200) for name in FORWARD]
        for name, batch, n_samples in runs:
            if names is not None and name not in names:
                continue
            for backend in backends:
                try:
                    # The program itself: estimate()'s numbers, without its warnings' tests.
                    out[f"{problem_name}|{name}|{backend}"] = E.program(
                        name.split("|")[0], problem, theta, n_samples, 8, batch_size=batch,
                        backend=backend)(theta, seed=3)
                except E.NotApplicableError:
                    pass
    return out


@pytest.fixture(scope="module")
def expected():
    with np.load(DATA) as data:
        return dict(data)


def test_every_stateless_estimate_is_unchanged(expected):
    # XLA here; the graph backend's numbers are in the file for a slower check by hand
    # (compute() with both backends): the surrogates are the same functions.
    # Estimators added after the file was written have no numbers from before: the file's
    # own, all of them still applicable, and nothing more.
    expected = {key: value for key, value in expected.items() if key.endswith("|xla")}
    now = compute(backends=("xla",), names={key.split("|", 1)[1].rsplit("|", 1)[0]
                                            for key in expected})
    assert sorted(now) == sorted(expected)  # the same combinations apply
    changed = [key for key in expected
               if not np.allclose(now[key], expected[key], rtol=1e-6, atol=1e-7)]
    assert not changed, f"estimates changed: {changed}"


def test_warmup_batches_leave_a_stateless_estimator_alone():
    problem = E.problems.get("seed_dependence")
    plain = E.estimate("score_function_loo", problem, -1.0, 64, 8, seed=5)
    warmed = E.estimate("score_function_loo", problem, -1.0, 64, 8, seed=5, warmup_batches=7)
    np.testing.assert_array_equal(plain, warmed)


if __name__ == "__main__":
    np.savez(DATA, **compute())
    print(f"wrote {DATA}")
