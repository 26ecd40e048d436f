"""The cell verdicts and comparison tests of aqil/verdict.py on constructed data, against brute force and scipy."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from aqil.verdict import (
    Cell,
    cell_verdicts,
    clopper_pearson,
    compare_runs,
    first_episode_reaching,
    holm,
    interquartile_mean,
    ks_two_sample,
    logrank,
    percentile_interval,
    performance_profile,
    rank_p_value,
    seeds_needed,
    share_with_interval,
    split_regimes,
    survival_curve,
)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# ----------------------------------------------------------------------------- rank p-value


def brute_rank_p(values: list[float], paper: float) -> float:
    """Uncensored rank p-value by counting in plain Python: the paper ranks uniformly among n + 1 runs."""
    n = len(values)
    at_or_below = sum(1 for v in values if v <= paper)
    at_or_above = sum(1 for v in values if v >= paper)
    one_sided = min(at_or_below + 1, at_or_above + 1) / (n + 1)
    return min(1.0, 2 * one_sided)


def test_rank_p_value_matches_brute_force_with_ties():
    g = rng()
    for _ in range(200):
        n = int(g.integers(1, 30))
        values = g.integers(0, 8, size=n).astype(float).tolist()  # many ties
        paper = float(g.integers(-1, 9))
        assert rank_p_value(values, paper) == pytest.approx(brute_rank_p(values, paper))


def test_rank_p_value_known_values():
    five = [10.0, 20.0, 30.0, 40.0, 50.0]
    for paper in (15.0, 30.0, 45.0):  # inside the range of 5 seeds: never a finding
        assert rank_p_value(five, paper) >= 1 / 3
    assert rank_p_value(five, 15.0) == pytest.approx(4 / 6)
    assert rank_p_value(five, 5.0) == pytest.approx(2 / 6)  # below all 5: the smallest p 5 seeds can give
    assert rank_p_value(np.arange(39.0), -1.0) == pytest.approx(0.05)  # 39 seeds: first at 5%
    assert rank_p_value([], 3.0) == 1.0
    with pytest.raises(ValueError, match="split_regimes"):
        rank_p_value([1.0, np.nan], 0.0)


def test_capped_value_above_the_paper_counts_above():
    x = np.arange(1.0, 11.0)
    assert rank_p_value(x, 0.5, capped=np.ones(10, dtype=bool)) == rank_p_value(x, 0.5) == pytest.approx(2 / 11)
    assert rank_p_value(x, 10.5, capped=np.ones(10, dtype=bool)) == 1.0  # all ambiguous: no evidence at all


def test_capped_value_below_the_paper_counts_on_both_sides_and_only_raises_p():
    x = np.arange(1.0, 11.0)
    capped = np.zeros(10, dtype=bool)
    capped[0] = True  # 1.0 <= 9.5: its true value may lie above the paper's
    assert rank_p_value(x, 9.5) == pytest.approx(4 / 11)
    assert rank_p_value(x, 9.5, capped) == pytest.approx(6 / 11)
    g = rng(1)
    for _ in range(200):
        n = int(g.integers(1, 12))
        values = g.integers(0, 6, size=n).astype(float)
        capped = g.random(n) < 0.4
        paper = float(g.integers(0, 6))
        p = rank_p_value(values, paper, capped)
        assert p >= rank_p_value(values, paper)
        # every completion of the censored values (each ambiguous one truly below or above y) gives at most p
        ambiguous = np.flatnonzero(capped & (values <= paper))
        for above in itertools.product([False, True], repeat=ambiguous.size):
            truth = values.copy()
            truth[ambiguous[list(above)]] = paper + 1
            assert brute_rank_p(truth.tolist(), paper) <= p + 1e-12


# ----------------------------------------------------------------------------- Holm, Clopper-Pearson


def brute_holm(p: list[float]) -> list[float]:
    """Holm by its definition: a p-value of rank r (ties take the first rank) is scaled by m - r + 1 and the
    adjusted value is the largest scaled value among p-values not above it."""
    m = len(p)
    scaled = [(m - sum(q < pj for q in p)) * pj for pj in p]
    return [min(1.0, max(s for s, pj in zip(scaled, p, strict=True) if pj <= pi)) for pi in p]


def holm_rejections(p: list[float], alpha: float) -> set[int]:
    """The step-down procedure: reject in increasing order while p_(i) <= alpha / (m - i)."""
    order = sorted(range(len(p)), key=lambda i: p[i])
    rejected: set[int] = set()
    for i, j in enumerate(order):
        if p[j] > alpha / (len(p) - i):
            break
        rejected.add(j)
    return rejected


def test_holm_textbook_example():
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(holm([0.5, 0.9]), [1.0, 1.0])
    assert holm([]).size == 0
    with pytest.raises(ValueError):
        holm([0.1, np.nan])


def test_holm_matches_brute_force_is_monotone_and_rejects_as_the_step_down_procedure():
    g = rng(2)
    for _ in range(300):
        m = int(g.integers(1, 10))
        p = np.round(g.random(m) ** 3, 2).tolist()  # small p-values and ties
        adjusted = holm(p)
        np.testing.assert_allclose(adjusted, brute_holm(p), rtol=1e-12)
        assert np.all(adjusted >= np.asarray(p)) and np.all(adjusted <= 1.0)
        order = np.argsort(p, kind="stable")
        assert np.all(np.diff(adjusted[order]) >= 0)
        for alpha in (0.01, 0.05, 0.2):
            assert set(np.flatnonzero(adjusted <= alpha)) == holm_rejections(p, alpha)


def test_clopper_pearson_matches_scipy_binomtest():
    for n in (1, 2, 5, 17, 40, 100):
        for k in range(n + 1):
            for level in (0.9, 0.95):
                ci = stats.binomtest(k, n).proportion_ci(confidence_level=level, method="exact")
                np.testing.assert_allclose(clopper_pearson(k, n, level), (ci.low, ci.high), rtol=1e-9, atol=1e-12)
    assert clopper_pearson(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        clopper_pearson(3, 2)


# ----------------------------------------------------------------------------- percentile interval


def test_percentile_interval_counts_ties_half_rounded_outward():
    x = np.arange(10.0)
    assert percentile_interval(x, 3.5) == clopper_pearson(4, 10)
    # 1 below, 2 tied: k = 2 exactly
    assert percentile_interval([1.0, 2.0, 2.0, 3.0], 2.0) == clopper_pearson(2, 4)
    # 1 below, 3 tied: k = 2.5 -> floor 2 for the lower bound, ceil 3 for the upper
    low, high = percentile_interval([1.0, 2.0, 2.0, 2.0, 3.0], 2.0)
    assert (low, high) == (clopper_pearson(2, 5)[0], clopper_pearson(3, 5)[1])
    assert percentile_interval([], 1.0) == (0.0, 1.0)


def test_censoring_widens_the_percentile_interval():
    x = np.arange(20.0)
    capped = np.zeros(20, dtype=bool)
    capped[[2, 5, 15]] = True  # 2 and 5 lie below 9.5 (ambiguous); 15 lies above (surely above)
    low, high = percentile_interval(x, 9.5, capped)
    assert low == clopper_pearson(8, 20)[0]  # the ambiguous two counted above
    assert high == clopper_pearson(10, 20)[1]  # ... and below
    plain = percentile_interval(x, 9.5)
    assert low < plain[0] and high == plain[1]


# ----------------------------------------------------------------------------- cell verdicts


def test_cell_words_for_clear_cases():
    middle = [Cell(f"middle {i}", np.arange(100.0), 49.5) for i in range(5)]
    cells = [
        *middle,
        Cell("below all of 400", np.arange(400.0), -1.0),
        Cell("above all of 400", np.arange(400.0), 400.0),
        Cell("5 seeds", np.arange(5.0), -1.0),
    ]
    verdicts = cell_verdicts(cells)
    assert [v.word for v in verdicts[:5]] == ["consistent"] * 5
    assert all(v.seeds_needed == 100 and v.low > 0.025 and v.high < 0.975 for v in verdicts[:5])
    below, above, five = verdicts[5:]
    assert below.word == "inconsistent (ours higher)" and above.word == "inconsistent (ours lower)"
    assert below.p == pytest.approx(2 / 401)
    assert below.p_holm == pytest.approx(8 * 2 / 401) and below.p_holm <= 0.05  # Holm over all 8 cells
    assert below.seeds_needed == 400
    assert five.word == "undecided (5 seeds)" and five.p == pytest.approx(1 / 3) and five.n == 5
    assert five.seeds_needed is None or five.seeds_needed > 5


def test_empty_cell_has_no_data_and_enters_holm_with_p_1():
    verdicts = cell_verdicts([Cell("all diverged", [], 300.0), Cell("below all", np.arange(400.0), -1.0)])
    assert (verdicts[0].word, verdicts[0].n, verdicts[0].p, verdicts[0].seeds_needed) == ("no data", 0, 1.0, None)
    assert verdicts[1].p_holm == pytest.approx(2 * 2 / 401)
    with pytest.raises(ValueError, match="split_regimes"):
        cell_verdicts([Cell("stray NaN", [1.0, np.nan], 0.0)])


def test_capped_seeds_below_the_paper_keep_a_cell_undecided():
    x = np.arange(100.0)
    capped = x < 60  # 60 lower bounds below the paper's 70: its percentile lies anywhere in [10%, 70%]
    (v,) = cell_verdicts([Cell("capped", x, 69.5, capped)])
    assert v.low < 0.1 and v.high > 0.7
    assert v.word == "consistent"  # still inside the central 95% whatever the censored values are
    (v,) = cell_verdicts([Cell("capped", x, 99.5, x < 99)])  # nearly all ambiguous
    assert v.word == "undecided (100 seeds)" and v.high == 1.0


# ----------------------------------------------------------------------------- seeds needed


def brute_seeds_needed(n: int, k: float, power: float, cells: int, alpha: float, limit: int) -> int | None:
    """The model of seeds_needed summed term by term with the verdict functions themselves."""
    q = (k + 0.5) / (n + 1)
    for big_n in range(n + 1, limit + 1):
        decisive = 0.0
        for j in range(big_n + 1):
            low, high = clopper_pearson(j, big_n)
            p = min(1.0, 2 * (min(j, big_n - j) + 1) / (big_n + 1))
            if p * cells <= alpha or (low > 0.025 and high < 0.975):
                decisive += stats.binom.pmf(j, big_n, q)
        if decisive >= power:
            return big_n
    return None


def test_seeds_needed_matches_the_model_summed_term_by_term():
    x = np.arange(20.0)
    needed = seeds_needed(x, 1.5)  # 2 of 20 below
    assert needed == brute_seeds_needed(20, 2, 0.8, 8, 0.05, 80)
    assert needed is not None and needed > 20
    assert seeds_needed(np.arange(3.0), 1.0) == brute_seeds_needed(3, 1.5, 0.8, 8, 0.05, 40)  # a tie: k = 1.5


def test_seeds_needed_grows_as_the_paper_moves_from_the_middle_to_the_edge():
    x = np.arange(20.0)
    for papers in (np.arange(9.5, -1.0, -1.0), np.arange(9.5, 21.0, 1.0)):
        needed = [seeds_needed(x, y) for y in papers]
        as_numbers = [math.inf if s is None else s for s in needed]
        assert as_numbers == sorted(as_numbers)
        assert needed[0] == 20 and needed[-1] is None  # consistent now; beyond all 20 lies the undecidable band


def test_seeds_needed_small_in_the_middle_n_when_decided_none_when_hopeless():
    middle = seeds_needed([0.0, 1.0, 2.0], 1.0)
    assert middle is not None and 3 < middle <= 20
    assert seeds_needed(np.arange(400.0), -1.0) == 400  # already inconsistent (Bonferroni over 8 cells)
    assert seeds_needed(np.arange(100.0), 49.5) == 100  # already consistent
    # 1 of 60 below: q = 1.5 / 61 sits at the 2.5% edge, where neither verdict ever becomes likely
    assert seeds_needed(np.arange(60.0), 0.5) is None
    # 1 of 40 below (q = 1.5 / 41): decidable, but only far beyond a small max_seeds
    far = seeds_needed(np.arange(40.0), 0.5)
    assert far is not None and far > 1000
    assert seeds_needed(np.arange(40.0), 0.5, max_seeds=far - 1) is None


def test_seeds_needed_with_censoring_is_never_smaller():
    x = np.arange(30.0)
    plain = seeds_needed(x, 4.5)
    capped = seeds_needed(x, 4.5, capped=x < 3)
    assert plain is not None and (capped is None or capped >= plain)


# ----------------------------------------------------------------------------- regimes


def test_split_regimes_separates_diverged_seeds_with_an_exact_interval():
    r = split_regimes([1.0, np.nan, 3.0, np.nan, 5.0], capped=[True, False, False, True, False])
    assert (r.diverged.k, r.diverged.n, r.diverged.share) == (2, 5, 0.4)
    assert (r.diverged.low, r.diverged.high) == clopper_pearson(2, 5)
    np.testing.assert_array_equal(r.values, [1.0, 3.0, 5.0])
    np.testing.assert_array_equal(r.capped, [True, False, False])
    flagged = split_regimes([1.0, 2.0, 3.0], diverged=[False, True, False])
    np.testing.assert_array_equal(flagged.values, [1.0, 3.0])
    with pytest.raises(ValueError, match="not flagged"):
        split_regimes([1.0, np.nan], diverged=[False, False])
    empty = share_with_interval(0, 0)
    assert math.isnan(empty.share) and (empty.low, empty.high) == (0.0, 1.0)


# ----------------------------------------------------------------------------- comparing runs


def test_clear_win_has_a_small_exact_p_and_improvement_near_1():
    c = compare_runs(np.arange(10.0) + 100, np.arange(10.0), 2000, rng())
    assert c.method == "exact"
    assert c.p == pytest.approx(1 / math.comb(20, 10))
    assert c.probability_of_improvement == 1.0 and (c.low, c.high) == (1.0, 1.0)
    reverse = compare_runs(np.arange(10.0), np.arange(10.0) + 100, 2000, rng())
    assert reverse.p > 0.99 and reverse.probability_of_improvement == 0.0


def test_identical_runs_have_improvement_one_half():
    x = rng(3).normal(size=12)
    c = compare_runs(x, x, 2000, rng())
    assert c.method == "asymptotic"  # every value tied across the runs
    assert c.probability_of_improvement == 0.5
    assert c.low < 0.5 < c.high
    expected = stats.mannwhitneyu(x, x, alternative="greater", method="asymptotic", use_continuity=True)
    assert c.p == pytest.approx(expected.pvalue)


def test_diverged_seeds_rank_below_every_finite_value():
    a, b = [1.0, 2.0, 3.0, 4.0], [np.nan, np.nan, 0.5, 2.5]
    c = compare_runs(a, b, 2000, rng())
    floor = compare_runs(a, [-1e300, -1e300, 0.5, 2.5], 2000, rng())
    assert (c.diverged_a, c.diverged_b, c.n_b) == (0, 2, 4)  # counted, never dropped
    assert (c.p, c.probability_of_improvement, c.low, c.high) == (
        floor.p, floor.probability_of_improvement, floor.low, floor.high)
    assert c.probability_of_improvement == pytest.approx(14 / 16)
    both = compare_runs([np.nan, np.nan], [np.nan, np.nan], 500, rng())
    assert both.probability_of_improvement == 0.5


def test_a_capped_loser_is_ranked_at_its_worst_for_the_claim():
    g = rng(6)
    a, b = g.normal(2.0, 1.0, size=9), g.normal(0.0, 1.0, size=8)
    capped = np.zeros(8, dtype=bool)
    capped[[1, 4]] = True
    c = compare_runs(a, b, 500, rng(), loser_capped=capped)
    lifted = b.copy()
    lifted[capped] = [100.0, 101.0]  # above every value, in the same order
    assert c.censored_b == 2 and c.method == "exact"
    assert c.p == compare_runs(a, lifted, 500, rng()).p > compare_runs(a, b, 500, rng()).p
    assert c.probability_of_improvement == pytest.approx((9 * 6 - ((a[:, None] <= b[~capped]).sum())) / 72)
    for _ in range(200):  # no completion of the lower bounds gives a larger p or a smaller improvement
        completion = b.copy()
        completion[capped] += g.exponential(3.0, size=2)
        other = compare_runs(a, completion, 10, rng())
        assert other.p <= c.p and other.probability_of_improvement >= c.probability_of_improvement


def test_capped_values_are_checked():
    with pytest.raises(ValueError, match="shape"):
        compare_runs([1.0, 2.0], [0.0, 1.0], 10, rng(), loser_capped=[True])
    with pytest.raises(ValueError, match="cannot be capped"):
        compare_runs([1.0, 2.0], [np.nan, 1.0], 10, rng(), loser_capped=[True, False])
    plain = compare_runs([1.0, 2.0], [0.0, 1.5], 10, rng(), loser_capped=[False, False])
    assert plain == compare_runs([1.0, 2.0], [0.0, 1.5], 10, rng()) and plain.censored_b == 0


def test_bootstrap_interval_is_seeded_and_covers_the_estimate():
    g = rng(4)
    a, b = g.normal(1.0, 1.0, size=30), g.normal(0.0, 1.0, size=25)
    first, second = compare_runs(a, b, 3000, rng(5)), compare_runs(a, b, 3000, rng(5))
    assert first == second
    assert first.low < first.probability_of_improvement < first.high
    assert first.method == "exact" and first.p < 0.01


def test_interquartile_mean():
    x = np.arange(8.0)
    assert interquartile_mean(x) == pytest.approx(stats.trim_mean(x, 0.25)) == pytest.approx(3.5)
    # two of eight diverged: inside the trimmed bottom quarter, the floor's value does not matter
    assert interquartile_mean([np.nan, np.nan, *range(2, 8)]) == pytest.approx(3.5)
    with pytest.raises(ValueError, match="diverged"):
        interquartile_mean([np.nan, np.nan, np.nan, *range(3, 8)])


def test_performance_profile_and_first_episode_reaching():
    profile = performance_profile([1.0, 2.0, 3.0, np.nan], [0.0, 1.5, 3.0])
    np.testing.assert_allclose(profile, [0.75, 0.5, 0.0])  # the NaN seed is below every threshold
    assert first_episode_reaching([10, 50, 200, 500, 100], 200) == 2
    assert first_episode_reaching([10, 50], 200) is None


# ----------------------------------------------------------------------------- distributions, episode lengths


def test_ks_and_logrank_match_direct_scipy_calls():
    g = rng(6)
    a, b = g.normal(size=40), g.normal(0.5, size=30)
    ks = ks_two_sample(a, b)
    direct = stats.ks_2samp(a, b)
    assert (ks.statistic, ks.p) == (direct.statistic, direct.pvalue)
    times_a, times_b = g.integers(10, 500, size=40).astype(float), g.integers(50, 500, size=30).astype(float)
    capped_a, capped_b = times_a >= 400, times_b >= 400
    times_a[capped_a], times_b[capped_b] = 400.0, 400.0  # cut at a step cap of 400
    lr = logrank(times_a, capped_a, times_b, capped_b)
    direct = stats.logrank(
        stats.CensoredData(uncensored=times_a[~capped_a], right=times_a[capped_a]),
        stats.CensoredData(uncensored=times_b[~capped_b], right=times_b[capped_b]),
    )
    assert (lr.statistic, lr.p) == (direct.statistic, direct.pvalue)
    with pytest.raises(ValueError):
        ks_two_sample([1.0, np.nan], [1.0])


def test_survival_curve_is_kaplan_meier():
    t, s = survival_curve([1.0, 2.0, 3.0, 4.0], [False] * 4)
    np.testing.assert_allclose(t, [1, 2, 3, 4])
    np.testing.assert_allclose(s, [0.75, 0.5, 0.25, 0.0])  # uncensored: 1 - the empirical CDF
    t, s = survival_curve([1.0, 2.0, 3.0, 5.0, 5.0], [False, True, False, True, True])
    # Kaplan-Meier by hand: at 1, 4 of 5 survive; 2 is censored; at 3, 2 of 3 at risk survive
    np.testing.assert_allclose(s[t == 1], [0.8])
    np.testing.assert_allclose(s[t == 3], [0.8 * 2 / 3])
    assert s.min() == pytest.approx(0.8 * 2 / 3)  # the capped episodes never end within the data
