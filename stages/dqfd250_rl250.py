"""DVC stage dqfd250_rl250: train the run for one seed (see aqil/baselines.py)."""

from functools import partial

from aqil.baselines import train_stage
from aqil.cli import run_stage

if __name__ == "__main__":
    run_stage(partial(train_stage, "dqfd250_rl250"), "Train dqfd250_rl250 for one seed.", run="dqfd250_rl250")
