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
from aqil.env import THETA_INDEX, make_env, reset_options
from aqil.layout import RunSpec, eval_file, run_dir
from aqil.progress import progress
from aqil.qnet import DQNLearner, resolve_device
from aqil.rewards import Rewards
from aqil.runs import recorded_divergence
from aqil.train import new_learner


def evaluate_greedy(
    learner: DQNLearner, env_cfg: EnvConfig, rewards_cfg: RewardsConfig, episodes: int, seed: int, label: str
) -> dict[str, list[float] | list[int] | float | int]:
    rewards = Rewards(rewards_cfg)
    env = make_env(env_cfg)
    options = reset_options(env_cfg)
    ep_rewards, ep_steps, capped = [], [], 0
    obs, _ = env.reset(seed=seed, options=options)
    with progress(episodes, label) as bar:
        for _ in range(episodes):
            total, steps, terminated = 0.0, 0, False
            while not terminated and steps < env_cfg.max_episode_steps:
                obs, _, terminated, _, _ = env.step(learner.greedy_action(obs))
                total += float(rewards.rl(obs[THETA_INDEX], terminated))
                steps += 1
            capped += not terminated
            ep_rewards.append(total)
            ep_steps.append(steps)
            bar.episode_done(steps, total, capped=not terminated)
            obs, _ = env.reset(options=options)
    env.close()
    return {
        "episode_reward": ep_rewards,
        "episode_steps": ep_steps,
        "avg_reward": float(np.mean(ep_rewards)),
        "best_reward": float(np.max(ep_rewards)),
        "avg_steps": float(np.mean(ep_steps)),
        "capped_episodes": capped,
    }


def evaluate_stage(spec: RunSpec, params: Params, seed: int, results: Path) -> None:
    """Greedy evaluation of one trained network."""
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
