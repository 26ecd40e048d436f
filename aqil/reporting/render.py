"""The report's text: report.md, summary.txt (the closing lines a run prints), summary.json (DVC's metrics).

Every sentence is built from the table (aqil/reporting/tables.py); nothing here computes a statistic.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from aqil import paper
from aqil.layout import PAPER_RUNS
from aqil.reporting.tables import ORDER

DEVIATIONS = Path(__file__).with_name("deviations.yaml")
COLUMN = {"avg_reward": "average", "best_reward": "best"}
RULE = ("two-sided rank test of the paper's single run among our seeds in its regime (seeds that did not diverge), "
        "Holm-corrected over the 8 cells; 95% Clopper-Pearson interval for the paper's percentile; *consistent* "
        "when that interval lies inside (2.5%, 97.5%), *inconsistent* when the adjusted p <= 0.05")


def fmt(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:,.{digits}f}"


def _p(value: float | None) -> str:
    return "-" if value is None else f"{value:.2g}"


def pct(low: float, high: float) -> str:
    return f"{100 * low:.0f}-{100 * high:.0f}%"


def share(s: dict[str, Any]) -> str:
    return f"{s['k']}/{s['n']} ({pct(s['low'], s['high'])})"


def runs(table: dict) -> list[tuple[str, dict]]:
    """The table's runs in the paper's order (a table read back from JSON has its keys sorted)."""
    return [(run, table["runs"][run]) for run in ORDER if run in table["runs"]]


def seed_counts(table: dict) -> str:
    return ", ".join(f"{e['label']} {e['n']}" for _, e in runs(table))


def conclusion_line(table: dict) -> str:
    """One sentence: the paper's conclusion HOLDS, DOES NOT HOLD (naming what fails), or is not judged."""
    if not table["judged"]:
        return f"Paper's conclusion: not judged ({table['not_judged_because']})."
    c = table["conclusion"]
    claim = "Paper's conclusion (IL250+RL250 beats IL250, IL500 and RL500)"
    test = (f"one-sided Mann-Whitney, capped evaluations ranked against the claim tested, Holm over 12 tests, "
            f"alpha 0.05; seeds: {seed_counts(table)}")
    if c["holds"]:
        return f"{claim}: HOLDS ({test})."
    if c["refuted"]:
        return f"{claim}: DOES NOT HOLD -- the other run is significantly better: {', '.join(c['against'])} ({test})."
    return f"{claim}: NOT SHOWN -- not significant against {', '.join(c['failed'])} ({test})."


def verdict_word(table: dict, run: str, column: str) -> str:
    return table["verdicts"][f"{run}.{column}"]["word"] if table["judged"] else "not judged"


def banner(table: dict, dirty: bool) -> list[str]:
    """What a reader must see before any number."""
    lines = []
    if table["non_paper_settings"]:
        changed = "; ".join(f"`{k}: {a}` (paper {b})" for k, (a, b) in table["non_paper_settings"].items())
        lines += [f"> **Not the paper's settings:** {changed}. Nothing below is judged against Table 2.", ""]
    elif not table["judged"]:
        lines += [f"> **Not judged:** {table['not_judged_because']}.", ""]
    if dirty:
        lines += ["> **Uncommitted code:** some records were trained from code with uncommitted changes "
                  "(their commit ends in -dirty).", ""]
    return lines


def table2_rows(table: dict) -> list[str]:
    rows = ["| Run | Column | Paper | Ours: median (mean, IQM), seeds that did not diverge | Paper's percentile "
            "(95% CI) | p (Holm) | Verdict | Seeds for a decision |", "|---|---|---|---|---|---|---|---|"]
    for run, e in runs(table):
        for column in paper.COLUMNS:
            c, f = e["columns"][column], e["columns"][column]["finite"]
            ours = "no seeds" if not f["n"] else (f"{fmt(f['median'])} ({fmt(f['mean'])}, {fmt(f.get('iqm'))}; "
                                                  f"n = {f['n']})")
            v = table.get("verdicts", {}).get(f"{run}.{column}")
            needed = "-" if not v or not v["n"] else str(v["seeds_needed"] or "none suffices")
            cells = ([pct(v["low"], v["high"]), f"{v['p_holm']:.3f}", verdict_word(table, run, column), needed]
                     if v and v["n"] else ["-", "-", verdict_word(table, run, column) if v else "-", "-"])
            rows.append(f"| {e['label']} | {COLUMN[column]} | {fmt(c['paper'])} | {ours} | " + " | ".join(cells) + " |")
    return rows


def regime_rows(table: dict) -> list[str]:
    rows = ["| Run | Seeds | Diverged to NaN (95% CI) | Learn to balance (an episode of 1,000+ steps) | "
            "Seeds with capped episodes |", "|---|---|---|---|---|"]
    for _, e in runs(table):
        rows.append(f"| {e['label']} | {e['n']} | {share(e['diverged'])} | {share(e['balance'])} | "
                    f"{len(e['capped_seeds'])} |")
    return rows


