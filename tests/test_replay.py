"""Every replay memory follows one protocol, so a training loop takes any of them."""

from __future__ import annotations

import numpy as np

from aqil.dqfd import DQfDMemory
from aqil.replay import Memory, ReplayMemory


def test_both_memories_follow_the_protocol_and_sample_after_enough_transitions():
    for memory in (ReplayMemory(100, 4, np.random.default_rng(0)), DQfDMemory(100, 3, 0.95, np.random.default_rng(0))):
        assert isinstance(memory, Memory)
        for t in range(10):
            memory.add(np.full(4, t, np.float32), t % 2, 1.0, np.full(4, t + 1, np.float32), t == 9)
        memory.end_episode()
        assert len(memory) == 10
        batch = memory.sample(5)
        assert len(batch.obs) == 5 and len(set(batch.obs[:, 0].tolist())) == 5  # without replacement
