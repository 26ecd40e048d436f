"""DVC stage publish: the published report (results/report) from the published seeds' records."""

if __name__ == "__main__":
    from aqil.cli import guard_imports

    guard_imports()  # first: Ctrl-C or an error during the slow imports below is one line, no traceback
    from aqil.cli import run_stage
    from aqil.reporting.build import publish_stage

    run_stage(publish_stage, "Write the published report from the records in results/report/episodes.")
