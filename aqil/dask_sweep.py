"""The sweep's work on Dask: one task per seed's chain, run by workers that each keep their own clone.

A worker runs a seed's stages with ``dvc repro`` in a clone of the project at the sweep's commit, and
returns the md5 of every stage output it holds afterwards, with its host name and CPU model, so that the
client can prove that two machines computed the same bytes (an audit replica: the same chain run again,
from nothing, on another worker, in a clone with a cache of its own).

Two kinds of clone, one task:

* ``--jobs N`` (a LocalCluster): the client makes one clone per worker under ``.dvc/tmp/aqil-sweep``
  whose DVC cache is the project's own (``cache.dir``), so the run-cache the workers fill is the one the
  final ``dvc repro report`` reads, and nothing is pushed.
* ``--scheduler ADDRESS``: a worker's clone is ``$AQIL_SWEEP_CLONE``, else the directory it was started
  in, with its own cache; it pulls from and pushes to the shared DVC remote (``dvc repro --pull`` pulls
  the run-cache first, then ``dvc push --run-cache``).

Nothing here imports torch or the stages: a worker process only needs git, DVC and this file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import re
import signal
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

AUDIT_DIR = "aqil-sweep-audit"  # the audit replicas' clone, inside a worker's clone (.dvc/tmp)
EXCLUDED = ("results/timing/",)  # wall times: differ between any two runs, so never compared


class SweepError(RuntimeError):
    """A problem the user must act on; the message, one line, says what to do."""


class UnitFailed(RuntimeError):
    """A seed's chain failed on a worker; ``log`` is what git and DVC printed."""

    def __init__(self, message: str, log: str = "") -> None:
        super().__init__(message)
        self.log = log

    def __reduce__(self) -> tuple:  # travels back to the client through pickle
        return (UnitFailed, (str(self), self.log))


@dataclass(frozen=True)
class Job:
    """What every task of one sweep shares."""

    commit: str  # the sweep's commit: every clone is at it
    params_text: str  # the assembled params.yaml, written into each clone
    source: str = ""  # local mode: the project the clones are made from
    clone_root: str = ""  # local mode: where the clones go; empty: the worker's own clone (remote mode)
    shared_cache: str = ""  # local mode: the project's DVC cache, shared by every clone

    @property
    def remote(self) -> bool:
        return not self.clone_root


@dataclass(frozen=True)
class Unit:
    """One seed's chain: every stage of every run that has this seed, in DAG order."""

    seed: int
    runs: tuple[str, ...]
    stages: tuple[str, ...]
    targets: tuple[str, ...]  # the last stage of each run (its evaluation): dvc repro brings the rest


@dataclass(frozen=True)
class UnitResult:
    seed: int
    replica: bool  # an audit replica (computed from nothing in an isolated clone)
    worker: str  # the Dask worker's address
    host: str
    cpu: str
    clone: str  # where the outputs are, on that host
    hashes: dict[str, dict[str, str]]  # stage -> output path -> md5 (wall-time outputs left out)
    ran: tuple[str, ...] = field(default=())  # stages computed (the rest came from the run-cache)


