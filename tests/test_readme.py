"""The README stays true: short, its headline generated from the published report, its links alive, and
its quick shell blocks run as written."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def test_readme_is_a_front_door_under_12_kb():
    text = README.read_text()
    assert len(text.encode()) <= 12 * 1024
    first_screen = text[: text.index("## Install without Docker")]
    assert "docker run" in first_screen and "pytest" in first_screen and "headline:start" in first_screen


def test_the_headline_is_generated_from_the_published_report():
    proc = subprocess.run([sys.executable, "-m", "aqil.reporting.readme", "--check"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("page", ["README.md", *(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md"))])
def test_every_relative_link_resolves(page):
    path = ROOT / page
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text()):
        if target.startswith(("http://", "https://", "mailto:")) or target.startswith("../results/local"):
            continue  # your run's outputs exist only after a run
        assert (path.parent / target).exists(), f"{page}: broken link {target}"


def quick_blocks() -> list[str]:
    return re.findall(r"<!-- quick -->\n```sh\n(.*?)```", README.read_text(), flags=re.S)


@pytest.mark.pipeline
def test_the_quick_blocks_run_as_written_and_leave_the_published_report_alone(tmp_path):
    from test_pipeline import fresh_copy, run

    blocks = quick_blocks()
    assert blocks, "no block of the README is marked <!-- quick -->"
    repo = fresh_copy(tmp_path / "repo")
    (repo / "tests" / "data").mkdir(parents=True)
    shutil.copy2(ROOT / "tests" / "data" / "tiny_params.yaml", repo / "tests" / "data" / "tiny_params.yaml")
    for block in blocks:
        proc = run(repo, "bash", "-euo", "pipefail", "-c", block)
        assert "Paper's conclusion: not judged" in proc.stdout
    assert run(repo, "git", "status", "--porcelain", "results/report").stdout == ""
