"""DVC stage bc250: train the run for one seed (see aqil/baselines.py)."""

from functools import partial

from aqil.baselines import train_stage
from aqil.cli import run_stage

if __name__ == "__main__":
    run_stage(partial(train_stage, "bc250"), "Train bc250 for one seed.", run="bc250")
