"""DVC stage report: Table 2, verdicts and figures for this run's seeds (results/local/report)."""

from aqil.cli import run_stage
from aqil.reporting.build import report_stage

if __name__ == "__main__":
    run_stage(report_stage, "Write the report of your run: Table 2, the verdicts and the figures.")
