"""Training loops: Q-imitation-learning on expert trajectories, and deep Q-learning online.

Both loops share one step: choose the network's action epsilon-greedily, score it, store the
transition, and -- once the replay memory holds ``batch_size`` transitions -- sample a minibatch,
update, and decay epsilon (x0.995 after every update, floor 0.01, as the reference).

A run whose loss or weights go NaN or infinite has diverged. The reference's Keras code would
train on (a NaN network always picks action 0); ``dqn.on_divergence: record`` does the same and the
run's metrics name the update, ``stop`` ends the stage with one line before anything is written.
Checked cheaply: the loss of every update, the weights at the end of every episode.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from aqil.config import ConfigError, DQNConfig, EnvConfig, RewardsConfig
from aqil.env import THETA_INDEX, make_env, reset_options
from aqil.expert import PIDExpert
from aqil.progress import progress
from aqil.qnet import Backend, DQNLearner, QNetwork, keras_init_
from aqil.replay import Batch, ReplayMemory
from aqil.rewards import Rewards
from aqil.seeding import numpy_rng
from aqil.trajectories import Trajectories


class EpsilonGreedy:
    """epsilon starts at ``start``, is multiplied by ``decay`` after every update, floored at ``minimum``."""

    def __init__(self, cfg: DQNConfig, rng: np.random.Generator) -> None:
        self.epsilon = cfg.epsilon_start
        self.decay_factor = cfg.epsilon_decay
        self.minimum = cfg.epsilon_min
        self.rng = rng

    def explore(self) -> bool:
        return bool(self.rng.random() < self.epsilon)

    def random_action(self) -> int:
        return int(self.rng.integers(2))

    def decay(self) -> None:
        self.epsilon = max(self.minimum, self.epsilon * self.decay_factor)


@dataclass
class RunResult:
    """Per-episode curves and per-update losses of one training run."""

    episode_reward: np.ndarray  # sum of the run's own step rewards (IL reward in IL runs)
    episode_steps: np.ndarray  # the paper's "score"
    episode_capped: np.ndarray  # cut at max_episode_steps
    episode_epsilon: np.ndarray  # epsilon at the end of the episode
    episode_max_q: np.ndarray  # largest |Q(s, a)| the episode's updates saw (divergence diagnostic)
    losses: np.ndarray  # mean Keras mse of every update, in order
    diverged: bool = False  # a loss or weight went NaN/inf (dqn.on_divergence: record)
    # steps trained on outside the episodes above (DQfD's pretraining replays the demonstrations, one
    # update per step); they count in the stage's time per trained step, not in its rewards
    pretraining_steps: int = 0

    def summary(self) -> dict[str, float | int]:
        return {
            "episodes": len(self.episode_reward),
            "avg_reward": float(self.episode_reward.mean()),
            "best_reward": float(self.episode_reward.max()),
            "avg_steps": float(self.episode_steps.mean()),
            "best_steps": int(self.episode_steps.max()),
            "total_steps": int(self.episode_steps.sum()),
            "capped_episodes": int(self.episode_capped.sum()),
            "updates": len(self.losses),
            "final_epsilon": float(self.episode_epsilon[-1]),
            # Divergence diagnostics. A network whose loss overflowed is reported, not hidden: its
            # first non-finite update and episode are given, and the maxima cover the finite part.
            "max_abs_q": _finite_max(self.episode_max_q),
            "max_loss": _finite_max(self.losses),
            "first_non_finite_update": _first_non_finite(self.losses),
            "first_non_finite_episode": _first_non_finite(self.episode_max_q),
            "diverged": self.diverged,
        }


def _finite_max(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.max()) if len(finite) else 0.0


def _first_non_finite(values: np.ndarray) -> int | None:
    """Index of the first NaN or infinity, or None (JSON null) when every value is finite."""
    bad = np.flatnonzero(~np.isfinite(values))
    return int(bad[0]) if len(bad) else None


class TrainingDiverged(ConfigError):
    """A loss or weight went NaN or infinite under ``dqn.on_divergence: stop``."""


class Agent:
    """A learner with its replay memory, exploration schedule and divergence watch."""

    def __init__(
        self, learner: DQNLearner, cfg: DQNConfig, seed: int, label: str = "training", diverged: bool = False,
        fit: Callable[[Batch], tuple[float, float]] | None = None, memory: ReplayMemory | None = None,
    ) -> None:
        self.learner = learner
        # what one update does with a sampled minibatch: the paper's Q-learning fits by default; the
        # baselines beside AQIL (aqil/baselines.py) fit other losses through the same memory and schedule
        self.fit = fit if fit is not None else (lambda batch: learner.update(*batch))
        self.cfg = cfg
        self.label = label
        self.episode = 0  # set by the training loop, for messages
        self.diverged = diverged  # True from the start when continuing a network that diverged
        self.batch_size = cfg.batch_size
        self.memory = memory if memory is not None else ReplayMemory(cfg.memory_size, 4, numpy_rng(seed, "replay"))
        self.explorer = EpsilonGreedy(cfg, numpy_rng(seed, "explore"))
        self.losses: list[float] = []
        self.max_q = 0.0  # largest |Q| since the last ``end_episode``
        self.device = learner.device

    def act(self, obs: np.ndarray) -> int:
        if self.explorer.explore():
            return self.explorer.random_action()
        return self.learner.greedy_action(obs)

    def learn(self, obs: np.ndarray, action: int, reward: float, next_obs: np.ndarray, done: bool) -> None:
        self.memory.add(obs, action, reward, next_obs, done)
        if len(self.memory) < self.batch_size:
            return
        loss, max_q = self.fit(self.memory.sample(self.batch_size))
        self.losses.append(loss)
        self.max_q = max(self.max_q, max_q) if max_q == max_q else max_q  # a NaN sticks
        self.explorer.decay()
        if not self.diverged and not math.isfinite(loss):
            self._diverged(f"the loss is {loss}")

    def end_episode(self) -> float:
        """Check the weights; return the largest |Q| of the episode's updates and reset it."""
        self.memory.end_episode()
        if not self.diverged:
            bad = self.learner.non_finite_parameters()
            if bad:
                self._diverged(f"{bad:,} weights are NaN or infinite")
        value, self.max_q = self.max_q, 0.0
        return value

    def _diverged(self, what: str) -> None:
        self.diverged = True
        where = (f"{self.label}: training diverged in episode {self.episode}, update {len(self.losses) - 1} "
                 f"({what}; dqn.learning_rate = {self.cfg.learning_rate:g}")
        if self.cfg.on_divergence == "stop":
            raise TrainingDiverged(f"{where}, the usual cause); nothing was written (dqn.on_divergence: stop)")
        tqdm.write(f"aqil: warning: {where}); training goes on as the reference's would "
                   "(dqn.on_divergence: record), and the report marks this seed", file=sys.stderr)


