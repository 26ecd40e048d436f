"""Training-speed benchmark: microseconds per trained environment step, in steady state.

Measures in one process, on one thread (what the pipeline uses):
  * steady state: the real IL training loop (``aqil.train.imitate``) on PID-expert data for
    ``--updates`` updates, timed in windows; the figure is the median window after the first
    quarter (so compilation, denormal onset and any slow-down of a long run are inside it), for
    the default (``sequential``, fused kernel) and the ``batched`` ablation (torch);
  * the update alone, from the same trained state and on the same minibatches: the fused kernel
    against the torch implementation of the same sequential rule (the reference it is tested
    against), and the torch ``batched`` update; and the fused update once more on a diverged network
    (every weight and momentum NaN, as in a run that diverged), which skips nothing;
  * where the fused update's time goes: its two forward passes per fit alone (the target's and the
    fit's), and, as a floor for touching every weight once per fit, one plain momentum-decay pass
    over all parameters per fit;
  * the environment step and the greedy action alone;
  * numba's start-up cost per process: compiling the kernel (empty cache) and loading it (cache).

Every figure is a median; ratios are of figures from the same run. Prints a table, writes JSON.

    python benchmarks/bench.py                 # full (1.5 to 6 minutes, depending on the CPU)
    python benchmarks/bench.py --short         # CI smoke (under a minute)
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from numba import njit

from aqil import trajectories
from aqil.config import DQNConfig, EnvConfig, ExpertConfig, RewardsConfig
from aqil.env import make_env, reset_options
from aqil.train import Agent, configure_torch, imitate, new_learner

CPU = torch.device("cpu")


def steady_state(cfg: DQNConfig, expert: trajectories.Trajectories, updates: int, window: int,
                 backend: str | None = None) -> tuple[float, list[float], Agent]:
    """Median µs per trained step over windows of ``window`` steps, after the first quarter."""
    agent = Agent(new_learner(cfg, 0, CPU, backend), cfg, 0)
    rewards = RewardsConfig()
    per_window: list[float] = []
    lengths = expert.episode_length.tolist()
    done = 0
    while done < updates:
        # one window: as many whole expert episodes as make up ``window`` steps
        episodes, steps = 0, 0
        while steps < window and episodes < len(lengths):
            steps += lengths[episodes]
            episodes += 1
        start = time.perf_counter()
        imitate(agent, expert, episodes, rewards, f"bench {cfg.update}")
        per_window.append((time.perf_counter() - start) / steps * 1e6)
        done += steps
    kept = per_window[len(per_window) // 4 :] or per_window
    return statistics.median(kept), per_window, agent


def replay_batches(agent: Agent, count: int, seed: int = 1) -> list:
    """``count`` minibatches from a copy of ``agent``'s replay memory (the same ones for every measurement)."""
    memory = copy.deepcopy(agent.memory)
    memory.rng = np.random.default_rng(seed)
    return [memory.sample(agent.batch_size) for _ in range(count)]


def update_only_us(agent: Agent, backend: str, update: str, calls: int, diverged: bool = False) -> float:
    """Median µs of one ``update`` call from a copy of ``agent``'s network, on its own replay data.

    ``diverged``: every weight and momentum NaN instead. NaN is not zero, so no ReLU unit is inactive
    and the fused kernel skips no weight row: the cost per step of a run after it diverged.
    """
    cfg = dataclasses.replace(DQNConfig(), update=update)
    learner = new_learner(cfg, 0, CPU, backend)
    agent.learner.sync()
    learner.params.copy_(agent.learner.params)
    learner.velocity.copy_(agent.learner.velocity)
    if diverged:
        learner.params.fill_(float("nan"))
        learner.velocity.fill_(float("nan"))
    batches = replay_batches(agent, calls + 5)
    for b in batches[:5]:  # warm-up
        learner.update(*b)
    samples = []
    for b in batches[5:]:
        start = time.perf_counter()
        learner.update(*b)
        samples.append((time.perf_counter() - start) * 1e6)
    return statistics.median(samples)


def fused_breakdown_us(agent: Agent, calls: int) -> dict[str, float]:
    """Median µs per update (20 fits) of parts of the fused update, on ``agent``'s trained network.

    ``forwards``: the two forward passes of each fit alone (Q of the next state for the target, Q of the
    state for the fit), through the kernel's own forward. ``momentum_pass``: one v <- m*v, w <- w - lr*v
    over every parameter per fit, the least memory traffic an update that changes every weight's
    momentum can have. Neither changes the network.
    """
    learner = agent.learner
    learner.sync()  # nothing owed: the forward passes below then read the weights without settling any
    params, velocity = learner.params.numpy().copy(), learner.velocity.numpy().copy()
    lr, momentum = np.float32(learner.lr), np.float32(learner.momentum)
    samples: dict[str, list[float]] = {"forwards": [], "momentum_pass": []}
    for batch in replay_batches(agent, calls + 5):
        start = time.perf_counter()
        learner.q_values(batch.next_obs)
        learner.q_values(batch.obs)
        samples["forwards"].append((time.perf_counter() - start) * 1e6)
        start = time.perf_counter()
        _momentum_passes(params, velocity, lr, momentum, len(batch.obs))
        samples["momentum_pass"].append((time.perf_counter() - start) * 1e6)
    return {k: statistics.median(v[5:]) for k, v in samples.items()}


@njit(cache=False)
def _momentum_passes(params: np.ndarray, velocity: np.ndarray, lr: np.float32, momentum: np.float32,
                     times: int) -> None:
    for _ in range(times):
        for k in range(params.shape[0]):
            v = momentum * velocity[k]
            velocity[k] = v
            params[k] -= lr * v


