"""DVC stage collect_<run>: record the PID expert's episodes that one imitation run trains on, for one seed."""

if __name__ == "__main__":
    from aqil.cli import guard_imports

    guard_imports()  # first: Ctrl-C or an error during the slow imports below is one line, no traceback
    from aqil.cli import run_stage
    from aqil.layout import COLLECTING_RUNS
    from aqil.trajectories import collect_stage

    run_stage(collect_stage, "Record the PID expert's episodes for one imitation run and seed.",
              runs=list(COLLECTING_RUNS))
