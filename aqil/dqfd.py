"""DQfD (Hester et al., 2018, "Deep Q-learning from Demonstrations"): its replay memory, which keeps
the demonstrations and stores every transition with its n-step return. The loss is fitted by
``aqil.kernel_losses.fit_dqfd``; the run (pretraining, then RL) is ``train_dqfd`` below. Its pretraining
is the ``Demonstrations`` strategy on the recorded episodes (aqil/episodes.py), its RL the paper's.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np

from aqil import kernel_losses
from aqil.config import DQfDConfig, RewardsConfig
from aqil.episodes import RecordedEpisodes, follow_expert
from aqil.rewards import Rewards
from aqil.runs import RunContext
from aqil.seeding import numpy_rng
from aqil.train import Agent, Learning, RunResult, train
from aqil.trajectories import Trajectories


class DQfDBatch(NamedTuple):
    obs: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    next_obs: np.ndarray
    done: np.ndarray
    n_return: np.ndarray
    n_obs: np.ndarray
    n_discount: np.ndarray
    n_done: np.ndarray
    expert: np.ndarray


class DQfDMemory:
    """Replay for DQfD: the demonstrations stay for good, the agent's transitions cycle after them.

    Every transition is stored with its n-step return, so a transition enters the memory once the
    next n - 1 of its episode are known (or its episode has ended). Minibatches are drawn uniformly
    over demonstrations and agent transitions together: a simplification of DQfD's prioritized replay
    with a priority bonus for demonstrations (README, "Beyond the paper").
    """

    def __init__(self, capacity: int, n: int, gamma: float, rng: np.random.Generator) -> None:
        self.capacity, self.n, self.gamma, self.rng = capacity, n, gamma, rng
        self.obs = np.zeros((capacity, 4), dtype=np.float32)
        self.next_obs = np.zeros((capacity, 4), dtype=np.float32)
        self.n_obs = np.zeros((capacity, 4), dtype=np.float32)
        self.action = np.zeros(capacity, dtype=np.int64)
        self.reward = np.zeros(capacity)
        self.n_return = np.zeros(capacity)
        self.n_discount = np.zeros(capacity)
        self.done = np.zeros(capacity, dtype=bool)
        self.n_done = np.zeros(capacity, dtype=bool)
        self.expert = np.zeros(capacity, dtype=bool)
        self.demonstrations = True  # what ``add`` stores: demonstrations until ``stop_demonstrations``
        self.n_demo = 0
        self.size = 0
        self._next = 0
        self._pending: list[tuple[np.ndarray, int, float, np.ndarray, bool]] = []

    def __len__(self) -> int:
        return self.size

    def stop_demonstrations(self) -> None:
        """From now on ``add`` stores the agent's transitions, after the demonstrations."""
        self.end_episode()
        self.demonstrations = False

    def add(self, obs: np.ndarray, action: int, reward: float, next_obs: np.ndarray, done: bool) -> None:
        self._pending.append((np.array(obs, dtype=np.float32), int(action), float(reward),
                              np.array(next_obs, dtype=np.float32), bool(done)))
        if done:
            self.end_episode()
        elif len(self._pending) == self.n:
            self._commit_first()

    def end_episode(self) -> None:
        """Store what is still waiting for its n-step return (an episode cut at the cap bootstraps)."""
        while self._pending:
            self._commit_first()

    def _commit_first(self) -> None:
        value, factor = 0.0, 1.0
        for _, _, r, _, _ in self._pending:  # at most n, in time order
            value += factor * r
            factor *= self.gamma
        obs, action, reward, next_obs, done = self._pending.pop(0)
        last = self._pending[-1] if self._pending else (obs, action, reward, next_obs, done)
        if self.demonstrations:
            if self.n_demo >= self.capacity:
                raise ValueError(f"dqn.memory_size: {self.capacity} cannot hold the demonstrations")
            i = self.n_demo
            self.n_demo += 1
            self._next = self.n_demo
        else:
            if self.capacity == self.n_demo:
                raise ValueError(f"dqn.memory_size: {self.capacity} leaves no room after the demonstrations")
            i = self._next
            self._next = i + 1 if i + 1 < self.capacity else self.n_demo
        self.obs[i], self.action[i], self.reward[i] = obs, action, reward
        self.next_obs[i], self.done[i] = next_obs, done
        self.n_return[i], self.n_obs[i], self.n_discount[i], self.n_done[i] = value, last[3], factor, last[4]
        self.expert[i] = self.demonstrations
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int) -> DQfDBatch:
        idx = self.rng.choice(self.size, size=batch_size, replace=False)
        return DQfDBatch(self.obs[idx], self.action[idx], self.reward[idx], self.next_obs[idx], self.done[idx],
                         self.n_return[idx], self.n_obs[idx], self.n_discount[idx], self.n_done[idx],
                         self.expert[idx])


class Demonstrations(Learning):
    """DQfD's pretraining: the expert acts (the recorded action), the network only learns from it."""

    def act(self, obs: np.ndarray, expert_action: int | None) -> int:
        return follow_expert(expert_action)


def pretrain(agent: Agent, trajectories: Trajectories, episodes: int, rewards_cfg: RewardsConfig, label: str) -> int:
    """DQfD's pretraining: the expert's transitions, with the environment's reward, enter the memory
    one by one as the paper's imitation runs replay them, and every step makes one update, so the
    pretraining makes as many updates as IL250 on the same episodes. Returns the number of steps."""
    data = trajectories.first(episodes)
    env = RecordedEpisodes(data, reward=Rewards(rewards_cfg).rl_of_recording(data))
    return int(train(Demonstrations(agent), env, episodes, label).episode_steps.sum())


def train_dqfd(ctx: RunContext, trajectories: Trajectories) -> RunResult:
    """DQfD250+RL250: pretraining on the demonstrations, then the paper's RL episodes with the
    demonstrations kept in replay and the same loss (the margin term on demonstrations only)."""
    cfg: DQfDConfig = ctx.params.dqfd250_rl250
    dqn = ctx.params.dqn
    memory = DQfDMemory(dqn.memory_size, cfg.n_step, dqn.gamma, numpy_rng(ctx.stream_seed, "replay"))

    def fit(batch: DQfDBatch) -> tuple[float, float]:
        return ctx.learner.fit_fused(kernel_losses.fit_dqfd, "DQfD", dqn.gamma, *batch,
                                     cfg.margin, cfg.lambda_n, cfg.lambda_e)

    first = ctx.agent(fit=fit, memory=memory)
    pretraining_steps = pretrain(first, trajectories, cfg.demo_episodes, ctx.params.rewards, f"{ctx.label} pretraining")
    memory.stop_demonstrations()
    agent = Agent(ctx.learner, dqn, ctx.stream_seed, ctx.label, diverged=first.diverged, fit=fit, memory=memory)
    result = ctx.rl(Learning(agent), cfg.episodes)
    return dataclasses.replace(result, losses=np.concatenate([np.asarray(first.losses, np.float32), result.losses]),
                               pretraining_steps=pretraining_steps)