def small_op_us(fn, count: int, repeats: int = 5) -> float:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(count):
            fn()
        samples.append((time.perf_counter() - start) / count * 1e6)
    return statistics.median(samples)


def numba_startup_s() -> dict[str, float]:
    """Seconds for a fresh process to import the kernel and run one update: cold cache, then warm."""
    code = ("import time; t = time.perf_counter(); import torch; from aqil.config import DQNConfig; "
            "from aqil.train import configure_torch, new_learner; import numpy as np; configure_torch(); "
            "l = new_learner(DQNConfig(), 0, torch.device('cpu')); z = np.zeros((20, 4), np.float32); "
            "t0 = time.perf_counter(); l.update(z, np.zeros(20, np.int64), np.zeros(20), z, np.zeros(20, bool)); "
            "l.greedy_action(z[0]); print(time.perf_counter() - t0)")
    root = Path(__file__).resolve().parents[1]
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache, "PYTHONPATH": str(root)}
        for label in ("cold_cache", "warm_cache"):
            proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
            out[label] = float(proc.stdout.strip().splitlines()[-1])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="few updates, for CI")
    parser.add_argument("--updates", type=int, default=None, help="steady-state length (default 100,000)")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results.json"))
    args = parser.parse_args()
    updates = args.updates or (3_000 if args.short else 100_000)
    window = max(updates // 20, 500)
    configure_torch()  # one thread, subnormals flushed: what every training stage runs with
    base = dataclasses.replace(DQNConfig(), memory_size=200_000)
    expert = trajectories.collect(EnvConfig(), ExpertConfig(), 500 if not args.short else 20, env_seed=0)

    results: dict[str, float] = {}
    windows: dict[str, list[float]] = {}
    fused_us, windows["sequential_fused"], trained = steady_state(base, expert, updates, window)
    batched_us, windows["batched_torch"], _ = steady_state(
        dataclasses.replace(base, update="batched"), expert, updates, window)
    results["loop_sequential_fused_us_per_step"] = fused_us
    results["loop_batched_torch_us_per_step"] = batched_us
    calls = 50 if args.short else 300
    results["update_sequential_fused_us"] = update_only_us(trained, "fused", "sequential", calls)
    results["update_sequential_torch_us"] = update_only_us(trained, "torch", "sequential", max(calls // 5, 20))
    results["update_batched_torch_us"] = update_only_us(trained, "torch", "batched", calls)
    results["update_sequential_fused_diverged_us"] = update_only_us(
        trained, "fused", "sequential", calls, diverged=True)
    breakdown = fused_breakdown_us(trained, calls)
    results["update_fused_forwards_us"] = breakdown["forwards"]
    results["update_fused_rest_us"] = results["update_sequential_fused_us"] - breakdown["forwards"]
    results["momentum_pass_all_params_us"] = breakdown["momentum_pass"]

    env_cfg = EnvConfig()
    env = make_env(env_cfg)
    env.reset(seed=0, options=reset_options(env_cfg))
    rng = np.random.default_rng(0)

    def env_step() -> None:
        _, _, terminated, _, _ = env.step(int(rng.integers(2)))
        if terminated:
            env.reset(options=reset_options(env_cfg))

    obs = expert.obs[:1000]
    counter = iter(range(10**9))
    results["env_step_us"] = small_op_us(env_step, 2000)
    results["greedy_action_us"] = small_op_us(lambda: trained.learner.greedy_action(obs[next(counter) % 1000]), 2000)
    startup = numba_startup_s()
    results["numba_startup_cold_s"] = startup["cold_cache"]
    results["numba_startup_warm_s"] = startup["warm_cache"]

    ratios = {
        "torch_sequential_update_over_fused":
            results["update_sequential_torch_us"] / results["update_sequential_fused_us"],
        "fused_loop_over_batched_loop": fused_us / batched_us,
    }
    rows = [
        ("IL loop, sequential, fused kernel (default)", "loop_sequential_fused_us_per_step"),
        ("IL loop, batched, torch (ablation)", "loop_batched_torch_us_per_step"),
        ("update alone, sequential, fused", "update_sequential_fused_us"),
        ("update alone, sequential, torch", "update_sequential_torch_us"),
        ("update alone, batched, torch", "update_batched_torch_us"),
        ("update alone, fused, diverged (all-NaN) network", "update_sequential_fused_diverged_us"),
        ("  fused update: its 2 forward passes per fit", "update_fused_forwards_us"),
        ("  fused update: the rest (steps, owed decays)", "update_fused_rest_us"),
        ("  floor: 1 momentum pass over all params/fit", "momentum_pass_all_params_us"),
        ("environment step alone", "env_step_us"),
        ("greedy action alone (fused)", "greedy_action_us"),
    ]
    print(f"\nsteady state after {updates:,} updates per loop (median of windows of {window:,} steps, first quarter "
          "dropped)\n")
    print(f"{'measurement':<46} {'us':>10}")
    for label, key in rows:
        print(f"{label:<46} {results[key]:>10.1f}")
    print(f"numba start-up per process: {results['numba_startup_cold_s']:.1f} s compiling (empty cache), "
          f"{results['numba_startup_warm_s']:.2f} s loading (cache)")
    print(f"update speed-up, fused over torch sequential: {ratios['torch_sequential_update_over_fused']:.1f}x")
    print("loop time per trained step, fused sequential / torch batched: "
          f"{ratios['fused_loop_over_batched_loop']:.2f}x")
    meta = {"python": platform.python_version(), "torch": torch.__version__, "machine": platform.machine(),
            "processor": platform.processor(), "updates": updates, "window": window, "short": args.short}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"meta": meta, "results": results, "ratios": ratios, "windows_us": windows},
                                    indent=2, sort_keys=True) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
