"""DVC stage evaluate: greedy evaluation of one of the paper's trained networks for one seed."""

if __name__ == "__main__":
    from aqil.cli import guard_imports

    guard_imports()  # first: Ctrl-C or an error during the slow imports below is one line, no traceback
    from aqil.evaluate import main
    from aqil.runs import RUNS

    main("evaluate", RUNS)
