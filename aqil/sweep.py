"""Many seeds in parallel, each (run, seed) chain trained once: on this machine, or on Dask workers anywhere.

    python -m aqil.sweep --run rl500 --seeds 0-99 [--run il250_rl250 --seeds 0-39 ...] --jobs N
    python -m aqil.sweep --run rl500 --seeds 0-99 --scheduler tcp://HOST:8786 [--audit 0.1]
    python -m aqil.sweep --until-decided --max-seeds 200 [--jobs N | --scheduler ADDRESS]

It sets params.yaml's ``seeds.<run>`` lists (comments kept; a run's parents get the seeds it builds on),
runs one Dask task per seed (the chain collect -> IL250 -> IL250+RL250 of every run that has that seed:
DVC runs one chain's stages one after another, so the chain is the unit of parallel work), then runs
``dvc repro report`` once in the workspace: every training and evaluation stage is restored from the
run-cache the workers filled, so only the report is made. ``--jobs N`` is a Dask LocalCluster of N
processes, each with its own clone sharing this project's DVC cache: the same scheduling, retries and
audit as on a cluster, and no DVC experiment queue, refs or ``.dvc/tmp/exps`` copies to clean up.
``--scheduler`` sends the same tasks to workers that each keep their own clone and cache and share
results through the DVC remote (docs/scaling.md).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from aqil.config import ConfigError, load_params, parse_params, read_yaml
from aqil.dask_sweep import Job, SweepError, Unit, UnitResult
from aqil.layout import ALL_RUNS, COLLECTING_RUNS

__all__ = ["SweepError", "main", "make_plan", "parse_seeds", "set_seeds", "sweep", "until_decided"]

MAX_SEEDS = 100_000  # per run: far above any sensible sweep, low enough that a typo is one line
CLONES = Path(".dvc") / "tmp" / "aqil-sweep"  # --jobs: one clone per worker, removed at the end
TABLE = Path("results") / "local" / "report" / "table2.json"
FINAL = ("check_params", "report", "compare")  # what the final dvc repro may run: nothing trained


def parse_seeds(text: str, bound: int = MAX_SEEDS) -> list[int]:
    """'0-9', '0,2,5' or '0-3,7' -> sorted distinct seeds; more than ``bound`` is refused before any list
    is built."""
    parts = []
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not match:
            raise SweepError(f"--seeds: got {text!r}; accepted: seeds and ranges such as 0-9 or 0,2,5 or 0-3,7")
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) else low
        if high < low:
            raise SweepError(f"--seeds: range {low}-{high} is empty")
        parts.append((low, high))
    if sum(high - low + 1 for low, high in parts) > bound:
        raise SweepError(f"--seeds: {text!r} is more than {bound:,} seeds; accepted: at most {bound:,} per run")
    return sorted({s for low, high in parts for s in range(low, high + 1)})


def show_seeds(seeds: list[int]) -> str:
    """[0, 1, 2, 5] -> '0-2,5'."""
    spans: list[list[int]] = []
    for s in sorted(seeds):
        if spans and s == spans[-1][1] + 1:
            spans[-1][1] = s
        else:
            spans.append([s, s])
    return ",".join(f"{a}-{b}" if b > a else str(a) for a, b in spans) or "none"


# ----------------------------------------------------------------------------- params.yaml


def with_seeds(text: str, seeds: dict[str, list[int]], where: str = "params.yaml") -> str:
    """params.yaml's text with only the ``seeds.<run>`` lines given replaced (comments kept), checked by
    parsing the result."""
    block = re.search(r"(?m)^seeds:[ \t]*(?:#[^\n]*)?\n((?:[ \t]+[^\n]*\n|[ \t]*\n)*)", text)
    if not block:
        raise SweepError(f"{where}: no block 'seeds:' with one line per run (  rl500: [0, 1]) for the sweep to set")
    body = block.group(1)
    for run, values in seeds.items():
        body, count = re.subn(rf"(?m)^([ \t]+{re.escape(run)}:[ \t]*)\[[^\]\n]*\]",
                              lambda m, v=values: m.group(1) + "[" + ", ".join(map(str, v)) + "]", body, count=1)
        if count != 1:
            raise SweepError(f"{where}: write seeds.{run} on one line under seeds: (  {run}: [0, 1]) so that the "
                             "sweep can set it")
    new = text[:block.start(1)] + body + text[block.end(1):]
    parsed = read_yaml(new, where).get("seeds") or {}
    if any(parsed.get(run) != values for run, values in seeds.items()):
        raise SweepError(f"{where}: could not set {', '.join(f'seeds.{r}' for r in seeds)}; write each on one line")
    return new


def set_seeds(params_file: Path, seeds: dict[str, list[int]]) -> None:
    params_file.write_text(with_seeds(params_file.read_text(), seeds, str(params_file)))


def current_seeds(params_file: Path) -> dict[str, list[int]]:
    seeds = load_params(params_file).seeds  # a bad params.yaml is one line before anything starts
    return {run: list(seeds.of(run)) for run in ALL_RUNS}


# ----------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Plan:
    """What a sweep will do, decided before anything runs."""

    seeds: dict[str, list[int]]  # every run's list afterwards
    changed: dict[str, list[int]]  # the lists written into params.yaml
    added: dict[str, tuple[list[int], list[str]]]  # parent -> (seeds added for its children, those children)
    targets: tuple[str, ...]  # the final dvc repro's targets
    units: tuple[Unit, ...]  # one per seed, longest chains first


def _closed_over_parents(seeds: dict[str, list[int]]) -> dict[str, tuple[list[int], list[str]]]:
    """Add to each parent's list the seeds its children need (in place); returns what was added."""
    added: dict[str, tuple[list[int], list[str]]] = {}
    changed = True
    while changed:
        changed = False
        for spec in ALL_RUNS.values():
            for parent in spec.parents:
                missing = set(seeds[spec.name]) - set(seeds[parent])
                if missing:
                    seeds[parent] = sorted(set(seeds[parent]) | missing)
                    values, children = added.setdefault(parent, ([], []))
                    values[:] = sorted(set(values) | missing)
                    children.append(spec.name)
                    changed = True
    return added


