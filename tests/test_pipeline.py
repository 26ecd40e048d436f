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
COPY = ["aqil", "stages", "dvc.yaml", ".dvc/config", ".dvc/.gitignore", ".dvc/plots", ".dvcignore", ".gitignore",
        "pyproject.toml", "data", "results/report"]
PAPER_RUNS = ["il250", "il500", "rl500", "il250_rl250"]
BASELINES = ["bc250", "bc250_rl250", "dagger250", "dqfd250_rl250"]
RUNS = PAPER_RUNS + BASELINES
BASELINE_CODE = ["aqil/baselines.py", "aqil/dqfd.py", "aqil/kernel_losses.py", "aqil/compare.py", "stages/compare.py",
                 "stages/evaluate_baselines.py", *(f"stages/{r}.py" for r in BASELINES)]
REPORTS = {"report", "compare", "publish"}


def evaluation(run: str, seed: int) -> str:
    """The DVC stage that evaluates ``run`` for ``seed``."""
    return f"evaluate_{run}@{seed}"


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
            if not out["path"].startswith("results/timing/"):
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


def every_stage(seed: int, reports: set[str] = REPORTS) -> set[str]:
    runs = {f"{r}@{seed}" for r in RUNS} | {evaluation(r, seed) for r in RUNS}
    return {"check_params", f"collect_il250@{seed}", f"collect_il500@{seed}"} | reports | runs


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    repo = fresh_copy(tmp_path_factory.mktemp("aqil") / "repo")
    assert ran(dvc(repo, "repro")) == every_stage(0)
    commit(repo, "first run")
    return repo


def _no_nan(name: str) -> None:
    raise AssertionError(f"{name} in a JSON output: not strict JSON")


def test_your_runs_report_is_local_and_not_judged_on_tiny_settings(repo):
    report = repo / "results" / "local" / "report"
    table = json.loads((report / "table2.json").read_text(), parse_constant=_no_nan)  # strict JSON
    assert set(table["runs"]) == set(PAPER_RUNS)
    assert table["judged"] is False and table["not_judged_because"] == "not the paper's settings"
    assert "env.max_episode_steps" in table["non_paper_settings"]
    for entry in table["runs"].values():
        assert entry["n"] == 1 and entry["seeds"] == [0]
        assert entry["columns"]["avg_reward"]["paper"] > 0
    summary = (report / "summary.txt").read_text()
    assert summary.startswith("Paper's conclusion: not judged (not the paper's settings).")
    assert "HOLDS" not in summary and summary.count("not judged") == 1 + 2 * len(PAPER_RUNS)
    figures = sorted(p.name for p in (report / "figures").glob("*.png"))
    assert {"table2.png", "performance_profile.png", "survival.png", "fig8_il250_rl250_loss_reward.png"} <= set(figures)
    assert all((report / "figures" / f).stat().st_size > 10_000 for f in figures)
    markdown = (report / "report.md").read_text()
    for needle in ("## Verdict", "331.63", "13,043.02", "## Deviations", "figures/table2.png", "Not the paper's"):
        assert needle in markdown
    records = sorted(p.relative_to(report).as_posix() for p in (report / "episodes").rglob("seed*.json"))
    assert records == [f"episodes/{r}/seed0.json" for r in sorted(PAPER_RUNS)]


def test_a_tiny_run_leaves_the_published_report_untouched(repo):
    """Your run's report goes to results/local; the git-tracked published report is rebuilt by `publish`
    from its own records only, byte for byte as committed."""
    assert run(repo, "git", "status", "--porcelain", "results/report").stdout == ""
    assert (repo / "results" / "report" / "summary.json").is_file()


def test_comparison_with_the_baselines_exists(repo):
    compare = repo / "results" / "local" / "compare"
    table = json.loads((compare / "compare.json").read_text(), parse_constant=_no_nan)
    assert set(table["runs"]) == {"il250_rl250", *BASELINES}
    for run, row in table["runs"].items():
        assert row["seeds"] == [0]
        assert row["units"] == ("IL reward" if run == "bc250" else "RL reward")
        assert len(row["eval"]["values"]) == 1 and row.get("p_aqil_better", None) is None  # 1 seed: no probability
    markdown = (compare / "compare.md").read_text()
    for needle in ("# AQIL against standard uses of the same expert data", "| DQfD250+RL250 | RL reward |",
                   "n/a (1 seed)", "Not the paper's settings", "figures/baselines_eval.png", "| DAgger |"):
        assert needle in markdown
    assert (compare / "figures" / "baselines_eval.png").stat().st_size > 10_000


def test_dvc_metrics_show_is_readable(repo):
    """Only the small summaries are metrics: DVC's own table fits in 160 columns, with no warning."""
    proc = dvc(repo, "metrics", "show")
    assert "results/report/summary.json" in proc.stdout and "seeds.rl500" in proc.stdout
    assert max(len(line) for line in proc.stdout.splitlines()) <= 160
    assert "WARNING" not in proc.stdout + proc.stderr


