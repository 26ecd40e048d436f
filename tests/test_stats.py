"""Interval estimates and the probability of improvement on synthetic numbers (verdicts: test_verdict.py)."""

from __future__ import annotations

import numpy as np
import pytest

from aqil.stats import estimate, probability_of_improvement


def rng():
    return np.random.default_rng(0)


def test_one_seed_has_no_interval():
    e = estimate([412.0], 1000, rng())
    assert (e.n, e.mean, e.std, e.low, e.high) == (1, 412.0, 0.0, None, None)


def test_all_equal_sample_has_a_zero_width_interval():
    e = estimate([5.0, 5.0, 5.0], 1000, rng())
    assert (e.low, e.high, e.std) == (5.0, 5.0, 0.0)


def test_interval_covers_the_mean_and_is_seeded():
    values = [100.0, 150.0, 90.0, 130.0, 180.0]
    a, b = estimate(values, 5000, rng()), estimate(values, 5000, rng())
    assert a == b
    assert a.low < np.mean(values) < a.high


def test_probability_of_improvement_counts_ties_as_half():
    assert probability_of_improvement([3, 4], [1, 2]) == 1.0
    assert probability_of_improvement([1, 2], [3, 4]) == 0.0
    assert probability_of_improvement([2, 2], [2, 2]) == 0.5
    assert probability_of_improvement([1, 3], [2]) == 0.5
    assert probability_of_improvement([5], [5]) == 0.5


def test_empty_sample_is_an_error():
    with pytest.raises(ValueError):
        estimate([], 10, rng())
