"""Training: the agent (network, replay memory, exploration), the paper's learning strategy, and its
two methods: Q-imitation-learning on the expert's recorded episodes, and deep Q-learning online.

Every loop runs through ``aqil.episodes.run_episodes``; what the paper's methods do at each step is the
``Learning`` strategy: the network acts epsilon-greedily, the environment pays the paper's reward (IL or
RL, aqil/rewards.py), the transition is stored, and -- once the replay memory holds ``batch_size``
transitions -- a minibatch is sampled, fitted, and epsilon decays (x0.995 after every update, floor
0.01, as the reference). The baselines (aqil/baselines.py, aqil/dqfd.py) are other strategies.

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

import gymnasium as gym
import numpy as np
import torch
from tqdm import tqdm

from aqil.artifacts import TrainingError
from aqil.config import DQNConfig, EnvConfig, RewardsConfig
from aqil.episodes import Episode, RecordedEpisodes, Step, run_episodes
from aqil.qnet import Backend, DQNLearner, QNetwork, keras_init_
from aqil.replay import Batch, ReplayMemory
from aqil.rewards import ImitationReward, Rewards, rl_env
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


class TrainingDiverged(TrainingError):
    """A loss or weight went NaN or infinite under ``dqn.on_divergence: stop`` (a numerical event, not a
    params.yaml mistake, though ``dqn.learning_rate`` is the usual cause)."""


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
        self.episode = 0  # counted by ``Learning.end_episode``, for messages
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


def configure_torch() -> None:
    """torch's process-wide settings, made once by every stage that builds a network (runs.train_run,
    evaluate.evaluate_stage), before it does: they change what the network computes."""
    torch.set_num_threads(1)  # the matrices are tiny: one thread is fastest and deterministic
    # Subnormal floats (momentum of dead units decaying towards zero) are flushed to zero, as
    # TensorFlow did for the reference; this sets the CPU flags for the fused kernel as well.
    torch.set_flush_denormal(True)


def new_learner(cfg: DQNConfig, seed: int, device: torch.device, backend: Backend | None = None) -> DQNLearner:
    """A freshly initialised network (Keras initialisers, seeded) bound to its optimizer."""
    net = QNetwork(cfg.hidden)
    keras_init_(net, numpy_rng(seed, "init"))
    return DQNLearner(cfg, net, device, backend)


class Learning:
    """The paper's strategy: the network acts epsilon-greedily and learns from the action it took.

    Q-imitation-learning runs it on the expert's recorded episodes (the IL reward scores its action),
    deep Q-learning in the environment. A baseline changes what it stores (``label``) or who acts.
    """

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.epsilons: list[float] = []  # epsilon at the end of each episode
        self.max_q: list[float] = []  # largest |Q| of each episode's updates

    def act(self, obs: np.ndarray, expert_action: int | None) -> int:
        return self.agent.act(obs)

    def label(self, step: Step) -> int:
        """The action the memory holds for ``step``: the one the network took."""
        return step.action

    def store(self, step: Step) -> None:
        self.agent.learn(step.obs, self.label(step), step.reward, step.next_obs, step.terminated)

    def end_episode(self, episode: Episode) -> dict[str, float]:
        self.epsilons.append(self.agent.explorer.epsilon)
        self.max_q.append(self.agent.end_episode())
        self.agent.episode += 1
        return {"eps": self.agent.explorer.epsilon}

    def result(self, episodes: list[Episode]) -> RunResult:
        """The run's curves: the runner's episodes with this strategy's epsilons, |Q| maxima and losses."""
        return RunResult(
            episode_reward=np.asarray([e.reward for e in episodes], dtype=np.float64),
            episode_steps=np.asarray([e.steps for e in episodes], dtype=np.int64),
            episode_capped=np.asarray([e.capped for e in episodes], dtype=bool),
            episode_epsilon=np.asarray(self.epsilons, dtype=np.float64),
            episode_max_q=np.asarray(self.max_q, dtype=np.float64),
            losses=np.asarray(self.agent.losses, dtype=np.float32),
            diverged=self.agent.diverged,
        )


def train(strategy: Learning, env: gym.Env, episodes: int, label: str, seed: int | None = None) -> RunResult:
    """Run ``strategy`` for ``episodes`` episodes in ``env`` (first reset seeded by ``seed``)."""
    with env:
        return strategy.result(run_episodes(env, strategy, episodes, label, seed))


def imitation_env(trajectories: Trajectories, episodes: int, rewards_cfg: RewardsConfig) -> gym.Env:
    """The expert's first ``episodes`` episodes, replayed, paying the IL reward of the learner's action."""
    return ImitationReward(RecordedEpisodes(trajectories.first(episodes)), Rewards(rewards_cfg))


def imitate(
    agent: Agent, trajectories: Trajectories, episodes: int, rewards_cfg: RewardsConfig, label: str
) -> RunResult:
    """Q-imitation-learning: replay the expert's episodes, scoring the network's action by the IL reward."""
    return train(Learning(agent), imitation_env(trajectories, episodes, rewards_cfg), episodes, label)


def reinforce(
    agent: Agent, env_cfg: EnvConfig, episodes: int, rewards_cfg: RewardsConfig, env_seed: int, label: str
) -> RunResult:
    """Deep Q-learning in the environment with the Gaussian angle reward."""
    return train(Learning(agent), rl_env(env_cfg, rewards_cfg), episodes, label, seed=env_seed)


def expert_episode_rewards(trajectories: Trajectories, episodes: int, rewards_cfg: RewardsConfig) -> np.ndarray:
    """The environment (RL) reward of each expert episode, for the IL figures."""
    data = trajectories.first(episodes)
    per_step = Rewards(rewards_cfg).rl_of_recording(data)
    ends = np.cumsum(data.episode_length)
    return np.add.reduceat(per_step, ends - data.episode_length) if len(per_step) else np.zeros(0)
