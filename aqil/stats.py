"""Interval estimates over seeds (the verdicts built on ranks are in aqil/verdict.py).

For our own mean and for comparisons between runs we give the
standard deviation, a 95% percentile-bootstrap confidence interval of the mean, and the
probability of improvement P(X > Y) (ties count one half) -- the estimators rliable uses. With one task
(CartPole) rliable's stratified bootstrap is this plain bootstrap, so it is computed here with
numpy rather than adding rliable and its dependencies (arch, scipy, pandas, seaborn).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Estimate:
    n: int
    mean: float
    std: float  # sample standard deviation (ddof=1); 0 for one seed
    low: float | None  # 95% CI of the mean; None for one seed
    high: float | None


def estimate(values: list[float] | np.ndarray, samples: int, rng: np.random.Generator) -> Estimate:
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        raise ValueError("no values to estimate from")
    if x.size == 1:
        return Estimate(1, float(x[0]), 0.0, None, None)
    means = x[rng.integers(0, x.size, size=(samples, x.size))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    # The bootstrap mean of identical draws can differ from x[0] in the last bit; keep the
    # interval honest for an all-equal sample.
    if np.all(x == x[0]):
        low = high = float(x[0])
    return Estimate(int(x.size), float(x.mean()), float(x.std(ddof=1)), float(low), float(high))


def probability_of_improvement(x: list[float] | np.ndarray, y: list[float] | np.ndarray) -> float:
    """P(X > Y) over all seed pairs, ties counted one half."""
    a = np.asarray(x, dtype=np.float64)[:, None]
    b = np.asarray(y, dtype=np.float64)[None, :]
    return float(((a > b).sum() + 0.5 * (a == b).sum()) / (a.size * b.size))