def _runs_of(stage: dict[str, Any]) -> set[str]:
    """The runs a report stage reads, from its deps in dvc.yaml (results/<run>)."""
    return {d.split("/")[1] for d in stage.get("deps", []) if d.count("/") == 1 and d.split("/")[1] in ALL_RUNS}


def _chain(seed: int, runs: list[str], dvc_stages: dict[str, Any]) -> Unit:
    collects = [c for c in COLLECTING_RUNS if any(ALL_RUNS[r].expert_from == c for r in runs)]
    names = [f"collect_{c}" for c in collects] + runs + [f"evaluate_{r}" for r in runs]
    missing = [n for n in names if "matrix" not in dvc_stages.get(n, {})]
    if missing:
        raise SweepError(f"dvc.yaml has no per-seed stage {missing[0]}: regenerate it (python -m aqil.pipeline) "
                         "or update aqil/sweep.py's stage names")
    return Unit(seed, tuple(runs), tuple(f"{n}@{seed}" for n in names), tuple(f"evaluate_{r}@{seed}" for r in runs))


def make_plan(current: dict[str, list[int]], requested: dict[str, list[int]], dvc_stages: dict[str, Any]) -> Plan:
    """The lists after the sweep (parents completed), the final targets, and one unit per seed of every
    run those targets read (seeds already in the run-cache are restored by their worker, not trained)."""
    unknown = sorted(set(requested) - set(ALL_RUNS))
    if unknown:
        raise SweepError(f"--run: got {unknown[0]!r}; accepted: {', '.join(ALL_RUNS)}")
    seeds = {run: list(current[run]) for run in ALL_RUNS} | {r: sorted(v) for r, v in requested.items()}
    added = _closed_over_parents(seeds)
    touched = set(requested) | set(added)
    targets = ("report", "compare") if any(not ALL_RUNS[r].paper for r in touched) else ("report",)
    read = set().union(*(_runs_of(dvc_stages.get(t, {})) for t in targets))
    read |= {p for r in read for p in ALL_RUNS[r].parents}
    by_seed: dict[int, list[str]] = {}
    for run in ALL_RUNS:  # registry order: parents before children
        for seed in seeds[run] if run in read else []:
            by_seed.setdefault(seed, []).append(run)
    units = sorted((_chain(s, runs, dvc_stages) for s, runs in by_seed.items()), key=lambda u: (-len(u.stages), u.seed))
    changed = {r: seeds[r] for r in ALL_RUNS if r in touched}
    return Plan(seeds, changed, added, targets, tuple(units))