def conclusion_rows(table: dict) -> list[str]:
    rows = ["| IL250+RL250 against | Measure | P(IL250+RL250 better) (95% CI) | p, claim (Holm) | "
            "p, the other better (Holm) | Capped seeds ranked first: claim / other better | Test |",
            "|---|---|---|---|---|---|---|"]
    for c in table["conclusion"]["comparisons"]:
        rows.append(f"| {PAPER_RUNS[c['other']].label} | {c['measure']} | "
                    f"{c['probability_of_improvement']:.2f} ({c['low']:.2f}-{c['high']:.2f}) | {c['p_holm']:.2g} | "
                    f"{c['p_reverse_holm']:.2g} | {c['censored_b']} / {c['censored_reverse']} | "
                    f"Mann-Whitney, {c['method']} |")
    return rows


def reference_rows(table: dict) -> list[str]:
    rows = ["| Run | Our episodes (seeds) | Reference's episodes | KS distance | KS p | Log-rank p (capped censored) | "
            "First episode with reward >= 1,000 / 5,000 / 13,044: reference; our median (seeds reaching) |",
            "|---|---|---|---|---|---|---|"]
    for run, r in table["reference"].items():
        firsts = "; ".join(f"{'never' if f['reference'] is None else f['reference']}; "
                           f"{fmt(f['median_episode'], 0)} ({f['seeds_reaching']})"
                           for f in r["first_reaching"].values())
        rows.append(f"| {PAPER_RUNS[run].label} | {r['episodes_ours']:,} ({r['seeds']}) | {r['episodes_reference']} | "
                    f"{r['ks_statistic']:.3f} | {r['ks_p']:.2g} | {_p(r.get('logrank_p'))} | {firsts} |")
    return rows


def deviation_rows(params: dict[str, Any]) -> list[str]:
    rows = ["| What | Paper / reference | This pipeline |", "|---|---|---|"]
    for d in yaml.safe_load(DEVIATIONS.read_text()):
        ours = d["ours"]
        if "param" in d:
            value: Any = params
            for key in d["param"].split("."):
                value = value[key]
            ours += f" (`{d['param']}: {value}`)"
        rows.append(f"| {d['what']} | {d['reference']} | {ours} |")
    return rows


def markdown(table: dict, params: dict[str, Any], figures: dict[str, str], dirty: bool) -> str:
    sections = [
        "# AQIL reproduction report", "",
        "Paper: Agarwal & Zhang, *Augmented Q-Imitation-Learning*, arXiv:2004.00993 (one run per method). "
        f"Seeds per run here: {seed_counts(table)}.", "", *banner(table, dirty),
        "## Verdict", "", f"**{conclusion_line(table)}**", "", f"Table 2 rule: {RULE}.", "",
        "## Table 2: training-episode reward, ours against the paper", "", *table2_rows(table), "",
        "*Seeds for a decision*: the seeds this cell would need for an 80% chance of a decisive verdict, if the "
        "paper's percentile among our runs is what we measure now (docs/statistics.md); *none suffices*: the "
        "paper's value sits so near the edge of our distribution that no number of seeds decides it.", "",
        "## Regimes: runs that diverged, and runs that learn", "", *regime_rows(table), "",
    ]
    if "conclusion" in table:
        sections += ["## The paper's conclusion, tested", "", *conclusion_rows(table), "",
                     "A greedy evaluation that reached the step cap is a lower bound: each test ranks the claimed "
                     "loser's capped seeds above every seed of both runs, so a significant p holds whatever those "
                     "episodes would have scored. IL250+RL250 seed s continues IL250 seed s; the unpaired test of "
                     "that pair errs on the conservative side (docs/statistics.md).", "",
                     "## Our episodes against the reference's", "",
                     "The reference published every Table 2 run's per-episode rewards (data/reference, MIT). Ours "
                     "are the pooled episodes of the seeds that did not diverge.", "", *reference_rows(table), ""]
    sections += ["## Figures", "", *(f"![{title}](figures/{name})" for name, title in figures.items()), "",
                 "## Deviations from the paper and the reference", "", *deviation_rows(params), ""]
    return "\n".join(sections)


def summary_lines(table: dict) -> str:
    """The closing summary a run prints: the verdict of each cell and the conclusion."""
    lines = [conclusion_line(table)]
    for run, e in runs(table):
        cells = "; ".join(f"{COLUMN[c]} {verdict_word(table, run, c)}" for c in paper.COLUMNS)
        seeds = f"{e['n']:>3} seed{'s' if e['n'] != 1 else ' '}"
        lines.append(f"{e['label']:<12} {seeds}, diverged {share(e['diverged'])}: {cells}")
    return "\n".join(lines) + "\n"


def small_metrics(table: dict) -> dict[str, Any]:
    """summary.json: the few numbers DVC shows (`dvc metrics show` stays under 160 columns): each run's
    seeds, how many Table 2 cells are consistent, inconsistent or undecided, and whether the conclusion holds."""
    words = [v["word"].split(" (")[0] for v in table.get("verdicts", {}).values()] if table["judged"] else []
    return {"seeds": {run: e["n"] for run, e in runs(table)},
            **{w: words.count(w) for w in ("consistent", "inconsistent", "undecided")},
            "holds": int(table["judged"] and table["conclusion"]["holds"])}
