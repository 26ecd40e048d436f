"""The paper's two per-step Gaussian rewards (Sec. III-A)."""

from __future__ import annotations

import functools
import math

import numpy as np

from aqil import portable
from aqil.config import RewardsConfig


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
        if np.ndim(theta) == 0:
            return portable.exp(-0.5 * (float(theta) / self.sigma1) ** 2)
        return portable.exp_array(-0.5 * (np.asarray(theta, dtype=np.float64) / self.sigma1) ** 2)

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
        z = -0.5 * (diff / self.sigma2) ** 2
        agreement = self._exp(float(z)) if np.ndim(z) == 0 else portable.exp_array(z)
        value = self.angle_weight * self.angle(theta) + self.action_weight * agreement
        return np.where(terminated, self.terminal, value)
