"""Replay memory: preallocated arrays used as a ring buffer, sampled uniformly without replacement.

The reference keeps a ``deque(maxlen=1_000_000)`` of tuples and draws with ``random.sample``;
arrays hold the same transitions without a Python object per step. Every memory a learner trains
from follows ``Memory`` (DQfD's, in aqil/dqfd.py, adds n-step returns and kept demonstrations).
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np


class Batch(NamedTuple):
    obs: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    next_obs: np.ndarray
    done: np.ndarray


@runtime_checkable
class Memory(Protocol):
    """What a training loop needs from a replay memory: store a transition, close an episode (a memory
    that computes returns over several steps finishes the episode's last ones here), and draw a minibatch
    once ``len`` reaches the batch size."""

    def __len__(self) -> int: ...

    def add(self, obs: np.ndarray, action: int, reward: float, next_obs: np.ndarray, done: bool) -> None: ...

    def end_episode(self) -> None: ...

    def sample(self, batch_size: int) -> Any: ...


class ReplayMemory:
    """The paper's memory: uniform sampling without replacement over the last ``capacity`` transitions."""

    def __init__(self, capacity: int, obs_dim: int, rng: np.random.Generator) -> None:
        self.capacity = capacity
        self.rng = rng
        self.obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.action = np.zeros(capacity, dtype=np.int64)
        self.reward = np.zeros(capacity, dtype=np.float64)  # float64, as the reference's rewards
        self.done = np.zeros(capacity, dtype=bool)
        self.size = 0
        self._next = 0

    def __len__(self) -> int:
        return self.size

    def add(self, obs: np.ndarray, action: int, reward: float, next_obs: np.ndarray, done: bool) -> None:
        i = self._next
        self.obs[i] = obs
        self.action[i] = action
        self.reward[i] = reward
        self.next_obs[i] = next_obs
        self.done[i] = done
        self._next = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def end_episode(self) -> None:
        """Nothing waits here (n-step memories store an episode's last transitions now)."""

    def sample(self, batch_size: int) -> Batch:
        idx = self.rng.choice(self.size, size=batch_size, replace=False)
        return Batch(self.obs[idx], self.action[idx], self.reward[idx], self.next_obs[idx], self.done[idx])
