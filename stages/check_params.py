"""DVC stage check_params: validate the whole params.yaml whenever the file changes.

Every stage depends on its mark, so a file that fails validation (a misspelled section, say) stops
`dvc repro` before any stage has removed its outputs.
"""

if __name__ == "__main__":
    from aqil.cli import guard_imports

    guard_imports()  # first: Ctrl-C or an error during the slow imports below is one line, no traceback
    from aqil.cli import run_stage
    from aqil.pipeline import check_params_stage

    run_stage(check_params_stage, "Check params.yaml.")
