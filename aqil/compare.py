"""Beyond the paper: AQIL (IL250+RL250) against standard uses of the same expert data.

A stage of its own, beside the paper's ``report``: the paper's Table 2 and verdict never wait for the
baselines (``dvc repro report`` trains none of them), and ``dvc repro compare`` adds them. Writes
``results/local/compare/``: ``compare.md`` (the table, its deviations and the figure), ``compare.json``
(every per-seed value) and ``summary.json`` (a small DVC metrics file).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np

from aqil import paper
from aqil.artifacts import ArtifactError, first_non_finite, read_json, write_json, write_text
from aqil.config import Params, to_dict
from aqil.layout import ALL_RUNS, BASELINE_RUNS, COMPARE_SECTIONS, eval_file, run_dir
from aqil.reporting.plots import evaluation_figure
from aqil.reporting.render import fmt
from aqil.reporting.tables import non_paper_settings
from aqil.stats import Estimate, estimate, probability_of_improvement

BASELINES = BASELINE_RUNS
SUMMARY_FIELDS = ("avg_reward", "best_reward", "total_steps", "capped_episodes", "episodes")
EVAL_FIELDS = ("avg_reward", "best_reward", "avg_steps", "capped_episodes", "episode_reward")

TITLE = "AQIL against standard uses of the same expert data"
FIGURE = "baselines_eval.png"


def interval(e: Estimate) -> str:
    return "" if e.low is None else f"[{fmt(e.low)}, {fmt(e.high)}]"


def banner(params: Params) -> list[str]:
    changed = non_paper_settings({k: v for k, v in to_dict(params).items() if k in COMPARE_SECTIONS})
    if not changed:
        return []
    return ["> **Not the paper's settings:** " + "; ".join(f"`{k}: {a}` (paper {b})" for k, (a, b) in changed.items())
            + ".", ""]


def build_comparison(params: Params, results: Path) -> dict[str, dict]:
    """Per run: training rewards in their own units, the greedy evaluation (the one measure all runs
    share) and P(IL250+RL250 better) on it."""
    rng = np.random.default_rng(params.report.bootstrap_seed + 1)  # independent of Table 2's resamples
    samples = params.report.bootstrap_samples
    rows: dict[str, dict] = {}
    for run in [paper.WINNER, *BASELINES]:
        spec, seeds = ALL_RUNS[run], params.seeds.of(run)
        per_seed = [read_json(run_dir(results, run, s) / "metrics.json", ("diverged",), SUMMARY_FIELDS)
                    for s in seeds]
        evals = [read_json(eval_file(results, run, s), ("diverged",), EVAL_FIELDS) for s in seeds]
        row: dict = {
            "label": spec.label, "method": spec.method, "seeds": seeds,
            # imitation-style runs score the network's action on the expert's states (IL reward); the
            # others report the environment's reward of the episodes they drove (RL reward)
            "units": "IL reward" if spec.method in ("imitation", "bc") else "RL reward",
            "diverged_seeds": [s for s, m in zip(seeds, per_seed, strict=True) if m["diverged"] is True],
            "capped_episodes": int(sum(m["capped_episodes"] for m in per_seed)),
        }
        for column in paper.COLUMNS:
            values = [float(m[column]) for m in per_seed]
            row[column] = {"values": values, **asdict(estimate(values, samples, rng))}
        values = [float(e["avg_reward"]) for e in evals]
        row["eval"] = {"values": values, **asdict(estimate(values, samples, rng))}
        row["eval_capped_episodes"] = int(sum(e["capped_episodes"] for e in evals))
        rows[run] = row
    winner = rows[paper.WINNER]["eval"]["values"]
    for run in BASELINES:  # one seed a side would give a probability of 0 or 1 from one pair of draws
        rows[run]["p_aqil_better"] = (probability_of_improvement(winner, rows[run]["eval"]["values"])
                                      if min(len(winner), len(rows[run]["eval"]["values"])) > 1 else None)
    return rows


def deviations(params: Params) -> list[tuple[str, str, str]]:
    """Where a method had to be adapted to this setting: (what, the method's source, here)."""
    dqfd = params.dqfd250_rl250
    return [
        ("BC", "behavioural cloning fits a classifier, not Q-values",
         "BC250 fits the softmax cross-entropy of the two outputs against the expert's action with the paper's "
         "optimizer and schedule (20 one-sample fits per expert step, as many updates as IL250); BC250+RL250 reads "
         "those two logits as Q-values when its RL starts"),
        ("DQfD", "Hester et al. (2018): prioritized replay with a bonus for demonstrations, L2 regularisation 1e-5",
         f"uniform sampling over demonstrations and agent transitions, no L2; n = {dqfd.n_step}, margin "
         f"{dqfd.margin}, lambda_n {dqfd.lambda_n}, lambda_e {dqfd.lambda_e}; TD terms halved so that the 1-step "
         "gradient is the paper's; an agent transition enters the replay once its n-step return is known"),
        ("DAgger", "Ross et al. (2011) query the expert on the learner's states",
         "the PID expert follows the network's trajectory (its integral and previous error accumulate along the "
         "states the network visits) and labels every one; one update per step on the aggregate, as BC250"),
    ]


def render_markdown(params: Params, rows: dict[str, dict]) -> str:
    lines = [
        f"# {TITLE}",
        "",
        "Not in the paper. Seeds: " + ", ".join(f"{r['label']} {len(r['seeds'])}" for r in rows.values())
        + ". Every run has the paper's network, optimizer, replay, exploration and episode cap; BC250 and "
        "DQfD250+RL250 train on IL250's expert episodes of the same seed. Training rewards are in "
        "their own units (IL reward: the network's action scored on the expert's states; RL reward: the "
        "environment's reward of the episodes the network drove), so the runs are compared on the greedy "
        "evaluation (epsilon = 0, the same start states for every network).",
        "",
        *banner(params),
        "| run | training reward units | average training reward | best training reward | greedy evaluation: "
        "mean [95% CI] | capped evaluation episodes | P(IL250+RL250 better) |",
        "|---|---|---:|---:|---|---:|---:|",
    ]
    for run, row in rows.items():
        ev = row["eval"]
        est = Estimate(ev["n"], ev["mean"], ev["std"], ev["low"], ev["high"])
        poi = "" if run == paper.WINNER else ("n/a (1 seed)" if row["p_aqil_better"] is None
                                              else f"{row['p_aqil_better']:.2f}")
        lines.append(f"| {row['label']} | {row['units']} | {fmt(row['avg_reward']['mean'])} | "
                     f"{fmt(row['best_reward']['mean'])} | {fmt(ev['mean'])} {interval(est)} | "
                     f"{row['eval_capped_episodes']} of {len(row['seeds']) * params.evaluate.episodes} | {poi} |")
    best = max(rows, key=lambda r: rows[r]["eval"]["mean"])
    lines += [
        "",
        f"Highest greedy-evaluation mean: {rows[best]['label']} ({fmt(rows[best]['eval']['mean'])}). An evaluation "
        f"episode stops at the cap of {params.env.max_episode_steps:,} steps, so means of networks that reach it "
        "are lower bounds and cannot be told apart.",
        "",
        f"![greedy evaluation by method](figures/{FIGURE})",
        "",
        "## How the methods were adapted to this setting",
        "",
        "| method | as published | here |",
        "|---|---|---|",
        *(f"| {what} | {source} | {here} |" for what, source, here in deviations(params)),
    ]
    return "\n".join(lines) + "\n"


def small_metrics(rows: dict[str, dict]) -> dict:
    """One flat entry per run for ``dvc metrics show``."""
    return {run: {"eval_avg_reward": round(row["eval"]["mean"], 2), "diverged_seeds": len(row["diverged_seeds"]),
                  **({} if run == paper.WINNER else {"p_aqil_better": row["p_aqil_better"]})}
            for run, row in rows.items()}


def compare_stage(params: Params, _seed: int, results: Path) -> None:
    out = results / "local" / "compare"
    rows = build_comparison(params, results)
    bad = first_non_finite(rows)
    if bad:  # checked before anything is written, so a refused comparison leaves no half of itself
        raise ArtifactError(f"{results}: the comparison's {bad} is NaN or infinite; refusing to write it")
    staging = out / ".figures.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        evaluation_figure(staging / FIGURE, [r["label"] for r in rows.values()],
                                  [r["eval"] for r in rows.values()])
        shutil.rmtree(out / "figures", ignore_errors=True)
        os.replace(staging, out / "figures")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    write_json(out / "compare.json", {"runs": rows})
    write_json(out / "summary.json", small_metrics(rows))
    markdown = render_markdown(params, rows)
    write_text(out / "compare.md", markdown)
    table = markdown.split("\n## ")[0].splitlines()  # the table and its one-line reading, not the deviations
    print("\n".join(line for line in table if line.startswith(("|", "Highest"))))
