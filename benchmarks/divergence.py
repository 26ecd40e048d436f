"""Exploratory: how many RL500 seeds diverge (loss NaN) within their first updates, per variant.

Runs the real RL loop with the default params for each seed and stops at the first non-finite
loss or after ``--updates`` updates. Variants change one thing against the reference:

  baseline          the pipeline as it is;
  noftz             subnormals not flushed to zero;
  init_uncorrected  hidden-layer weights x 0.8796: Keras' he_normal before its truncation correction
                    (Keras 2.2.5, which saved every reference model, already has the correction);
  float64_reward    the RL reward from the environment's float64 state, as the reference computed it
                    (the pipeline uses the float32 observation the network sees; both see float32 input);
  random_sample     replay minibatches drawn with Python's random.sample over the memory in insertion
                    order, as the reference's deque (a Random seeded per seed instead of numpy's Generator).

    python benchmarks/divergence.py baseline --seeds 0 20
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aqil.config import DQNConfig, EnvConfig, RewardsConfig
from aqil.env import THETA_INDEX
from aqil.replay import Batch
from aqil.rewards import RLReward
from aqil.seeding import derive_seed, run_seed
from aqil.train import Agent, configure_torch, new_learner, reinforce

VARIANTS = ["baseline", "noftz", "init_uncorrected", "float64_reward", "random_sample"]


class _Stop(Exception):
    pass


def first_nan(variant: str, seed: int, updates: int) -> int | None:
    """RL500 seed ``seed`` as the pipeline trains it (its own streams), stopped at the first NaN loss."""
    configure_torch()
    cfg = DQNConfig()
    root = run_seed(seed, "rl500")
    learner = new_learner(cfg, root, torch.device("cpu"))
    if variant == "noftz":
        torch.set_flush_denormal(False)
    elif variant == "init_uncorrected":
        learner.sync()
        for w in learner.weights_t[:-1]:
            w.mul_(0.87962566103423978)
    agent = Agent(learner, cfg, root)
    patches: contextlib.ExitStack = contextlib.ExitStack()
    if variant == "float64_reward":

        def step(self, action):  # the reward from the state after the step, before its float32 rounding
            obs, _, terminated, truncated, info = self.env.step(action)
            theta = float(self.env.unwrapped.state[THETA_INDEX])
            return obs, float(self.rewards.rl(theta, terminated)), terminated, truncated, info

        patches.enter_context(mock.patch.object(RLReward, "step", step))
    elif variant == "random_sample":
        memory, picker = agent.memory, random.Random(derive_seed(root, "replay"))

        def sample(batch_size: int) -> Batch:
            idx = np.array(picker.sample(range(memory.size), batch_size))  # insertion order below capacity
            return Batch(memory.obs[idx], memory.action[idx], memory.reward[idx], memory.next_obs[idx],
                         memory.done[idx])

        memory.sample = sample
    learn = agent.learn

    def learn_and_check(*args) -> None:
        learn(*args)
        if len(agent.losses) >= updates or (agent.losses and not np.isfinite(agent.losses[-1])):
            raise _Stop

    agent.learn = learn_and_check
    with patches, contextlib.suppress(_Stop):
        reinforce(agent, EnvConfig(), 500, RewardsConfig(), derive_seed(root, "rl-env"), f"{variant} seed {seed}")
    bad = np.flatnonzero(~np.isfinite(np.asarray(agent.losses)))
    return int(bad[0]) if len(bad) else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variant", choices=VARIANTS)
    parser.add_argument("--seeds", type=int, nargs=2, default=(0, 20), metavar=("FIRST", "STOP"))
    parser.add_argument("--updates", type=int, default=5000)
    args = parser.parse_args()
    diverged = 0
    seeds = range(*args.seeds)
    for seed in seeds:
        at = first_nan(args.variant, seed, args.updates)
        diverged += at is not None
        print(f"{args.variant} seed {seed}: {'NaN at update ' + str(at) if at is not None else 'finite'}", flush=True)
    print(f"{args.variant}: {diverged} of {len(seeds)} seeds diverged within {args.updates} updates")


if __name__ == "__main__":
    main()
