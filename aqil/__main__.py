"""``python -m aqil``: the project's commands, each one line (importing nothing heavy)."""

from __future__ import annotations

import sys

COMMANDS = {
    "dvc repro report": "train and evaluate your seeds (params.yaml), then write results/local/report",
    "dvc repro compare": "the baselines (BC, BC+RL, DAgger, DQfD) beside IL250+RL250: results/local/compare",
    "dvc repro publish": "rebuild the published report (results/report) from its git-tracked records",
    "python -m aqil.sweep": "many seeds in parallel, on this machine or a Dask cluster (docs/scaling.md)",
    "python -m aqil.published RUN SEED...": "export trained seeds into the published records",
    "python -m aqil.verify RUN SEED...": "retrain published seeds and check every output's bytes",
    "python -m aqil.prune": "list (and with --yes remove) result files of seeds no longer in params.yaml",
    "python -m aqil.pipeline": "regenerate dvc.yaml from the run registry and the stages' imports",
    "python -m aqil.reporting.readme": "regenerate the README's headline from the published report",
}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    unknown = bool(args) and args[0] not in ("-h", "--help")
    if unknown:
        print(f"aqil: error: {args[0]!r} is not a command; the commands are below", file=sys.stderr)
    width = max(map(len, COMMANDS))
    print("aqil: a DVC pipeline reproducing Augmented Q-Imitation-Learning (arXiv:2004.00993).\n")
    print("\n".join(f"  {cmd:<{width}}  {what}" for cmd, what in COMMANDS.items()))
    print("\nEach command takes --help. The README and docs/ say more.")
    return 2 if unknown else 0


if __name__ == "__main__":
    sys.exit(main())
