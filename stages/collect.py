"""DVC stage collect_<run>: record the PID expert's episodes that one imitation run trains on, for one seed."""

from aqil.cli import run_stage
from aqil.layout import COLLECTING_RUNS
from aqil.trajectories import collect_stage

if __name__ == "__main__":
    run_stage(collect_stage, "Record the PID expert's episodes for one imitation run and seed.",
              runs=list(COLLECTING_RUNS))
