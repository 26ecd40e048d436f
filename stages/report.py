"""DVC stage report: Table 2 beside the paper, verdicts, figures (see aqil/report.py)."""

from aqil.cli import run_stage
from aqil.report import report_stage

if __name__ == "__main__":
    run_stage(report_stage, "Write the report, Table 2 and the figures.")