def audited(units: tuple[Unit, ...], fraction: float) -> set[int]:
    """The seeds run twice: ``fraction`` of the units (at least one), spread evenly over them."""
    if fraction <= 0 or not units:
        return set()
    k = min(len(units), max(1, math.ceil(fraction * len(units))))
    return {units[int((i + 0.5) * len(units) / k)].seed for i in range(k)}


# ----------------------------------------------------------------------------- refusals and git


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout


def _git_changes() -> list[str]:
    out = _git("status", "--porcelain", "--untracked-files=no")
    # params.yaml is the sweep's to edit; dvc.lock and results/ are pipeline outputs, which any dvc repro
    # rewrites: neither is code whose results would then belong to no commit
    return [p for p in (line[3:] for line in out.splitlines())
            if p not in ("params.yaml", "dvc.lock") and not p.startswith("results/")]


def refuse_dirty() -> None:
    changes = _git_changes()
    if changes:
        raise SweepError("uncommitted changes to tracked files (" + ", ".join(changes[:3])
                         + (", ..." if len(changes) > 3 else "") + "): commit or stash them first, so that the "
                         "results belong to a commit")


def _default_remote() -> str:
    from dvc.config import Config

    return Config(dvc_dir=".dvc", validate=False)["core"].get("remote", "")


def _cache_dir() -> str:
    from dvc.repo import Repo

    with Repo(".") as repo:
        return str(Path(repo.cache.local_cache_dir).resolve())


def _dvc_stages() -> dict[str, Any]:
    return read_yaml(Path("dvc.yaml").read_text(), "dvc.yaml").get("stages") or {}


# ----------------------------------------------------------------------------- the sweep


@dataclass
class Options:
    jobs: int = 2  # --jobs: LocalCluster processes
    scheduler: str = ""  # --scheduler: a Dask scheduler's address (then --jobs is ignored)
    audit: float | None = None  # share of seeds run twice; None: 0.1 where there are two workers
    retries: int = 2  # a seed whose worker died runs again this many times
    timeout: float = 30.0  # seconds to reach the scheduler and for a first worker
    record: str = ""  # a JSON file: which worker computed what, with every output hash


@dataclass
class Outcome:
    plan: Plan
    primaries: dict[int, UnitResult]
    replicas: dict[int, UnitResult]
    audit: str  # the audit's summary line
    final_ran: set[str]


def _capped(jobs: int, units: int, say: Callable[[str], None]) -> int:
    cores = os.cpu_count() or 1
    capped = max(1, min(jobs, units, cores))
    if capped < jobs:
        say(f"aqil sweep: --jobs {jobs} capped at {capped} ({units} seed chain{'s' * (units != 1)}, {cores} "
            f"core{'s' * (cores != 1)})")
    return capped


def _audit_share(audit: float | None, workers: int, say: Callable[[str], None]) -> float:
    if audit is not None and not 0 <= audit <= 1:
        raise SweepError(f"--audit: got {audit}; accepted: a share of the seeds in [0, 1]")
    if workers < 2:
        if audit:
            raise SweepError(f"--audit {audit}: a replica runs on a second worker and there is one; use two "
                             "workers or --audit 0")
        if audit is None:
            say("aqil sweep: audit skipped (one worker; a replica needs a second)")
        return 0.0
    return 0.1 if audit is None else audit


@contextlib.contextmanager
def _workers(opts: Options, plan: Plan, commit: str, text: str,
             say: Callable[[str], None]) -> Iterator[tuple[Any, Job, float, dict[str, bool]]]:
    """A Dask client and the job its tasks share: a LocalCluster with clones made here, or a scheduler's
    workers with their own clones (checked first)."""
    from aqil import dask_sweep

    state = {"keep": False}  # keep the local clones (an audit mismatch: both outputs are in them)
    if opts.scheduler:
        if not _default_remote():
            raise SweepError("no default DVC remote: the workers share their results through one; dvc remote add -d "
                             "NAME URL, commit .dvc/config, then rerun")
        client = dask_sweep.connect(opts.scheduler, opts.timeout)
        try:
            # an explicit audit waits for a second worker; the default audit runs only where there is one
            infos = dask_sweep.check_workers(client, opts.scheduler, commit, opts.timeout, 2 if opts.audit else 1)
            yield client, Job(commit, text), _audit_share(opts.audit, len(infos), say), state
        finally:
            with contextlib.suppress(Exception):
                client.close(timeout=5)
        return
    jobs = _capped(opts.jobs, len(plan.units), say)
    share = _audit_share(opts.audit, jobs, say)
    root = (CLONES / str(os.getpid())).resolve()
    job = Job(commit, text, source=str(Path.cwd()), clone_root=str(root), shared_cache=_cache_dir())
    try:
        with dask_sweep.local_client(jobs, opts.retries) as client:
            yield client, job, share, state
    finally:
        if not state["keep"]:
            shutil.rmtree(root, ignore_errors=True)
            with contextlib.suppress(OSError):
                CLONES.rmdir()


