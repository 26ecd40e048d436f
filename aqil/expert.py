"""The PID expert on the pole angle (paper Sec. III-A: P = 0.6, I = 0.00625, D = 0.8)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from aqil.config import ExpertConfig
from aqil.env import EXPERT_ACTION, THETA_INDEX


class PIDExpert:
    """u = P*e + I*sum(e) + D*(e - e_prev) with e = 0 - theta; push right (1) when u < 0.

    ``theta`` is the pole angle observed after the previous step. The reference implementation
    keeps the integral, the previous error and that last angle across episodes, so the first
    action of an episode reacts to the previous episode's final angle. ``reset_per_episode``
    clears the integral and the previous error and starts from the episode's own first angle,
    as a textbook controller would.
    """

    def __init__(self, cfg: ExpertConfig) -> None:
        self.kp, self.ki, self.kd = cfg.kp, cfg.ki, cfg.kd
        self.reset_per_episode = cfg.reset_per_episode
        self.integral = 0.0
        self.prev_error = 0.0
        self.theta = 0.0  # the very first step of a run sees theta = 0

    def start_episode(self, initial_theta: float) -> None:
        if self.reset_per_episode:
            self.integral = 0.0
            self.prev_error = 0.0
            self.theta = float(initial_theta)

    def act(self) -> int:
        """Action for the angle last passed to ``observe``."""
        error = 0.0 - self.theta
        self.integral += error
        u = self.kp * error + self.ki * self.integral + self.kd * (error - self.prev_error)
        self.prev_error = error
        return 1 if u < 0 else 0

    def observe(self, theta: float) -> None:
        """Record the pole angle the environment returned after a step."""
        self.theta = float(theta)


class ExpertLabels(gym.Wrapper):
    """The PID expert watches the environment and labels every state with its action (``info[EXPERT_ACTION]``).

    Whoever drives, the expert sees what it would see driving itself: each episode's first angle, then
    every angle a step returns, and it acts once per state (never on an episode's last one, as when it
    drove). Collection follows the labels, so the expert drives; DAgger stores them while the network
    drives. A wrapper rather than a step of the loops, so the loops never know an expert exists.
    """

    def __init__(self, env: gym.Env, expert: PIDExpert) -> None:
        super().__init__(env)
        self.expert = expert

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        obs, info = self.env.reset(seed=seed, options=options)
        self.expert.start_episode(float(obs[THETA_INDEX]))
        return obs, {**info, EXPERT_ACTION: self.expert.act()}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.expert.observe(obs[THETA_INDEX])
        if not (terminated or truncated):  # the episode goes on: the expert's action in the state it reached
            info = {**info, EXPERT_ACTION: self.expert.act()}
        return obs, reward, terminated, truncated, info
