"""The paper's two per-step Gaussian rewards (Sec. III-A), and the wrappers through which an
environment pays them in place of CartPole's +1."""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from aqil import portable
from aqil.config import EnvConfig, RewardsConfig
from aqil.env import EXPERT_ACTION, THETA_INDEX, capped_env

if TYPE_CHECKING:
    from aqil.trajectories import Trajectories


class Rewards:
    """Per-step rewards of the paper, with the termination step overridden to ``terminal``.

    RL:  exp(-1/2 (theta/sigma1)^2)
    IL:  w_angle * exp(-1/2 (theta/sigma1)^2) + w_action * exp(-1/2 ((a_expert - a_model)/sigma2)^2)
    ``theta`` is the pole angle after the step. The reference implementation converts both widths
    from degrees to radians (np.deg2rad); the paper prints sigma1 = 10 and sigma2 = 0.5 without a
    unit (``sigma1_units`` / ``sigma2_units: raw`` use them as printed, in radians).
    Gaussians use ``aqil.portable.exp``: the same bytes on every CPU.
    """

    def __init__(self, cfg: RewardsConfig) -> None:
        self.sigma1 = math.radians(cfg.sigma1) if cfg.sigma1_units == "degrees" else cfg.sigma1
        il = cfg.il
        self.sigma2 = math.radians(il.sigma2) if il.sigma2_units == "degrees" else il.sigma2
        self.angle_weight = il.angle_weight
        self.action_weight = il.action_weight
        self.terminal = cfg.terminal
        # The action term takes a handful of values (actions are 0 or 1): computed once each, not per step.
        self._exp = functools.cache(portable.exp)

    def angle(self, theta: np.ndarray | float) -> np.ndarray | float:
        # Squares as z * z, never ``z ** 2``: Python's ``**`` calls libm's pow, which gives another last bit
        # on CPUs with and without FMA for about 1 angle in 1,000; a product is correctly rounded everywhere.
        z = float(theta) / self.sigma1 if np.ndim(theta) == 0 else np.asarray(theta, dtype=np.float64) / self.sigma1
        return portable.exp(-0.5 * (z * z)) if np.ndim(theta) == 0 else portable.exp_array(-0.5 * (z * z))

    def rl(self, theta: np.ndarray | float, terminated: np.ndarray | bool) -> np.ndarray | float:
        return np.where(terminated, self.terminal, self.angle(theta))

    def il(
        self,
        theta: np.ndarray | float,
        expert_action: np.ndarray | int,
        model_action: np.ndarray | int,
        terminated: np.ndarray | bool,
    ) -> np.ndarray | float:
        diff = np.asarray(expert_action, dtype=np.float64) - np.asarray(model_action, dtype=np.float64)
        d = diff / self.sigma2
        z = -0.5 * (d * d)
        agreement = self._exp(float(z)) if np.ndim(z) == 0 else portable.exp_array(z)
        value = self.angle_weight * self.angle(theta) + self.action_weight * agreement
        return np.where(terminated, self.terminal, value)

    def rl_of_recording(self, data: Trajectories) -> np.ndarray:
        """The RL reward of every recorded step, in one vectorised call (the same bytes as step by step)."""
        return self.rl(data.next_obs[:, THETA_INDEX], data.terminated)


class RLReward(gym.Wrapper):
    """The paper's RL reward of each step, from the pole angle it reached (-1 on termination).

    A ``gym.Wrapper`` rather than a ``RewardWrapper``: the reward needs the observation and the
    termination flag, not CartPole's +1.
    """

    def __init__(self, env: gym.Env, rewards: Rewards) -> None:
        super().__init__(env)
        self.rewards = rewards

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        obs, _, terminated, truncated, info = self.env.step(action)
        return obs, float(self.rewards.rl(obs[THETA_INDEX], terminated)), terminated, truncated, info


class ImitationReward(gym.Wrapper):
    """The paper's IL reward: the pole angle reached, and the action taken scored against the expert's
    action in the state it was taken in (``info[EXPERT_ACTION]``, from a recording or ``ExpertLabels``)."""

    def __init__(self, env: gym.Env, rewards: Rewards) -> None:
        super().__init__(env)
        self.rewards = rewards
        self._expert_action: int | None = None  # the expert's action in the current state

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        obs, info = self.env.reset(seed=seed, options=options)
        self._expert_action = info[EXPERT_ACTION]
        return obs, info

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        expert_action = self._expert_action
        obs, _, terminated, truncated, info = self.env.step(action)
        self._expert_action = info.get(EXPERT_ACTION)
        reward = float(self.rewards.il(obs[THETA_INDEX], expert_action, action, terminated))
        return obs, reward, terminated, truncated, info


def rl_env(env_cfg: EnvConfig, rewards_cfg: RewardsConfig) -> gym.Env:
    """The paper's environment as RL and evaluation see it: capped, paying the RL reward."""
    return RLReward(capped_env(env_cfg), Rewards(rewards_cfg))
