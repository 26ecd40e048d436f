"""The PID expert on the pole angle (paper Sec. III-A: P = 0.6, I = 0.00625, D = 0.8)."""

from __future__ import annotations

from aqil.config import ExpertConfig


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
