"""End to end: the real DVC pipeline on tiny params in a temporary copy of the repository.

One module-scoped run of ``dvc repro``; the tests after it change one thing at a time and check
exactly which stages run again, that nothing half-written survives an interrupted stage, that a
rerun gives the same bytes, and that bad params stop the pipeline with one line.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
import yaml

# The tests that share the module's `repo` fixture change it one step at a time, in order: under
# pytest-xdist's `--dist loadscope` (pyproject.toml) a module runs whole, in order, on one worker.
pytestmark = pytest.mark.pipeline

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "data" / "tiny_params.yaml"
COPY = ["aqil", "stages", "dvc.yaml", ".dvc/config", ".dvc/.gitignore", ".dvcignore", ".gitignore", "pyproject.toml"]
PAPER_RUNS = ["il250", "il500", "rl500", "il250_rl250"]
BASELINES = ["bc250", "bc250_rl250", "dagger250", "dqfd250_rl250"]
RUNS = PAPER_RUNS + BASELINES
BASELINE_CODE = ["aqil/baselines.py", "aqil/dqfd.py", "aqil/kernel_losses.py", "aqil/compare.py", "stages/compare.py",
                 "stages/evaluate_baselines.py", *(f"stages/{r}.py" for r in BASELINES)]


def evaluation(run: str, seed: int) -> str:
    """The DVC stage that evaluates ``run`` for ``seed``: the paper's runs and the baselines have one each."""
    return f"evaluate@{run}-{seed}" if run in PAPER_RUNS else f"evaluate_baselines@{run}-{seed}"


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ) | (extra or {})
    # Stage commands call `python`: make it this interpreter, whatever the caller's PATH.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["DVC_NO_ANALYTICS"] = "1"
    env.pop("AQIL_DEBUG", None)
    return env


