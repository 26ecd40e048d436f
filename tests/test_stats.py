"""Interval estimates, probability of improvement and verdicts on synthetic numbers."""

from __future__ import annotations

import numpy as np
import pytest

from aqil.stats import cell_verdict, estimate, probability_of_improvement


def rng():
    return np.random.default_rng(0)


def test_one_seed_has_no_interval_and_no_verdict():
    e = estimate([412.0], 1000, rng())
    assert (e.n, e.mean, e.std, e.low, e.high) == (1, 412.0, 0.0, None, None)
    v = cell_verdict(e, 331.63, "RL500 average reward")
    assert v.word == "1 seed: no interval"
    assert v.factor == pytest.approx(412.0 / 331.63)
    assert "no verdict" in v.sentence


def test_all_equal_sample_has_a_zero_width_interval():
    e = estimate([5.0, 5.0, 5.0], 1000, rng())
    assert (e.low, e.high, e.std) == (5.0, 5.0, 0.0)
    assert cell_verdict(e, 5.0, "x").word == "reproduced"
    assert cell_verdict(e, 4.0, "x").word == "higher"


def test_interval_covers_the_mean_and_is_seeded():
    values = [100.0, 150.0, 90.0, 130.0, 180.0]
    a, b = estimate(values, 5000, rng()), estimate(values, 5000, rng())
    assert a == b
    assert a.low < np.mean(values) < a.high
    assert a.low >= min(values) and a.high <= max(values)
    assert a.std == pytest.approx(np.std(values, ddof=1))


def test_verdicts_reproduced_higher_lower_with_factor():
    e = estimate([100.0, 110.0, 120.0, 130.0, 140.0], 5000, rng())
    assert cell_verdict(e, 120.0, "x").word == "reproduced"
    low = cell_verdict(e, 400.0, "IL250 best")
    assert low.word == "lower" and low.factor == pytest.approx(0.3)
    assert "below the paper's 400.00" in low.sentence
    high = cell_verdict(e, 60.0, "x")
    assert high.word == "higher" and high.factor == pytest.approx(2.0)


def test_probability_of_improvement_counts_ties_as_half():
    assert probability_of_improvement([3, 4], [1, 2]) == 1.0
    assert probability_of_improvement([1, 2], [3, 4]) == 0.0
    assert probability_of_improvement([2, 2], [2, 2]) == 0.5
    assert probability_of_improvement([1, 3], [2]) == 0.5
    assert probability_of_improvement([5], [5]) == 0.5


def test_empty_sample_is_an_error():
    with pytest.raises(ValueError):
        estimate([], 10, rng())


def test_capped_runs_only_allow_a_sound_higher_verdict():
    e = estimate([5000.0, 5200.0, 5100.0], 2000, rng())
    higher = cell_verdict(e, 1937.61, "IL250+RL250 average reward", capped_episodes=40)
    assert higher.word == "higher" and "lower bound" in higher.sentence
    unclear = cell_verdict(e, 13043.02, "IL250+RL250 best reward", capped_episodes=40)
    assert unclear.word == "inconclusive (capped)"
    assert "hit the step cap" in unclear.sentence
    one = cell_verdict(estimate([5000.0], 10, rng()), 13043.02, "x", capped_episodes=3)
    assert one.word == "1 seed: no interval" and "lower bound" in one.sentence
