"""The PPDL lab's three reference figures (shared/lab/*.png), redrawn from a lab run.

A grid with ``lab_setups = true`` runs the lab's own functions (``estimators.lab``) on
its setups and keeps the rows with the run (``bench.lab_setups.run_lab``). From those
rows this module redraws, in the lab's layout (f on the left axis, p on the right):

* ``expectation_value``: T1, f(x) = exp(-0.01|x|) cos(0.1x) under U(-100, 100);
* ``expectation_value_dists``: T1, the same f under N(μ, 5) for five μ;
* ``comparison_expected``: T2, f(x) = exp(-0.05|x|) under N(μ, 5), MC against trapz;

with the measured values and the exact ones in the titles.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from bench import lab_setups
import tensorflow_probability as tfp

tfd = tfp.distributions

F_COLOUR, P_COLOUR = "cornflowerblue", "seagreen"
XS = np.linspace(-100.0, 100.0, 1000)


def _curve(function, xs=XS) -> np.ndarray:
    return np.asarray(function(xs.astype(np.float32)))


def _twin(ax, f_values, p_values):
    ax.plot(XS, f_values, color=F_COLOUR)
    ax.set_xlabel("$x$")
    ax.set_ylabel("$f(x)$", color=F_COLOUR)
    twin = ax.twinx()
    twin.plot(XS, p_values, color=P_COLOUR)
    twin.set_ylabel("$P(x)$", color=P_COLOUR)
    twin.grid(False)
    return twin


def _rows(lab_rows):
    return {row["key"]: row for row in lab_rows}


def expectation_value(lab_rows):
    row = _rows(lab_rows)["t1_uniform"]
    fig, ax = plt.subplots(figsize=(6.4, 4.8), layout="constrained")
    uniform = tfd.Uniform(-100.0, 100.0)
    _twin(ax, _curve(lab_setups.t1_cost), _curve(uniform.prob))
    ax.set_title(f"$\\mathbb{{E}}[f(x)] = {row['value']:.4f}$  (trapz, 1,000 points; "
                 f"exact {row['exact']:.7f})")
    return fig


def _stacked(titles, cost):
    fig, axes = plt.subplots(len(titles), 1, figsize=(10, 15), layout="constrained")
    f_values = _curve(cost)
    for ax, (mu, title) in zip(axes, titles):
        _twin(ax, f_values, _curve(tfd.Normal(mu, 5.0).prob))
        ax.set_title(title)
    return fig


def expectation_value_dists(lab_rows):
    rows = _rows(lab_rows)
    titles = []
    for mu in lab_setups.MU_VALUES:
        row = rows[f"t1_normal_{mu:g}"]
        titles.append((mu, f"$\\mathbb{{E}}[f(x)] = {row['value']:.4f}$ (exact "
                           f"{row['exact']:.5f}),  $P(x) = N(\\mu={mu:.2f}, \\sigma=5)$"))
    return _stacked(titles, lab_setups.t1_cost)


def comparison_expected(lab_rows):
    rows = _rows(lab_rows)
    titles = []
    for mu in lab_setups.MU_VALUES:
        mc, trapz = rows[f"t2_mc_{mu:g}"], rows[f"t2_trapz_{mu:g}"]
        titles.append((mu, f"MC={mc['value']:.4f} (±{mc['se']:.4f}), TRAPZ={trapz['value']:.4f}"
                           f";  exact {mc['exact']:.5f},  $P(x) = N(\\mu={mu:.0f}, \\sigma=5)$"))
    return _stacked(titles, lab_setups.t2_cost)


FIGURES = {  # name: (draw, title, caption)
    "lab_expectation_value": (
        expectation_value, "Lab T1: E[f] under a uniform p",
        "f(x) = exp(-0.01|x|) cos(0.1x) under U(-100, 100), by the trapezoidal rule on 1,000 "
        "points: the lab's expectation_value.png, with the exact value in the title."),
    "lab_expectation_value_dists": (
        expectation_value_dists, "Lab T1: E[f] under N(μ, 5)",
        "The same f under N(μ, 5) for five μ, by the trapezoidal rule: the lab's "
        "expectation_value_dists.png, with exact values in the titles."),
    "lab_comparison_expected": (
        comparison_expected, "Lab T2: Monte Carlo against trapz",
        "f(x) = exp(-0.05|x|) under N(μ, 5): Monte Carlo with 10,000 samples (± 1 SE) and the "
        "trapezoidal rule on 10,000 points of (-100, 100): the lab's comparison_expected.png, "
        "with exact values in the titles."),
}
