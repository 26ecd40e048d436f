"""The paper's CartPole variant.

Dynamics are gymnasium's own ``CartPoleEnv``; only the termination thresholds change
(pole limit 50 degrees instead of 12) and there is no time limit: the paper's horizon T is
unbounded, so episodes end by termination or, as a safety net, at ``max_episode_steps``.
"""

from __future__ import annotations

import math

import numpy as np
from gymnasium import spaces
from gymnasium.envs.classic_control.cartpole import CartPoleEnv

from aqil.config import EnvConfig

THETA_INDEX = 2  # observation = (x, x_dot, theta, theta_dot)


def make_env(cfg: EnvConfig) -> CartPoleEnv:
    """gymnasium's CartPoleEnv with the paper's limits, no TimeLimit and no render window."""
    env = CartPoleEnv()
    env.theta_threshold_radians = math.radians(cfg.theta_limit_deg)
    env.x_threshold = cfg.x_limit
    # Same construction as gymnasium's: twice the limits so failing observations stay inside the box.
    high = np.array(
        [env.x_threshold * 2, np.inf, env.theta_threshold_radians * 2, np.inf], dtype=np.float32
    )
    env.observation_space = spaces.Box(-high, high, dtype=np.float32)
    return env


def reset_options(cfg: EnvConfig) -> dict[str, float]:
    """Start state uniform in [-init_range, init_range] for every component."""
    return {"low": -cfg.init_range, "high": cfg.init_range}
