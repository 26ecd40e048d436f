"""Greedy evaluation (epsilon = 0) of a trained network on fixed start states.

Training rewards of imitation runs come from episodes the expert drove; only this evaluation
shows what the network does on its own. The start states come from ``evaluate.seed`` alone,
so every network of every run faces the same ones.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aqil.artifacts import write_json
from aqil.cli import run_stage
from aqil.config import EnvConfig, Params, RewardsConfig
from aqil.episodes import Episode, Step, run_episodes
from aqil.layout import RunSpec, eval_file, run_dir
from aqil.qnet import DQNLearner, resolve_device
from aqil.rewards import rl_env
from aqil.runs import recorded_divergence
from aqil.train import configure_torch, new_learner


class Greedy:
    """Evaluation's strategy: the network's greedy action (epsilon = 0); nothing is stored."""

    def __init__(self, learner: DQNLearner) -> None:
        self.learner = learner

    def act(self, obs: np.ndarray, expert_action: int | None) -> int:
        return self.learner.greedy_action(obs)

    def store(self, step: Step) -> None:
        pass

    def end_episode(self, episode: Episode) -> dict[str, float]:
        return {}


def evaluate_greedy(
    learner: DQNLearner, env_cfg: EnvConfig, rewards_cfg: RewardsConfig, episodes: int, seed: int, label: str
) -> dict[str, list[float] | list[int] | float | int]:
    """The network's greedy episodes in the paper's environment (RL reward), from start states ``seed`` fixes."""
    with rl_env(env_cfg, rewards_cfg) as env:
        done = run_episodes(env, Greedy(learner), episodes, label, seed)
    ep_rewards = [e.reward for e in done]
    ep_steps = [e.steps for e in done]
    return {
        "episode_reward": ep_rewards,
        "episode_steps": ep_steps,
        "avg_reward": float(np.mean(ep_rewards)),
        "best_reward": float(np.max(ep_rewards)),
        "avg_steps": float(np.mean(ep_steps)),
        "capped_episodes": sum(e.capped for e in done),
    }


def evaluate_stage(spec: RunSpec, params: Params, seed: int, results: Path) -> None:
    """Greedy evaluation of one trained network."""
    configure_torch()
    learner = new_learner(params.dqn, seed, resolve_device(params.dqn.device))
    folder = run_dir(results, spec.name, seed)
    diverged = recorded_divergence(folder)
    learner.load(folder / "model.pt", diverged=diverged)
    summary = evaluate_greedy(
        learner, params.env, params.rewards, params.evaluate.episodes, params.evaluate.seed,
        f"evaluate {spec.label} seed {seed}",
    )
    # A diverged network is evaluated as the reference would play it (NaN Q-values: action 0), and
    # marked so that the report never passes its numbers off as a trained policy's.
    write_json(eval_file(results, spec.name, seed), summary | {"diverged": diverged})


def main(stage: str, runs: dict[str, RunSpec]) -> None:
    """The evaluation stage ``stage`` (``python -m stages.<stage> RUN --seed N``) for the runs in ``runs``."""
    run_stage(lambda run, *args: evaluate_stage(runs[run], *args),
              "Greedy evaluation of one run's trained network for one seed.", runs=list(runs))
