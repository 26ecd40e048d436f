"""Exact verdicts on the paper's single runs against our many seeds, and the tests behind conclusions.

The paper reports ONE training run per method (Table 2); we train many seeds. A cell asks whether the
paper's value is a typical draw of our process. Under that hypothesis the paper's run is exchangeable
with ours, so its rank among our n runs plus itself is uniform: ``rank_p_value`` is the exact two-sided
Monte-Carlo p-value, corrected across the table's cells with ``holm``. "Consistent" needs positive
evidence, not just a large p: the exact interval of the paper's percentile among our runs
(``percentile_interval``) must lie inside the central 95%. Everything else is "undecided", and
``seeds_needed`` says how many seeds would likely decide it.

Conventions, the same everywhere:

* ties: the p-value counts a tie on both sides (never helps a rejection); the percentile counts it
  one half, rounded outward (floor for the lower bound, ceil for the upper) for its interval.
* censoring: ``capped[i]`` marks a right-censored lower bound (an episode cut at the step cap). Above
  the paper's value it is surely above; at or below, its true side is unknown and it is counted
  against every verdict (both sides of the p-value; both ends of the interval's count). Between our
  runs (``compare_runs``) the claimed loser's capped seeds rank above every seed: the claim's worst case.
* NaN (a diverged seed): cell functions refuse it -- divergence is a regime of its own
  (``split_regimes``), and the paper's value is compared within the finite regime. Comparisons between
  our runs (``compare_runs``, ``interquartile_mean``, ``performance_profile``) keep diverged seeds and
  rank them below every finite value: a NaN network scores at the floor, and dropping those seeds
  would flatter the run that diverges more.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from aqil.stats import probability_of_improvement

ArrayLike = Sequence[float] | np.ndarray
Mask = Sequence[bool] | np.ndarray | None

ALPHA = 0.05  # family-wise error rate over the table's cells
LEVEL = 0.95  # confidence level of the percentile and share intervals
BAND = (0.025, 0.975)  # "consistent": the paper's percentile surely lies inside the central 95%
EXACT_MANN_WHITNEY_PAIRS = 10_000  # exact null distribution up to n_a * n_b pairs (~10 ms); beyond, asymptotic
MAX_MODELLED_COUNTS = 9  # seeds_needed: censored counts tried (evenly spaced, both ends included)

NO_DATA = "no data"
CONSISTENT = "consistent"
OURS_HIGHER = "inconsistent (ours higher)"
OURS_LOWER = "inconsistent (ours lower)"


# ----------------------------------------------------------------------------- input checks


def _cell(values: ArrayLike, capped: Mask) -> tuple[np.ndarray, np.ndarray]:
    """A cell's values (finite, 1-D) and its censoring mask; NaN is refused, not dropped."""
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"a cell's values must be 1-D, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("non-finite value in a cell: split diverged (NaN) seeds off first with split_regimes")
    c = np.zeros(x.size, dtype=bool) if capped is None else np.asarray(capped, dtype=bool)
    if c.shape != x.shape:
        raise ValueError(f"capped has shape {c.shape}, values {x.shape}")
    return x, c


def _paper(paper: float) -> float:
    y = float(paper)
    if not math.isfinite(y):
        raise ValueError(f"the paper's value must be finite, got {paper}")
    return y


def _floored(values: ArrayLike) -> tuple[np.ndarray, int]:
    """NaN (diverged) mapped to -inf, below every finite value, with the number mapped."""
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"values must be 1-D, got shape {x.shape}")
    nan = np.isnan(x)
    return np.where(nan, -np.inf, x), int(nan.sum())


# ----------------------------------------------------------------------------- the paper's rank


def _sides(x: np.ndarray, c: np.ndarray, y: float) -> tuple[int, int]:
    """#{x <= y} and #{x >= y}, a capped value <= y counted on both sides (its true side is unknown)."""
    at_or_below = int((x <= y).sum())
    at_or_above = int((x >= y).sum() + (c & (x < y)).sum())
    return at_or_below, at_or_above


