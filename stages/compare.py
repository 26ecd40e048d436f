"""DVC stage compare: AQIL against the baselines on the same expert data (see aqil/compare.py)."""

if __name__ == "__main__":
    from aqil.cli import guard_imports

    guard_imports()  # first: Ctrl-C or an error during the slow imports below is one line, no traceback
    from aqil.cli import run_stage
    from aqil.compare import compare_stage

    run_stage(compare_stage, "AQIL against standard uses of the same expert data.")
