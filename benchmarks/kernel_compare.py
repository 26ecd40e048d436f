"""Compare the fused kernel with its version at another commit: speed, and whether the bytes are the same.

Both kernels fit the same minibatches from the same trained state, one after the other, in rounds
(so a slow spell of the machine hits both); each round starts from a copy of that state. Reports the
median µs per update (20 fits) of each kernel per round, and whether the final weights, momentum and
losses are identical bit for bit. Exits 1 if they are not: a faster kernel must not change a byte.

    python benchmarks/kernel_compare.py --rev a8b2341          # the kernel before it was made faster
    NUMBA_CPU_NAME=generic python benchmarks/kernel_compare.py --rev a8b2341 --rounds 1

Needs the git history (``git show REV:aqil/kernel.py``). The trained state comes from the IL loop on
PID-expert data, as in bench.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import importlib
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench import replay_batches, steady_state  # noqa: E402

from aqil import kernel, trajectories  # noqa: E402
from aqil.config import DQNConfig, EnvConfig, ExpertConfig  # noqa: E402


def kernel_at(rev: str, folder: Path) -> ModuleType:
    """aqil/kernel.py as it was at ``rev``, imported as a module of its own."""
    source = subprocess.run(["git", "show", f"{rev}:aqil/kernel.py"], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout
    name = "kernel_at_" + "".join(c if c.isalnum() else "_" for c in rev)
    (folder / f"{name}.py").write_text(source)
    sys.path.insert(0, str(folder))
    return importlib.import_module(name)


def run(module: ModuleType, state: dict, batches: list) -> tuple[float, str]:
    """Median µs per update over ``batches`` from a copy of ``state``, and a digest of the result."""
    params, velocity = state["params"].copy(), state["velocity"].copy()
    owed = np.zeros_like(state["owed"])
    sizes, lr, momentum, gamma = state["sizes"], state["lr"], state["momentum"], state["gamma"]
    times, results = [], []
    for b in batches:
        start = time.perf_counter()
        results.append(module.fit_sequential(params, velocity, owed, sizes, lr, momentum, gamma, b.obs, b.action,
                                             b.reward, b.next_obs, b.done))
        times.append(time.perf_counter() - start)
    module.settle_all(params, velocity, owed, sizes, lr, momentum)
    digest = hashlib.sha256(params.tobytes() + velocity.tobytes() + np.array(results).tobytes()).hexdigest()[:16]
    return statistics.median(times[len(times) // 20 :]) * 1e6, digest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", required=True, help="the commit whose aqil/kernel.py to compare with")
    parser.add_argument("--train", type=int, default=40_000, help="IL updates that make the trained state")
    parser.add_argument("--calls", type=int, default=1_000, help="updates (20 fits each) per kernel and round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)  # as the training stages run
    cfg = dataclasses.replace(DQNConfig(), memory_size=200_000)
    expert = trajectories.collect(EnvConfig(), ExpertConfig(), 200, env_seed=0)
    _, _, agent = steady_state(cfg, expert, args.train, max(args.train // 8, 500))
    learner = agent.learner
    learner.sync()
    state = {"params": learner.params.numpy().copy(), "velocity": learner.velocity.numpy().copy(),
             "owed": np.zeros(int(learner.sizes.sum()), dtype=np.int64), "sizes": learner.sizes,
             "lr": learner.lr, "momentum": learner.momentum, "gamma": learner.gamma}
    batches = replay_batches(agent, args.calls)
    with tempfile.TemporaryDirectory() as folder:
        kernels = {"this checkout": kernel, f"at {args.rev}": kernel_at(args.rev, Path(folder))}
        timings: dict[str, list[float]] = {label: [] for label in kernels}
        digests: dict[str, str] = {}
        for _ in range(args.rounds):
            for label, module in kernels.items():
                us, digests[label] = run(module, state, batches)
                timings[label].append(us)
    print(f"\nmedian µs per update ({args.calls:,} updates from a state trained for {args.train:,}), per round:")
    for label, values in timings.items():
        print(f"  {label:<24} {' '.join(f'{v:7.1f}' for v in values)}   best {min(values):7.1f}   "
              f"digest {digests[label]}")
    ours, theirs = timings["this checkout"], timings[f"at {args.rev}"]
    print(f"speed-up, best against best: {min(theirs) / min(ours):.2f}x")
    same = len(set(digests.values())) == 1
    print("same bytes (weights, momentum, losses): " + ("yes" if same else "NO"))
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