def test_dvc_plots_show_overlays_every_run_in_one_plot(repo):
    """dvc.yaml's top-level plot: one Vega-Lite chart of the published curves, one colour per run."""
    proc = dvc(repo, "plots", "show", "--json")
    assert "WARNING" not in proc.stdout + proc.stderr and "failed" not in proc.stderr
    plots = json.loads(proc.stdout)["data"]
    [overlay] = [items[0]["content"] for name, items in plots.items() if name.startswith("Published run")]
    assert overlay["encoding"]["color"]["field"] == "run" and len(overlay["layer"]) == 2
    runs = {row["run"] for row in overlay["data"]["values"]}
    assert runs == {"RL500", "IL250", "IL500", "IL250+RL250"}
    assert all(float(row["q25"]) <= float(row["median"]) <= float(row["q75"]) for row in overlay["data"]["values"])


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
    status = dvc(repo, "status").stdout
    assert len(status.splitlines()) <= 2, status  # "Data and pipelines are up to date."


def test_a_clone_shows_the_published_report_and_a_rerun_reproduces_its_bytes(repo, tmp_path):
    """The published report and its per-seed records are in git, so a clone shows its numbers with no DVC
    cache and no compute; the clone's own full rerun then reproduces every output byte."""
    assert run(repo, "git", "status", "--porcelain").stdout == ""  # the fixture committed the run
    tracked = set(run(repo, "git", "ls-files", "results").stdout.split())
    assert {f"results/report/{name}" for name in ("report.md", "table2.json", "summary.txt", "summary.json")} <= tracked
    assert not [p for p in tracked if not p.startswith("results/report/") and not p.endswith("/.gitignore")]
    clone = tmp_path / "clone"
    run(tmp_path, "git", "clone", "-q", str(repo), str(clone))
    target = "results/report/summary.json"
    published = json.loads(dvc(repo, "metrics", "show", "--json", target).stdout)
    assert json.loads(dvc(clone, "metrics", "show", "--json", target).stdout) == published
    # Nothing is cached there: every training stage runs. (An evaluation may instead be checked out,
    # when another stage has just written an output with the same bytes into the clone's cache.)
    assert {"collect_il250@0", "report"} | {f"{r}@0" for r in RUNS} <= ran(dvc(clone, "repro")) <= every_stage(0)
    changed = {line[3:] for line in run(clone, "git", "status", "--porcelain").stdout.splitlines()}
    assert changed <= {"dvc.lock"}, changed
    assert _output_hashes(clone / "dvc.lock") == _output_hashes(repo / "dvc.lock")
    assert json.loads(dvc(clone, "metrics", "diff", "--json", "--targets", target).stdout) == {}


def test_rl500_episodes_rerun_only_rl500(repo):
    set_param(repo, "rl500.episodes", 5)
    assert ran(dvc(repo, "repro")) == {"check_params", "rl500@0", "evaluate_rl500@0", "report"}
    commit(repo, "rl500 episodes")


def test_il_reward_reruns_imitation_runs_not_collect_or_rl500(repo):
    set_param(repo, "rewards.il.action_weight", 0.7)
    assert ran(dvc(repo, "repro")) == {
        "check_params", "il250@0", "il500@0", "il250_rl250@0",
        "evaluate_il250@0", "evaluate_il500@0", "evaluate_il250_rl250@0", "report", "compare",
        # BC250 reports the IL reward of its actions, so it reruns, and so does BC250+RL250 (it reads BC250's
        # metrics); but BC fits the expert's action, not the reward: both networks keep their bytes, so the
        # evaluation of BC250+RL250 (whose inputs are its network and its metrics) is up to date
        "bc250@0", "bc250_rl250@0", "evaluate_bc250@0",
    }
    commit(repo, "IL reward")


def test_report_code_edit_reruns_only_the_reports(repo):
    with (repo / "aqil" / "reporting" / "render.py").open("a") as fh:
        fh.write("\n# an edit that changes nothing\n")
    assert ran(dvc(repo, "repro")) == REPORTS  # the comparison shares the report's formatting
    assert run(repo, "git", "status", "--porcelain", "results").stdout == ""  # same bytes
    commit(repo, "report edit")


