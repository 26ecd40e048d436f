#!/bin/sh
# Default command of the aqil image: run the DVC pipeline in the working directory,
# then print the report's closing summary. Arguments are passed on to `dvc repro`; without any,
# it reproduces `report` (the paper's Table 2), not the baselines beside it (`dvc repro compare`).
set -eu

if [ "$#" -eq 0 ]; then
    set -- report
fi
dvc repro "$@"

report=results/report
echo
# The same closing summary the report stage printed (it is not printed when nothing reran).
if [ -f "$report/summary.txt" ]; then
    cat "$report/summary.txt"
else
    echo "no summary found under $report/" >&2
    exit 1
fi
echo
echo "Full report: $report/report.md, figures in $report/figures/ (under $(pwd -P) in the container)"
