"""The sweep: per-run seed lists, one Dask task per seed's chain, audit replicas, and --until-decided.

Fast tests check the plan, params.yaml editing, the refusals and the decision loop on constructed
inputs; the pipeline tests (marker ``pipeline``) run the real sweep on tiny params in fresh copies of the
project: on a LocalCluster (``--jobs``), and on a loopback scheduler with two single-threaded workers,
each in its own clone, sharing a directory remote, against a serial ``dvc repro`` of the same seeds.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from test_pipeline import ROOT, TINY, commit, dvc, fresh_copy, ran, run

from aqil import sweep
from aqil.config import load_params
from aqil.dask_sweep import UnitResult
from aqil.sweep import SweepError, check_audit, make_plan, parse_seeds, set_seeds

PAPER = ["rl500", "il250", "il500", "il250_rl250"]


def _stages() -> dict:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def _tiny() -> str:
    """The tiny params, their report's resamples raised to what aqil/config.py accepts now (MIN_BOOTSTRAP)."""
    return re.sub(r"bootstrap_samples: \d+", "bootstrap_samples: 1000", TINY.read_text())


def _all(value: list[int]) -> dict[str, list[int]]:
    return {run: list(value) for run in ("rl500", "il250", "il500", "il250_rl250", "bc250", "bc250_rl250",
                                          "dagger250", "dqfd250_rl250")}


def test_seed_lists_ranges_and_the_bound():
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("7, 2,2, 0-1") == [0, 1, 2, 7]
    assert sweep.show_seeds([0, 1, 2, 5, 7, 8]) == "0-2,5,7-8"
    for bad in ("", "a", "3-1", "1-2-3", "-1"):
        with pytest.raises(SweepError):
            parse_seeds(bad)
    start = time.perf_counter()
    with pytest.raises(SweepError, match="more than 100,000 seeds"):
        parse_seeds("0-99999999999999")  # refused before any list is built
    assert time.perf_counter() - start < 1


def test_set_seeds_rewrites_only_the_runs_lines_and_keeps_comments(tmp_path):
    params = tmp_path / "params.yaml"
    original = _tiny()
    params.write_text(original.replace("  rl500: [0]\n", "  rl500: [0]   # RL from scratch\n"))
    set_seeds(params, {"rl500": [0, 1, 2], "il250": [3]})
    text = params.read_text()
    assert "  rl500: [0, 1, 2]   # RL from scratch\n" in text and "  il250: [3]\n" in text
    assert text.replace("[0, 1, 2]", "[0]").replace("il250: [3]", "il250: [0]") == params.read_text().replace(
        "[0, 1, 2]", "[0]").replace("il250: [3]", "il250: [0]")
    assert len(text.splitlines()) == len(original.splitlines())
    with pytest.raises(SweepError, match=r"write seeds\.rl500 on one line"):
        sweep.with_seeds(original.replace("  rl500: [0]\n", "  rl500:\n  - 0\n"), {"rl500": [1]})


def test_plan_adds_the_parents_seeds_and_one_unit_per_seed():
    plan = make_plan(_all([0]), {"il250_rl250": [0, 1, 2], "rl500": [0, 5]}, _stages())
    assert plan.added == {"il250": ([1, 2], ["il250_rl250"])}
    assert plan.changed == {"rl500": [0, 5], "il250": [0, 1, 2], "il250_rl250": [0, 1, 2]}
    assert plan.targets == ("report",)  # the paper's runs only: the baselines are not read
    units = {u.seed: u for u in plan.units}
    assert set(units) == {0, 1, 2, 5} and plan.units[0].seed == 0  # the longest chain first
    assert set(units[0].runs) == set(PAPER)
    assert units[1].stages == ("collect_il250@1", "il250@1", "il250_rl250@1", "evaluate_il250@1",
                               "evaluate_il250_rl250@1")
    assert units[5].targets == ("evaluate_rl500@5",)
    baseline = make_plan(_all([0]), {"bc250_rl250": [0, 1]}, _stages())
    assert baseline.targets == ("report", "compare")
    assert baseline.added == {"bc250": ([1], ["bc250_rl250"]), "il250": ([1], ["bc250"])}
    with pytest.raises(SweepError, match="--run: got 'rl5000'"):
        make_plan(_all([0]), {"rl5000": [1]}, _stages())


