"""DQfD's n-step returns over recorded episodes (Hester et al., 2018, "Deep Q-learning from
Demonstrations"). The loss itself is fitted by ``aqil.kernel.fit_dqfd``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class NStep(NamedTuple):
    """Per transition t: R = sum_{i<k} gamma^i r_{t+i} over k = min(n, steps left in the episode),
    the state to bootstrap from (the next state of transition t+k-1), gamma^k, and whether t+k-1
    ended the episode by termination (then there is nothing to bootstrap)."""

    returns: np.ndarray  # float64
    bootstrap_index: np.ndarray  # int64, index of transition t+k-1 (its next state)
    discount: np.ndarray  # float64, gamma^k
    done: np.ndarray  # bool


def n_step_returns(reward: np.ndarray, terminated: np.ndarray, episode_length: np.ndarray, gamma: float,
                   n: int) -> NStep:
    """n-step returns of transitions stored episode after episode (``episode_length`` of each).

    An episode cut at the step cap is not terminated: its last transitions bootstrap from the last
    next state. Sums run in time order in float64, so the bytes are the same on every CPU.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    total = int(np.sum(episode_length))
    if len(reward) != total or len(terminated) != total:
        raise ValueError(f"{len(reward)} rewards and {len(terminated)} flags for episodes of {total} steps")
    returns = np.zeros(total)
    index = np.zeros(total, dtype=np.int64)
    discount = np.zeros(total)
    done = np.zeros(total, dtype=bool)
    start = 0
    for length in np.asarray(episode_length, dtype=np.int64).tolist():
        for t in range(start, start + length):
            k = min(n, start + length - t)
            value, factor = 0.0, 1.0
            for i in range(k):
                value += factor * float(reward[t + i])
                factor *= gamma
            returns[t], index[t], discount[t], done[t] = value, t + k - 1, factor, bool(terminated[t + k - 1])
        start += length
    return NStep(returns, index, discount, done)
