"""Result files of seeds that params.yaml no longer lists, and a command that removes them.

``report`` depends on whole result folders, because dvc.yaml cannot list per-seed files for a seed
list that varies. So files left behind by a dropped seed (``seeds`` edited, or ``dvc exp apply`` of an
experiment with fewer seeds) make ``report`` look changed and show up in ``git status``. The report
reads only the listed seeds and warns about the rest; this command lists them, and removes them
with ``--yes``::

    python -m aqil.prune          # list what is stale
    python -m aqil.prune --yes    # remove it; the next dvc repro reruns only report
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

from aqil.config import ConfigError, load_params

_SEED = re.compile(r"seed(\d+)(\.json)?")
_SEED_FILES = ["eval", "timing"]  # results/<name>/<run>/seed<N>.json


def stale_seed_paths(results: Path, seeds: list[int]) -> list[Path]:
    """Every per-seed folder or file under ``results`` whose seed is not in ``seeds``, sorted."""
    keep = set(seeds)
    candidates = [p for p in results.glob("*/seed*") if p.is_dir()]  # results/<collect or run>/seed<N>/
    candidates += [p for name in _SEED_FILES for p in (results / name).glob("*/seed*.json") if p.is_file()]
    stale = []
    for path in candidates:
        match = _SEED.fullmatch(path.name)
        if match and int(match.group(1)) not in keep:
            stale.append(path)
    return sorted(stale)


def warning(results: Path, seeds: list[int]) -> str | None:
    """One line for the report stage, or None when nothing is stale."""
    stale = stale_seed_paths(results, seeds)
    if not stale:
        return None
    shown = ", ".join(str(p) for p in stale[:4]) + (f" and {len(stale) - 4} more" if len(stale) > 4 else "")
    return (f"aqil: warning: {len(stale)} result paths belong to seeds not in params.yaml's seeds {seeds} and are "
            f"not reported: {shown}; remove them with `python -m aqil.prune --yes`")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aqil.prune", description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file (default: %(default)s)")
    parser.add_argument("--results", type=Path, default=Path("results"), help="results folder (default: %(default)s)")
    parser.add_argument("--yes", action="store_true", help="remove them (without it: only list them)")
    args = parser.parse_args(argv)
    try:
        seeds = load_params(args.params).seeds
    except ConfigError as exc:
        print(f"aqil: error: {exc}", file=sys.stderr)
        return 2
    stale = stale_seed_paths(args.results, seeds)
    if not stale:
        print(f"nothing to remove: every result under {args.results} belongs to seeds {seeds}")
        return 0
    for path in stale:
        print(("removing " if args.yes else "stale: ") + str(path))
        if args.yes and path.is_dir():
            shutil.rmtree(path)
        elif args.yes:
            path.unlink()
    if args.yes:
        print(f"removed {len(stale)} paths; the next `dvc repro` reruns only report")
    else:
        print(f"{len(stale)} paths of seeds not in {seeds}; run `python -m aqil.prune --yes` to remove them")
    return 0


if __name__ == "__main__":
    sys.exit(main())
