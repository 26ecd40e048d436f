#!/bin/sh
# Default command of the aqil image: run the DVC pipeline in the working directory and make sure the
# closing summary of your run's report is printed once. Arguments are passed on to `dvc repro`; without
# any, it reproduces `report` (the paper's Table 2 for params.yaml's seeds), not the baselines beside it
# (`dvc repro compare`). The report stage prints the summary when it runs; when nothing reran, it is
# printed here.
set -eu

if [ "$#" -eq 0 ]; then
    set -- report
fi
report=results/local/report
before=$(cat "$report/summary.txt" 2>/dev/null | cksum; ls -l --time-style=+%s "$report/summary.txt" 2>/dev/null || true)
dvc repro "$@"
after=$(cat "$report/summary.txt" 2>/dev/null | cksum; ls -l --time-style=+%s "$report/summary.txt" 2>/dev/null || true)

if [ ! -f "$report/summary.txt" ]; then
    echo "no summary found under $report/" >&2
    exit 1
fi
if [ "$before" = "$after" ]; then  # the report did not run: show its summary
    echo
    cat "$report/summary.txt"
fi
echo
echo "Your run's report: $report/report.md, figures in $report/figures/ (under $(pwd -P) in the container)."
echo "The published report (many seeds): results/report/report.md"
