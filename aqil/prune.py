"""Result files of seeds that params.yaml no longer lists, and a command that removes them.

``report`` depends on whole result folders, because dvc.yaml cannot list per-seed files for a seed
list that varies. So files left behind by a dropped seed (``seeds.<run>`` edited, or ``dvc exp apply``
of an experiment with fewer seeds) make ``report`` look changed and show up in ``git status``. The report
reads only the listed seeds and warns about the rest; this command lists them, and removes them
with ``--yes``::

    python -m aqil.prune                            # list what is stale, and whether DVC's cache holds it
    python -m aqil.prune --yes                      # remove it, if every file has another copy
    python -m aqil.prune --yes --delete-uncached    # remove it even where it is the only copy

These files may be the only copies of a dropped seed's results (``dvc gc -w`` drops cache entries the
workspace does not use), so removing is guarded: a file is removed only if DVC's cache holds its
contents (looked up by its md5, as DVC computes it) or git tracks it unmodified, unless
``--delete-uncached`` says otherwise; DVC's repository lock (.dvc/tmp/lock) is held meanwhile, so prune
never deletes under a running ``dvc repro``; files git tracks (DVC's .gitignore files) are named, with
how to restore them; symbolic links are removed as links, never followed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from aqil.config import ConfigError, SeedsConfig, load_params
from aqil.layout import ALL_RUNS, COLLECTING_RUNS, collect_dir, eval_file, run_dir, timing_file

_PROBE = 987654321  # a seed number no path holds by chance: where it appears in a path is where seeds go


def _per_seed_paths(run: str) -> list[Callable[[Path, str, int], Path]]:
    """The layout's per-seed paths of ``run`` (a folder or a file each)."""
    return [run_dir, eval_file, timing_file, *([collect_dir] if run in COLLECTING_RUNS else [])]


def _real_folder(results: Path, folder: Path) -> bool:
    """``folder`` (under ``results``) and every folder between them are folders, not symbolic links."""
    current = results
    for part in folder.relative_to(results).parts:
        current = current / part
        if current.is_symlink() or not current.is_dir():
            return False
    return True


def _seeds_on_disk(results: Path, run: str, where: Callable[[Path, str, int], Path]) -> dict[int, Path]:
    """The seeds of ``run`` that have a path ``where(results, run, seed)``, found without following links."""
    probe = where(results, run, _PROBE)
    if not _real_folder(results, probe.parent):
        return {}
    pattern = re.compile(re.escape(probe.name).replace(str(_PROBE), r"(\d+)"))
    found = {}
    with os.scandir(probe.parent) as entries:
        for entry in entries:
            match = pattern.fullmatch(entry.name)
            if match and where(results, run, int(match.group(1))) == probe.parent / entry.name:
                found[int(match.group(1))] = probe.parent / entry.name
    return found


def stale_seed_paths(results: Path, seeds: SeedsConfig) -> list[Path]:
    """Every per-seed folder or file under ``results`` whose seed is not among its run's seeds, sorted."""
    stale = []
    for run in ALL_RUNS:
        keep = set(seeds.of(run))
        for where in _per_seed_paths(run):
            stale += [path for seed, path in _seeds_on_disk(results, run, where).items() if seed not in keep]
    return sorted(stale)


def warning(results: Path, seeds: SeedsConfig) -> str | None:
    """One line for the report stage, or None when nothing is stale."""
    stale = stale_seed_paths(results, seeds)
    if not stale:
        return None
    shown = ", ".join(str(p) for p in stale[:4]) + (f" and {len(stale) - 4} more" if len(stale) > 4 else "")
    return (f"aqil: warning: {len(stale)} result paths belong to seeds not in params.yaml's seeds of their runs "
            f"and are not reported: {shown}; remove them with `python -m aqil.prune --yes`")


# -- where else a file is kept ----------------------------------------------------------------------------
CACHED, GIT, LINK, ONLY_COPY = "in DVC's cache", "tracked by git", "a symbolic link", "NOT in DVC's cache"


def files_under(path: Path) -> list[Path]:
    """The files (and links) a removal of ``path`` deletes; symbolic links are listed, never followed."""
    if path.is_symlink() or not path.is_dir():
        return [path]
    found = []
    for folder, dirs, files in os.walk(path, followlinks=False):
        found += [Path(folder) / name for name in files]
        found += [Path(folder) / name for name in dirs if (Path(folder) / name).is_symlink()]
    return sorted(found)


def dvc_root(start: Path) -> Path | None:
    """The DVC repository that holds ``start`` (the folder with .dvc), or None."""
    for folder in [start.absolute(), *start.absolute().parents]:
        if (folder / ".dvc").is_dir():
            return folder
    return None


def _in_dvc_cache(root: Path | None) -> Callable[[Path], bool]:
    """A test: does the DVC cache of ``root`` hold a file's contents? (its md5 as DVC 3 computes it, under
    files/md5/, and the md5 of DVC 2's text normalisation under the cache's top level)."""
    if root is None:
        return lambda path: False
    from dvc.repo import Repo
    from dvc_data.hashfile.hash import file_md5

    with Repo(str(root)) as repo:
        stores = [(repo.cache.local, "md5"), (repo.cache.legacy, "md5-dos2unix")]

    def cached(path: Path) -> bool:
        return any(os.path.exists(odb.oid_to_path(file_md5(str(path), name=name))) for odb, name in stores)

    return cached


