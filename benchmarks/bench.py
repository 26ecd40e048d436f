"""Training-speed benchmark: microseconds per trained environment step, against a GEMM ceiling.

Measures in one process, on one thread (what the pipeline uses):
  * the IL and RL training loops in each update mode (batched, sequential) -- the real code;
  * the same update written the plain way (autograd + torch.optim.SGD), for comparison;
  * the environment step alone and the greedy action selection alone;
  * a GEMM ceiling: the matrix products one batched training step needs (forward of 20 states
    and 20 next states, backward of 20 samples), timed as bare ``torch.mm`` calls.

Each figure is the median of ``--repeats`` timings. Prints a table and writes JSON.

    python benchmarks/bench.py                 # full (about 3 minutes)
    python benchmarks/bench.py --short         # CI smoke (about 20 seconds)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import itertools

from aqil import trajectories
from aqil.config import DQNConfig, EnvConfig, ExpertConfig, RewardsConfig
from aqil.env import make_env, reset_options
from aqil.qnet import QNetwork, keras_init_
from aqil.train import Agent, imitate, new_learner, reinforce


def median_us(fn: Callable[[], int], repeats: int) -> float:
    """Median over repeats of (seconds / units) for ``fn`` returning the number of units it did."""
    fn()  # warm-up
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        units = fn()
        samples.append((time.perf_counter() - start) / units * 1e6)
    return statistics.median(samples)


def gemm_ceiling_us(hidden: list[int], batch: int, repeats: int) -> float:
    """Bare matrix products of one batched step (forward 2*batch rows, backward batch rows)."""
    sizes = [4, *hidden, 2]
    mats = []
    for n_in, n_out in itertools.pairwise(sizes):
        w = torch.randn(n_in, n_out)
        mats.append(((torch.randn(2 * batch, n_in), w), "fwd"))
        mats.append(((torch.randn(n_in, batch), torch.randn(batch, n_out)), "grad"))
        if n_in != 4:
            mats.append(((torch.randn(batch, n_out), w.t().contiguous()), "delta"))

    def step() -> int:
        for _ in range(200):
            for (a, b), _kind in mats:
                torch.mm(a, b)
        return 200

    return median_us(step, repeats)


def flops_per_step(hidden: list[int], batch: int) -> float:
    sizes = [4, *hidden, 2]
    total = 0
    for n_in, n_out in itertools.pairwise(sizes):
        total += 2 * (2 * batch) * n_in * n_out  # forward, obs and next_obs
        total += 2 * batch * n_in * n_out  # weight gradient
        if n_in != 4:
            total += 2 * batch * n_in * n_out  # error to the layer below
    return float(total)


def plain_torch_update_us(cfg: DQNConfig, repeats: int, steps: int) -> float:
    """The update as a straightforward torch program would write it (autograd, nn.Module, SGD)."""
    net = QNetwork(cfg.hidden)
    keras_init_(net, torch.Generator().manual_seed(0))
    opt = torch.optim.SGD(net.parameters(), lr=cfg.learning_rate, momentum=cfg.momentum)
    g = torch.Generator().manual_seed(1)
    obs, next_obs = torch.randn(cfg.batch_size, 4, generator=g) * 0.1, torch.randn(cfg.batch_size, 4, generator=g)
    action = torch.randint(0, 2, (cfg.batch_size,), generator=g)
    reward, done = torch.rand(cfg.batch_size, generator=g), torch.zeros(cfg.batch_size, dtype=torch.bool)
    rows = [slice(None)] if cfg.update == "batched" else [slice(i, i + 1) for i in range(cfg.batch_size)]

    def run() -> int:
        for _ in range(steps):
            for r in rows:
                with torch.no_grad():
                    y = torch.where(done[r], reward[r], reward[r] + cfg.gamma * net(next_obs[r]).max(1).values)
                q = net(obs[r])
                labels = q.detach().clone()
                labels[torch.arange(len(y)), action[r]] = y
                loss = ((labels - q) ** 2).mean(1).sum()
                opt.zero_grad()
                loss.backward()
                opt.step()
        return steps

    return median_us(run, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="few steps, for CI")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results.json"))
    args = parser.parse_args()
    repeats = args.repeats or (3 if args.short else 7)
    torch.set_num_threads(1)
    base = dataclasses.replace(DQNConfig(), memory_size=200_000)
    env_cfg = EnvConfig()
    rewards = RewardsConfig()
    expert = trajectories.collect(env_cfg, ExpertConfig(), 12, env_seed=0)
    il_episodes = 1 if args.short else 4
    rl_episodes = 10 if args.short else 60

    results: dict[str, float] = {}
    for mode in ("batched", "sequential"):
        cfg = dataclasses.replace(base, update=mode)
        scale = 1 if mode == "batched" else 0.1  # sequential is ~10x slower: fewer steps, same precision

        def il_run(cfg: DQNConfig = cfg, scale: float = scale) -> int:
            agent = Agent(new_learner(cfg, 0, torch.device("cpu")), cfg, 0)
            episodes = max(1, int(il_episodes * scale))
            imitate(agent, expert, episodes, rewards, f"IL {cfg.update}")
            return int(expert.episode_length[:episodes].sum())

        def rl_run(cfg: DQNConfig = cfg, scale: float = scale) -> int:
            agent = Agent(new_learner(cfg, 0, torch.device("cpu")), cfg, 0)
            result = reinforce(agent, env_cfg, max(2, int(rl_episodes * scale)), rewards, 0, f"RL {cfg.update}")
            return int(result.episode_steps.sum())

        results[f"il_{mode}_us_per_step"] = median_us(il_run, repeats)
        results[f"rl_{mode}_us_per_step"] = median_us(rl_run, repeats)
        results[f"plain_torch_{mode}_update_us"] = plain_torch_update_us(cfg, repeats, 200 if mode == "batched" else 20)

    env = make_env(env_cfg)
    env.reset(seed=0, options=reset_options(env_cfg))

    def env_steps() -> int:
        for _ in range(2000):
            _, _, terminated, _, _ = env.step(int(np.random.randint(2)))
            if terminated:
                env.reset(options=reset_options(env_cfg))
        return 2000

    learner = new_learner(base, 0, torch.device("cpu"))
    obs = np.zeros(4, dtype=np.float32)

    def actions() -> int:
        for _ in range(2000):
            learner.greedy_action(obs)
        return 2000

    results["env_step_us"] = median_us(env_steps, repeats)
    results["action_selection_us"] = median_us(actions, repeats)
    results["gemm_ceiling_us_per_step"] = gemm_ceiling_us(base.hidden, base.batch_size, repeats)
    flops = flops_per_step(base.hidden, base.batch_size)
    results["gemm_gflops"] = flops / results["gemm_ceiling_us_per_step"] / 1e3
    results["mflop_per_step"] = flops / 1e6

    ceiling = results["gemm_ceiling_us_per_step"]
    rows = [
        ("IL loop, batched", "il_batched_us_per_step"),
        ("RL loop, batched", "rl_batched_us_per_step"),
        ("IL loop, sequential", "il_sequential_us_per_step"),
        ("RL loop, sequential", "rl_sequential_us_per_step"),
        ("plain torch update, batched", "plain_torch_batched_update_us"),
        ("plain torch update, sequential", "plain_torch_sequential_update_us"),
        ("environment step alone", "env_step_us"),
        ("greedy action selection alone", "action_selection_us"),
        ("GEMM ceiling (one batched step)", "gemm_ceiling_us_per_step"),
    ]
    print(f"\n{'measurement':<34} {'us/step':>10} {'x ceiling':>10}")
    for label, key in rows:
        print(f"{label:<34} {results[key]:>10.1f} {results[key] / ceiling:>10.2f}")
    print(f"GEMM: {results['mflop_per_step']:.1f} MFLOP per batched step at {results['gemm_gflops']:.0f} GFLOP/s")
    print(f"sequential speed-up over the plain torch loop: "
          f"{results['plain_torch_sequential_update_us'] / results['rl_sequential_us_per_step']:.2f}x (RL), "
          f"{results['plain_torch_sequential_update_us'] / results['il_sequential_us_per_step']:.2f}x (IL)")
    meta = {"python": platform.python_version(), "torch": torch.__version__, "machine": platform.machine(),
            "threads": torch.get_num_threads(), "repeats": repeats, "short": args.short}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=2, sort_keys=True) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