def check_audit(primaries: dict[int, UnitResult], replicas: dict[int, UnitResult]) -> str:
    """Every output hash of each replica against its first run; a difference is one line naming both."""
    stages, cpus, restored = 0, set(), 0
    for seed, rep in sorted(replicas.items()):
        first = primaries[seed]
        for stage, outs in first.hashes.items():
            theirs = rep.hashes.get(stage, {})
            for path, md5 in sorted(outs.items()):
                if theirs.get(path) != md5:
                    raise SweepError(
                        f"audit: stage {stage} (seed {seed}) gave different bytes on two workers: {path} is md5 {md5} "
                        f"on {first.host} ({first.cpu}) and {theirs.get(path, 'missing')} on {rep.host} ({rep.cpu}); "
                        f"both outputs kept: {first.host}:{first.clone} and {rep.host}:{rep.clone}")
            stages += 1
            restored += stage not in first.ran
        cpus |= {rep.cpu} | ({first.cpu} if first.ran else set())
    if not replicas:
        return "audit: none"
    line = (f"audit: {stages} stages of {len(replicas)} seed chain{'s' * (len(replicas) != 1)} cross-checked on "
            f"{len(cpus)} distinct CPU model{'s' * (len(cpus) != 1)} ({'; '.join(sorted(cpus))}): same bytes")
    if restored:
        line += f" ({restored} of them the first worker restored from the run-cache: computed earlier)"
    return line


def assemble(params_file: Path, original: str, text: str, targets: tuple[str, ...], pull: bool) -> set[str]:
    """Write the sweep's params.yaml and run the final dvc repro (restores from the run-cache); returns the
    stages it ran. Interrupted: params.yaml is put back as it was."""
    from aqil.dask_sweep import _env

    params_file.write_text(text)
    try:
        proc = subprocess.run([sys.executable, "-m", "dvc", "repro", *(["--pull"] if pull else []), *targets],
                              capture_output=True, text=True, env=_env())
    except BaseException:
        params_file.write_text(original)
        raise
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        lines = out.strip().splitlines() or ["?"]
        cause = [line for line in lines if line.startswith(("aqil: error:", "ERROR:"))] or lines
        raise SweepError(f"the final dvc repro {' '.join(targets)} failed: {cause[-1]}")
    return set(re.findall(r"Running stage '([^']+)'", out))


def sweep(requested: dict[str, list[int]], opts: Options, params_file: Path = Path("params.yaml"),
          say: Callable[[str], None] = print) -> Outcome:
    """Set the requested seed lists, run every seed's chain once on Dask workers, check the audit
    replicas, then assemble the report in this workspace."""
    original = params_file.read_text()
    plan = make_plan(current_seeds(params_file), requested, _dvc_stages())
    text = with_seeds(original, plan.changed, str(params_file))
    parse_params(read_yaml(text, str(params_file)))  # checked now, not after hours of training
    refuse_dirty()
    commit = _git("rev-parse", "HEAD").strip()
    for parent, (values, children) in plan.added.items():
        say(f"aqil sweep: adding seeds {show_seeds(values)} to {parent} ({', '.join(children)} "
            f"build{'s' * (len(children) == 1)} on it)")
    from aqil.dask_sweep import run_units

    with _workers(opts, plan, commit, text, say) as (client, job, share, state):
        primaries, replicas = run_units(client, job, list(plan.units), audited(plan.units, share), opts.retries)
        try:
            audit = check_audit(primaries, replicas)
        except SweepError:
            state["keep"] = True
            raise
    ran = assemble(params_file, original, text, plan.targets, pull=bool(opts.scheduler))
    outcome = Outcome(plan, primaries, replicas, audit, ran)
    if opts.record:
        _record(Path(opts.record), commit, outcome)
    return outcome


def _record(path: Path, commit: str, outcome: Outcome) -> None:
    data = {"commit": commit, "seeds": outcome.plan.seeds, "targets": list(outcome.plan.targets),
            "chains": [asdict(r) for _, r in sorted(outcome.primaries.items())],
            "replicas": [asdict(r) for _, r in sorted(outcome.replicas.items())],
            "audit": outcome.audit, "final_ran": sorted(outcome.final_ran)}
    path.write_text(json.dumps(data, indent=1) + "\n")


