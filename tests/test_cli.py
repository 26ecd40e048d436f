"""aqil/cli.py: a stage dies with its parent, and a broken numba cache is one line naming its folder."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from aqil.config import Params, to_dict

ROOT = Path(__file__).resolve().parents[1]


def _params(tmp_path: Path) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(to_dict(Params())))
    return path


def _gone(pid: int) -> bool:
    """The process has exited (a zombie waiting for its new parent to reap it counts as exited)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return fields[0] in ("Z", "X")


def _wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


# A stage-like child: announces that its stage started, works for 8 s, then writes its output.
STAGE = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from aqil.cli import run_stage

    def stage(params, seed, results):
        Path(sys.argv[3]).write_text("started")
        time.sleep(8)
        (results / "out.txt").write_text("written by an orphan")

    run_stage(stage, "a stage", argv=["--params", sys.argv[1], "--results", sys.argv[2]])
""")
# Its parent, standing in for dvc: starts the stage, prints its pid, waits for it.
PARENT = textwrap.dedent("""
    import subprocess, sys
    child = subprocess.Popen([sys.executable, "-c", sys.argv[1], *sys.argv[2:5]], stderr=open(sys.argv[5], "w"))
    print(child.pid, flush=True)
    child.wait()
""")


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads process states from /proc")
def test_a_stage_whose_parent_is_killed_stops_without_writing(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    started, err = tmp_path / "started", tmp_path / "stderr"
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, STAGE, str(_params(tmp_path)), str(results), str(started), str(err)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    try:
        assert _wait_for(started.exists, 60), "the stage never started"
        parent.send_signal(signal.SIGKILL)  # as `kill -9` of dvc: the stage is reparented
        parent.wait()
        killed = time.monotonic()
        assert _wait_for(lambda: _gone(child), 6), "the orphaned stage is still running"
        assert time.monotonic() - killed < 6  # well before it would have written (8 s after starting)
    finally:
        if not _gone(child):
            os.kill(child, signal.SIGKILL)
    assert not (results / "out.txt").exists()
    lines = err.read_text().strip().splitlines()
    assert lines == [f"aqil: error: the process that started this stage (pid {parent.pid}) is gone; stopped so "
                     "that nothing is written (rerun with dvc repro)"]


def test_a_stage_with_its_parent_alive_runs_to_the_end(tmp_path):
    """The watch never fires while the parent lives (here: the test itself, for more than a check's period)."""
    script = STAGE.replace("time.sleep(8)", "time.sleep(2.5)")
    results = tmp_path / "results"
    results.mkdir()
    proc = subprocess.run([sys.executable, "-c", script, str(_params(tmp_path)), str(results), str(tmp_path / "s")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (results / "out.txt").read_text() == "written by an orphan"


def _aqil_copy(tmp_path: Path) -> Path:
    """A copy of the package whose __pycache__ cannot be created (a file in its place: root may write anywhere)."""
    shutil.copytree(ROOT / "aqil", tmp_path / "aqil", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "aqil" / "__pycache__").write_text("not a folder")
    return tmp_path


def test_no_writable_numba_cache_is_one_line_at_import(tmp_path):
    """Read-only aqil/__pycache__ and an unwritable HOME: numba fails when the kernel module is imported."""
    work = _aqil_copy(tmp_path)
    home = tmp_path / "home"
    home.write_text("not a folder either")
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME", "AQIL_DEBUG")}
    env |= {"HOME": str(home), "PYTHONDONTWRITEBYTECODE": "1"}
    script = "import aqil.cli; aqil.cli.guard_imports(); import aqil.kernel"
    proc = subprocess.run([sys.executable, "-c", script], cwd=work, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f"aqil: error: {work / 'aqil' / '__pycache__'}: not writable, nor is numba's user cache folder "
        f"{home / '.cache' / 'numba'}; numba cannot cache the compiled kernel: set NUMBA_CACHE_DIR to a writable "
        "folder (e.g. NUMBA_CACHE_DIR=/tmp/numba-cache)")


# Calls one compiled kernel function through run_stage: the first run fills the cache, later ones load it.
KERNEL_STAGE = textwrap.dedent("""
    import sys
    import numpy as np
    from aqil.cli import run_stage

    def stage(params, seed, results):
        from aqil import kernel
        print(kernel.argmax(np.array([0.0, 1.0], dtype=np.float32)))

    run_stage(stage, "a kernel stage", argv=["--params", sys.argv[1], "--results", sys.argv[2]])
""")


def _kernel_stage(tmp_path: Path, cache: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "AQIL_DEBUG"} | {"NUMBA_CACHE_DIR": str(cache)}
    return subprocess.run([sys.executable, "-c", KERNEL_STAGE, str(_params(tmp_path)), str(tmp_path)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def filled_cache(tmp_path_factory) -> Path:
    cache = tmp_path_factory.mktemp("numba-cache")
    proc = _kernel_stage(tmp_path_factory.mktemp("work"), cache)
    assert proc.returncode == 0 and proc.stdout.strip() == "1", proc.stderr
    assert list(cache.rglob("kernel.argmax-*.nbi")) and list(cache.rglob("kernel.argmax-*.nbc"))
    return cache


@pytest.mark.parametrize(("suffix", "damage"), [("nbi", "truncated"), ("nbi", "garbage"), ("nbc", "truncated"),
                                                ("nbc", "garbage")])
def test_a_damaged_numba_cache_file_is_one_line_naming_it(suffix, damage, filled_cache, tmp_path):
    cache = tmp_path / "cache"
    shutil.copytree(filled_cache, cache)
    (path,) = cache.rglob(f"kernel.argmax-*.{suffix}")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"\x80\x05garbage" + bytes(range(256)))
    proc = _kernel_stage(tmp_path, cache)
    assert proc.returncode == 1
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"aqil: error: {path}: a damaged numba cache file (")
    assert line.endswith(f"delete the kernel's cache files ({path.parent}/*.nbi and *.nbc: numba compiles the "
                         "kernel again) or set NUMBA_CACHE_DIR to an empty folder")


def test_importing_the_cli_changes_no_signal_handler():
    """Entry points have no side effects at import: only a stage script's guard_imports() installs handlers."""
    script = ("import signal, sys; before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM), "
              "sys.excepthook); import aqil.cli, aqil.evaluate; "
              "assert before == (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM), sys.excepthook)")
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True, timeout=300)


def test_an_error_while_a_stage_imports_is_one_line(tmp_path):
    """Any exception before run_stage starts (a stage script's imports) is one line too; AQIL_DEBUG shows it."""
    script = "import aqil.cli\naqil.cli.guard_imports()\nraise ValueError('broken import')"
    env = {k: v for k, v in os.environ.items() if k != "AQIL_DEBUG"}
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr == "aqil: error: ValueError: broken import (set AQIL_DEBUG=1 to see the traceback)\n"
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env | {"AQIL_DEBUG": "1"},
                          capture_output=True, text=True)
    assert "Traceback" in proc.stderr and proc.returncode == 1
