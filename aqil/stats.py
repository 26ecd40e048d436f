"""Interval estimates over seeds and the verdicts built on them.

The paper reports one run per method. Across seeds we give the mean, the standard deviation, a
95% percentile-bootstrap confidence interval of the mean, and the probability of improvement
P(X > Y) (ties count one half) between two methods -- the estimators rliable uses. With one task
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


@dataclass(frozen=True)
class Verdict:
    word: str  # reproduced | higher | lower | 1 seed
    factor: float  # reproduced mean / paper value
    sentence: str


def cell_verdict(est: Estimate, paper: float, what: str, capped_episodes: int = 0) -> Verdict:
    """'reproduced' when the paper's value lies in the seeds' 95% interval, else higher/lower by a factor.

    When training episodes hit the step cap, the run's rewards are lower bounds of the uncapped ones:
    only 'higher' (interval entirely above the paper) stays sound; anything else is inconclusive.
    """
    factor = est.mean / paper if paper else float("nan")
    capped = (
        f" {capped_episodes} training episode{'s' if capped_episodes != 1 else ''} hit the step cap, so this "
        "is a lower bound of the uncapped value." if capped_episodes else ""
    )
    if est.low is None or est.high is None:
        return Verdict(
            "1 seed: no interval", factor,
            f"{what}: one seed gives {est.mean:.2f} against the paper's {paper:.2f} (x{factor:.2f}); "
            f"one run has no interval, so no verdict.{capped}",
        )
    interval = f"[{est.low:.2f}, {est.high:.2f}]"
    if capped_episodes and not paper < est.low:
        return Verdict(
            "inconclusive (capped)", factor,
            f"{what}: the {est.n}-seed 95% interval {interval} does not lie above the paper's {paper:.2f}, "
            f"and{capped[0].lower()}{capped[1:]} The cap hides whether the paper's value is reached.",
        )
    if est.low <= paper <= est.high:
        return Verdict(
            "reproduced", factor,
            f"{what}: the paper's {paper:.2f} lies inside the {est.n}-seed 95% interval {interval}.",
        )
    if paper < est.low:
        return Verdict(
            "higher", factor,
            f"{what}: the {est.n}-seed 95% interval {interval} lies above the paper's {paper:.2f} "
            f"(mean x{factor:.2f} the paper's).{capped}",
        )
    return Verdict(
        "lower", factor,
        f"{what}: the {est.n}-seed 95% interval {interval} lies below the paper's {paper:.2f} "
        f"(mean x{factor:.2f} the paper's, i.e. the paper is x{1 / factor if factor else float('inf'):.2f} ours).",
    )