def summary(outcome: Outcome) -> list[str]:
    """The closing lines: the report's summary, the audit, and what ran where."""
    plan, results = outcome.plan, outcome.primaries.values()
    computed = sum(len(r.ran) for r in results)
    restored = sum(len(r.hashes) for r in results) - computed
    hosts = sorted({f"{r.host} ({r.cpu})" for r in results})
    lines = []
    report = Path("results/local/report/summary.txt")
    if report.is_file():
        lines.append(report.read_text().rstrip("\n"))
    lines.append(f"aqil sweep: {computed} stages computed and {restored} restored from the run-cache, in "
                 f"{len(plan.units)} seed chains on {', '.join(hosts) or 'no worker'}")
    lines.append(f"aqil sweep: {outcome.audit}")
    trained = sorted(outcome.final_ran - set(FINAL))
    if trained:
        lines.append(f"aqil sweep: warning: the final dvc repro also ran {', '.join(trained)} (not in the run-cache)")
    lines.append("aqil sweep: " + "; ".join(f"{r} seeds {show_seeds(v)}" for r, v in plan.changed.items())
                 + " assembled in the workspace; the final dvc repro " + " ".join(plan.targets) + " ran: "
                 + (", ".join(sorted(outcome.final_ran)) or "nothing (already up to date)"))
    return lines


# ----------------------------------------------------------------------------- until decided


def _verdicts(table: Path, say: Callable[[str], None]) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(table.read_text())
    except (OSError, ValueError) as exc:
        raise SweepError(f"{table}: cannot read the report's verdicts ({type(exc).__name__})") from None
    if "verdicts" not in data:
        raise SweepError(f"{table} has no verdicts ({data.get('not_judged_because') or 'a run has no seeds'})")
    if not data.get("judged", True):
        say(f"aqil sweep: note: the report is not judged ({data.get('not_judged_because')}); deciding its cells anyway")
    return data["verdicts"]


def next_seeds(verdicts: dict[str, dict[str, Any]], seeds: dict[str, list[int]], max_seeds: int,
               batch: int) -> tuple[dict[str, list[int]], list[str]]:
    """The runs of undecided cells, each grown towards the seeds its cells need (at most ``batch`` more,
    at most ``max_seeds`` in all), and why; runs at ``max_seeds`` are left out."""
    grow: dict[str, list[int]] = {}
    why = []
    for cell, v in sorted(verdicts.items()):
        if not v["word"].startswith("undecided"):
            continue
        run = cell.split(".")[0]
        n, need = len(seeds[run]), v.get("seeds_needed")
        target = min(max_seeds, n + batch, max(need or max_seeds, n + 1))
        why.append(f"{cell} {v['word']}, about {need or f'more than {max_seeds}'} seeds needed")
        if target > max(n, len(grow.get(run, []))):
            fresh = (s for s in range(max(seeds[run], default=-1) + 1, 2**63) if s not in seeds[run])
            grow[run] = sorted(seeds[run]) + [next(fresh) for _ in range(target - n)]
    return grow, why


def until_decided(requested: dict[str, list[int]], max_seeds: int, batch: int,
                  run: Callable[[dict[str, list[int]]], Any], params_file: Path = Path("params.yaml"),
                  table: Path = TABLE, say: Callable[[str], None] = print) -> dict[str, str]:
    """Sweep, read the verdicts, add seeds to the runs whose cells are undecided, again, until every cell
    is decided or the undecided runs have ``max_seeds``; returns every cell's final word."""
    for round_no in range(1, 10**6):
        run(requested)
        verdicts = _verdicts(table, say)
        seeds = current_seeds(params_file)
        requested, why = next_seeds(verdicts, seeds, max_seeds, batch)
        words = {cell: v["word"] for cell, v in sorted(verdicts.items())}
        if not why:
            say(f"aqil sweep: round {round_no}: every Table 2 cell is decided, stopping: "
                + "; ".join(f"{c} {w}" for c, w in words.items()))
            return words
        if not requested:
            say(f"aqil sweep: round {round_no}: stopping at --max-seeds {max_seeds}; still undecided: "
                + "; ".join(why))
            return words
        say(f"aqil sweep: round {round_no}: undecided: " + "; ".join(why) + ". Next: "
            + ", ".join(f"{r} {len(seeds[r])} -> {len(v)} seeds" for r, v in requested.items()))
    raise AssertionError("unreachable")