def new_learner(cfg: DQNConfig, seed: int, device: torch.device, backend: Backend | None = None) -> DQNLearner:
    """A freshly initialised network (Keras initialisers, seeded) bound to its optimizer."""
    torch.set_num_threads(1)  # the matrices are tiny: one thread is fastest and deterministic
    # Subnormal floats (momentum of dead units decaying towards zero) are flushed to zero, as
    # TensorFlow did for the reference; this sets the CPU flags for the fused kernel as well.
    torch.set_flush_denormal(True)
    net = QNetwork(cfg.hidden)
    keras_init_(net, numpy_rng(seed, "init"))
    return DQNLearner(cfg, net, device, backend)


def _result(rewards, steps, capped, epsilons, max_q, losses, diverged) -> RunResult:
    return RunResult(
        episode_reward=np.asarray(rewards, dtype=np.float64),
        episode_steps=np.asarray(steps, dtype=np.int64),
        episode_capped=np.asarray(capped, dtype=bool),
        episode_epsilon=np.asarray(epsilons, dtype=np.float64),
        episode_max_q=np.asarray(max_q, dtype=np.float64),
        losses=np.asarray(losses, dtype=np.float32),
        diverged=diverged,
    )


def imitate(
    agent: Agent, trajectories: Trajectories, episodes: int, rewards_cfg: RewardsConfig, label: str,
    store_expert_action: bool = False,
) -> RunResult:
    """Q-imitation-learning: replay the expert's episodes, scoring the network's action by the IL reward.

    With ``store_expert_action`` the memory holds the expert's action instead of the network's (the
    label for behavioural cloning); the reported reward is still the IL reward of the network's action.
    """
    rewards = Rewards(rewards_cfg)
    ep_rewards, ep_steps, ep_eps, ep_q = [], [], [], []
    data = trajectories.first(episodes)
    theta_next = data.next_obs[:, THETA_INDEX]
    t = 0
    with progress(episodes, label) as bar:
        for length in data.episode_length.tolist():
            total = 0.0
            for _ in range(length):
                obs = data.obs[t]
                action = agent.act(obs)
                done = bool(data.terminated[t])
                r = float(rewards.il(theta_next[t], data.expert_action[t], action, done))
                stored = int(data.expert_action[t]) if store_expert_action else action
                agent.learn(obs, stored, r, data.next_obs[t], done)
                total += r
                t += 1
            ep_rewards.append(total)
            ep_steps.append(length)
            ep_eps.append(agent.explorer.epsilon)
            ep_q.append(agent.end_episode())
            agent.episode += 1
            bar.episode_done(length, total, capped=bool(data.capped[len(ep_steps) - 1]), eps=agent.explorer.epsilon)
    return _result(ep_rewards, ep_steps, data.capped, ep_eps, ep_q, agent.losses, agent.diverged)


