"""Interval estimates, probability of improvement and verdicts on synthetic numbers."""

from __future__ import annotations

import numpy as np
import pytest

from aqil.stats import SEEDS_FOR_A_FINDING, estimate, probability_of_improvement, single_run_verdict


def rng():
    return np.random.default_rng(0)


def test_one_seed_has_no_interval_and_no_verdict():
    e = estimate([412.0], 1000, rng())
    assert (e.n, e.mean, e.std, e.low, e.high) == (1, 412.0, 0.0, None, None)
    v = single_run_verdict([412.0], 331.63, "RL500 average reward")
    assert v.word == "1 seed" and v.percentile is None
    assert v.factor == pytest.approx(412.0 / 331.63)
    assert "cannot judge" in v.sentence


def test_all_equal_sample_has_a_zero_width_interval():
    e = estimate([5.0, 5.0, 5.0], 1000, rng())
    assert (e.low, e.high, e.std) == (5.0, 5.0, 0.0)
    assert single_run_verdict([5.0] * 3, 5.0, "x").word == "reproduced"
    assert single_run_verdict([5.0] * 3, 4.0, "x").word == "below our range"


def test_interval_covers_the_mean_and_is_seeded():
    values = [100.0, 150.0, 90.0, 130.0, 180.0]
    a, b = estimate(values, 5000, rng()), estimate(values, 5000, rng())
    assert a == b
    assert a.low < np.mean(values) < a.high
    assert a.low >= min(values) and a.high <= max(values)
    assert a.std == pytest.approx(np.std(values, ddof=1))


def test_a_typical_run_is_reproduced_at_5_and_50_seeds_and_a_clear_outlier_is_not():
    """The paper's single run against the spread of ours: more seeds must not make a typical run fail."""
    draws = np.random.default_rng(7).normal(300.0, 60.0, size=50)
    typical, outlier = 300.0, 300.0 + 6 * 60.0
    for n in (5, 50):
        v = single_run_verdict(draws[:n].tolist(), typical, "x")
        assert v.word == "reproduced", (n, v.sentence)
        assert 0.0 < v.percentile < 1.0
    few = single_run_verdict(draws[:5].tolist(), outlier, "x")
    assert few.word == "above our range" and "cannot call it atypical" in few.sentence
    many = single_run_verdict(draws.tolist(), outlier, "IL250 best")
    assert many.word == "lower" and many.percentile == 1.0  # ours lower than the paper's run
    assert single_run_verdict(draws.tolist(), 300.0 - 6 * 60.0, "x").word == "higher"


def test_a_finding_needs_enough_seeds_for_a_two_sided_five_percent_test():
    assert 2 / (SEEDS_FOR_A_FINDING + 1) <= 0.05 < 2 / SEEDS_FOR_A_FINDING
    assert single_run_verdict(list(range(SEEDS_FOR_A_FINDING - 1)), 1e6, "x").word == "above our range"
    assert single_run_verdict(list(range(SEEDS_FOR_A_FINDING)), 1e6, "x").word == "lower"


def test_percentile_counts_ties_as_half():
    v = single_run_verdict([100.0, 110.0, 120.0, 130.0], 120.0, "x")
    assert v.percentile == pytest.approx(2.5 / 4)
    assert "62nd percentile" in v.sentence  # round half to even


def test_probability_of_improvement_counts_ties_as_half():
    assert probability_of_improvement([3, 4], [1, 2]) == 1.0
    assert probability_of_improvement([1, 2], [3, 4]) == 0.0
    assert probability_of_improvement([2, 2], [2, 2]) == 0.5
    assert probability_of_improvement([1, 3], [2]) == 0.5
    assert probability_of_improvement([5], [5]) == 0.5


def test_empty_sample_is_an_error():
    with pytest.raises(ValueError):
        estimate([], 10, rng())


def test_capped_seeds_below_the_paper_make_the_rank_unknown():
    values = [5000.0, 5200.0, 14000.0]
    sound = single_run_verdict(values, 1937.61, "IL250+RL250 average reward", capped=[True, True, True])
    assert sound.word == "below our range" and "lower bounds" in sound.sentence
    unclear = single_run_verdict(values, 13043.02, "IL250+RL250 best reward", capped=[True, False, False])
    assert unclear.word == "inconclusive (capped)" and "step cap" in unclear.sentence
    known = single_run_verdict(values, 13043.02, "x", capped=[False, False, True])  # only the seed above is capped
    assert known.word == "reproduced"
    diverged = single_run_verdict([7.0, 9.0], 8.0, "RL500 average reward", diverged=1)
    assert "1 of 2 seeds diverged" in diverged.sentence
