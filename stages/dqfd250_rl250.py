"""DVC stage dqfd250_rl250: train the run for one seed (see aqil/baselines.py)."""

if __name__ == "__main__":
    from aqil.cli import guard_imports

    guard_imports()  # first: Ctrl-C or an error during the slow imports below is one line, no traceback
    from functools import partial

    from aqil.baselines import train_stage
    from aqil.cli import run_stage

    run_stage(partial(train_stage, "dqfd250_rl250"), "Train dqfd250_rl250 for one seed.", run="dqfd250_rl250")