# ----------------------------------------------------------------------------- command line


def _requested(pairs: list[tuple[str, str]]) -> dict[str, list[int]]:
    """(--run, --seeds) pairs -> run -> seeds; --seeds alone means the paper's runs."""
    requested: dict[str, list[int]] = {}
    for run, spec in pairs:
        if not spec:
            raise SweepError(f"--run {run}: give its seeds after it (--run {run} --seeds 0-9)")
        runs = [run] if run else [r for r, s in ALL_RUNS.items() if s.paper]
        seeds = parse_seeds(spec)
        for r in runs:
            if r in requested:
                raise SweepError(f"--run {r}: given twice")
            requested[r] = seeds
    return requested


class _Pairs(argparse.Action):
    """--run NAME --seeds SPEC, repeated: each --seeds belongs to the --run before it."""

    def __call__(self, parser: argparse.ArgumentParser, ns: argparse.Namespace, value: Any,
                 option: str | None = None) -> None:
        pairs = list(getattr(ns, "pairs", None) or [])
        if option == "--run":
            pairs.append((value, ""))
        elif pairs and not pairs[-1][1]:
            pairs[-1] = (pairs[-1][0], value)
        else:
            pairs.append(("", value))
        ns.pairs = pairs


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m aqil.sweep", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:6]))
    parser.set_defaults(pairs=[])
    add = parser.add_argument
    add("--run", action=_Pairs, metavar="NAME", help=f"a run to sweep ({', '.join(ALL_RUNS)}); repeatable")
    add("--seeds", action=_Pairs, metavar="SEEDS", help="its seeds: 0-9, 0,2,5 or 0-3,7 (alone: the paper's runs)")
    add("--jobs", type=int, default=2, help="parallel workers on this machine (default: %(default)s)")
    add("--scheduler", default="", metavar="ADDRESS", help="a Dask scheduler (tcp://HOST:8786): its workers run")
    add("--audit", type=float, default=None, metavar="SHARE",
        help="share of seeds run again on another worker, every output hash compared (default: 0.1, at least one "
             "seed, where there are two workers)")
    add("--retries", type=int, default=2, help="times a seed whose worker died runs again (default: %(default)s)")
    add("--timeout", type=float, default=30.0, help="seconds to reach the scheduler and a worker (default: 30)")
    add("--record", default="", metavar="FILE", help="write which worker computed what, with output hashes (JSON)")
    add("--until-decided", action="store_true", help="add seeds to undecided Table 2 cells' runs, in batches")
    add("--max-seeds", type=int, default=0, metavar="N", help="with --until-decided: at most N seeds per run")
    add("--batch", type=int, default=10, help="with --until-decided: at most this many seeds added per round")
    return parser


def _run(args: argparse.Namespace) -> None:
    if args.jobs < 1 or args.retries < 0 or args.batch < 1:
        raise SweepError("--jobs and --batch: 1 or more; --retries: 0 or more")
    requested = _requested(args.pairs)
    opts = Options(args.jobs, args.scheduler, args.audit, args.retries, args.timeout, args.record)

    def one(req: dict[str, list[int]]) -> Outcome:
        outcome = sweep(req, opts)
        for line in summary(outcome):
            print(line)
        return outcome

    if not args.until_decided:
        if not requested:
            raise SweepError("nothing to sweep: give --run NAME --seeds 0-9 (or --until-decided --max-seeds N)")
        one(requested)
        return
    if not 1 <= args.max_seeds <= MAX_SEEDS:
        raise SweepError(f"--until-decided needs --max-seeds N (1 to {MAX_SEEDS:,}); got {args.max_seeds}")
    until_decided(requested, args.max_seeds, args.batch, one)


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)  # docker stop: clean up as on Ctrl-C
    try:
        _run(args)
    except (SweepError, ConfigError) as exc:
        print(f"aqil: error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("aqil: error: interrupted; params.yaml is unchanged and the workers' clones are removed",
              file=sys.stderr)
        sys.exit(130)
    except Exception as exc:  # a bug or an unforeseen failure: still one line, unless debugging
        if os.environ.get("AQIL_DEBUG", "") not in ("", "0"):
            raise
        print(f"aqil: error: {type(exc).__name__}: {exc} (set AQIL_DEBUG=1 to see the traceback)", file=sys.stderr)
        sys.exit(1)


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    main()
