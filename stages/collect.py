"""DVC stage collect: record the PID expert's episodes for one seed."""

from aqil.cli import run_stage
from aqil.trajectories import collect_stage

if __name__ == "__main__":
    run_stage(collect_stage, "Record the PID expert's trajectories for one seed.")
