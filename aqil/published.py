"""The published run's per-seed records: small, git-tracked, enough to check every claim without compute.

A trained seed's outputs (model.pt, losses.npy: megabytes) live in DVC's cache. What the report and a
reader need from them is exported here, one pair of files per run and seed::

    results/report/episodes/<run>/seed<N>.tsv   per episode: the run's episodes.tsv plus the mean and
                                                the largest loss of the episode's updates (empty: none)
    results/report/episodes/<run>/seed<N>.json  the seed's metrics.json and greedy evaluation, the sha256
                                                of every output it came from, its wall time, params, commit

The sha256 lets anyone retrain a seed at that commit and check the same bytes came out. Seeds are
exported one at a time, as they finish, so a run that spans several machines or days grows by files.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np

from aqil.artifacts import ArtifactError, read_json, read_npy, read_timing, write_json, write_text
from aqil.config import ConfigError, Params, load_params, to_dict
from aqil.layout import PAPER_RUNS, eval_file, run_dir, timing_file

FORMAT_VERSION = 1
PUBLISHED = Path("results") / "report" / "episodes"
OUTPUTS = ("model.pt", "losses.npy", "metrics.json", "episodes.tsv")
# the numbers the report reads from a seed's summary and its evaluation: finite, or the seed is refused
METRICS = ("episodes", "avg_reward", "best_reward", "avg_steps", "best_steps", "total_steps", "capped_episodes",
           "updates")
EVAL = ("avg_reward", "best_reward", "avg_steps", "capped_episodes", "episode_reward", "episode_steps")


def seed_files(root: Path, run: str, seed: int) -> tuple[Path, Path]:
    """(per-episode table, per-seed record) of one published seed."""
    return root / run / f"seed{seed}.tsv", root / run / f"seed{seed}.json"


def sha256(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        raise ArtifactError(f"{path}: missing; train and evaluate this seed first") from None


def episode_losses(losses: np.ndarray, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Updates, mean loss and largest loss of each episode (NaN where an episode made no update).

    Updates start once the replay memory holds a minibatch and then follow every step, so the last
    episode's updates end the array and each earlier episode's end ``steps`` later ones before it;
    updates before the first episode (DQfD's pretraining) belong to none."""
    ends = len(losses) - (int(steps.sum()) - np.cumsum(steps))
    starts = np.maximum(ends - steps, 0)
    ends = np.maximum(ends, 0)
    mean = np.full(len(steps), np.nan)
    peak = np.full(len(steps), np.nan)
    with np.errstate(invalid="ignore"):
        for i, (lo, hi) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
            if hi > lo:
                chunk = losses[lo:hi].astype(np.float64)
                mean[i], peak[i] = chunk.mean(), chunk.max()
    return ends - starts, mean, peak


def _episode_table(folder: Path, losses: np.ndarray) -> str:
    with (folder / "episodes.tsv").open(newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    if not rows:
        raise ArtifactError(f"{folder / 'episodes.tsv'}: no episodes")
    steps = np.asarray([int(r["steps"]) for r in rows], dtype=np.int64)
    updates, mean, peak = episode_losses(losses, steps)
    columns = [*rows[0].keys(), "loss_mean", "loss_max"]
    lines = ["\t".join(columns)]
    for row, n, m, p in zip(rows, updates.tolist(), mean.tolist(), peak.tolist(), strict=True):
        lines.append("\t".join([*row.values(), *((repr(m), repr(p)) if n else ("", ""))]))
    return "\n".join(lines) + "\n"


def export_seed(results: Path, root: Path, run: str, seed: int, commit: str | None, params: Params) -> None:
    """Write one trained and evaluated seed's published record (atomically, file by file), with the
    settings it ran with (all of params.yaml but the seed lists). ``commit=None`` leaves out the commit
    and the wall time, the two fields whose bytes vary between reruns of the same code: your run's
    report stays the same bytes on every machine."""
    folder = run_dir(results, run, seed)
    losses = read_npy(folder / "losses.npy", ndim=1)
    table, record = seed_files(root, run, seed)
    digests = {name: sha256(folder / name) for name in OUTPUTS}
    digests["eval.json"] = sha256(eval_file(results, run, seed))
    timing = read_timing(timing_file(results, run, seed)) if commit is not None else None
    write_text(table, _episode_table(folder, losses))
    write_json(record, {
        "format_version": FORMAT_VERSION, "run": run, "seed": seed, "commit": commit,
        "metrics": read_json(folder / "metrics.json", ("diverged", "first_non_finite_update"), METRICS),
        "eval": read_json(eval_file(results, run, seed), ("diverged",), EVAL),
        "sha256": digests, "timing": timing,
        "params": {k: v for k, v in to_dict(params).items() if k != "seeds"},
    })


def code_commit() -> str:
    """The code's commit; "-dirty" when a tracked file differs, other than params.yaml (recorded in full)
    and the results (which the pipeline writes)."""
    proc = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!params.yaml",
                            ":!results", ":!dvc.lock"], capture_output=True, text=True)
    return proc.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Export trained seeds into the published per-seed records.")
    parser.add_argument("run", choices=list(PAPER_RUNS))
    parser.add_argument("seeds", type=int, nargs="+")
    parser.add_argument("--results", type=Path, default=Path("results"), help="results folder (default: %(default)s)")
    parser.add_argument("--to", type=Path, default=PUBLISHED, help="published folder (default: %(default)s)")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file (default: %(default)s)")
    args = parser.parse_args(argv)
    commit = code_commit()
    try:
        params = load_params(args.params)
        for seed in args.seeds:
            export_seed(args.results, args.to, args.run, seed, commit, params)
            print(f"published {args.run} seed {seed} -> {seed_files(args.to, args.run, seed)[1]}")
    except (ArtifactError, ConfigError) as exc:
        sys.exit(f"aqil: error: {exc}")


if __name__ == "__main__":
    main()
