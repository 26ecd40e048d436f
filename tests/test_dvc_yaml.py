"""dvc.yaml is generated (python -m aqil.pipeline) from the run registry and the stages' imports.

A stage that misses a module it imports would let an edit go unnoticed by DVC (a stale cached result);
one that lists a module it does not import would rerun for nothing. The generator computes the
closure; these tests check the committed file is what it writes, and that the closure is right.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from aqil import pipeline
from aqil.layout import ALL_RUNS, BASELINE_RUNS, PAPER_RUNS

ROOT = Path(__file__).resolve().parents[1]
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def test_dvc_yaml_is_what_the_generator_writes():
    proc = subprocess.run([sys.executable, "-m", "aqil.pipeline", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_the_closure_follows_imports_transitively():
    deps = pipeline.code_deps("stages/il250.py")
    assert deps[0] == "stages/il250.py"
    # il250 -> aqil.runs -> aqil.train -> aqil.qnet -> aqil.kernel: each step is listed
    assert {"aqil/runs.py", "aqil/train.py", "aqil/qnet.py", "aqil/kernel.py", "aqil/__init__.py"} <= set(deps)
    assert "aqil/baselines.py" not in deps and not [d for d in deps if d.startswith("aqil/reporting")]


def test_a_stale_file_is_caught(tmp_path):
    """A file missing one dependency (here: the first stage that imports aqil/qnet.py) is stale."""
    current = (ROOT / "dvc.yaml").read_text()
    assert "    - aqil/qnet.py\n" in current
    (tmp_path / "dvc.yaml").write_text(current.replace("    - aqil/qnet.py\n", "", 1))
    assert pipeline.is_stale(tmp_path / "dvc.yaml") and not pipeline.is_stale(ROOT / "dvc.yaml")


def test_every_run_has_its_training_and_evaluation_stage_over_its_own_seeds():
    for run in ALL_RUNS:
        assert STAGES[run]["matrix"] == {"seed": f"${{seeds.{run}}}"}
        assert STAGES[f"evaluate_{run}"]["matrix"] == {"seed": f"${{seeds.{run}}}"}
    assert STAGES["collect_il250"]["params"] == ["env", "expert", "il250.episodes"]


def test_every_stage_waits_for_valid_params():
    for name, stage in STAGES.items():
        if name != "check_params":
            assert pipeline.CHECKED in stage["deps"], name


# Per-seed outputs go to DVC's cache (the run-cache restores a stage on another machine only from
# objects in the remote); the published report and its records are tracked by git.
@pytest.mark.parametrize("name", sorted(STAGES))
def test_only_the_published_report_is_tracked_by_git(name):
    for kind in ("outs", "metrics", "plots"):
        for entry in STAGES[name].get(kind, []):
            path, options = next(iter(entry.items())) if isinstance(entry, dict) else (entry, {})
            uncached = options.get("cache", True) is False
            assert uncached == (name in ("publish", "check_params")), f"{name}: {path}"


@pytest.mark.parametrize("name", ["collect_il250", "collect_il500", *PAPER_RUNS, "report"])
def test_the_papers_stages_depend_on_no_baseline(name):
    """Neither a baseline's code nor its results are an input of the paper's runs or report, so adding
    or editing a baseline reruns none of them, and `dvc repro report` trains no baseline."""
    deps = STAGES[name]["deps"]
    assert not {"aqil/baselines.py", "aqil/dqfd.py", "aqil/kernel_losses.py", "aqil/compare.py"} & set(deps)
    assert not [d for d in deps if any(part in BASELINE_RUNS for part in d.split("/"))]
    assert not [d for d in deps if d in ("results", "results/eval", "results/timing")]  # would hold baselines' files


def test_the_runs_stage_scripts_are_generated_and_a_stale_one_is_named(tmp_path):
    assert pipeline.stale_scripts() == {}  # the committed scripts are what the generator writes
    (tmp_path / "stages").mkdir()
    for name, spec in ALL_RUNS.items():
        (tmp_path / "stages" / f"{name}.py").write_text(pipeline.stage_script(spec))
    assert pipeline.stale_scripts(tmp_path) == {}
    (tmp_path / "stages" / "rl500.py").write_text("edited by hand\n")
    (tmp_path / "stages" / "bc250.py").unlink()
    stale = pipeline.stale_scripts(tmp_path)
    assert set(stale) == {tmp_path / "stages" / "rl500.py", tmp_path / "stages" / "bc250.py"}
    assert "from aqil.baselines import train_stage" in stale[tmp_path / "stages" / "bc250.py"]
