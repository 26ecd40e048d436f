"""DVC stage check_params: validate the whole params.yaml whenever the file changes.

Every stage depends on its mark, so a file that fails validation (a misspelled section, say) stops
`dvc repro` before any stage has removed its outputs.
"""

from aqil.cli import run_stage
from aqil.pipeline import check_params_stage

if __name__ == "__main__":
    run_stage(check_params_stage, "Check params.yaml.")
