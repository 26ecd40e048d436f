"""DVC stage publish: the published report (results/report) from the published seeds' records."""

from aqil.cli import run_stage
from aqil.reporting.build import publish_stage

if __name__ == "__main__":
    run_stage(publish_stage, "Write the published report from the records in results/report/episodes.")
