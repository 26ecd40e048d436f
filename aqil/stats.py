"""Interval estimates over seeds and the verdicts built on them.

The paper reports one run per method, so a cell's verdict compares that single run with the spread
of our single runs (``single_run_verdict``), never with the confidence interval of our mean, which
narrows as seeds are added. For our own mean and for comparisons between runs we give the
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


# The paper's value is ONE run. Under the hypothesis that it is a typical draw of the same process
# as ours, its rank among n + 1 runs is uniform, so lying beyond all n of ours has probability
# 1/(n + 1) on each side. A two-sided 5% test can therefore only reject with n >= 39 seeds; with
# fewer, a paper value outside our range is reported as such, with its chance, but not as a finding.
ALPHA = 0.05
SEEDS_FOR_A_FINDING = 39  # smallest n with 2 / (n + 1) <= ALPHA


@dataclass(frozen=True)
class Verdict:
    word: str  # reproduced | higher | lower | above our range | below our range | inconclusive (capped) | 1 seed
    factor: float  # our mean / paper value
    percentile: float | None  # share of our runs below the paper's value (ties count one half)
    sentence: str


def _ordinal(k: int) -> str:
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"


def single_run_verdict(
    values: list[float], paper: float, what: str, capped: list[bool] | None = None, diverged: int = 0
) -> Verdict:
    """Is the paper's single run a typical draw among our single runs (one per seed)?

    *reproduced*: the paper's value lies within the range of our runs (its percentile is given).
    Beyond all of them: *higher* / *lower* (ours higher / lower) when 2/(n+1) <= 5%, i.e. n >= 39;
    with fewer seeds *above our range* / *below our range*, which is not evidence on its own.
    A seed whose training episodes hit the step cap has a lower bound as its value: when such a
    seed lies below the paper's value, the paper's rank is unknown and the cell is inconclusive.
    """
    x = np.asarray(values, dtype=np.float64)
    n = int(x.size)
    capped = capped or [False] * n
    factor = float(x.mean() / paper) if paper else float("nan")
    below = float((x < paper).sum() + 0.5 * (x == paper).sum())
    percentile = below / n
    note = ""
    if diverged:
        note += (f" {diverged} of {n} seed{'s' if n != 1 else ''} diverged (NaN network from then on, played "
                 "as the reference's code would).")
    lower_bounds = int(sum(capped))
    if lower_bounds:
        note += (f" {lower_bounds} seed{'s' if lower_bounds != 1 else ''} had training episodes cut at the step cap, "
                 "so their values are lower bounds.")
    ours = f"our {n} run{'s' if n != 1 else ''} (mean {x.mean():,.2f}, range {x.min():,.2f} to {x.max():,.2f})"
    if n == 1:
        return Verdict("1 seed", factor, None,
                       f"{what}: one run gives {x[0]:,.2f} against the paper's {paper:,.2f} (x{factor:.2f}); one "
                       f"run against one run cannot judge a cell.{note}")
    if any(c and v < paper for c, v in zip(capped, x, strict=True)):
        return Verdict("inconclusive (capped)", factor, percentile,
                       f"{what}: seeds cut at the step cap lie below the paper's {paper:,.2f}, so its rank among "
                       f"{ours} is unknown.{note}")
    chance = 1 / (n + 1)
    if x.min() <= paper <= x.max():
        return Verdict("reproduced", factor, percentile,
                       f"{what}: the paper's {paper:,.2f} lies within {ours}, at the "
                       f"{_ordinal(round(100 * percentile))} percentile.{note}")
    side = "above" if paper > x.max() else "below"
    if n >= SEEDS_FOR_A_FINDING:
        word = "lower" if side == "above" else "higher"
        return Verdict(word, factor, percentile,
                       f"{what}: the paper's {paper:,.2f} lies {side} all of {ours}; a typical run would do so "
                       f"with probability {chance:.3f} (two-sided {2 * chance:.3f} <= {ALPHA}).{note}")
    return Verdict(f"{side} our range", factor, percentile,
                   f"{what}: the paper's {paper:,.2f} lies {side} all of {ours}; a typical run would do so with "
                   f"probability {chance:.2f}, so {n} seeds cannot call it atypical ({SEEDS_FOR_A_FINDING} "
                   f"needed at two-sided {ALPHA}).{note}")
