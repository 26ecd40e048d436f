"""Retrain published seeds and check they give the same bytes (``python -m aqil.verify RUN SEED...``).

Each published record holds the sha256 of every output its seed produced (aqil/published.py). This
retrains the seed from nothing with the record's own params, in a temporary folder, with this
checkout's code, and compares every output: a reader's check that the published numbers are what the
code computes, on their own CPU.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from aqil.artifacts import ArtifactError, read_json
from aqil.config import ConfigError, Params, parse_params
from aqil.evaluate import evaluate_stage
from aqil.layout import ALL_RUNS, PAPER_RUNS, eval_file, run_dir
from aqil.published import OUTPUTS, PUBLISHED, seed_files, sha256
from aqil.runs import train_stage
from aqil.trajectories import collect_stage


def _params(record: dict, run: str, seed: int) -> Params:
    """The record's settings, with this seed (alone) listed for every run, so that every parent has it."""
    return parse_params(record["params"] | {"seeds": {key: [seed] for key in ALL_RUNS}})


def retrain(run: str, seed: int, params: Params, results: Path) -> None:
    """The seed's whole chain, as dvc.yaml's stages run it."""
    spec = ALL_RUNS[run]
    for parent in spec.parents:
        retrain(parent, seed, params, results)
    if spec.expert_from == run:
        collect_stage(run, params, seed, results)
    train_stage(run, params, seed, results)
    evaluate_stage(spec, params, seed, results)


def verify(root: Path, run: str, seed: int) -> list[str]:
    """Names of the outputs whose bytes differ from the record's (empty: the same bytes)."""
    record = read_json(seed_files(root, run, seed)[1], ("params", "sha256"))
    with tempfile.TemporaryDirectory(prefix="aqil-verify-") as tmp:
        results = Path(tmp)
        retrain(run, seed, _params(record, run, seed), results)
        ours = {name: sha256(run_dir(results, run, seed) / name) for name in OUTPUTS}
        ours["eval.json"] = sha256(eval_file(results, run, seed))
    return [name for name, digest in record["sha256"].items() if ours.get(name) != digest]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", choices=list(PAPER_RUNS))
    parser.add_argument("seeds", type=int, nargs="+")
    parser.add_argument("--records", type=Path, default=PUBLISHED, help="records folder (default: %(default)s)")
    args = parser.parse_args(argv)
    failed = 0
    try:
        for seed in args.seeds:
            differ = verify(args.records, args.run, seed)
            failed += bool(differ)
            print(f"{args.run} seed {seed}: " + (f"DIFFERENT bytes: {', '.join(differ)}" if differ
                                                 else "the same bytes as published (every output)"), flush=True)
    except (ArtifactError, ConfigError) as exc:
        sys.exit(f"aqil: error: {exc}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