def _rank_p(at_or_below: np.ndarray | int, at_or_above: np.ndarray | int, n: np.ndarray | int) -> np.ndarray:
    return np.minimum(1.0, 2 * (np.minimum(at_or_below, at_or_above) + 1) / (np.asarray(n) + 1))


def rank_p_value(values: ArrayLike, paper: float, capped: Mask = None) -> float:
    """Two-sided exact p-value that the paper's run is exchangeable with ours (its rank uniform).

    p = min(1, 2 min(#{x <= y} + 1, #{x >= y} + 1) / (n + 1)); no seeds give p = 1.
    """
    x, c = _cell(values, capped)
    return float(_rank_p(*_sides(x, c, _paper(paper)), x.size))


def holm(p_values: ArrayLike) -> np.ndarray:
    """Holm step-down adjusted p-values: family-wise error control over the table without independence."""
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1 or np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError("p-values must be a 1-D array of numbers in [0, 1]")
    m = p.size
    order = np.argsort(p, kind="stable")
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    return adjusted


def clopper_pearson(k: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Exact binomial interval: coverage >= level for every true share, which small seed counts need."""
    if int(k) != k or int(n) != n or not 0 <= k <= n:
        raise ValueError(f"need integers 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return 0.0, 1.0
    a = 1 - level
    low = 0.0 if k == 0 else float(stats.beta.ppf(a / 2, k, n - k + 1))
    high = 1.0 if k == n else float(stats.beta.ppf(1 - a / 2, k + 1, n - k))
    return low, high


def _count_below(x: np.ndarray, c: np.ndarray, y: float) -> tuple[float, float]:
    """Bounds on our runs below y (ties one half): a capped value's truth lies at or above it."""
    below, tie = x < y, x == y
    low = float((below & ~c).sum() + 0.5 * (tie & ~c).sum())
    return low, low + float((below & c).sum() + 0.5 * (tie & c).sum())


def percentile_interval(
    values: ArrayLike, paper: float, capped: Mask = None, level: float = LEVEL
) -> tuple[float, float]:
    """Exact interval of F(y) = P(X < y), the paper's percentile among our runs.

    Ties count one half, rounded outward; an ambiguous capped value counts above y for the lower bound
    and below it for the upper bound, so the interval covers whatever the censored values truly are.
    """
    x, c = _cell(values, capped)
    k_low, k_high = _count_below(x, c, _paper(paper))
    n = x.size
    return clopper_pearson(math.floor(k_low), n, level)[0], clopper_pearson(math.ceil(k_high), n, level)[1]


def _consistent(low: float, high: float) -> bool:
    return BAND[0] < low and high < BAND[1]


# ----------------------------------------------------------------------------- the table's verdicts


@dataclass(frozen=True, eq=False)
class Cell:
    """One cell of Table 2: our seeds' values in the paper's (finite) regime and the paper's single value."""

    name: str
    values: ArrayLike
    paper: float
    capped: Mask = None


@dataclass(frozen=True)
class CellVerdict:
    name: str
    paper: float
    n: int
    p: float  # rank_p_value
    p_holm: float  # Holm-adjusted over all cells passed together
    low: float  # percentile_interval: where the paper's run lies among ours
    high: float
    word: str  # consistent | inconsistent (ours higher|lower) | undecided (n seeds) | no data
    seeds_needed: int | None  # n when decided; None for no data or beyond max_seeds


def cell_verdicts(
    cells: Sequence[Cell], alpha: float = ALPHA, power: float = 0.8, max_seeds: int = 5000
) -> list[CellVerdict]:
    """Verdicts for the whole table at once: Holm over all its cells (an empty cell enters with p = 1)."""
    p = [rank_p_value(cell.values, cell.paper, cell.capped) for cell in cells]
    adjusted = holm(p)
    return [
        _cell_verdict(cell, p_i, float(h), alpha, power, len(cells), max_seeds)
        for cell, p_i, h in zip(cells, p, adjusted, strict=True)
    ]


def _cell_verdict(
    cell: Cell, p: float, p_holm: float, alpha: float, power: float, cells: int, max_seeds: int
) -> CellVerdict:
    x, c = _cell(cell.values, cell.capped)
    y, n = _paper(cell.paper), int(x.size)
    if n == 0:  # every seed left this regime: nothing to rank against, nothing to model more seeds from
        return CellVerdict(cell.name, y, 0, 1.0, p_holm, 0.0, 1.0, NO_DATA, None)
    low, high = percentile_interval(x, y, c)
    at_or_below, at_or_above = _sides(x, c, y)
    if p_holm <= alpha:
        word = OURS_HIGHER if at_or_below < at_or_above else OURS_LOWER
    elif _consistent(low, high):
        word = CONSISTENT
    else:
        word = f"undecided ({n} seed{'s' if n != 1 else ''})"
    needed = n if not word.startswith("undecided") else seeds_needed(x, y, c, power, cells, alpha, max_seeds)
    return CellVerdict(cell.name, y, n, p, p_holm, low, high, word, needed)


# ----------------------------------------------------------------------------- how many seeds


def seeds_needed(
    values: ArrayLike,
    paper: float,
    capped: Mask = None,
    power: float = 0.8,
    cells: int = 8,
    alpha: float = ALPHA,
    max_seeds: int = 5000,
) -> int | None:
    """Smallest total N >= n of seeds whose verdict is decisive with probability >= power; None beyond max_seeds.

    Decisive: inconsistent by Bonferroni (p * cells <= alpha; Holm rejects at least that) or consistent
    by the interval rule. Already decisive now: n. Model: the paper's percentile is fixed at today's
    shrunk estimate q = (k + 0.5) / (n + 1) (k = our runs below y, ties one half; never 0 or 1), and
    with N seeds the number below y is Binomial(N, q), future seeds uncensored and untied; P(decisive) is
    the exact binomial mass of the decisive counts. Censored values leave k within [k_low, k_high]: the
    least favourable of up to MAX_MODELLED_COUNTS counts in that range is used.
    """
    x, c = _cell(values, capped)
    y, n = _paper(paper), int(x.size)
    if n and (_rank_p(*_sides(x, c, y), n) * cells <= alpha or _consistent(*percentile_interval(x, y, c))):
        return n
    k_low, k_high = _count_below(x, c, y)
    ks = np.unique(np.round(2 * np.linspace(k_low, k_high, MAX_MODELLED_COUNTS)) / 2)
    q = (ks[:, None] + 0.5) / (n + 1)
    start, size = n + 1, 64  # P(decisive) is not monotone in N (discreteness): scan, in growing chunks
    while start <= max_seeds:
        big_n = np.arange(start, min(start + size, max_seeds + 1))
        hit = np.flatnonzero(_p_decisive(big_n, q, cells, alpha, max_seeds).min(axis=0) >= power)
        if hit.size:
            return int(big_n[hit[0]])
        start, size = start + size, 2 * size
    return None


def _p_decisive(big_n: np.ndarray, q: np.ndarray, cells: int, alpha: float, max_seeds: int) -> np.ndarray:
    """P(decisive verdict) for each (q, N): decisive counts are [0, m], [j_lo, N - j_lo] and [N - m, N]."""
    m = _inconsistent_tail(big_n, cells, alpha)
    j_lo = _consistent_starts(int(max_seeds))[big_n]
    upper = np.maximum(big_n - m, m + 1)  # first count of the upper tail (N + 1: none)
    mid_lo, mid_hi = np.maximum(j_lo, m + 1), np.minimum(big_n - j_lo, upper - 1)
    tails = stats.binom.cdf(m, big_n, q) + stats.binom.sf(upper - 1, big_n, q)
    middle = stats.binom.cdf(mid_hi, big_n, q) - stats.binom.cdf(mid_lo - 1, big_n, q)
    return tails + np.where(mid_hi >= mid_lo, middle, 0.0)


def _inconsistent_tail(big_n: np.ndarray, cells: int, alpha: float) -> np.ndarray:
    """Largest count j with rank p-value * cells <= alpha (-1: none), checked with rank_p_value's formula."""
    j = np.floor(alpha * (big_n + 1) / (2 * cells)).astype(np.int64) - 1
    j -= (j >= 0) & (_rank_p(j, big_n - j, big_n) * cells > alpha)
    j += _rank_p(j + 1, big_n - j - 1, big_n) * cells <= alpha
    return j


def _cp_low(j: np.ndarray, big_n: np.ndarray) -> np.ndarray:
    """Clopper-Pearson lower bound for counts 0..N, with N + 1 as a sentinel above every bound."""
    inside = (j >= 1) & (j <= big_n)
    jj = np.clip(j, 1, big_n)
    low = stats.beta.ppf((1 - LEVEL) / 2, jj, big_n - jj + 1)
    return np.where(inside, low, np.where(j > big_n, 2.0, 0.0))


@functools.lru_cache(maxsize=4)
def _consistent_starts(max_n: int) -> np.ndarray:
    """For N = 0..max_n, the smallest count j whose interval's lower bound exceeds BAND[0] (by symmetry the
    upper bound of N - j is then below BAND[1]); computed once, as it does not depend on the data.
    Duality gives j from the binomial quantile; it is then checked against the exact bounds."""
    big_n = np.arange(1, max_n + 1)
    j = np.minimum(stats.binom.isf((1 - LEVEL) / 2, big_n, BAND[0]).astype(np.int64) + 1, big_n + 1)
    while True:
        up = _cp_low(j, big_n) <= BAND[0]
        down = ~up & (j >= 1) & (_cp_low(j - 1, big_n) > BAND[0])
        if not (up.any() or down.any()):
            break
        j = j + up - down
    starts = np.concatenate([[1], j])  # N = 0: no count is consistent
    starts.flags.writeable = False
    return starts


# ----------------------------------------------------------------------------- regimes


@dataclass(frozen=True)
class Share:
    k: int
    n: int
    share: float  # k / n; NaN for n == 0
    low: float  # Clopper-Pearson interval
    high: float


def share_with_interval(k: int, n: int, level: float = LEVEL) -> Share:
    """A share with its exact interval: divergence rates are small counts out of few seeds."""
    low, high = clopper_pearson(k, n, level)
    return Share(int(k), int(n), k / n if n else math.nan, low, high)


@dataclass(frozen=True, eq=False)
class Regimes:
    diverged: Share  # seeds that diverged, out of all
    values: np.ndarray  # the other seeds' values: the paper's regime, where its cells are judged
    capped: np.ndarray  # their censoring mask


def split_regimes(values: ArrayLike, diverged: Mask = None, capped: Mask = None) -> Regimes:
    """Diverged seeds (NaN, or flagged) against the rest: two regimes, neither hidden in the other's numbers.

    A seed not flagged as diverged must have a finite value: a stray NaN is an error, never dropped.
    """
    x = np.asarray(values, dtype=np.float64)
    d = np.isnan(x) if diverged is None else np.asarray(diverged, dtype=bool)
    c = np.zeros(x.shape, dtype=bool) if capped is None else np.asarray(capped, dtype=bool)
    if x.ndim != 1 or d.shape != x.shape or c.shape != x.shape:
        raise ValueError(f"values, diverged and capped must be 1-D of one length: {x.shape}, {d.shape}, {c.shape}")
    if not np.isfinite(x[~d]).all():
        raise ValueError("a seed not flagged as diverged has a non-finite value")
    return Regimes(share_with_interval(int(d.sum()), int(x.size)), x[~d], c[~d])


# ----------------------------------------------------------------------------- comparing our runs


@dataclass(frozen=True)
class Comparison:
    n_a: int  # seeds of the claimed winner, diverged included
    n_b: int
    diverged_a: int  # NaN seeds, ranked below every finite value
    diverged_b: int
    censored_b: int  # the loser's capped seeds, ranked above every seed of both runs (the claim's worst case)
    p: float  # one-sided Mann-Whitney U, H1: a is stochastically greater than b
    method: str  # "exact" (no ties, n_a * n_b <= EXACT_MANN_WHITNEY_PAIRS) or "asymptotic" (with continuity)
    probability_of_improvement: float  # P(A > B) + 0.5 P(A = B)
    low: float  # 95% percentile-bootstrap interval, each run's seeds resampled independently
    high: float


def compare_runs(winner: ArrayLike, loser: ArrayLike, samples: int, rng: np.random.Generator,
                 loser_capped: Mask = None) -> Comparison:
    """Does run A (winner) beat run B (loser)? A rank test and rliable's probability of improvement.

    Diverged (NaN) seeds stay in, below every finite value: a NaN network scores at the floor, and
    dropping them would reward divergence. A loser's capped value is a lower bound, so it is ranked above
    every seed of both runs (``_worst_case``): the rank sum and the probability of improvement are then the
    least favourable to A that any uncapped values could give. A's own capped values stay as they are,
    which can only understate A. So a significant win holds whatever the capped episodes would have scored.
    """
    a, nan_a = _floored(winner)
    b, nan_b = _floored(loser)
    if not a.size or not b.size:
        raise ValueError("each run needs at least one seed")
    b, censored = _worst_case(a, b, loser_capped)
    ties = np.unique(np.concatenate([a, b])).size < a.size + b.size
    method = "exact" if not ties and a.size * b.size <= EXACT_MANN_WHITNEY_PAIRS else "asymptotic"
    p = float(stats.mannwhitneyu(a, b, alternative="greater", method=method, use_continuity=True).pvalue)
    low, high = _bootstrap_improvement(a, b, samples, rng)
    return Comparison(int(a.size), int(b.size), nan_a, nan_b, censored, p, method, probability_of_improvement(a, b),
                      low, high)


def _worst_case(a: np.ndarray, b: np.ndarray, capped: Mask) -> tuple[np.ndarray, int]:
    """B with its capped values lifted, in their order and without new ties, above every value of A and B.

    No completion of a lower bound ranks it higher, and the one-sided test's p only grows as B's ranks
    rise (and, in the asymptotic test, as ties disappear)."""
    if capped is None:
        return b, 0
    mask = np.asarray(capped, dtype=bool)
    if mask.shape != b.shape:
        raise ValueError(f"loser_capped has shape {mask.shape}, the loser's values {b.shape}")
    if not mask.any():
        return b, 0
    if not np.isfinite(b[mask]).all():
        raise ValueError("a diverged (NaN) seed cannot be capped: its network scores at the floor")
    both = np.concatenate([a, b])
    finite = both[np.isfinite(both)]
    lifted = b.copy()
    lifted[mask] += finite.max() - b[mask].min() + 1.0
    return lifted, int(mask.sum())


def _resample_counts(n: int, samples: int, rng: np.random.Generator) -> np.ndarray:
    """How often each seed is drawn in each bootstrap sample (n draws with replacement)."""
    draws = rng.integers(0, n, size=(samples, n)) + n * np.arange(samples)[:, None]
    return np.bincount(draws.ravel(), minlength=samples * n).reshape(samples, n).astype(np.float64)


def _bootstrap_improvement(a: np.ndarray, b: np.ndarray, samples: int, rng: np.random.Generator) -> tuple[float, float]:
    """Percentile-bootstrap interval of P(A > B): rliable's stratified bootstrap with one task, where
    a resample's value is the count-weighted mean of the pairwise win matrix (no pairs re-compared)."""
    wins = (a[:, None] > b[None, :]) + 0.5 * (a[:, None] == b[None, :])
    count_a = _resample_counts(a.size, samples, rng)
    count_b = _resample_counts(b.size, samples, rng)
    values = ((count_a @ wins) * count_b).sum(axis=1) / (a.size * b.size)
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def interquartile_mean(values: ArrayLike) -> float:
    """rliable's IQM: the mean of the middle half, robust to a few outlying seeds.

    Diverged (NaN) seeds rank below every finite value; up to a quarter of them fall in the trimmed
    bottom quarter. If more diverged they would enter the middle half and the IQM is undefined:
    ValueError (report the regimes separately instead).
    """
    x, nan = _floored(values)
    if not x.size:
        raise ValueError("no values")
    if nan > int(0.25 * x.size):  # scipy trims int(0.25 n) values from each end
        raise ValueError(f"{nan} of {x.size} seeds diverged (NaN), more than the trimmed quarter: IQM undefined")
    return float(stats.trim_mean(x, 0.25))


def performance_profile(values: ArrayLike, thresholds: ArrayLike) -> np.ndarray:
    """Fraction of seeds scoring above each threshold (rliable's score distribution); NaN counts below."""
    x = np.asarray(values, dtype=np.float64)
    t = np.asarray(thresholds, dtype=np.float64)
    if x.ndim != 1 or not x.size:
        raise ValueError("values must be a non-empty 1-D array")
    return (x[None, :] > t.reshape(-1)[:, None]).sum(axis=1).reshape(t.shape) / x.size


# ----------------------------------------------------------------------------- distributions, episode lengths


@dataclass(frozen=True)
class TwoSample:
    statistic: float
    p: float


def _finite_1d(values: ArrayLike, what: str) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or not x.size or not np.isfinite(x).all():
        raise ValueError(f"{what} must be a non-empty 1-D array of finite numbers (split diverged seeds off first)")
    return x


def ks_two_sample(a: ArrayLike, b: ArrayLike) -> TwoSample:
    """Two-sample Kolmogorov-Smirnov: do two runs' whole distributions differ, not just their centres?"""
    r = stats.ks_2samp(_finite_1d(a, "a"), _finite_1d(b, "b"))
    return TwoSample(float(r.statistic), float(r.pvalue))


def _censored(times: ArrayLike, capped: Mask) -> stats.CensoredData:
    t = _finite_1d(times, "times")
    c = np.zeros(t.size, dtype=bool) if capped is None else np.asarray(capped, dtype=bool)
    if c.shape != t.shape:
        raise ValueError(f"capped has shape {c.shape}, times {t.shape}")
    return stats.CensoredData(uncensored=t[~c], right=t[c])


def logrank(times_a: ArrayLike, capped_a: Mask, times_b: ArrayLike, capped_b: Mask) -> TwoSample:
    """Log-rank test of episode lengths right-censored at the step cap (a capped length is a lower bound)."""
    r = stats.logrank(_censored(times_a, capped_a), _censored(times_b, capped_b))
    return TwoSample(float(r.statistic), float(r.pvalue))


def survival_curve(times: ArrayLike, capped: Mask) -> tuple[np.ndarray, np.ndarray]:
    """Kaplan-Meier S(t) = P(length > t), unbiased where capped episodes would bias a plain mean."""
    sf = stats.ecdf(_censored(times, capped)).sf
    return np.asarray(sf.quantiles), np.asarray(sf.probabilities)


def first_episode_reaching(steps: ArrayLike, threshold: float) -> int | None:
    """Index of the first episode lasting at least threshold steps (sample efficiency); None if none did."""
    hit = np.flatnonzero(np.asarray(steps, dtype=np.float64) >= threshold)
    return int(hit[0]) if hit.size else None
