"""The two report stages: ``report`` (your run's seeds, into results/local/report) and ``publish``
(the published records in results/report/episodes, into results/report).

Both go through the same records: the local report first exports its seeds' records, so that what
you run and what is published are reported by one code path. The local report is written into a
staging folder and moved into place whole; the published one file by file, atomically, beside its
git-tracked records (a refused report leaves the previous one untouched).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from aqil import paper
from aqil.artifacts import ArtifactError, first_non_finite, write_json, write_text
from aqil.config import Params
from aqil.layout import PAPER_RUNS
from aqil.published import export_seed
from aqil.reporting import plots, render, tables
from aqil.reporting.records import common_params, load_records, reference_rewards

REFERENCE = Path("data") / "reference"
LOCAL = Path("local") / "report"
PUBLISHED = Path("results") / "report"


def _figures(folder: Path, records: dict, reference: dict, window: int) -> dict[str, str]:
    """Draw every figure into ``folder``; returns file name -> title."""
    names = {}
    for run in tables.ORDER:
        if records[run]:
            name = f"fig{paper.FIGURES[run][0]}_{run}_loss_reward.png"
            plots.curves_figure(folder / name, run, records[run], reference[run], window)
            names[name] = f"{PAPER_RUNS[run].label}: loss and reward per episode"
    if all(records[r] for r in tables.ORDER):
        plots.table2_figure(folder / "table2.png", records)
        plots.profile_figure(folder / "performance_profile.png", records)
        plots.survival_figure(folder / "survival.png", records, reference)
        names |= {"table2.png": "Table 2, every seed", "performance_profile.png": "Performance profile",
                  "survival.png": "Episode rewards, ours against the reference's"}
    return names


def write_report(records_dir: Path, out: Path, reference_dir: Path = REFERENCE) -> dict[str, Any]:
    """Build the report from the records in ``records_dir`` into ``out`` (report.md, summary.txt,
    summary.json, table2.json, curves.tsv, figures/); returns the table."""
    records = load_records(records_dir)
    params = common_params(records)
    reference = reference_rewards(reference_dir)
    table = tables.build(records, params, reference)
    bad = first_non_finite({k: v for k, v in table.items() if k != "non_paper_settings"})
    if bad:
        raise ArtifactError(f"{records_dir}: the report's {bad} is NaN or infinite; refusing to write it")
    staging = out / ".figures.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        figures = _figures(staging, records, reference, params["report"]["moving_average"])
        shutil.rmtree(out / "figures", ignore_errors=True)
        os.replace(staging, out / "figures")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    dirty = any((r.commit or "").endswith("-dirty") for recs in records.values() for r in recs)
    write_text(out / "curves.tsv", plots.curves_table({r: records[r] for r in tables.ORDER},
                                                     params["report"]["moving_average"]))
    write_json(out / "table2.json", table)
    write_json(out / "summary.json", render.small_metrics(table))
    write_text(out / "summary.txt", render.summary_lines(table))
    write_text(out / "report.md", render.markdown(table, params, figures, dirty))
    return table


def report_stage(params: Params, _seed: int, results: Path) -> None:
    """Your run's report: export each paper run's seeds, then report on them (results/local/report)."""
    out = results / LOCAL
    staging = out.with_name(f".{out.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        for run in PAPER_RUNS:
            for seed in params.seeds.of(run):
                export_seed(results, staging / "episodes", run, seed, None, params)
        write_report(staging / "episodes", staging)
        shutil.rmtree(out, ignore_errors=True)
        os.replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print((out / "summary.txt").read_text(), end="")


def publish_stage(_params: Params, _seed: int, results: Path) -> None:
    """The published report, from the git-tracked records in results/report/episodes."""
    out = results / "report"
    write_report(out / "episodes", out)
    print((out / "summary.txt").read_text(), end="")
