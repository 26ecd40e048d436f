"""DVC stage check_params: validate the whole params.yaml whenever the file changes.

Every stage validates params.yaml when it runs, but an edit that no stage depends on (a misspelled
section, say) would otherwise rerun nothing and pass as "up to date".
"""

from aqil.cli import run_stage
from aqil.config import confirm_valid

if __name__ == "__main__":
    run_stage(confirm_valid, "Check params.yaml.")
