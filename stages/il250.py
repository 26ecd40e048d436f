"""DVC stage il250: train the run for one seed (see aqil/runs.py)."""

from functools import partial

from aqil.cli import run_stage
from aqil.runs import train_stage

if __name__ == "__main__":
    run_stage(partial(train_stage, "il250"), "Train il250 for one seed.", run="il250")
