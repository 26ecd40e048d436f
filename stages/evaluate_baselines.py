"""DVC stage evaluate_baselines: greedy evaluation of one baseline's trained network for one seed."""

if __name__ == "__main__":
    from aqil.cli import guard_imports

    guard_imports()  # first: Ctrl-C or an error during the slow imports below is one line, no traceback
    from aqil.baselines import BASELINES
    from aqil.evaluate import main

    main("evaluate_baselines", BASELINES)