# ----------------------------------------------------------------------------- on the worker


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo; elsewhere what platform knows)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def _env() -> dict[str, str]:
    """Stage commands call ``python``: make it this worker's interpreter."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["DVC_NO_ANALYTICS"] = "1"
    return env


def _sh(args: list[str], cwd: Path, log: list[str]) -> str:
    proc = subprocess.run(args, cwd=cwd, env=_env(), capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    log.append(f"$ {' '.join(args)}\n{out}")
    if proc.returncode != 0:
        lines = [line for line in out.strip().splitlines() if line.strip()] or [f"exit {proc.returncode}"]
        errors = [line for line in lines if line.startswith(("aqil: error:", "ERROR:"))]
        what = f"git {args[1]}" if args[0] == "git" else f"dvc {args[3]}"
        raise UnitFailed(f"{what} failed: {(errors or lines)[-1]}", "".join(log))
    return out


def _dvc(*args: str) -> list[str]:
    return [sys.executable, "-m", "dvc", *args]


def head(path: Path) -> str:
    proc = subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def worker_clone() -> Path:
    """Remote mode: the clone this worker process was given."""
    return Path(os.environ.get("AQIL_SWEEP_CLONE") or os.getcwd()).resolve()


def _clone(source: Path, dest: Path, commit: str, log: list[str]) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    _sh(["git", "clone", "-q", "--no-checkout", str(source), str(dest)], dest.parent, log)
    _sh(["git", "-c", "advice.detachedHead=false", "checkout", "-q", "--detach", commit], dest, log)


def _local_clone(job: Job, log: list[str]) -> Path:
    """Local mode: this worker's clone, made on first use, whose DVC cache is the project's."""
    from distributed import get_worker

    name = re.sub(r"[^A-Za-z0-9_.-]", "_", str(get_worker().name))
    path = Path(job.clone_root) / f"worker-{name}"
    if not (path / ".git").is_dir():
        _clone(Path(job.source), path, job.commit, log)
        (path / ".dvc" / "config.local").write_text(f"[cache]\n    dir = {job.shared_cache}\n")
    return path


def _hashes(clone: Path, stages: tuple[str, ...]) -> dict[str, dict[str, str]]:
    from ruamel.yaml import YAML

    lock = YAML(typ="safe", pure=True).load((clone / "dvc.lock").read_text())["stages"]
    return {s: {o["path"]: o["md5"] for o in lock[s].get("outs", []) if not o["path"].startswith(EXCLUDED)}
            for s in stages}


def run_unit(job: Job, unit: Unit, replica: bool = False) -> UnitResult:
    """Train and evaluate one seed's chain on this worker; an audit replica computes it from nothing."""
    from distributed import get_worker
    from filelock import FileLock

    log: list[str] = []
    base = worker_clone() if job.remote else _local_clone(job, log)
    if head(base) != job.commit:
        raise UnitFailed(f"the clone {base} on {socket.gethostname()} is at commit {head(base)[:12] or '?'}, "
                         f"the sweep at {job.commit[:12]}")
    (base / ".dvc" / "tmp").mkdir(parents=True, exist_ok=True)
    with FileLock(base / ".dvc" / "tmp" / "aqil-sweep.lock"):  # one task at a time in a clone
        clone = base
        if replica:
            clone = base / ".dvc" / "tmp" / AUDIT_DIR
            if not (clone / ".git").is_dir():
                _clone(base, clone, job.commit, log)
        (clone / "params.yaml").write_text(job.params_text)
        if replica:  # from nothing: no remote, a cache of its own, every stage forced
            out = _sh(_dvc("repro", "--force", *unit.targets), clone, log)
        elif job.remote:
            out = _sh(_dvc("repro", "--pull", *unit.targets), clone, log)
            _sh(_dvc("push", "--run-cache", *unit.stages), clone, log)
        else:
            out = _sh(_dvc("repro", *unit.targets), clone, log)
        ran = tuple(s for s in re.findall(r"Running stage '([^']+)'", out) if s in unit.stages)
        return UnitResult(unit.seed, replica, get_worker().address, socket.gethostname(), cpu_model(), str(clone),
                          _hashes(clone, unit.stages), ran)


def probe() -> dict[str, str]:
    """Remote mode: this worker's host, CPU, clone, the clone's commit and default DVC remote."""
    from dvc.config import Config

    clone = worker_clone()
    remote = ""
    with contextlib.suppress(Exception):  # not a DVC project, unreadable config: the commit check names it
        remote = Config(dvc_dir=str(clone / ".dvc"), validate=False)["core"].get("remote", "")
    return {"host": socket.gethostname(), "cpu": cpu_model(), "clone": str(clone), "commit": head(clone),
            "remote": remote}


# ----------------------------------------------------------------------------- on the client


def stop_descendants(grace: float = 5.0) -> None:
    """Stop every process this one started (LocalCluster's nannies and workers, their dvc and stage
    processes): frozen first, so that none starts another, then killed."""
    import psutil

    me = psutil.Process()
    seen: dict[int, Any] = {}
    for _ in range(3):  # a process started between two looks is caught by the next
        for proc in me.children(recursive=True):
            with contextlib.suppress(psutil.Error):  # multiprocessing's bookkeeper cleans up after the rest
                if "resource_tracker" in " ".join(proc.cmdline()):
                    continue
            if proc.pid not in seen:
                seen[proc.pid] = proc
                with contextlib.suppress(psutil.Error):
                    proc.send_signal(signal.SIGSTOP)
    for proc in seen.values():
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(list(seen.values()), timeout=grace)


@contextlib.contextmanager
def local_client(jobs: int, retries: int) -> Iterator[Any]:
    """``--jobs N``: a LocalCluster of N single-threaded worker processes on this machine."""
    import dask
    from distributed import Client, LocalCluster

    # a worker that dies mid-seed: the scheduler runs its seed again on another worker, this many times
    with dask.config.set({"distributed.scheduler.allowed-failures": retries}):
        cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None, silence_logs=logging.CRITICAL)
    client = Client(cluster, set_as_default=False)
    finished = False
    try:
        yield client
        finished = True
    finally:
        if not finished:  # Ctrl-C or a failure: running stages are stopped, not waited for
            stop_descendants()
        _quiet()
        with contextlib.suppress(Exception):
            client.close(timeout=5)
        with contextlib.suppress(Exception):
            cluster.close(timeout=5)


