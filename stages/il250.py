"""DVC stage il250: train the run for one seed (see aqil/runs.py)."""

if __name__ == "__main__":
    from aqil.cli import guard_imports

    guard_imports()  # first: Ctrl-C or an error during the slow imports below is one line, no traceback
    from functools import partial

    from aqil.cli import run_stage
    from aqil.runs import train_stage

    run_stage(partial(train_stage, "il250"), "Train il250 for one seed.", run="il250")
