"""aqil/prune.py: which result files belong to seeds no longer listed, and their guarded removal."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from aqil.config import Params, SeedsConfig, to_dict
from aqil.layout import collect_dir, eval_file, run_dir, timing_file
from aqil.prune import main, stale_seed_paths, warning

ROOT = Path(__file__).resolve().parents[1]


def _seeds(**runs: list[int]) -> SeedsConfig:
    return dataclasses.replace(SeedsConfig(), **runs)


def _layout(results: Path, run: str, seeds: list[int]) -> None:
    """A trained, evaluated and timed seed of ``run`` (and its expert episodes for a collecting run)."""
    for seed in seeds:
        run_dir(results, run, seed).mkdir(parents=True, exist_ok=True)
        (run_dir(results, run, seed) / "metrics.json").write_text(f'{{"run": "{run}", "seed": {seed}}}')
        for where in (eval_file, timing_file):
            where(results, run, seed).parent.mkdir(parents=True, exist_ok=True)
            where(results, run, seed).write_text(f'{{"{where.__name__}": "{run}", "seed": {seed}}}')
        if run in ("il250", "il500"):
            (collect_dir(results, run, seed) / "trajectories").mkdir(parents=True, exist_ok=True)
            (collect_dir(results, run, seed) / "trajectories" / "obs.npy").write_text(f"{run} {seed}")


def _rel(paths: list[Path], base: Path) -> list[str]:
    return [p.relative_to(base).as_posix() for p in paths]


def test_stale_paths_are_exactly_each_runs_unlisted_seeds(tmp_path):
    _layout(tmp_path, "il250", [0, 1, 10])
    _layout(tmp_path, "rl500", [0, 1])
    (tmp_path / "il250" / "seed1.partial").mkdir()  # not a seed's folder: never touched
    (tmp_path / "il250" / "seed01").mkdir()  # nor is a name the layout never writes
    (tmp_path / "report").mkdir()
    seeds = _seeds(il250=[0, 10], rl500=[0, 1], il250_rl250=[0], bc250=[0], dqfd250_rl250=[0])
    assert _rel(stale_seed_paths(tmp_path, seeds), tmp_path) == [
        "collect/il250/seed1", "eval/il250/seed1.json", "il250/seed1", "timing/il250/seed1.json"]
    everything = _seeds(il250=[0, 1, 10], rl500=[0, 1])
    assert stale_seed_paths(tmp_path, everything) == [] and warning(tmp_path, everything) is None
    assert "4 result paths belong to seeds not in params.yaml's seeds of their runs" in warning(tmp_path, seeds)


def test_a_seed_listed_for_another_run_is_still_stale(tmp_path):
    """Seeds are per run: rl500's seed 1 does not keep il500's seed 1."""
    _layout(tmp_path, "il500", [0, 1])
    _layout(tmp_path, "rl500", [0, 1])
    stale = _rel(stale_seed_paths(tmp_path, _seeds(il500=[0], rl500=[0, 1])), tmp_path)
    assert stale == ["collect/il500/seed1", "eval/il500/seed1.json", "il500/seed1", "timing/il500/seed1.json"]


def test_links_are_never_followed(tmp_path):
    results, outside = tmp_path / "results", tmp_path / "outside"
    (outside / "seed7").mkdir(parents=True)
    (outside / "seed7" / "precious.txt").write_text("elsewhere")
    (outside / "seed8.json").write_text("elsewhere")
    _layout(results, "rl500", [0])
    (results / "eval" / "il250").symlink_to(outside)  # a linked folder of the layout is not searched
    (results / "rl500" / "seed7").symlink_to(outside / "seed7")  # a linked seed folder: removed as a link
    run_dir(results, "rl500", 0).joinpath("model.pt").symlink_to(outside / "seed8.json")
    stale = stale_seed_paths(results, _seeds())
    assert _rel(stale, results) == ["rl500/seed7"]
    assert main(["--params", str(_params(tmp_path, _seeds())), "--results", str(results), "--yes"]) == 0
    assert not (results / "rl500" / "seed7").exists() and (outside / "seed7" / "precious.txt").read_text()
    assert (outside / "seed8.json").exists() and (results / "eval" / "il250").is_symlink()


def _params(folder: Path, seeds: SeedsConfig) -> Path:
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(to_dict(Params(seeds=seeds))))
    return path


def _run(*args: str, cwd: Path) -> str:
    proc = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, check=True)
    return proc.stdout


@pytest.fixture()
def repo(tmp_path) -> Path:
    """A git and DVC repository with seeds 0 and 1 of il250 and rl500; params.yaml lists only seed 0."""
    _run("git", "init", "-q", cwd=tmp_path)
    _run(sys.executable, "-m", "dvc", "init", "-q", cwd=tmp_path)
    _layout(tmp_path / "results", "il250", [0, 1])
    _layout(tmp_path / "results", "rl500", [0, 1])
    _params(tmp_path, _seeds())
    return tmp_path


def _cache_everything_but(repo: Path, *keep: str) -> None:
    """Put every stale file except ``keep`` into DVC's cache, as `dvc commit` does (`dvc add`, then drop its
    .dvc file: the workspace then no longer uses the entry, as after editing the seeds)."""
    files = [p.relative_to(repo).as_posix() for p in (repo / "results").rglob("*")
             if p.is_file() and "seed1" in p.as_posix()]
    files = [f for f in files if f not in keep]
    _run(sys.executable, "-m", "dvc", "add", "-q", *files, cwd=repo)
    for rel in files:
        (repo / f"{rel}.dvc").unlink()
        (repo / rel).with_name(".gitignore").unlink(missing_ok=True)


def test_files_in_dvcs_cache_are_removed_and_those_without_a_copy_are_refused(repo, capsys):
    _cache_everything_but(repo, "results/eval/rl500/seed1.json")
    args = ["--params", str(repo / "params.yaml"), "--results", str(repo / "results")]
    assert main(args) == 0
    listing = capsys.readouterr().out
    assert f"stale: {repo}/results/il250/seed1/ (1 files: 1 in DVC's cache)" in listing
    assert f"stale: {repo}/results/eval/rl500/seed1.json (NOT in DVC's cache: its only copy)" in listing
    assert main([*args, "--yes"]) == 2  # the one file without a copy keeps everything
    err = capsys.readouterr().err
    assert err.startswith("aqil: error: 1 files are not in DVC's cache, so removing them would delete their only "
                          f"copies ({repo}/results/eval/rl500/seed1.json); nothing was removed")
    assert len(stale_seed_paths(repo / "results", _seeds())) == 7
    assert main([*args, "--yes", "--delete-uncached"]) == 0
    assert stale_seed_paths(repo / "results", _seeds()) == []
    assert (repo / "results" / "il250" / "seed0" / "metrics.json").is_file()


def test_all_cached_needs_only_yes(repo, capsys):
    _cache_everything_but(repo)
    assert main(["--params", str(repo / "params.yaml"), "--results", str(repo / "results"), "--yes"]) == 0
    assert "removed 7 paths" in capsys.readouterr().out
    assert stale_seed_paths(repo / "results", _seeds()) == []


def test_gitignore_files_git_tracks_are_named(repo, capsys):
    _cache_everything_but(repo)
    ignore = repo / "results" / "il250" / "seed1" / ".gitignore"
    ignore.write_text("/model.pt\n")
    _run("git", "add", "-f", str(ignore), cwd=repo)
    _run("git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "outputs' .gitignore", cwd=repo)
    assert main(["--params", str(repo / "params.yaml"), "--results", str(repo / "results"), "--yes"]) == 0
    out = capsys.readouterr().out
    assert (f"  {ignore}: tracked by git; its removal shows in `git status` (commit it, or `git checkout -- "
            f"{ignore}` restores the file)") in out
    status = _run("git", "status", "--porcelain", "--untracked-files=no", cwd=repo)
    assert status.splitlines() == [" D results/il250/seed1/.gitignore"]
    _run("git", "checkout", "--", str(ignore), cwd=repo)  # restored, as the note says
    ignore.write_text("changed\n")  # tracked but modified: its changes have no other copy
    assert main(["--params", str(repo / "params.yaml"), "--results", str(repo / "results"), "--yes"]) == 2
    assert f"copies ({ignore}); nothing was removed" in capsys.readouterr().err


HOLD_LOCK = textwrap.dedent("""
    import sys, time
    from dvc.lock import make_lock
    lock = make_lock(sys.argv[1] + "/.dvc/tmp/lock", tmp_dir=sys.argv[1] + "/.dvc/tmp")
    with lock:
        print("locked", flush=True)
        time.sleep(60)