def _quiet() -> None:
    for name in ("distributed", "tornado", "asyncio"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def connect(address: str, timeout: float) -> Any:
    """A client of the scheduler at ``address``; unreachable is one line naming it."""
    from distributed import Client

    _quiet()
    try:
        return Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        cause = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise SweepError(f"cannot reach the Dask scheduler at {address} ({cause})") from None


def check_workers(client: Any, address: str, commit: str, timeout: float,
                  wanted: int = 1) -> dict[str, dict[str, str]]:
    """Every worker's clone is at the sweep's commit and has a DVC remote to share results through.
    Waits up to ``timeout`` for ``wanted`` workers (an audit needs two; workers just started connect
    one by one), and for at least one."""
    try:
        client.wait_for_workers(1, timeout=timeout)
    except TimeoutError:
        raise SweepError(f"no Dask worker is connected to the scheduler at {address} (waited {timeout:g} s)") from None
    if wanted > 1:
        with contextlib.suppress(TimeoutError):  # fewer: the caller says what that means
            client.wait_for_workers(wanted, timeout=timeout)
    infos = client.run(probe, on_error="return")
    for worker, info in sorted(infos.items()):
        if isinstance(info, BaseException):
            raise SweepError(f"worker {worker} could not be asked for its clone: {info}")
        where = f"worker {worker} ({info['host']}): its clone {info['clone']}"
        if info["commit"] != commit:
            raise SweepError(f"{where} is at commit {info['commit'][:12] or 'none (not a git clone)'}, the sweep at "
                             f"{commit[:12]}; check out {commit[:12]} there and restart the worker")
        if not info["remote"]:
            raise SweepError(f"{where} has no default DVC remote; configure the shared one there (dvc remote add -d)")
    return infos


def run_units(client: Any, job: Job, units: list[Unit], audited: set[int],
              retries: int) -> tuple[dict[int, UnitResult], dict[int, UnitResult]]:
    """Every unit once, and each audited one again on another worker; returns (primaries, replicas)."""
    from distributed import as_completed
    from tqdm import tqdm

    names = {addr: str(w.get("name", addr)) for addr, w in client.scheduler_info()["workers"].items()}
    pending: dict[str, tuple[Any, Unit, bool, int]] = {}
    token = os.urandom(4).hex()

    def submit(unit: Unit, replica: bool, attempt: int, workers: list[str] | None = None) -> Any:
        key = f"aqil-seed{unit.seed}-{'audit' if replica else 'run'}-{attempt}-{token}"
        where = {"workers": workers, "allow_other_workers": False} if workers else {}
        fut = client.submit(run_unit, job, unit, replica, key=key, pure=False, **where)
        pending[key] = (fut, unit, replica, attempt)
        return fut

    done: dict[int, UnitResult] = {}
    replicas: dict[int, UnitResult] = {}
    queue = as_completed([submit(u, False, 0) for u in units], loop=client.loop)
    per_worker: Counter[str] = Counter()
    try:
        with tqdm(total=len(units) + len(audited), desc="seed chains", unit="chain", file=sys.stderr) as bar:
            for fut in queue:
                _, unit, replica, attempt = pending.pop(fut.key)
                result = _result(fut, unit, replica, attempt, retries)
                if result is None:  # its worker died: run it again elsewhere
                    queue.add(submit(unit, replica, attempt + 1))
                    continue
                per_worker[names.get(result.worker, result.worker)] += 1
                bar.set_postfix_str(", ".join(f"{w}: {n}" for w, n in sorted(per_worker.items())), refresh=False)
                bar.update(1)
                (replicas if replica else done)[unit.seed] = result
                if not replica and unit.seed in audited:
                    queue.add(submit(unit, True, 0, _others(client, result.worker, unit.seed)))
    finally:
        if pending:
            with contextlib.suppress(Exception):
                client.cancel([entry[0] for entry in pending.values()])
    return done, replicas


def _others(client: Any, worker: str, seed: int) -> list[str]:
    others = [w for w in client.scheduler_info()["workers"] if w != worker]
    if not others:
        raise SweepError(f"audit: no worker other than {worker} is left to run seed {seed} again")
    return others


def _result(fut: Any, unit: Unit, replica: bool, attempt: int, retries: int) -> UnitResult | None:
    """The task's result; None when its worker died and it may run again; else one line."""
    from distributed import KilledWorker

    what = f"seed {unit.seed}{' (audit replica)' if replica else ''}"
    try:
        return fut.result()
    except KilledWorker:
        if attempt < retries:
            return None
        raise SweepError(f"{what}: its workers died {attempt + 1} time(s); see the workers' logs") from None
    except UnitFailed as exc:
        log = Path(".dvc/tmp") / f"aqil-sweep-seed{unit.seed}.log"
        with contextlib.suppress(OSError):
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text(exc.log)
        raise SweepError(f"{what} failed: {exc} (what git and DVC printed: {log})") from None
