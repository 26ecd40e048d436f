"""DVC stage compare: AQIL against the baselines on the same expert data (see aqil/compare.py)."""

from aqil.cli import run_stage
from aqil.compare import compare_stage

if __name__ == "__main__":
    run_stage(compare_stage, "AQIL against standard uses of the same expert data.")
