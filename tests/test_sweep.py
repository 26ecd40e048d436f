"""Seeds in parallel: DVC's queue on one machine, and a shared DVC remote with its run-cache across machines.

Both on the tiny params in fresh copies of the project, against a serial ``dvc repro`` of the same seeds.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from test_pipeline import PAPER_RUNS, _output_hashes, commit, dvc, evaluation, fresh_copy, ran, run

from aqil.sweep import SweepError, parse_seeds, set_seeds


def test_seed_lists_and_ranges():
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("7, 2,2, 0-1") == [0, 1, 2, 7]
    for bad in ("", "a", "3-1", "1-2-3", "-1"):
        with pytest.raises(SweepError):
            parse_seeds(bad)


def test_set_seeds_rewrites_one_line_and_keeps_comments(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("# top\nseeds: [0]   # one run per seed\nother:\n  seeds: [5]\n")
    set_seeds(params, [0, 1, 2])
    assert params.read_text() == "# top\nseeds: [0, 1, 2]   # one run per seed\nother:\n  seeds: [5]\n"


def _stages_for(seeds: list[int]) -> set[str]:
    """The paper's stages of ``seeds`` (the sweep and ``dvc repro report`` train no baseline)."""
    return ({f"collect@{s}" for s in seeds} | {f"{r}@{s}" for r in PAPER_RUNS for s in seeds}
            | {evaluation(r, s) for r in PAPER_RUNS for s in seeds})


@pytest.mark.pipeline
def test_parallel_sweep_assembles_the_serial_result_and_leaves_no_experiments(tmp_path):
    serial = fresh_copy(tmp_path / "serial")
    set_seeds(serial / "params.yaml", [0, 1])
    dvc(serial, "repro", "report")

    parallel = fresh_copy(tmp_path / "parallel")
    proc = run(parallel, sys.executable, "-m", "aqil.sweep", "--seeds", "0-1", "--jobs", "2")
    last = proc.stdout.strip().splitlines()[-1]
    assert last.endswith("seeds [0, 1] assembled in the workspace; the final dvc repro report ran: report")
    assert "Paper's conclusion:" in proc.stdout  # the closing summary, as dvc repro prints it
    assert (parallel / "params.yaml").read_text() == (serial / "params.yaml").read_text()
    # the same bytes as the serial run, every output but the wall-time ones (results/timing, provenance.json)
    assert _output_hashes(parallel / "dvc.lock") == _output_hashes(serial / "dvc.lock")
    refs = subprocess.run(["git", "for-each-ref", "refs/exps"], cwd=parallel, capture_output=True, text=True).stdout
    assert refs == ""
    assert "No experiment tasks in the queue" in dvc(parallel, "queue", "status").stdout
    assert ran(dvc(parallel, "repro", "report")) == set()


@pytest.mark.pipeline
def test_sweep_refuses_uncommitted_code_with_one_line(tmp_path):
    repo = fresh_copy(tmp_path / "repo")
    with (repo / "aqil" / "report.py").open("a") as fh:
        fh.write("\n# uncommitted\n")
    proc = run(repo, sys.executable, "-m", "aqil.sweep", "--seeds", "0-1", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("aqil: error: uncommitted changes to tracked files (aqil/report.py)")
    assert "Traceback" not in proc.stderr


@pytest.mark.pipeline
def test_two_machines_share_work_through_a_dvc_remote_and_its_run_cache(tmp_path):
    remote = tmp_path / "remote"
    a, b = fresh_copy(tmp_path / "a"), fresh_copy(tmp_path / "b")
    for repo in (a, b):
        dvc(repo, "remote", "add", "-d", "shared", str(remote))
        commit(repo, "shared remote")
    set_seeds(a / "params.yaml", [0])
    dvc(a, "repro", "report")
    dvc(a, "push", "--run-cache")

    # Machine B fetches the run-cache A pushed and wants seeds 0-1: it trains only its own seed. (--pull:
    # the outputs of a stage found in the run-cache are downloaded when they are not in the local cache.)
    dvc(b, "fetch", "--run-cache")
    set_seeds(b / "params.yaml", [0, 1])
    assert ran(dvc(b, "repro", "--pull", "report")) == _stages_for([1]) | {"report"}
    dvc(b, "push", "--run-cache")

    # Back on A (or any machine): everything is in the run-cache; at most the report is made (B's report,
    # with the same inputs, is in the run-cache too).
    dvc(a, "fetch", "--run-cache")
    set_seeds(a / "params.yaml", [0, 1])
    assert ran(dvc(a, "repro", "--pull", "report")) <= {"report"}
    summary = Path("results") / "report" / "summary.txt"
    assert (a / summary).read_text() == (b / summary).read_text()
    assert _output_hashes(a / "dvc.lock") == _output_hashes(b / "dvc.lock")


def test_help_names_the_command():
    proc = subprocess.run([sys.executable, "-m", "aqil.sweep", "--help"], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0 and "python -m aqil.sweep" in proc.stdout
