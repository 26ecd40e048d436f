#!/bin/sh
# Default command of the aqil image: run the DVC pipeline in the working directory,
# then print Table 2 of the report. Arguments are passed on to `dvc repro`.
set -eu

dvc repro "$@"

report=results/report
echo
if [ -f "$report/table2.md" ]; then
    echo "== Table 2 ($report/table2.md) =="
    cat "$report/table2.md"
elif [ -f "$report/table2.csv" ]; then
    echo "== Table 2 ($report/table2.csv) =="
    python - "$report/table2.csv" <<'EOF'
import csv
import sys

with open(sys.argv[1], newline="") as f:
    rows = list(csv.reader(f))
if rows:
    widths = [max(len(r[i]) if i < len(r) else 0 for r in rows) for i in range(len(rows[0]))]
    fmt = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    print(fmt(rows[0]))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows[1:]:
        print(fmt(r))
EOF
else
    echo "no Table 2 found under $report/" >&2
    exit 1
fi
echo
echo "Full report: $report/report.md, figures in $report/figures/ (under $(pwd -P) in the container)"
