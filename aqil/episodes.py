"""One episode runner for every loop: collection, imitation, RL, evaluation and DQfD's pretraining.

The runner only steps an environment and counts; what differs between the loops lives elsewhere:

* the environment: the paper's CartPole (aqil/env.py), capped by gymnasium's ``TimeLimit`` (its
  ``truncated`` is "capped"), paying the paper's reward through a wrapper (aqil/rewards.py), with or
  without the PID expert labelling its states (``ExpertLabels``, aqil/expert.py); or the expert's
  recorded episodes replayed as an environment (``RecordedEpisodes`` below);
* the strategy (``Strategy``): who acts, and what is stored of each step.

A loop is then one call, ``run_episodes(env, strategy, episodes, label)``, with a progress bar.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from aqil.env import EXPERT_ACTION
from aqil.progress import progress

if TYPE_CHECKING:
    from aqil.trajectories import Trajectories


class Step(NamedTuple):
    """One transition, as a strategy stores it."""

    obs: np.ndarray  # the state acted in
    action: int  # the action taken
    reward: float  # what the environment paid for it
    next_obs: np.ndarray  # the state reached
    terminated: bool  # the episode failed on this step (a capped step is not terminated: it bootstraps)
    expert_action: int | None  # the expert's action in ``obs``, where the environment labels states


class Episode(NamedTuple):
    """What every loop reports of an episode."""

    reward: float  # sum of the step rewards, in step order
    steps: int  # the paper's "score"
    capped: bool  # cut at max_episode_steps (TimeLimit's truncation) rather than ended by a failure


class Strategy(Protocol):
    """What a loop does at each step: choose the action, store the step, close the episode."""

    def act(self, obs: np.ndarray, expert_action: int | None) -> int:
        """The action in ``obs``; ``expert_action`` is the expert's there, if the environment labels states."""
        ...

    def store(self, step: Step) -> None:
        """Keep what the loop learns from (or records) of ``step``."""
        ...

    def end_episode(self, episode: Episode) -> dict[str, float]:
        """Close ``episode``; return extra numbers for the progress bar (e.g. epsilon)."""
        ...


def run_episodes(env: gym.Env, strategy: Strategy, episodes: int, label: str, seed: int | None = None) -> list[Episode]:
    """Run ``episodes`` episodes of ``strategy`` in ``env``; ``seed`` seeds the first reset only, so the
    start states of a run are one stream."""
    done: list[Episode] = []
    with progress(episodes, label) as bar:
        for i in range(episodes):
            obs, info = env.reset(seed=seed if i == 0 else None)
            episode = run_episode(env, strategy, obs, info)
            bar.episode_done(episode.steps, episode.reward, capped=episode.capped, **strategy.end_episode(episode))
            done.append(episode)
    return done


def run_episode(env: gym.Env, strategy: Strategy, obs: np.ndarray, info: dict[str, Any]) -> Episode:
    """Step ``env`` from the state ``obs`` it was reset to until the episode terminates or is truncated."""
    total, steps = 0.0, 0
    while True:
        expert_action = info.get(EXPERT_ACTION)
        action = strategy.act(obs, expert_action)
        next_obs, reward, terminated, truncated, info = env.step(action)
        reward = float(reward)
        strategy.store(Step(obs, action, reward, next_obs, terminated, expert_action))
        total += reward
        steps += 1
        obs = next_obs
        if terminated or truncated:
            return Episode(total, steps, capped=truncated and not terminated)


def follow_expert(expert_action: int | None) -> int:
    """The expert's action, for strategies in which the expert drives (collection, demonstrations)."""
    if expert_action is None:
        raise ValueError("this strategy follows the expert: run it where the expert labels the states "
                         "(ExpertLabels or RecordedEpisodes)")
    return expert_action


class RecordedEpisodes(gym.Env):
    """The expert's recorded episodes, replayed as an environment (the paper's imitation mode).

    The expert drove, so ``step`` returns the recorded transition whatever the action; what a learner's
    action earns is for a reward wrapper to say (``ImitationReward`` scores it against the expert's).
    Every returned state carries the expert's recorded action in it (``info[EXPERT_ACTION]``). ``reward``
    is the reward of each recorded step (default: CartPole's +1). Each reset starts the next episode.
    """

    observation_space = spaces.Box(-np.inf, np.inf, (4,), np.float32)
    action_space = spaces.Discrete(2)

    def __init__(self, data: Trajectories, reward: np.ndarray | None = None) -> None:
        self.data = data
        self.reward = reward
        self._ends = np.cumsum(data.episode_length).tolist()
        self._episode = -1
        self._t = 0  # the recorded step the next ``step`` returns

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self._episode += 1
        if self._episode >= self.data.episodes:
            raise ValueError(f"all {self.data.episodes} recorded episodes have been replayed")
        self._t = self._ends[self._episode] - int(self.data.episode_length[self._episode])
        return self.data.obs[self._t], self._label(self._t)

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        t = self._t
        self._t += 1
        last = self._t == self._ends[self._episode]
        reward = 1.0 if self.reward is None else float(self.reward[t])
        truncated = last and bool(self.data.capped[self._episode])
        info = {} if last else self._label(self._t)
        return self.data.next_obs[t], reward, bool(self.data.terminated[t]), truncated, info

    def _label(self, t: int) -> dict[str, int]:
        return {EXPERT_ACTION: int(self.data.expert_action[t])}


class Recorder:
    """Collection's strategy: the expert drives (it follows the labels) and every transition is recorded."""

    def __init__(self) -> None:
        self.obs: list[np.ndarray] = []
        self.next_obs: list[np.ndarray] = []
        self.actions: list[int] = []
        self.terminated: list[bool] = []
        self.lengths: list[int] = []
        self.capped: list[bool] = []

    def act(self, obs: np.ndarray, expert_action: int | None) -> int:
        return follow_expert(expert_action)

    def store(self, step: Step) -> None:
        self.obs.append(step.obs)
        self.next_obs.append(step.next_obs)
        self.actions.append(step.action)
        self.terminated.append(step.terminated)

    def end_episode(self, episode: Episode) -> dict[str, float]:
        self.lengths.append(episode.steps)
        self.capped.append(episode.capped)
        return {}

    def arrays(self) -> dict[str, np.ndarray]:
        """The recording, as the arrays of ``aqil.trajectories.Trajectories``."""
        return {
            "obs": np.asarray(self.obs, dtype=np.float32).reshape(-1, 4),
            "next_obs": np.asarray(self.next_obs, dtype=np.float32).reshape(-1, 4),
            "expert_action": np.asarray(self.actions, dtype=np.int8),
            "terminated": np.asarray(self.terminated, dtype=np.bool_),
            "episode_length": np.asarray(self.lengths, dtype=np.int64),
            "capped": np.asarray(self.capped, dtype=np.bool_),
        }
