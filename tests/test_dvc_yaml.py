"""dvc.yaml lists, for every stage, exactly the library files its script imports (transitively).

A missing file would let an edit go unnoticed by DVC (a stale cached result); an extra one would
rerun a stage for nothing.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "aqil":
            if node.module == "aqil":
                found |= {f"aqil/{alias.name}.py" for alias in node.names}
            else:
                found.add(node.module.replace(".", "/") + ".py")
        elif isinstance(node, ast.Import):
            found |= {a.name.replace(".", "/") + ".py" for a in node.names if a.name.split(".")[0] == "aqil"}
    return {f for f in found if (ROOT / f).is_file()}


def _closure(script: str) -> set[str]:
    seen, todo = set(), [script]
    while todo:
        for module in _imports(ROOT / todo.pop()):
            if module not in seen:
                seen.add(module)
                todo.append(module)
    return seen | {"aqil/__init__.py"}


def _code_deps_mismatch(stage: dict) -> tuple[set[str], set[str]]:
    """(library files the stage imports but does not list, listed files it does not import)."""
    script = "stages/" + stage["cmd"].split("stages.")[1].split()[0] + ".py"
    listed = {d for d in stage["deps"] if d.startswith("aqil/") or d == script}
    imported = _closure(script) | {script}
    return imported - listed, listed - imported


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_code_deps_are_exactly_its_imports(name):
    assert _code_deps_mismatch(STAGES[name]) == (set(), set())


def test_a_deliberately_missing_dependency_is_caught():
    """The check above fails when a stage forgets a module it imports (here: report without qnet.py),
    or lists one it does not import."""
    stage = dict(STAGES["report"])
    assert "aqil/qnet.py" in stage["deps"]
    stage["deps"] = [d for d in stage["deps"] if d != "aqil/qnet.py"]
    assert _code_deps_mismatch(stage) == ({"aqil/qnet.py"}, set())
    stage = dict(STAGES["collect"])
    stage["deps"] = [*stage["deps"], "aqil/report.py"]
    assert _code_deps_mismatch(stage) == (set(), {"aqil/report.py"})



# The report's and the comparison's outputs are small text and figures, tracked by git (`cache: false`) so
# that a clone shows the published numbers; every per-seed output stays in DVC's cache, because DVC's
# run-cache can restore a stage on another machine only from objects in the remote, and `dvc push` does
# not push uncached ones.
@pytest.mark.parametrize("name", sorted(STAGES))
def test_only_the_reports_are_tracked_by_git(name):
    for kind in ("outs", "metrics", "plots"):
        for entry in STAGES[name].get(kind, []):
            path, options = next(iter(entry.items())) if isinstance(entry, dict) else (entry, {})
            assert options.get("cache", True) == (name not in ("report", "compare")), f"{name}: {path}"


PAPER_STAGES = ["collect", "il250", "il500", "rl500", "il250_rl250", "evaluate", "report"]
BASELINE_FILES = ["aqil/baselines.py", "aqil/dqfd.py", "aqil/kernel_losses.py", "aqil/compare.py"]


@pytest.mark.parametrize("name", PAPER_STAGES)
def test_the_papers_stages_depend_on_no_baseline(name):
    """Neither a baseline's code nor its results are an input of the paper's runs or report, so adding
    or editing a baseline reruns none of them, and `dvc repro report` trains no baseline."""
    deps = STAGES[name]["deps"]
    assert not set(BASELINE_FILES) & set(deps)
    baseline_runs = ("bc250", "bc250_rl250", "dagger250", "dqfd250_rl250")
    assert not [d for d in deps if any(part in baseline_runs for part in d.split("/"))]
    assert not [d for d in deps if d in ("results", "results/eval", "results/timing")]  # would hold baselines' files
