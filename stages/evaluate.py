"""DVC stage evaluate: greedy evaluation of one run's trained network for one seed."""

import sys

from aqil.cli import run_stage
from aqil.evaluate import evaluate_stage
from aqil.runs import RUNS

if __name__ == "__main__":
    usage = f"usage: python -m stages.evaluate RUN --seed N  (RUN one of {', '.join(RUNS)})"
    if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help"):
        sys.exit(print(f"{usage}\nGreedy evaluation of one run's trained network for one seed.") or 0)
    run = sys.argv.pop(1) if len(sys.argv) > 1 and sys.argv[1] in RUNS else ""
    if not run:
        sys.exit(f"aqil: error: {usage}")
    run_stage(lambda params, seed, results: evaluate_stage(run, params, seed, results), f"Evaluate {run} greedily.")