""")


def test_nothing_is_removed_while_dvc_holds_its_lock(repo, capsys):
    _cache_everything_but(repo)
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(repo)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main(["--params", str(repo / "params.yaml"), "--results", str(repo / "results"), "--yes"]) == 2
    finally:
        holder.kill()
        holder.wait()
    assert capsys.readouterr().err == (f"aqil: error: {repo}/.dvc/tmp/lock: held by a running dvc command (dvc "
                                       "repro?); nothing was removed: run prune again when it has finished\n")
    assert len(stale_seed_paths(repo / "results", _seeds())) == 7
    assert main(["--params", str(repo / "params.yaml"), "--results", str(repo / "results"), "--yes"]) == 0


def test_outside_a_dvc_repository_every_file_is_its_only_copy(tmp_path, capsys):
    _layout(tmp_path / "results", "il250", [0, 1])
    args = ["--params", str(_params(tmp_path, _seeds())), "--results", str(tmp_path / "results")]
    assert main(args) == 0
    assert "not inside a DVC repository" in capsys.readouterr().out
    assert main([*args, "--yes"]) == 2 and len(stale_seed_paths(tmp_path / "results", _seeds())) == 4
    assert main([*args, "--yes", "--delete-uncached"]) == 0
    assert main(args) == 0 and "nothing to remove" in capsys.readouterr().out


def test_bad_params_is_one_line(tmp_path, capsys):
    (tmp_path / "params.yaml").write_text("seeds: [0]\nevalute: {}\n")
    assert main(["--params", str(tmp_path / "params.yaml"), "--results", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("aqil: error: ")


def test_the_command_runs_as_documented(tmp_path):
    _layout(tmp_path / "results", "rl500", [0])
    _params(tmp_path, _seeds())
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "aqil.prune"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.startswith("nothing to remove"), proc.stderr
