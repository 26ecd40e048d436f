"""DVC stage evaluate: greedy evaluation of one of the paper's trained networks for one seed."""

from aqil.evaluate import main
from aqil.runs import RUNS

if __name__ == "__main__":
    main("evaluate", RUNS)