def _git_files(root: Path | None, paths: list[Path], *flags: str) -> set[Path]:
    """Files under ``paths`` that ``git ls-files`` lists with ``flags`` (none outside a git checkout)."""
    if root is None or not paths:
        return set()
    rel = [str(p.absolute().relative_to(root)) for p in paths]
    try:
        out = subprocess.run(["git", "-C", str(root), "ls-files", "-z", *flags, "--", *rel],
                             capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return set()
    return {root / name for name in out.decode().split("\0") if name}


@dataclass(frozen=True)
class Survey:
    """Where each file of the stale paths is kept besides the working tree."""

    files: dict[Path, list[Path]]  # stale path -> the files removing it deletes
    kept: dict[Path, str]  # file -> CACHED | GIT | LINK | ONLY_COPY

    def of_kind(self, kind: str) -> list[Path]:
        return [f for f, k in self.kept.items() if k == kind]


def survey(stale: list[Path], root: Path | None) -> Survey:
    files = {path: files_under(path) for path in stale}
    tracked = _git_files(root, stale)
    modified = _git_files(root, stale, "--modified")
    cached = _in_dvc_cache(root)
    kept = {}
    for f in (f for listed in files.values() for f in listed):
        absolute = f.absolute()
        kept[f] = (LINK if f.is_symlink() else CACHED if cached(f) else
                   GIT if absolute in tracked and absolute not in modified else ONLY_COPY)
    return Survey(files, kept)


# -- the command -------------------------------------------------------------------------------------------
@contextlib.contextmanager
def repository_lock(root: Path | None) -> Iterator[None]:
    """DVC's own repository lock (what ``dvc repro`` holds while it runs); raises dvc's LockError if held."""
    if root is None:
        yield
        return
    from dvc.lock import make_lock
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        hardlink = repo.config["core"].get("hardlink_lock", False)
        tmp_dir = repo.tmp_dir
    with make_lock(os.path.join(tmp_dir, "lock"), tmp_dir=tmp_dir, hardlink_lock=hardlink):
        yield


def _describe(path: Path, report: Survey) -> str:
    kinds = [report.kept[f] for f in report.files[path]]
    if path.is_symlink():
        return f"{path} (a symbolic link: only the link is removed)"
    if not path.is_dir():
        return f"{path} ({kinds[0]}{': its only copy' if kinds[0] == ONLY_COPY else ''})"
    counts = ", ".join(f"{kinds.count(k)} {k}" for k in (CACHED, GIT, LINK, ONLY_COPY) if k in kinds)
    return f"{path}/ ({len(kinds)} files: {counts})"


def _print_notes(report: Survey) -> None:
    for f in report.of_kind(GIT):
        print(f"  {f}: tracked by git; its removal shows in `git status` (commit it, or `git checkout -- {f}` "
              "restores the file)")
    for f in report.of_kind(LINK):
        print(f"  {f}: a symbolic link; only the link is removed, never what it points to")
    for f in report.of_kind(ONLY_COPY):
        print(f"  {f}: NOT in DVC's cache: removing it deletes its only copy")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)  # removes links inside as links
    else:
        path.unlink()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m aqil.prune", description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file (default: %(default)s)")
    parser.add_argument("--results", type=Path, default=Path("results"), help="results folder (default: %(default)s)")
    parser.add_argument("--yes", action="store_true", help="remove them (without it: only list them)")
    parser.add_argument("--delete-uncached", action="store_true",
                        help="with --yes: also remove files DVC's cache does not hold (their only copies)")
    return parser


def _list(stale: list[Path], report: Survey, root: Path | None) -> int:
    for path in stale:
        print(f"stale: {_describe(path, report)}")
    _print_notes(report)
    alone = len(report.of_kind(ONLY_COPY))
    where = "" if root else " (not inside a DVC repository: no cache to look in)"
    print(f"{len(stale)} paths of seeds not in params.yaml's seeds of their runs; {alone} files have no other "
          f"copy{where}. `python -m aqil.prune --yes` removes them"
          + (", adding --delete-uncached to delete the files without another copy" if alone else ""))
    return 0


def _delete(stale: list[Path], report: Survey, delete_uncached: bool) -> int:
    alone = report.of_kind(ONLY_COPY)
    if alone and not delete_uncached:
        _print_notes(report)
        shown = ", ".join(map(str, alone[:3])) + (f" and {len(alone) - 3} more" if len(alone) > 3 else "")
        print(f"aqil: error: {len(alone)} files are not in DVC's cache, so removing them would delete their only "
              f"copies ({shown}); nothing was removed. Keep them, or remove them too with --yes --delete-uncached",
              file=sys.stderr)
        return 2
    for path in stale:
        print(f"removing {_describe(path, report)}")
    _print_notes(report)
    for path in stale:
        _remove(path)
    print(f"removed {len(stale)} paths; the next `dvc repro` reruns only the stages that read whole result folders")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        seeds = load_params(args.params).seeds
    except ConfigError as exc:
        print(f"aqil: error: {exc}", file=sys.stderr)
        return 2
    stale = stale_seed_paths(args.results, seeds)
    if not stale:
        print(f"nothing to remove: every result under {args.results} belongs to its run's seeds in {args.params}")
        return 0
    root = dvc_root(args.results)
    if not args.yes:
        return _list(stale, survey(stale, root), root)
    from dvc.lock import LockError

    try:
        with repository_lock(root):  # survey and remove under the lock: no dvc command runs meanwhile
            return _delete(stale, survey(stale, root), args.delete_uncached)
    except LockError:
        print(f"aqil: error: {root / '.dvc' / 'tmp' / 'lock'}: held by a running dvc command (dvc repro?); nothing "
              "was removed: run prune again when it has finished", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
