"""DVC stage evaluate_baselines: greedy evaluation of one baseline's trained network for one seed."""

from aqil.baselines import BASELINES
from aqil.evaluate import main

if __name__ == "__main__":
    main("evaluate_baselines", BASELINES)