def test_audit_picks_a_share_spread_over_the_seeds_at_least_one():
    plan = make_plan(_all([0]), {"rl500": list(range(20))}, _stages())
    assert sweep.audited(plan.units, 0.0) == set()
    assert len(sweep.audited(plan.units, 0.01)) == 1
    assert len(sweep.audited(plan.units, 0.1)) == 2
    assert sweep.audited(plan.units, 1.0) == set(range(20))


def _result(host: str, md5: str, replica: bool, ran: tuple[str, ...] = ()) -> UnitResult:
    hashes = {"rl500@3": {"results/rl500/seed3/model.pt": "aa"},
              "evaluate_rl500@3": {"results/eval/rl500/seed3.json": md5}}
    return UnitResult(3, replica, f"tcp://{host}:1", host, f"CPU of {host}", f"/clones/{host}", hashes, ran)


def test_audit_names_the_stage_seed_hosts_and_cpus_of_a_mismatch():
    first = _result("alpha", "11", False, ran=("rl500@3", "evaluate_rl500@3"))
    line = check_audit({3: first}, {3: _result("beta", "11", True)})
    assert line.startswith("audit: 2 stages of 1 seed chain cross-checked on 2 distinct CPU models")
    with pytest.raises(SweepError) as err:
        check_audit({3: first}, {3: _result("beta", "22", True)})
    assert str(err.value) == (
        "audit: stage evaluate_rl500@3 (seed 3) gave different bytes on two workers: results/eval/rl500/seed3.json "
        "is md5 11 on alpha (CPU of alpha) and 22 on beta (CPU of beta); both outputs kept: alpha:/clones/alpha and "
        "beta:/clones/beta")


def _fake_table(params: Path, table: Path, need: dict[str, int]) -> None:
    """A report whose cells of run R are undecided until R has need[R] seeds."""
    seeds = load_params(params).seeds
    verdicts = {}
    for name in PAPER:
        n = len(seeds.of(name))
        word = "consistent" if n >= need.get(name, 0) else f"undecided ({n} seeds)"
        for column in ("avg_reward", "best_reward"):
            verdicts[f"{name}.{column}"] = {"word": word, "seeds_needed": max(n, need.get(name, 0))}
    table.parent.mkdir(parents=True, exist_ok=True)
    table.write_text(json.dumps({"judged": True, "verdicts": verdicts}))


def test_until_decided_adds_seeds_only_to_undecided_runs(tmp_path):
    params, table = tmp_path / "params.yaml", tmp_path / "table2.json"
    params.write_text(_tiny())
    rounds: list[dict[str, list[int]]] = []

    def one_round(requested: dict[str, list[int]]) -> None:  # what a sweep leaves: the lists, then the report
        rounds.append(requested)
        current = {r: load_params(params).seeds.of(r) for r in _all([0])}
        set_seeds(params, make_plan(current, requested, _stages()).changed or {"rl500": current["rl500"]})
        _fake_table(params, table, {"rl500": 12, "il250_rl250": 3})

    said: list[str] = []
    words = sweep.until_decided({}, max_seeds=40, batch=5, run=one_round, params_file=params, table=table,
                                say=said.append)
    assert rounds == [{}, {"il250_rl250": [0, 1, 2], "rl500": [0, 1, 2, 3, 4, 5]},
                      {"rl500": list(range(11))}, {"rl500": list(range(12))}]
    assert load_params(params).seeds.rl500 == list(range(12)) and load_params(params).seeds.il500 == [0]
    assert load_params(params).seeds.il250 == [0, 1, 2]  # added for il250_rl250, its parent
    assert said[0].startswith("aqil sweep: round 1: undecided: il250_rl250.avg_reward undecided (1 seeds), about 3 ")
    assert said[-1].startswith("aqil sweep: round 4: every Table 2 cell is decided, stopping")
    assert set(words.values()) == {"consistent"}

    said.clear()
    sweep.until_decided({}, max_seeds=13, batch=50, run=one_round, params_file=params, table=table, say=said.append)
    assert said[-1].startswith("aqil sweep: round 1: every Table 2 cell is decided")
    _fake_table(params, table, {"rl500": 30})
    grow, why = sweep.next_seeds(json.loads(table.read_text())["verdicts"], _all(list(range(12))), 13, 50)
    assert grow == {"rl500": list(range(13))} and len(why) == 2


