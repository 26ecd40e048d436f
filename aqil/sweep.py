"""Many seeds in parallel on one machine, with DVC's own experiment queue.

``python -m aqil.sweep --seeds 0-9 --jobs 4`` queues one DVC experiment per seed (training and
evaluation of that seed only), lets ``dvc queue start -j 4`` run them in parallel workers that share
this repository's cache and run-cache, and then writes the full ``seeds`` list into params.yaml and
runs ``dvc repro report`` once: every training and evaluation stage is restored from the run-cache, so
only ``report`` runs. The queued experiments are removed at the end, so no experiment refs are left
behind. It covers the paper's runs; the baselines beside them (``compare``) are not swept.

Why one experiment per seed: DVC runs the stages of one experiment one after another, so a seed's
chain collect -> IL250 -> IL250+RL250 is the unit of parallel work.
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

from tqdm import tqdm

from aqil.config import ConfigError, load_params, read_yaml

PREFIX = "aqil-sweep-seed"
POLL_SECONDS = 10.0


class SweepError(RuntimeError):
    """A problem the user must act on; the message says what to do."""


def parse_seeds(text: str) -> list[int]:
    """'0-9', '0,2,5' or '0-3,7' -> sorted distinct seeds."""
    seeds: set[int] = set()
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not match:
            raise SweepError(f"--seeds: got {text!r}; accepted: seeds and ranges such as 0-9 or 0,2,5 or 0-3,7")
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) else low
        if high < low:
            raise SweepError(f"--seeds: range {low}-{high} is empty")
        seeds.update(range(low, high + 1))
    return sorted(seeds)


def dvc(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run a DVC command with this interpreter's DVC; failures become one line."""
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], capture_output=True, text=True)
    if check and proc.returncode != 0:
        last = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
        raise SweepError(f"dvc {' '.join(args)} failed: {last[-1] if last else f'exit {proc.returncode}'}")
    return proc


def _git_changes() -> list[str]:
    proc = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True,
                          check=True)
    # params.yaml is the sweep's to edit; dvc.lock and the git-tracked report are pipeline outputs, which
    # any dvc repro rewrites: neither is code whose results would then belong to no commit
    return [path for path in (line[3:] for line in proc.stdout.splitlines())
            if path not in ("params.yaml", "dvc.lock") and not path.startswith("results/")]


class QueueStatus(NamedTuple):
    all_states: list[str]  # Queued | Running | Success | Failed | ... of every task
    by_name: dict[str, str]  # the same, by task name (look up only names you gave)
    active_workers: int


def queue_status() -> QueueStatus:
    """One ``dvc queue status``, parsed: every task's state and the number of active workers."""
    out = dvc("queue", "status").stdout
    all_states, by_name = [], {}
    for line in out.splitlines()[1:]:  # after the header: "Task  Name  Created  Status" rows
        fields = line.split()
        if len(fields) >= 3 and not line.startswith(("Worker status", "No experiment tasks")):
            all_states.append(fields[-1])
            by_name[fields[1]] = fields[-1]  # an unnamed task puts its time here: never one of our names
    match = re.search(r"Worker status: (\d+) active", out)
    return QueueStatus(all_states, by_name, int(match.group(1)) if match else 0)


def with_seeds(text: str, seeds: list[int], where: str = "params.yaml") -> str:
    """params.yaml's text with only the top-level ``seeds:`` value replaced (comments kept), checked by
    parsing the result."""
    value = "[" + ", ".join(map(str, seeds)) + "]"
    new, count = re.subn(r"(?m)^seeds:[ \t]*\[[^\]\n]*\]", f"seeds: {value}", text, count=1)
    if count != 1:
        raise SweepError(f"{where}: write seeds on one line (seeds: [0, 1]) so that the sweep can set them")
    if read_yaml(new, where).get("seeds") != seeds:
        raise SweepError(f"{where}: could not set seeds to {value}; write them on one line (seeds: [0, 1])")
    return new


def set_seeds(params_file: Path, seeds: list[int]) -> None:
    params_file.write_text(with_seeds(params_file.read_text(), seeds, str(params_file)))


def _experiment_refs() -> dict[str, str]:
    """Experiment name -> its git ref, for every experiment DVC keeps in this repository."""
    out = subprocess.run(["git", "for-each-ref", "--format=%(refname)", "refs/exps"], capture_output=True,
                         text=True, check=True).stdout.split()
    return {ref.rsplit("/", 1)[-1]: ref for ref in out if ref.count("/") >= 4}


def remove_experiments(names: list[str]) -> None:
    """Remove our experiments and queue entries (finished, failed or left by an interrupted sweep)."""
    mine = [n for n in names if n in queue_status().by_name]
    if mine:
        dvc("queue", "remove", *mine, check=False)
    refs = _experiment_refs()
    existing = [refs[n] for n in names if n in refs]  # full refs: a name may exist under two baselines
    if existing:
        dvc("exp", "remove", *existing, check=False)
    left = [n for n in names if n in _experiment_refs()]
    if left:
        raise SweepError(f"could not remove experiments {', '.join(left)}; remove them with dvc exp remove NAME")