def test_reruns_give_identical_bytes(repo):
    lock_before = _output_hashes(repo / "dvc.lock")
    figure = repo / "results" / "local" / "report" / "figures" / "fig8_il250_rl250_loss_reward.png"
    before = figure.read_bytes()
    forced = dvc(repo, "repro", "-f", "-s", "collect_il250@0", "il250@0", "rl500@0", "report")
    assert ran(forced) == {"collect_il250@0", "il250@0", "rl500@0", "report"}
    assert _output_hashes(repo / "dvc.lock") == lock_before  # all outputs but the wall-time files
    assert figure.read_bytes() == before
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
    assert ran(dvc(repo, "repro")) <= {"check_params", "collect_il500@0", "il500@0", "evaluate_il500@0", "report"}


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
        assert run(repo, "git", "status", "--porcelain", "results/report").stdout == ""
    finally:
        (repo / "params.yaml").write_text(original)
    # the committed file again: only the check reruns (DVC removed its mark before the failed run), and its
    # mark comes back with the same bytes, so nothing after it runs
    assert ran(dvc(repo, "repro")) <= {"check_params"}


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


def test_adding_a_seed_to_rl500_alone_runs_only_that_seed_and_the_report(repo):
    set_param(repo, "seeds.rl500", [0, 1])
    assert ran(dvc(repo, "repro")) == {"check_params", "rl500@1", "evaluate_rl500@1", "report"}
    table = json.loads((repo / "results" / "local" / "report" / "table2.json").read_text())
    assert table["runs"]["rl500"]["n"] == 2 and table["runs"]["il250"]["n"] == 1
    set_param(repo, "seeds.rl500", [0])
    assert ran(dvc(repo, "repro")) == {"check_params", "report"}


def test_a_seed_without_its_parents_seed_is_refused_with_one_line(repo):
    original = (repo / "params.yaml").read_text()
    try:
        set_param(repo, "seeds.il250_rl250", [0, 3])
        proc = dvc(repo, "repro", check=False)
        assert proc.returncode != 0 and ran(proc) == {"check_params"}
        assert ("aqil: error: seeds.il250_rl250: seeds [3] are not in seeds.il250; accepted: seeds of il250, "
                "which il250_rl250 builds on (add them there too)") in proc.stdout + proc.stderr
    finally:
        (repo / "params.yaml").write_text(original)


def test_adding_the_baselines_reruns_none_of_the_papers_runs(tmp_path):
    """Without the baselines' code and stages, train and evaluate the paper's runs; then add them: the
    paper's runs, their evaluations and the report are up to date, and only the baselines and compare run
    (their params sections stay in params.yaml and aqil/config.py, which validates the whole file)."""
    repo = fresh_copy(tmp_path / "repo")
    full = (repo / "dvc.yaml").read_text()
    paper_only = yaml.safe_load(full)
    for name in [*BASELINES, *(f"evaluate_{r}" for r in BASELINES), "compare"]:
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


TOY_SPEC = '    RunSpec("toy250", "Toy250", "toy", expert_from="il250", paper=False),\n'
TOY_METHOD = '''

def toy(ctx: RunContext) -> tuple[RunResult, np.ndarray]:
    """A new method, as a user would add one: here behavioural cloning under another name."""
    return behavioural_cloning(ctx)


BASELINE_METHODS["toy"] = toy
'''


def test_a_new_method_touches_three_files(tmp_path):
    """A toy method: its RunSpec, its function and its params. `python -m aqil.pipeline` writes the rest
    (its stages in dvc.yaml and its entry script), and DVC trains and evaluates it."""
    repo = fresh_copy(tmp_path / "repo")
    layout = (repo / "aqil" / "layout.py").read_text()
    (repo / "aqil" / "layout.py").write_text(layout.replace("\n)\nALL_RUNS", f"\n{TOY_SPEC})\nALL_RUNS", 1))
    with (repo / "aqil" / "baselines.py").open("a") as fh:
        fh.write(TOY_METHOD)
    params = (repo / "params.yaml").read_text()
    params = params.replace("  dqfd250_rl250: [0]\n", "  dqfd250_rl250: [0]\n  toy250: [0]\n")
    (repo / "params.yaml").write_text(params.replace("\nevaluate:\n", "\ntoy250:\n  episodes: 3\n\nevaluate:\n"))
    edited = {line[3:] for line in run(repo, "git", "status", "--porcelain").stdout.splitlines()}
    assert edited == {"aqil/layout.py", "aqil/baselines.py", "params.yaml"}

    run(repo, sys.executable, "-m", "aqil.pipeline")
    changed = {line[3:] for line in run(repo, "git", "status", "--porcelain", "-uall").stdout.splitlines()}
    assert changed == edited | {"dvc.yaml", "stages/toy250.py"}
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    assert "results/toy250" in stages["compare"]["deps"] and "aqil/baselines.py" in stages["toy250"]["deps"]
    assert ran(dvc(repo, "repro", "evaluate_toy250")) == {"check_params", "collect_il250@0", "toy250@0",
                                                          "evaluate_toy250@0"}
    metrics = json.loads((repo / "results" / "toy250" / "seed0" / "metrics.json").read_text())
    assert metrics["episodes"] == 3