def run(repo: Path, *args: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, cwd=repo, env=_env(env), capture_output=True, text=True, timeout=2400)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def dvc(repo: Path, *args: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return run(repo, sys.executable, "-m", "dvc", *args, check=check, env=env)


def ran(proc: subprocess.CompletedProcess) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", proc.stdout + proc.stderr))


def _output_hashes(lock: Path) -> dict[str, str]:
    """path -> md5 of every stage output in dvc.lock, except wall times (results/timing, provenance.json)."""
    hashes = {}
    for stage in yaml.safe_load(lock.read_text())["stages"].values():
        for out in stage.get("outs", []):
            if not out["path"].startswith("results/timing/") and out["path"] != "results/report/provenance.json":
                hashes[out["path"]] = out["md5"]
    return hashes


def set_param(repo: Path, path: str, value) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    node = params
    *parents, last = path.split(".")
    for key in parents:
        node = node[key]
    node[last] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def commit(repo: Path, message: str) -> None:
    run(repo, "git", "add", "-A")
    run(repo, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message, "--allow-empty")


def fresh_copy(repo: Path) -> Path:
    """The project's pipeline files and the tiny params in a new git repository (no caches)."""
    repo.mkdir(parents=True)
    for name in COPY:
        src, dst = ROOT / name, repo / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():  # with __pycache__: numba's cached kernels are keyed by source hash, not path
            shutil.copytree(src, dst)
        else:
            shutil.copy2(src, dst)
    shutil.copy2(TINY, repo / "params.yaml")
    run(repo, "git", "init", "-q")
    commit(repo, "tiny copy")
    return repo


def every_stage(seed: int) -> set[str]:
    runs = {f"{r}@{seed}" for r in RUNS} | {evaluation(r, seed) for r in RUNS}
    return {"check_params", f"collect@{seed}", "report", "compare"} | runs


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    repo = fresh_copy(tmp_path_factory.mktemp("aqil") / "repo")
    assert ran(dvc(repo, "repro")) == every_stage(0)
    commit(repo, "first run")
    return repo


def _no_nan(name: str) -> None:
    raise AssertionError(f"{name} in a JSON output: not strict JSON")


def test_report_table2_and_figures_exist(repo):
    report = repo / "results" / "report"
    table = json.loads((report / "table2.json").read_text(), parse_constant=_no_nan)  # strict JSON
    json.loads((report / "summary.json").read_text(), parse_constant=_no_nan)
    assert set(table["runs"]) == set(PAPER_RUNS) and "baselines" not in table
    for entry in table["runs"].values():
        for column in ("avg_reward", "best_reward"):
            cell = entry["columns"][column]
            assert cell["verdict"] == "1 seed"
            assert cell["paper"] > 0 and cell["ratio"] == pytest.approx(cell["mean"] / cell["paper"])
    assert isinstance(table["conclusion"]["holds"], bool)
    csv_lines = (report / "table2.csv").read_text().splitlines()
    assert csv_lines[0].startswith("run,label,column,seeds,mean")
    assert len(csv_lines) == 1 + 2 * len(PAPER_RUNS)
    figures = sorted(p.name for p in (report / "figures").glob("*.png"))
    assert len(figures) == 9 and "table2.png" in figures
    assert all((report / "figures" / f).stat().st_size > 10_000 for f in figures)
    markdown = (report / "report.md").read_text()
    for needle in ("## Verdict", "331.63", "13,043.02", "## Deviations", "figures/table2.png", "Greedy evaluation"):
        assert needle in markdown


def test_comparison_with_the_baselines_exists(repo):
    compare = repo / "results" / "compare"
    table = json.loads((compare / "compare.json").read_text(), parse_constant=_no_nan)
    assert set(table["runs"]) == {"il250_rl250", *BASELINES} and table["seeds"] == [0]
    for run, row in table["runs"].items():
        assert row["units"] == ("IL reward" if run == "bc250" else "RL reward")
        assert len(row["eval"]["values"]) == 1 and row.get("p_aqil_better", None) is None  # 1 seed: no probability
    summary = json.loads((compare / "summary.json").read_text(), parse_constant=_no_nan)
    assert set(summary) == {"il250_rl250", *BASELINES} and "eval_avg_reward" in summary["dqfd250_rl250"]
    markdown = (compare / "compare.md").read_text()
    for needle in ("# AQIL against standard uses of the same expert data", "| DQfD250+RL250 | RL reward |",
                   "n/a (1 seed)", "Not the paper's settings", "figures/baselines_eval.png", "| DAgger |"):
        assert needle in markdown
    assert (compare / "figures" / "baselines_eval.png").stat().st_size > 10_000


def test_metrics_and_plots_are_visible_to_dvc(repo):
    shown = json.loads(dvc(repo, "metrics", "show", "--json").stdout)
    text = json.dumps(shown)
    assert "results/rl500/seed0/metrics.json" in text and "avg_reward" in text
    assert "results/report/summary.json" in text and "results/report/table2.json" not in text
    table = dvc(repo, "metrics", "show").stdout  # the small file keeps DVC's table readable
    assert max(len(line) for line in table.splitlines()) < 2000
    summary = (repo / "results" / "report" / "summary.txt").read_text()
    assert summary.count("1 seed") == 8 and "Paper's conclusion:" in summary and "Not the paper's settings" in summary
    plots = dvc(repo, "plots", "show", "--json").stdout
    assert "results/il250/seed0/episodes.tsv" in plots
    assert "results/report/figures/table2.png" in plots


def test_each_stage_times_every_step_it_trained_on(repo):
    """µs per step = the stage's training time over every step it trained on, pretraining included
    (DQfD's pretraining replays the expert's episodes with one update per step): each step makes at
    most one update, and only the first batch_size - 1 steps into each replay memory make none."""
    batch = yaml.safe_load((repo / "params.yaml").read_text())["dqn"]["batch_size"]
    for run in RUNS:
        timing = json.loads((repo / "results" / "timing" / run / "seed0.json").read_text())
        metrics = json.loads((repo / "results" / run / "seed0" / "metrics.json").read_text())
        assert 0 <= timing["steps"] - metrics["updates"] <= 2 * (batch - 1), run
        assert timing["steps"] == metrics["total_steps"] + timing["pretraining_steps"], run
        assert (timing["pretraining_steps"] > 0) == (run == "dqfd250_rl250"), run
        # seconds are written rounded to 0.1 s
        assert abs(timing["us_per_step"] * timing["steps"] / 1e6 - timing["seconds"]) <= 0.06, run


def test_second_repro_runs_nothing(repo):
    again = dvc(repo, "repro")
    assert ran(again) == set()
    assert dvc(repo, "status", "--json").stdout.strip() in ("{}", "")


def test_a_clone_shows_the_published_report_and_a_rerun_reproduces_its_bytes(repo, tmp_path):
    """README, "Published results": the report's outputs are in git, so a clone shows its numbers with no
    DVC cache and no compute; the clone's own full rerun then changes nothing but the wall times."""
    assert run(repo, "git", "status", "--porcelain").stdout == ""  # the fixture committed the run
    tracked = set(run(repo, "git", "ls-files", "results").stdout.split())
    report = {f"results/report/{name}" for name in
              ("report.md", "table2.csv", "table2.json", "summary.txt", "summary.json", "provenance.json")}
    report |= {f"results/compare/{name}" for name in ("compare.md", "compare.json", "summary.json")}
    assert report <= tracked and "results/report/figures/table2.png" in tracked
    figures = ("results/report/figures/", "results/compare/figures/")
    assert not [p for p in tracked - report if not p.startswith(figures) and
                not p.endswith("/.gitignore")]  # per-seed outputs are in DVC's cache only
    clone = tmp_path / "clone"
    run(tmp_path, "git", "clone", "-q", str(repo), str(clone))
    target = "results/report/summary.json"
    published = json.loads(dvc(repo, "metrics", "show", "--json", target).stdout)
    assert json.loads(dvc(clone, "metrics", "show", "--json", target).stdout) == published
    assert "rl500.avg_reward" in dvc(clone, "metrics", "show", target).stdout

    # Nothing is cached there: every training stage runs. (An evaluation may instead be checked out,
    # when another stage has just written an output with the same bytes into the clone's cache.)
    # (compare, which reads no wall time, is then up to date: its inputs come back with the same bytes.)
    assert {"collect@0", "report"} | {f"{r}@0" for r in RUNS} <= ran(dvc(clone, "repro")) <= every_stage(0)
    changed = {line[3:] for line in run(clone, "git", "status", "--porcelain").stdout.splitlines()}
    assert changed == {"dvc.lock", "results/report/provenance.json"}, changed  # wall times only
    assert _output_hashes(clone / "dvc.lock") == _output_hashes(repo / "dvc.lock")
    assert json.loads(dvc(clone, "metrics", "diff", "--json", "--targets", target).stdout) == {}


def test_rl500_episodes_rerun_only_rl500(repo):
    set_param(repo, "rl500.episodes", 5)
    assert ran(dvc(repo, "repro")) == {"check_params", "rl500@0", "evaluate@rl500-0", "report"}
    commit(repo, "rl500 episodes")


def test_il_reward_reruns_imitation_runs_not_collect_or_rl500(repo):
    set_param(repo, "rewards.il.action_weight", 0.7)
    assert ran(dvc(repo, "repro")) == {
        "check_params", "il250@0", "il500@0", "il250_rl250@0",
        "evaluate@il250-0", "evaluate@il500-0", "evaluate@il250_rl250-0", "report", "compare",
        # BC250 reports the IL reward of its actions, so it reruns, and so does BC250+RL250 (it reads BC250's
        # metrics); but BC fits the expert's action, not the reward: both networks keep their bytes, so the
        # evaluation of BC250+RL250 (whose inputs are its network and its metrics) is up to date
        "bc250@0", "bc250_rl250@0", "evaluate_baselines@bc250-0",
    }
    commit(repo, "IL reward")


def test_report_code_edit_reruns_only_the_reports(repo):
    with (repo / "aqil" / "report.py").open("a") as fh:
        fh.write("\n# an edit that changes nothing\n")
    assert ran(dvc(repo, "repro")) == {"report", "compare"}  # the comparison shares the report's formatting
    commit(repo, "report edit")


def test_reruns_give_identical_bytes(repo):
    lock_before = _output_hashes(repo / "dvc.lock")
    figure = (repo / "results" / "report" / "figures" / "fig8_il250_rl250_loss_reward.png").read_bytes()
    forced = dvc(repo, "repro", "-f", "-s", "collect@0", "il250@0", "rl500@0", "report")
    assert ran(forced) == {"collect@0", "il250@0", "rl500@0", "report"}
    assert _output_hashes(repo / "dvc.lock") == lock_before  # all outputs but the wall-time files
    assert (repo / "results" / "report" / "figures" / "fig8_il250_rl250_loss_reward.png").read_bytes() == figure
    commit(repo, "forced rerun: new wall times")


def test_bad_params_stop_before_training_with_one_line(repo):
    original = (repo / "params.yaml").read_text()
    model = repo / "results" / "il250" / "seed0" / "model.pt"
    before = model.read_bytes()
    set_param(repo, "dqn.learning_rte", 0.1)
    proc = run(repo, sys.executable, "-m", "stages.il250", "--seed", "0", check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        "aqil: error: dqn.learning_rte: unknown key; did you mean 'learning_rate'? (accepted here: hidden, "
        "learning_rate, momentum, gamma, memory_size, batch_size, update, epsilon_start, epsilon_decay, "
        "epsilon_min, device, on_divergence)"
    )
    assert "Traceback" not in proc.stderr
    assert model.read_bytes() == before
    (repo / "params.yaml").write_text(original)
    set_param(repo, "il500.episodes", 0)
    proc = dvc(repo, "repro", check=False)
    assert proc.returncode != 0
    assert "aqil: error: il500.episodes: got 0; accepted: a value > 0" in proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr + proc.stdout
    (repo / "params.yaml").write_text(original)
    assert ran(dvc(repo, "repro")) <= {"check_params", "il500@0", "evaluate@il500-0", "report"}


def test_a_typo_in_params_fails_even_when_no_stage_would_rerun(repo):
    original = (repo / "params.yaml").read_text()
    lock = (repo / "dvc.lock").read_text()
    try:
        (repo / "params.yaml").write_text(original + "evalute:\n  episodes: 3\n")
        proc = dvc(repo, "repro", check=False)
        output = proc.stdout + proc.stderr
        assert proc.returncode != 0
        assert "aqil: error: evalute: unknown key; did you mean 'evaluate'?" in output
        assert ran(proc) == {"check_params"} and "Traceback" not in output
        assert (repo / "dvc.lock").read_text() == lock
    finally:
        (repo / "params.yaml").write_text(original)
    assert ran(dvc(repo, "repro")) == set()  # the committed file again: its check is in dvc.lock


def test_divergence_under_stop_fails_the_stage_and_caches_nothing(repo):
    original = (repo / "params.yaml").read_text()
    lock = (repo / "dvc.lock").read_text()
    try:
        set_param(repo, "dqn.learning_rate", 0.001)
        set_param(repo, "dqn.on_divergence", "stop")
        proc = dvc(repo, "repro", "-s", "il250@0", check=False)
        output = proc.stdout + proc.stderr
        assert proc.returncode != 0
        assert re.search(r"aqil: error: IL250 seed 0: training diverged in episode \d+, update \d+ \(.*"
                         r"dqn\.learning_rate = 0\.001, the usual cause\); nothing was written", output), output
        assert "Traceback" not in output
        assert (repo / "dvc.lock").read_text() == lock
        assert not (repo / "results" / "il250" / "seed0" / "model.pt").exists()
    finally:
        (repo / "params.yaml").write_text(original)
    dvc(repo, "checkout")  # DVC removed the stage's outputs before running it: back from the cache
    assert dvc(repo, "status", "--json").stdout.strip() in ("{}", "")


def _stage_python(proc: subprocess.Popen, name: str, timeout: float = 180) -> psutil.Process:
    """The Python process of the stage command DVC started (under DVC's shell), once it runs."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for child in psutil.Process(proc.pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                cmdline = child.cmdline()
                if cmdline and Path(cmdline[0]).name.startswith("python") and name in cmdline:
                    return child
        time.sleep(0.2)
    raise AssertionError(f"stage {name} never started")


def _read_until(proc: subprocess.Popen, needle: str, timeout: float = 180) -> tuple[list[str], threading.Thread]:
    """Collect ``proc``'s output in a thread; once ``needle`` was seen, return what it fills and the thread."""
    chunks: list[str] = []

    def pump() -> None:
        for chunk in iter(lambda: os.read(proc.stdout.fileno(), 4096), b""):
            chunks.append(chunk.decode(errors="replace"))

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    deadline = time.time() + timeout
    while needle not in "".join(chunks):
        if time.time() > deadline or proc.poll() is not None:
            raise AssertionError(f"never saw {needle!r}:\n{''.join(chunks)}")
        time.sleep(0.2)
    return chunks, reader


def test_interrupted_stage_leaves_nothing_and_reruns(repo):
    original = (repo / "params.yaml").read_text()
    out = repo / "results" / "rl500" / "seed0"
    try:
        set_param(repo, "rl500.episodes", 5000)  # long enough to be interrupted mid-training
        proc = subprocess.Popen(
            [sys.executable, "-m", "dvc", "repro", "-s", "rl500@0"], cwd=repo, env=_env(),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        stage = _stage_python(proc, "stages.rl500")
        # Wait for training itself (the progress bar), not just the process: imports and loading the
        # compiled kernel take seconds on a loaded machine, and the handler is set up by then.
        chunks, reader = _read_until(proc, "RL500 seed 0:")
        time.sleep(2)
        # SIGTERM (docker stop, kill) takes the same path as Ctrl-C's SIGINT in the stage; SIGINT itself
        # is ignored by processes started in the background of a script, as CI may start this suite.
        stage.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
        reader.join(timeout=30)  # the rest of the output, up to end of file
        output = "".join(chunks)
        assert proc.returncode != 0, output
        assert "aqil: error: interrupted" in output
        assert not any((out / name).exists() for name in ("model.pt", "losses.npy", "metrics.json", "episodes.tsv"))
        assert not list(out.glob(".*partial*"))
        assert "rl500@0" in dvc(repo, "status", "--json").stdout  # DVC sees the stage as not done
        set_param(repo, "rl500.episodes", 4)  # a value never cached: the stage must really run again
        assert "rl500@0" in ran(dvc(repo, "repro"))
        assert (out / "model.pt").exists()
    finally:
        (repo / "params.yaml").write_text(original)
    dvc(repo, "repro")  # back to the committed params: DVC restores those outputs from its cache
    assert dvc(repo, "status", "--json").stdout.strip() in ("{}", "")


def test_adding_a_seed_runs_only_the_new_seed(repo):
    set_param(repo, "seeds", [0, 1])
    assert ran(dvc(repo, "repro")) == every_stage(1)
    table = json.loads((repo / "results" / "report" / "table2.json").read_text())
    cell = table["runs"]["il250"]["columns"]["avg_reward"]
    assert cell["n"] == 2 and cell["low"] is not None
    assert cell["verdict"] in {"reproduced", "above our range", "below our range", "inconclusive (capped)"}


def test_dropping_a_seed_warns_and_prune_removes_its_files(repo):
    """After `seeds` shrinks (or `dvc exp apply` of an experiment with fewer seeds), the dropped seed's
    files make `report` look changed: the report warns, and `python -m aqil.prune --yes` removes them."""
    set_param(repo, "seeds", [0])
    proc = dvc(repo, "repro")
    assert ran(proc) == {"check_params", "report", "compare"}
    output = proc.stdout + proc.stderr
    # seed 1's collect folder, and per run its folder, evaluation and timing
    stale = 1 + 3 * len(RUNS)
    assert f"aqil: warning: {stale} result paths belong to seeds not in params.yaml's seeds [0]" in output
    assert "results/collect/seed1" in output and "python -m aqil.prune --yes" in output
    listed = run(repo, sys.executable, "-m", "aqil.prune").stdout
    assert "stale: results/eval/il250/seed1.json" in listed and (repo / "results" / "il250" / "seed1").is_dir()
    run(repo, sys.executable, "-m", "aqil.prune", "--yes")
    assert not [*(repo / "results").glob("*/seed1"), *(repo / "results").glob("*/*/seed1.json")]
    assert (repo / "results" / "il250" / "seed0" / "metrics.json").is_file()
    again = dvc(repo, "repro")
    assert ran(again) == {"report", "compare"} and "aqil.prune" not in again.stdout + again.stderr
    assert dvc(repo, "status", "--json").stdout.strip() in ("{}", "")


def test_adding_the_baselines_reruns_none_of_the_papers_runs(tmp_path):
    """Without the baselines' code and stages, train and evaluate the paper's runs; then add them: the
    paper's runs, their evaluations and the report are up to date, and only the baselines and compare run
    (their params sections stay in params.yaml and aqil/config.py, which validates the whole file)."""
    repo = fresh_copy(tmp_path / "repo")
    full = (repo / "dvc.yaml").read_text()
    paper_only = yaml.safe_load(full)
    for name in [*BASELINES, "evaluate_baselines", "compare"]:
        del paper_only["stages"][name]
    (repo / "dvc.yaml").write_text(yaml.safe_dump(paper_only, sort_keys=False))
    saved = {path: (repo / path).read_bytes() for path in BASELINE_CODE}
    for path in BASELINE_CODE:
        (repo / path).unlink()
    dvc(repo, "repro")
    (repo / "dvc.yaml").write_text(full)
    for path, data in saved.items():
        (repo / path).write_bytes(data)
    ran_now = ran(dvc(repo, "repro"))
    baselines = {f"{r}@0" for r in BASELINES} | {evaluation(r, 0) for r in BASELINES}
    assert ran_now == {"compare"} | baselines
