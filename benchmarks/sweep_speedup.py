"""How much faster is a sweep than one `dvc repro`? Wall times of one workload, three ways, in one run.

    python benchmarks/sweep_speedup.py                 # -> results/scaling/speedup-episodes0.1.json
    python benchmarks/sweep_speedup.py --episode-scale 1 --modes serial,dask   # the full-length episodes

Every mode starts from its own fresh clone of this commit (own DVC cache, nothing to restore) with the
same reduced params.yaml committed in it, and ends when `dvc repro report` has produced the report:

- serial: the seeds written into params.yaml, then one `dvc repro report` (one stage at a time);
- dask:   `python -m aqil.sweep --seeds ... --jobs N --audit 0` (a Dask LocalCluster of N workers);
- cluster: a Dask scheduler on loopback and N `dask worker` processes, each started in a clone of its own,
          with a directory as the DVC remote: `python -m aqil.sweep ... --scheduler ADDRESS --audit 0`;
- queue:  DVC's experiment queue, as the sweep used it before Dask: one queued experiment per seed
          (`dvc exp run --queue -S seeds.<run>=[s]` for every run, targets the paper runs' evaluations),
          `dvc queue start -j N`, wait, then the full seed lists and one `dvc repro report` (run-cache).

The workload is the default settings with `env.max_episode_steps` lowered and every run's episodes
multiplied by --episode-scale. DVC's and Python's start-up per stage is a fixed cost, so a shorter
workload under-states the speed-up of a long one; the json keeps each mode's training seconds (from the
timing files) beside its wall time so that the fixed cost can be read off and scaled (docs/scaling.md).
Run it on an otherwise idle machine: the ratios are what it measures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aqil.config import read_yaml
from aqil.dask_sweep import cpu_model
from aqil.layout import ALL_RUNS, PAPER_RUNS
from aqil.sweep import parse_seeds, set_seeds

ROOT = Path(__file__).resolve().parents[1]


def sh(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-5:]
        sys.exit(f"sweep_speedup: {' '.join(cmd)} failed in {cwd}:\n  " + "\n  ".join(tail))
    return proc.stdout


def reduced_params(text: str, max_steps: int, scale: float) -> str:
    """params.yaml's text with the cap and every run's episodes replaced (comments kept)."""
    text, n = re.subn(r"(?m)^(  max_episode_steps:[ \t]*)\d+", rf"\g<1>{max_steps}", text, count=1)
    assert n == 1, "params.yaml: env.max_episode_steps not found"
    raw = read_yaml(text, "params.yaml")
    for run in ALL_RUNS:  # the baselines too: their episodes may not exceed their parents'
        for key in ("demo_episodes", "episodes"):
            if key in raw[run]:
                episodes = max(1, round(raw[run][key] * scale))
                text, n = re.subn(rf"(?m)^({run}:[^\n]*\n(?:  [^\n]*\n)*?  {key}:[ \t]*)\d+", rf"\g<1>{episodes}",
                                  text, count=1)
                assert n == 1, f"params.yaml: {run}.{key} not found"
    return text


def fresh_clone(where: Path, params: str) -> Path:
    sh(["git", "clone", "-q", str(ROOT), str(where)], ROOT)
    (where / "params.yaml").write_text(params)
    sh(["git", "commit", "-qam", "benchmark workload", "--no-verify"], where)
    return where


def training_seconds(clone: Path) -> float:
    """Seconds spent inside training, summed over the timing files the report read."""
    return sum(json.loads(f.read_text())["seconds"] for f in (clone / "results" / "timing").glob("*/seed*.json"))


def run_serial(clone: Path, seeds: list[int], jobs: int, env: dict[str, str]) -> None:
    set_seeds(clone / "params.yaml", {run: seeds for run in PAPER_RUNS})
    sh([sys.executable, "-m", "dvc", "repro", "report"], clone, env)


def run_dask(clone: Path, seeds: list[int], jobs: int, env: dict[str, str]) -> None:
    text = ",".join(map(str, seeds))
    sh([sys.executable, "-m", "aqil.sweep", "--seeds", text, "--jobs", str(jobs), "--audit", "0"], clone, env)


def run_queue(clone: Path, seeds: list[int], jobs: int, env: dict[str, str]) -> None:
    targets = [f"evaluate_{run}" for run in PAPER_RUNS]
    for seed in seeds:  # every run's list is [seed]: a baseline's seeds must lie in its parent's
        sets = [arg for run in ALL_RUNS for arg in ("-S", f"seeds.{run}=[{seed}]")]
        sh([sys.executable, "-m", "dvc", "exp", "run", "--queue", *sets, "-n", f"bench-seed{seed}", *targets],
           clone, env)
    # the queue's workers are daemons that inherit our pipes: give them none, or this would wait on them
    subprocess.run([sys.executable, "-m", "dvc", "queue", "start", "-j", str(jobs)], cwd=clone, env=env,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    while True:
        status = sh([sys.executable, "-m", "dvc", "queue", "status"], clone, env)
        states = [line.split()[-1] for line in status.splitlines() if "bench-seed" in line]
        if any(s in ("Failed", "Killed") for s in states):
            sys.exit(f"sweep_speedup: a queued seed failed in {clone}:\n{status}")
        if len(states) == len(seeds) and all(s == "Success" for s in states):
            break
        time.sleep(5)
    run_serial(clone, seeds, jobs, env)


def run_cluster(clone: Path, seeds: list[int], jobs: int, env: dict[str, str]) -> None:
    """A loopback scheduler and `jobs` single-threaded workers, each in its own clone, a directory remote."""
    sh([sys.executable, "-m", "dvc", "remote", "add", "-d", "shared", str(clone.parent / "remote")], clone, env)
    sh(["git", "commit", "-qam", "benchmark remote", "--no-verify"], clone)
    info = clone.parent / "scheduler.json"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env}
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                               "--port", "0", "--no-dashboard", "--scheduler-file", str(info)], **quiet)]
    try:
        for n in range(jobs):
            worker = clone.parent / f"worker{n}"
            sh(["git", "clone", "-q", str(clone), str(worker)], clone)
            procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file",
                                           str(info), "--nthreads", "1", "--name", f"w{n}", "--no-dashboard"],
                                          cwd=worker, **quiet))
        while not info.exists():
            time.sleep(0.2)
        address = json.loads(info.read_text())["address"]
        text = ",".join(map(str, seeds))
        sh([sys.executable, "-m", "aqil.sweep", "--seeds", text, "--scheduler", address, "--audit", "0"], clone, env)
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)


MODES = {"serial": run_serial, "dask": run_dask, "cluster": run_cluster, "queue": run_queue}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0-3")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--max-episode-steps", type=int, default=2000)
    parser.add_argument("--episode-scale", type=float, default=0.1)
    parser.add_argument("--modes", default="serial,dask,cluster,queue")
    parser.add_argument("--out", type=Path, help="default: results/scaling/speedup-episodes<SCALE>.json")
    args = parser.parse_args()
    seeds = parse_seeds(args.seeds)
    args.out = args.out or ROOT / "results" / "scaling" / f"speedup-episodes{args.episode_scale:g}.json"
    params = reduced_params((ROOT / "params.yaml").read_text(), args.max_episode_steps, args.episode_scale)
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    commit = sh(["git", "rev-parse", "--short", "HEAD"], ROOT).strip()
    result: dict = {"commit": commit, "seeds": args.seeds, "jobs": args.jobs, "cpus": os.cpu_count(),
                    "cpu": cpu_model(),
                    "max_episode_steps": args.max_episode_steps, "episode_scale": args.episode_scale, "modes": {}}
    with tempfile.TemporaryDirectory(prefix="aqil-speedup-") as tmp:
        for mode in args.modes.split(","):
            clone = fresh_clone(Path(tmp) / mode, params)
            print(f"sweep_speedup: {mode} ...", file=sys.stderr, flush=True)
            start = time.perf_counter()
            MODES[mode](clone, seeds, args.jobs, env)
            wall = time.perf_counter() - start
            result["modes"][mode] = {"wall_s": round(wall, 1), "training_s": round(training_seconds(clone), 1)}
            print(f"sweep_speedup: {mode}: {wall:.0f} s", file=sys.stderr, flush=True)
            shutil.rmtree(clone, ignore_errors=True)
    serial = result["modes"].get("serial", {}).get("wall_s")
    if serial:
        for mode, m in result["modes"].items():
            m["speedup_vs_serial"] = round(serial / m["wall_s"], 2)
            if mode != "serial":  # core-seconds beyond the serial run's, per seed: clones, start-up, idle workers
                m["overhead_s_per_seed"] = round((args.jobs * m["wall_s"] - serial) / len(seeds), 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
