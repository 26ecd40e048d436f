"""DVC stage il500: train the run for one seed (see aqil/runs.py)."""

from functools import partial

from aqil.cli import run_stage
from aqil.runs import train_stage

if __name__ == "__main__":
    run_stage(partial(train_stage, "il500"), "Train il500 for one seed.", run="il500")