def reinforce(
    agent: Agent, env_cfg: EnvConfig, episodes: int, rewards_cfg: RewardsConfig, env_seed: int, label: str,
    labeller: PIDExpert | None = None,
) -> RunResult:
    """Deep Q-learning in the environment with the Gaussian angle reward.

    With a ``labeller`` (DAgger) the network still drives, but the memory holds the expert's action
    for every visited state: the expert follows the network's trajectory as if it were driving.
    """
    rewards = Rewards(rewards_cfg)
    env = make_env(env_cfg)
    options = reset_options(env_cfg)
    ep_rewards, ep_steps, ep_capped, ep_eps, ep_q = [], [], [], [], []
    obs, _ = env.reset(seed=env_seed, options=options)
    with progress(episodes, label) as bar:
        for _ in range(episodes):
            total, steps, terminated = 0.0, 0, False
            if labeller is not None:
                labeller.start_episode(float(obs[THETA_INDEX]))
            while not terminated and steps < env_cfg.max_episode_steps:
                action = agent.act(obs)
                stored = action if labeller is None else labeller.act()
                next_obs, _, terminated, _, _ = env.step(action)
                if labeller is not None:
                    labeller.observe(next_obs[THETA_INDEX])
                r = float(rewards.rl(next_obs[THETA_INDEX], terminated))
                agent.learn(obs, stored, r, next_obs, terminated)
                total += r
                steps += 1
                obs = next_obs
            ep_rewards.append(total)
            ep_steps.append(steps)
            ep_capped.append(not terminated)
            ep_eps.append(agent.explorer.epsilon)
            ep_q.append(agent.end_episode())
            agent.episode += 1
            bar.episode_done(steps, total, capped=not terminated, eps=agent.explorer.epsilon)
            obs, _ = env.reset(options=options)
    env.close()
    return _result(ep_rewards, ep_steps, ep_capped, ep_eps, ep_q, agent.losses, agent.diverged)


def expert_episode_rewards(trajectories: Trajectories, episodes: int, rewards_cfg: RewardsConfig) -> np.ndarray:
    """The environment (RL) reward of each expert episode, for the IL figures."""
    data = trajectories.first(episodes)
    per_step = Rewards(rewards_cfg).rl(data.next_obs[:, THETA_INDEX], data.terminated)
    ends = np.cumsum(data.episode_length)
    return np.add.reduceat(per_step, ends - data.episode_length) if len(per_step) else np.zeros(0)