def sweep(seeds: list[int], jobs: int, params_file: Path = Path("params.yaml")) -> set[str]:
    """Train and evaluate ``seeds`` in ``jobs`` parallel experiments, then assemble; returns the stages
    the final ``dvc repro report`` ran."""
    load_params(params_file)  # a bad params.yaml is one line before anything is queued
    original = params_file.read_text()
    assembled = with_seeds(original, seeds, str(params_file))  # checked now, not after hours of training
    changes = _git_changes()
    if changes:
        raise SweepError(
            "uncommitted changes to tracked files (" + ", ".join(changes[:3]) + (", ..." if len(changes) > 3 else "")
            + "): commit or stash them first, so that the results belong to a commit"
        )
    names = [f"{PREFIX}{s}" for s in seeds]
    remove_experiments(names)  # leftovers of an interrupted sweep
    if any(s in ("Queued", "Running") for s in queue_status().all_states):
        raise SweepError("the DVC queue already has queued or running tasks; see dvc queue status")
    try:
        for seed, name in zip(seeds, names, strict=True):
            dvc("exp", "run", "--queue", "-S", f"seeds=[{seed}]", "-n", name, "evaluate")
        dvc("queue", "start", "-j", str(jobs))
        _wait(names)
    except BaseException as exc:  # Ctrl-C, docker stop, a failed dvc call: stop the workers, keep nothing
        dvc("queue", "stop", "--kill", check=False)
        if isinstance(exc, SweepError) and "failed:" in str(exc):
            raise  # failed seeds stay in the queue so that their logs can be read
        remove_experiments(names)
        if isinstance(exc, KeyboardInterrupt):
            raise SweepError("interrupted; the queued experiments were stopped and removed") from None
        raise
    finally:
        params_file.write_text(original)
    params_file.write_text(assembled)
    proc = subprocess.run([sys.executable, "-m", "dvc", "repro", "report"], capture_output=True, text=True)
    if proc.returncode != 0:
        lines = (proc.stdout + proc.stderr).strip().splitlines() or ["?"]
        cause = [line for line in lines if line.startswith("aqil: error:")] or lines
        raise SweepError(f"the final dvc repro report failed: {cause[-1]}")
    remove_experiments(names)
    return set(re.findall(r"Running stage '([^']+)'", proc.stdout + proc.stderr))


def _wait(names: list[str]) -> None:
    idle_polls = 0
    with tqdm(total=len(names), desc="seeds trained and evaluated", unit="seed", file=sys.stderr) as bar:
        while True:
            status = queue_status()
            states = status.by_name
            missing = [n for n in names if n not in states]
            if missing:
                raise SweepError(f"{', '.join(missing)} left the DVC queue unexpectedly; see dvc queue status")
            done = [n for n in names if states[n] == "Success"]
            failed = [n for n in names if states[n] in ("Failed", "Killed")]
            bar.update(len(done) + len(failed) - bar.n)
            if failed and len(done) + len(failed) == len(names):
                raise SweepError(
                    f"{len(failed)} seed(s) failed: " + ", ".join(failed)
                    + ". Read why with dvc queue logs NAME; fix the cause, then run dvc queue remove --failed "
                    "and this command again (seeds that finished are reused from the run-cache)"
                )
            if len(done) == len(names):
                return
            # Seeds still waiting but no worker alive (killed, out of memory): do not wait forever.
            idle_polls = idle_polls + 1 if status.active_workers == 0 else 0
            if idle_polls >= 6:
                raise SweepError("no DVC queue worker is running but seeds are unfinished; see dvc queue status "
                                 "and the worker logs in .dvc/tmp/exps/celery")
            time.sleep(POLL_SECONDS)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m aqil.sweep", description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", required=True, help="seeds to run: 0-9, 0,2,5 or 0-3,7")
    parser.add_argument("--jobs", type=int, default=2, help="parallel workers (default: %(default)s)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)  # docker stop: clean up as on Ctrl-C
    try:
        if args.jobs < 1:
            raise SweepError(f"--jobs: got {args.jobs}; accepted: 1 or more")
        seeds = parse_seeds(args.seeds)
        ran = sweep(seeds, args.jobs)
        summary = Path("results/report/summary.txt")
        if summary.is_file():
            print(summary.read_text(), end="")
        print(f"aqil sweep: seeds {seeds} assembled in the workspace; the final dvc repro report ran: "
              + (", ".join(sorted(ran)) or "nothing (already up to date)"))
    except (SweepError, ConfigError) as exc:
        print(f"aqil: error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("aqil: error: interrupted", file=sys.stderr)
        sys.exit(130)
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"aqil: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    main()
