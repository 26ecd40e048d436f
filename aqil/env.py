"""The paper's CartPole variant.

Dynamics are gymnasium's own ``CartPoleEnv`` (Euler integration, force +-10 N, as the reference);
only the termination thresholds change (pole limit 50 degrees instead of 12). The paper's horizon T
is unbounded, so an episode ends by termination or, as a safety net, at ``max_episode_steps``:
``capped_env`` adds gymnasium's ``TimeLimit``, whose ``truncated`` is what the outputs call "capped".
``step`` repeats gymnasium's equations term for term with one change: cos and sin come from
``aqil.portable``, so a trajectory has the same bytes on every CPU. The paper's rewards replace
CartPole's +1 through the wrappers in aqil/rewards.py.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.envs.classic_control.cartpole import CartPoleEnv
from gymnasium.wrappers import TimeLimit

from aqil import portable
from aqil.config import EnvConfig

THETA_INDEX = 2  # observation = (x, x_dot, theta, theta_dot)
# The ``info`` key under which an environment that knows the expert (a recording, or the PID expert
# watching; aqil/expert.py) gives the expert's action in the observation returned with it.
EXPERT_ACTION = "expert_action"


class PortableCartPole(CartPoleEnv):
    """gymnasium's CartPoleEnv whose step takes cos and sin from ``aqil.portable`` and whose start
    states come from its config (so that every loop resets it the same way, with no options)."""

    def __init__(self, start: dict[str, float] | None = None) -> None:
        super().__init__()
        self.start = start  # reset's default options (``reset_options``); None: gymnasium's +-0.05

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        return super().reset(seed=seed, options=self.start if options is None else options)

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        assert self.state is not None, "Call reset before using step method."
        x, x_dot, theta, theta_dot = (float(v) for v in self.state)
        force = self.force_mag if action == 1 else -self.force_mag
        costheta, sintheta = portable.cos_sin(theta)
        temp = (force + self.polemass_length * (theta_dot * theta_dot) * sintheta) / self.total_mass
        thetaacc = (self.gravity * sintheta - costheta * temp) / (
            self.length * (4.0 / 3.0 - self.masspole * (costheta * costheta) / self.total_mass)
        )
        xacc = temp - self.polemass_length * thetaacc * costheta / self.total_mass
        x = x + self.tau * x_dot  # Euler, as gymnasium's default and the reference
        x_dot = x_dot + self.tau * xacc
        theta = theta + self.tau * theta_dot
        theta_dot = theta_dot + self.tau * thetaacc
        self.state = np.array((x, x_dot, theta, theta_dot), dtype=np.float64)
        terminated = bool(
            x < -self.x_threshold
            or x > self.x_threshold
            or theta < -self.theta_threshold_radians
            or theta > self.theta_threshold_radians
        )
        return np.array(self.state, dtype=np.float32), 1.0, terminated, False, {}


def make_env(cfg: EnvConfig) -> PortableCartPole:
    """gymnasium's CartPoleEnv with the paper's limits and start states, no TimeLimit, no render window."""
    env = PortableCartPole(reset_options(cfg))
    env.theta_threshold_radians = math.radians(cfg.theta_limit_deg)
    env.x_threshold = cfg.x_limit
    # Same construction as gymnasium's: twice the limits so failing observations stay inside the box.
    high = np.array(
        [env.x_threshold * 2, np.inf, env.theta_threshold_radians * 2, np.inf], dtype=np.float32
    )
    env.observation_space = spaces.Box(-high, high, dtype=np.float32)
    return env


def capped_env(cfg: EnvConfig) -> gym.Env:
    """The environment every loop runs: ``make_env`` cut at ``max_episode_steps`` by gymnasium's TimeLimit."""
    return TimeLimit(make_env(cfg), cfg.max_episode_steps)


def reset_options(cfg: EnvConfig) -> dict[str, float]:
    """Start state uniform in [-init_range, init_range] for every component."""
    return {"low": -cfg.init_range, "high": cfg.init_range}
