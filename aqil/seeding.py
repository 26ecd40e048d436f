"""Independent, named random streams derived from one params.yaml seed.

Each consumer (network init, exploration, replay sampling, environment resets) gets its own
stream, so e.g. changing the replay memory's draws never shifts the start states.
"""

from __future__ import annotations

import zlib

import numpy as np


def derive_seed(seed: int, purpose: str) -> int:
    """A 32-bit seed for ``purpose`` that depends only on (seed, purpose)."""
    sequence = np.random.SeedSequence([seed, zlib.crc32(purpose.encode())])
    return int(sequence.generate_state(1)[0])


def numpy_rng(seed: int, purpose: str) -> np.random.Generator:
    return np.random.default_rng(derive_seed(seed, purpose))


def run_seed(seed: int, run: str) -> int:
    """The root of every stream of one run's seed, so that two runs with the same seed number share no
    draws (network initialisation, exploration, replay sampling, start states): they are independent,
    as the reference's separately launched runs were. A run that continues another's network (IL250+RL250
    after IL250) inherits its weights, not its streams."""
    return derive_seed(seed, f"run/{run}")