def _copy(path: Path, remote: Path | None = None) -> Path:
    """A fresh tiny copy (with a default directory remote when given), committed."""
    repo = fresh_copy(path)
    (repo / "params.yaml").write_text(_tiny())
    if remote:
        dvc(repo, "remote", "add", "-d", "shared", str(remote))
    commit(repo, "tiny copy")
    return repo


def sweep_cmd(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run(repo, sys.executable, "-m", "aqil.sweep", *args, check=check)


def test_refusals_are_one_line(tmp_path):
    repo = _copy(tmp_path / "repo")
    proc = sweep_cmd(repo, "--run", "rl500", "--seeds", "0-1", "--scheduler", "tcp://127.0.0.1:9", check=False)
    assert proc.returncode == 1 and proc.stderr.strip().startswith("aqil: error: no default DVC remote")
    dvc(repo, "remote", "add", "-d", "shared", str(tmp_path / "remote"))
    commit(repo, "remote")
    proc = sweep_cmd(repo, "--run", "rl500", "--seeds", "0-1", "--scheduler", "tcp://127.0.0.1:9", "--timeout", "1",
                     check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("aqil: error: cannot reach the Dask scheduler at tcp://127.0.0.1:9 (")
    assert len(proc.stderr.strip().splitlines()) == 1
    with (repo / "aqil" / "layout.py").open("a") as fh:
        fh.write("\n# uncommitted\n")
    proc = sweep_cmd(repo, "--run", "rl500", "--seeds", "0-1", check=False)
    assert proc.stderr.strip() == ("aqil: error: uncommitted changes to tracked files (aqil/layout.py): commit or "
                                   "stash them first, so that the results belong to a commit")
    (repo / "aqil" / "layout.py").write_text((ROOT / "aqil" / "layout.py").read_text())
    good = (repo / "params.yaml").read_text()
    (repo / "params.yaml").write_text(good.replace("gamma: 0.95", "gamma: 2.0"))
    proc = sweep_cmd(repo, "--run", "rl500", "--seeds", "0-1", check=False)
    assert proc.stderr.strip() == "aqil: error: dqn.gamma: got 2.0; accepted: a value in [0.0, 1.0]"
    assert (repo / "params.yaml").read_text() == good.replace("gamma: 0.95", "gamma: 2.0")
    proc = sweep_cmd(repo, "--run", "rl500", check=False)
    assert proc.stderr.strip() == "aqil: error: --run rl500: give its seeds after it (--run rl500 --seeds 0-9)"


def _hashes(lock: Path) -> dict[str, str]:
    """Per-seed stage outputs -> md5 (wall times and the reports, which name the machine, left out)."""
    out = {}
    for name, stage in yaml.safe_load(lock.read_text())["stages"].items():
        if "@" in name:
            out |= {o["path"]: o["md5"] for o in stage["outs"] if not o["path"].startswith("results/timing/")}
    return out


@pytest.fixture(scope="module")
def serial(tmp_path_factory) -> dict[str, str]:
    """Output hashes of a serial dvc repro report with rl500 seeds 0-1."""
    repo = _copy(tmp_path_factory.mktemp("serial") / "repo")
    set_seeds(repo / "params.yaml", {"rl500": [0, 1]})
    dvc(repo, "repro", "report")
    return _hashes(repo / "dvc.lock")


SEED0 = {"collect_il250@0", "collect_il500@0", "rl500@0", "il250@0", "il500@0", "il250_rl250@0",
         *(f"evaluate_{r}@0" for r in PAPER)}


@pytest.mark.pipeline
def test_local_sweep_trains_each_seed_once_and_the_report_nothing(tmp_path, serial):
    repo = _copy(tmp_path / "repo")
    before = (repo / "params.yaml").read_text()
    proc = sweep_cmd(repo, "--run", "rl500", "--seeds", "0-1", "--jobs", "3", "--audit", "0", "--record", "rec.json")
    assert "aqil sweep: --jobs 3 capped at 2 (2 seed chains" in proc.stdout
    record = json.loads((repo / "rec.json").read_text())
    assert {c["seed"]: set(c["ran"]) for c in record["chains"]} == {0: SEED0, 1: {"rl500@1", "evaluate_rl500@1"}}
    assert set(record["final_ran"]) <= {"check_params", "report"}  # nothing trained or evaluated
    assert proc.stdout.strip().splitlines()[-1] == (
        "aqil sweep: rl500 seeds 0-1 assembled in the workspace; the final dvc repro report ran: "
        + ", ".join(sorted(record["final_ran"])))
    assert (repo / "params.yaml").read_text() == before.replace("  rl500: [0]", "  rl500: [0, 1]")
    assert _hashes(repo / "dvc.lock") == serial
    assert not (repo / ".dvc" / "tmp" / "aqil-sweep").exists() and not (repo / ".dvc" / "tmp" / "exps").exists()
    assert ran(dvc(repo, "repro", "report")) == set()


@pytest.mark.pipeline
def test_local_sweep_ctrl_c_exits_130_and_leaves_nothing(tmp_path):
    repo = _copy(tmp_path / "repo")
    before = (repo / "params.yaml").read_text()
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    # A suite started in the background of a script inherits an ignored SIGINT, and the sweep would then
    # train to the end (as a background job should): give it the terminal's Ctrl-C, as test_bad_inputs does.
    proc = subprocess.Popen([sys.executable, "-m", "aqil.sweep", "--run", "rl500", "--seeds", "0-1", "--jobs", "2"],
                            cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    clones = repo / ".dvc" / "tmp" / "aqil-sweep"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(clones.glob("*/worker-*/results/checked")):
        time.sleep(0.5)  # a worker's dvc repro is running its chain (check_params has passed)
    proc.send_signal(signal.SIGINT)
    try:  # a generous bound for a loaded machine: the teardown itself takes seconds
        _, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("aqil: error: interrupted")
    assert (repo / "params.yaml").read_text() == before
    assert not clones.exists() and not list((repo / ".dvc" / "tmp").glob("exps/tmp*"))


CORRUPT = '''\
import atexit, os, sys
from pathlib import Path

def _corrupt():  # an audit replica's evaluation writes other bytes, as a faulty machine would
    if Path(os.environ["AQIL_TEST_CORRUPT"]).exists() and "aqil-sweep-audit" in os.getcwd() \\
            and sys.argv[0].endswith(os.path.join("stages", "evaluate.py")):
        with open(Path("results/eval") / sys.argv[1] / f"seed{sys.argv[3]}.json", "a") as fh:
            fh.write(" ")

atexit.register(_corrupt)


def _die():  # as a machine that dies: the dask worker running seed 1's RL500 stage, and all it started
    flag = os.environ.get("AQIL_TEST_KILL", "")
    if not (flag and Path(flag).exists() and sys.argv[0].endswith(os.path.join("stages", "rl500.py"))
            and sys.argv[1:] == ["--seed", "1"]):
        return
    import psutil

    worker = next(p for p in psutil.Process().parents() if "dask_worker" in " ".join(p.cmdline()))
    Path(flag).rename(flag + ".killed")
    Path(flag + ".killed").write_text(worker.cwd())
    for proc in [worker, *worker.children(recursive=True)]:
        proc.kill()


atexit.register(_die)  # the stage has written its outputs; DVC has not saved them
'''


@pytest.fixture
def cluster(tmp_path):
    """A loopback scheduler, two single-threaded workers each started in its own clone, a directory remote."""
    remote, hooks = tmp_path / "remote", tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(CORRUPT)
    repo = _copy(tmp_path / "client", remote)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               PYTHONPATH=str(hooks), AQIL_TEST_CORRUPT=str(tmp_path / "corrupt"),
               AQIL_TEST_KILL=str(tmp_path / "kill"), DVC_NO_ANALYTICS="1")
    info = tmp_path / "scheduler.json"
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port",
                               "0", "--no-dashboard", "--scheduler-file", str(info)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        for name in ("wa", "wb"):
            clone = tmp_path / name
            run(tmp_path, "git", "clone", "-q", str(repo), str(clone))
            shutil.copytree(ROOT / "aqil" / "__pycache__", clone / "aqil" / "__pycache__")  # numba's compiled kernels
            procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file",
                                           str(info), "--nthreads", "1", "--name", name, "--no-dashboard"], cwd=clone,
                                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from distributed import Client

        with Client(scheduler_file=str(info), timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
            address = client.scheduler.address
        yield repo, address, tmp_path
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)


@pytest.mark.pipeline
def test_dask_workers_in_their_own_clones_give_the_serial_bytes_and_the_audit_catches_a_bad_replica(cluster, serial):
    repo, address, flags = cluster
    corrupt = flags / "corrupt"
    proc = sweep_cmd(repo, "--run", "rl500", "--seeds", "0-1", "--scheduler", address, "--audit", "0.5",
                     "--record", "rec.json")
    record = json.loads((repo / "rec.json").read_text())
    assert {c["seed"]: set(c["ran"]) for c in record["chains"]} == {0: SEED0, 1: {"rl500@1", "evaluate_rl500@1"}}
    replica = record["replicas"][0]
    assert replica["seed"] == 1 and replica["worker"] != record["chains"][1]["worker"]
    assert "aqil sweep: audit: 2 stages of 1 seed chain cross-checked on 1 distinct CPU model" in proc.stdout
    assert set(record["final_ran"]) <= {"check_params", "report"}
    assert _hashes(repo / "dvc.lock") == serial

    # Seed 1 again, recomputed by an audit replica whose evaluation writes other bytes: caught and named.
    corrupt.touch()
    before = (repo / "params.yaml").read_text()
    proc = sweep_cmd(repo, "--run", "rl500", "--seeds", "0-2", "--scheduler", address, "--audit", "0.1", check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    error = proc.stderr.strip().splitlines()[-1]
    assert re.fullmatch(r"aqil: error: audit: stage evaluate_rl500@1 \(seed 1\) gave different bytes on two workers: "
                        r"results/eval/rl500/seed1\.json is md5 \w+ on \S+ \(.+\) and \w+ on \S+ \(.+\); both outputs "
                        r"kept: \S+:\S+/w[ab] and \S+:\S+/w[ab]/\.dvc/tmp/aqil-sweep-audit", error), error
    assert (repo / "params.yaml").read_text() == before


@pytest.mark.pipeline
def test_a_killed_worker_s_seed_runs_again_on_the_other_and_a_third_clone_trains_nothing(cluster, serial):
    repo, address, flags = cluster
    (flags / "kill").touch()
    proc = sweep_cmd(repo, "--run", "rl500", "--seeds", "0-1", "--scheduler", address, "--audit", "0",
                     "--record", "rec.json")
    killed = flags / "kill.killed"
    assert killed.exists(), "the worker running seed 1 was not killed"
    dead = killed.read_text()  # the dead worker's clone
    record = json.loads((repo / "rec.json").read_text())
    chains = {c["seed"]: c for c in record["chains"]}
    assert not chains[1]["clone"].startswith(dead) and "rl500@1" in chains[1]["ran"]  # trained again, elsewhere
    assert {c["seed"]: set(c["ran"]) for c in record["chains"]} == {0: SEED0, 1: {"rl500@1", "evaluate_rl500@1"}}
    assert set(record["final_ran"]) <= {"check_params", "report"}
    assert _hashes(repo / "dvc.lock") == serial
    assert "aqil sweep: 12 stages computed and 0 restored from the run-cache, in 2 seed chains" in proc.stdout

    # A third clone, with the sweep's seed lists, trains nothing: every seed's stages come from the remote.
    third = flags / "third"
    run(flags, "git", "clone", "-q", str(repo), str(third))
    shutil.copy2(repo / "params.yaml", third / "params.yaml")
    assert ran(dvc(third, "repro", "--pull", "report")) <= {"check_params", "report"}
    assert _hashes(third / "dvc.lock") == serial


def test_help_names_the_command():
    proc = subprocess.run([sys.executable, "-m", "aqil.sweep", "--help"], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0 and "python -m aqil.sweep" in proc.stdout and "--scheduler" in proc.stdout


class _Scheduler:
    """A client whose scheduler has one worker connected and a second that never comes."""

    def __init__(self) -> None:
        self.waited: list[int] = []

    def wait_for_workers(self, n: int, timeout: float) -> None:
        self.waited.append(n)
        if n > 1:
            raise TimeoutError

    def run(self, probe, on_error: str) -> dict:
        return {"tcp://w1": {"host": "h", "cpu": "c", "clone": "/c", "commit": "abc", "remote": "shared"}}


def test_an_explicit_audit_waits_for_a_second_worker_then_says_there_is_one():
    from aqil.dask_sweep import check_workers

    client = _Scheduler()
    assert list(check_workers(client, "tcp://s:8786", "abc", 1.0, wanted=2)) == ["tcp://w1"]
    assert client.waited == [1, 2]  # waited for the second, then went on with one (the audit refuses it)
    client = _Scheduler()
    check_workers(client, "tcp://s:8786", "abc", 1.0)
    assert client.waited == [1]
    with pytest.raises(SweepError, match=r"^--audit 0.5: a replica runs on a second worker and there is one"):
        sweep._audit_share(0.5, 1, print)
