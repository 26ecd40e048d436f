"""DVC stage report: Table 2, verdicts and figures for this run's seeds (results/local/report)."""

if __name__ == "__main__":
    from aqil.cli import guard_imports

    guard_imports()  # first: Ctrl-C or an error during the slow imports below is one line, no traceback
    from aqil.cli import run_stage
    from aqil.reporting.build import report_stage

    run_stage(report_stage, "Write the report of your run: Table 2, the verdicts and the figures.")
