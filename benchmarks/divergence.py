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

from aqil import train
from aqil.config import DQNConfig, EnvConfig, RewardsConfig
from aqil.env import THETA_INDEX
from aqil.replay import Batch
from aqil.rewards import Rewards
from aqil.seeding import derive_seed
from aqil.train import Agent, new_learner, reinforce

VARIANTS = ["baseline", "noftz", "init_uncorrected", "float64_reward", "random_sample"]


class _Stop(Exception):
    pass


def first_nan(variant: str, seed: int, updates: int) -> int | None:
    cfg = DQNConfig()
    learner = new_learner(cfg, seed, torch.device("cpu"))
    if variant == "noftz":
        torch.set_flush_denormal(False)
    elif variant == "init_uncorrected":
        learner.sync()
        for w in learner.weights_t[:-1]:
            w.mul_(0.87962566103423978)
    agent = Agent(learner, cfg, seed)
    patches: contextlib.ExitStack = contextlib.ExitStack()
    if variant == "float64_reward":
        envs, original_make_env = [], train.make_env

        def make_env(env_cfg):
            envs.append(env := original_make_env(env_cfg))
            return env

        class Float64Rewards(Rewards):
            def rl(self, theta, terminated):  # the state after the step, before its float32 rounding
                return super().rl(float(envs[-1].unwrapped.state[THETA_INDEX]), terminated)

        patches.enter_context(mock.patch.object(train, "make_env", make_env))
        patches.enter_context(mock.patch.object(train, "Rewards", Float64Rewards))
    elif variant == "random_sample":
        memory, picker = agent.memory, random.Random(derive_seed(seed, "replay"))

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
        reinforce(agent, EnvConfig(), 500, RewardsConfig(), derive_seed(seed, "rl-env"), f"{variant} seed {seed}")
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
