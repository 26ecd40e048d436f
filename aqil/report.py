"""The report: Table 2 beside the paper's numbers, verdicts, greedy evaluation, figures, deviations.

Writes ``results/report/report.md`` (figures embedded), ``table2.csv`` and ``table2.json``
(machine-readable Table 2 with every per-seed value), ``summary.json`` (the small DVC metrics file),
``summary.txt`` (the closing summary the pipeline prints), ``provenance.json`` (revision, packages,
CPU, date, steps, wall time: the one output whose bytes vary) and ``figures/*.png``. Only the seeds listed in
params.yaml are read; files of other seeds get a one-line warning (see ``aqil/prune.py``).
"""

from __future__ import annotations

import csv
import datetime
import io
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

import numpy as np

from aqil import figures, paper, prune
from aqil.artifacts import (
    ArtifactError,
    first_non_finite,
    missing_file,
    read_json,
    read_npy,
    write_json,
    write_text,
)
from aqil.config import Params, to_dict
from aqil.qnet import check_architecture, expected_shapes, read_state
from aqil.runs import RUNS, run_dir, timing_file
from aqil.stats import SEEDS_FOR_A_FINDING, Estimate, estimate, probability_of_improvement, single_run_verdict

ORDER = ["rl500", "il250", "il500", "il250_rl250"]
SUMMARY_FIELDS = ("avg_reward", "best_reward", "total_steps", "capped_episodes", "episodes")
EVAL_FIELDS = ("avg_reward", "best_reward", "avg_steps", "capped_episodes", "episode_reward")


def _read_tsv(path: Path, column: str) -> np.ndarray:
    """One column of a run's per-episode table (episodes.tsv)."""
    try:
        with path.open(newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
        return np.asarray([float(r[column]) for r in rows], dtype=np.float64)
    except FileNotFoundError:
        raise missing_file(path) from None
    except (KeyError, ValueError, TypeError):
        raise ArtifactError(f"{path}: not a per-episode table with a '{column}' column") from None


def _load_weights(path: Path, hidden: list[int]) -> list[np.ndarray]:
    """The layer weights for the figures, from a model checked against ``dqn.hidden`` as evaluate does."""
    state = read_state(path)
    shapes = expected_shapes(hidden)
    check_architecture(path, state, shapes)
    return [state[k].numpy() for k in shapes if k.endswith(".weight")]


def fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:,.2f}"


def _std(e: dict) -> str:
    return "n/a" if e["n"] < 2 else fmt(e["std"])


def interval(e: Estimate) -> str:
    return "1 seed: no interval" if e.low is None else f"[{fmt(e.low)}, {fmt(e.high)}]"


def build_table2(params: Params, results: Path) -> dict:
    """Table 2 with per-seed values, estimates and verdicts, plus the conclusion and greedy evaluation."""
    seeds = params.seeds
    rng = np.random.default_rng(params.report.bootstrap_seed)
    samples = params.report.bootstrap_samples
    runs: dict[str, dict] = {}
    for run in ORDER:
        per_seed = [read_json(run_dir(results, run, s) / "metrics.json", ("diverged",), SUMMARY_FIELDS)
                    for s in seeds]
        evals = [read_json(results / "eval" / run / f"seed{s}.json", ("diverged",), EVAL_FIELDS) for s in seeds]
        diverged = [s for s, m in zip(seeds, per_seed, strict=True) if m["diverged"] is True]
        entry: dict = {"label": RUNS[run].label, "seeds": seeds, "columns": {}, "eval": {}, "diverged_seeds": diverged}
        capped = int(sum(m["capped_episodes"] for m in per_seed))
        capped_seeds = [m["capped_episodes"] > 0 for m in per_seed]
        for column in paper.COLUMNS:
            values = [float(m[column]) for m in per_seed]
            est = estimate(values, samples, rng)
            what = f"{RUNS[run].label} {paper.COLUMN_LABELS[column]}"
            verdict = single_run_verdict(values, paper.TABLE2[run][column], what, capped_seeds, len(diverged))
            entry["columns"][column] = {
                "values": values, **asdict(est), "paper": paper.TABLE2[run][column],
                "ratio": verdict.factor, "percentile": verdict.percentile, "verdict": verdict.word,
                "explanation": verdict.sentence,
            }
            eval_values = [float(e[column]) for e in evals]
            entry["eval"][column] = {"values": eval_values, **asdict(estimate(eval_values, samples, rng))}
        entry["eval"]["avg_steps"] = float(np.mean([e["avg_steps"] for e in evals]))
        entry["eval"]["capped_episodes"] = int(sum(e["capped_episodes"] for e in evals))
        entry["total_steps"] = int(sum(m["total_steps"] for m in per_seed))
        entry["capped_episodes"] = capped
        runs[run] = entry
    return {"seeds": seeds, "runs": runs, "conclusion": _conclusion(runs, len(seeds))}


def _conclusion(runs: dict[str, dict], n_seeds: int) -> dict:
    """The paper's claim: IL250+RL250 above each other run on both average and best reward."""
    win = paper.WINNER
    comparisons = []
    for other in ORDER:
        if other == win:
            continue
        for column in paper.COLUMNS:
            ours, theirs = runs[win]["columns"][column], runs[other]["columns"][column]
            comparisons.append({
                "other": other, "column": column, "winner_mean": ours["mean"], "other_mean": theirs["mean"],
                "above": ours["mean"] > theirs["mean"],
                # One seed a side is one pair of draws: a probability of 0 or 1 from it would be noise.
                "probability_of_improvement": (probability_of_improvement(ours["values"], theirs["values"])
                                               if n_seeds > 1 else None),
            })
    holds = all(c["above"] for c in comparisons)
    failed = [f"{RUNS[c['other']].label} ({paper.COLUMN_LABELS[c['column']]})" for c in comparisons if not c["above"]]
    odds = (f"smallest probability of improvement {min(c['probability_of_improvement'] for c in comparisons):.2f} "
            f"over {n_seeds} seeds" if n_seeds > 1 else "one seed per run: no probability of improvement")
    if holds:
        sentence = (f"Holds on these runs: IL250+RL250's mean is above every other run on both average and best "
                    f"reward ({odds}).")
    else:
        sentence = "Does not hold on these runs: IL250+RL250's mean is not above " + ", ".join(failed) + f" ({odds})."
    capped = [runs[r]["label"] for r in ORDER if runs[r]["capped_episodes"]]
    if capped:
        sentence += (
            f" Episodes of {', '.join(capped)} hit the step cap, so their rewards are lower bounds"
            + (" (which only strengthens a win of IL250+RL250)." if capped == [runs[win]["label"]] else ".")
        )
    diverged = [f"{runs[r]['label']} ({len(runs[r]['diverged_seeds'])} of {n_seeds})" for r in ORDER
                if runs[r]["diverged_seeds"]]
    if diverged:
        sentence += (" Seeds that diverged to NaN are counted as the reference's code would have played them: "
                     + ", ".join(diverged) + ".")
    if n_seeds == 1:
        sentence += " One seed per run: a single draw, not a distribution."
    return {"holds": holds, "comparisons": comparisons, "sentence": sentence}


def _table2_csv(table: dict) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["run", "label", "column", "seeds", "mean", "std", "ci_low", "ci_high", "paper", "ratio",
                     "verdict"])
    for run, entry in table["runs"].items():
        for column, c in entry["columns"].items():
            writer.writerow([run, entry["label"], column, c["n"], f"{c['mean']:.4f}", f"{c['std']:.4f}",
                             "" if c["low"] is None else f"{c['low']:.4f}",
                             "" if c["high"] is None else f"{c['high']:.4f}",
                             c["paper"], f"{c['ratio']:.4f}", c["verdict"]])
    return out.getvalue()


def deviations(params: Params, table: dict) -> list[tuple[str, str, str]]:
    """(what, paper / reference, this run and the param that switches it).

    Facts about the reference are read from its repository (veda-s4dhak/AQIL): its code, its
    per-episode CSVs and the SGD iteration counters stored in its Keras model files.
    """
    capped = {RUNS[r].label: e["capped_episodes"] for r, e in table["runs"].items()}
    s2 = params.rewards.il
    units = params.rewards.sigma1_units
    batched = params.dqn.update == "batched"
    return [
        ("Minibatch update",
         "the reference fits the 20 sampled transitions one after another (20 Keras fits, 20 SGD-momentum "
         "steps per environment step)",
         f"`dqn.update: {params.dqn.update}`"
         + (" -- an ABLATION, not the reference's rule: one step on the summed gradient, so the momentum "
            "decays once per environment step instead of 20 times; it changes the results (README, Update rule)"
            if batched else " (the reference's rule, fused CPU kernel)")),
        ("Which IL250 the paper's IL250+RL250 continued",
         "the SGD iteration counter in the reference's IL250_RL250.h5 is 13,593,060 = 3,785,380 + 20 x 490,384: "
         "its parent is an earlier IL250 (Nov 2019, counter 3,785,380, kept in models/backup) trained with IL "
         "reward weights 1 and 1, sigma = 10 degrees for the action term, epsilon starting at 1.0 and 251 "
         "episodes; the Table 2 IL250 (counter 3,291,820 = 20 x 164,591) was trained afresh",
         "IL250+RL250 continues this pipeline's own IL250 (the paper's text describes it so)"),
        ("Episode counts",
         "the reference's run loop used `<=`: its RL500 has 501 episodes and its IL250+RL250 251 (per-episode "
         "CSVs); the RL500 average over the first 500 episodes is 330.99 (Table 2: 331.63 over 501)",
         "exactly the configured number of episodes; Table 2's printed values are compared as they are"),
        ("Pole-angle reward width sigma1",
         "the paper prints sigma1 = 10; the reference uses np.deg2rad(10)",
         f"`rewards.sigma1_units: {units}` ({'reference' if units == 'degrees' else 'paper, as printed'})"),
        ("IL action-reward width sigma2",
         "paper prints sigma2 = 0.5; the reference converts 0.5 degrees to radians (0.0087), so any "
         "disagreement scores ~0",
         f"`rewards.il.sigma2_units: {s2.sigma2_units}` ({'reference' if s2.sigma2_units == 'degrees' else 'paper'})"),
        ("What RL learns from",
         "the paper's Algorithm 2 describes RL on the expert's trajectories; the reference's RL runs drive the "
         "environment with the agent's own epsilon-greedy policy",
         "the reference's behaviour (agent's own epsilon-greedy experience)"),
        ("Force on the cart",
         "the paper says +-1; the reference (gym's CartPole) pushes with +-10 N",
         "+-10 N, as the reference"),
        ("PID integral and previous error",
         "the reference never resets them between episodes; a textbook PID would",
         f"`expert.reset_per_episode: {str(params.expert.reset_per_episode).lower()}`"),
        ("Episode length",
         "unbounded in the paper (T has no limit)",
         f"`env.max_episode_steps: {params.env.max_episode_steps}`; capped training episodes: "
         + ", ".join(f"{k} {v}" for k, v in capped.items())),
        ("Optimizer state into IL250+RL250",
         "the reference's saved Keras model carried the SGD momentum into the RL phase",
         f"`il250_rl250.keep_optimizer_state: {str(params.il250_rl250.keep_optimizer_state).lower()}`"),
        ("RL from scratch: divergence",
         "the reference's from-scratch RL runs learned to balance, and RL250 never logged a loss above 301; "
         "their SGD iteration counters equal 20 x (steps - 19) (RL500: 3,476,700 = 20 x 173,835; RL250: "
         "1,198,360 = 20 x 59,918), so both started from fresh networks; every reference model file records "
         "Keras 2.2.5, whose he_normal has the truncation correction this pipeline uses",
         "many of this pipeline's RL500 seeds diverge to NaN in their first few thousand updates (README, "
         "Results: 12 of 19 seeds at the paper's settings); "
         "cause not found after trying subnormals not flushed, rewards from the float64 state and Python's "
         "random.sample as the replay sampler (README, Results)"),
        ("Number of runs", "one training run per method", f"`seeds: {params.seeds}`"),
        ("Imitation data",
         "the reference imitates online; the expert drives the environment, so the visited states do not "
         "depend on the network", "recorded once by `collect` and replayed: identical transitions, not a switch"),
        ("Loss values",
         "the paper's L = (y - Q)^2; the reference (Keras mse over both outputs) logs half of it",
         "we log the reference's value; the gradient is the same as the reference's"),
        ("Floating point",
         "TensorFlow on the authors' CPU: float32 network, numpy float64 targets and rewards, subnormals "
         "flushed to zero; libm's exp/cos/sin",
         "float32 network, float64 target rounded into the float32 label, subnormals flushed to zero, as the "
         "reference; exp/cos/sin correctly rounded (mpmath) and a fixed summation order, so results are the same "
         "bytes on every x86-64 CPU"),
        ("Environment", "gym's CartPole-v1 of 2019 with a 50 degree limit",
         "gymnasium's CartPoleEnv (same equations and constants), thresholds changed, no TimeLimit wrapper"),
    ]


def _flat(d: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        out |= _flat(v, f"{key}.") if isinstance(v, dict) else {key: v}
    return out


# The params sections the paper's runs and report read (the baselines' sections change none of them).
PAPER_SECTIONS = ("env", "expert", "collect", "dqn", "rewards", "il250", "il500", "rl500", "il250_rl250",
                  "evaluate", "report")


def non_default_settings(params: Params, sections: Iterable[str] = PAPER_SECTIONS) -> dict[str, tuple[object, object]]:
    """Every param of ``sections`` that differs from the defaults (the paper's settings, as its code ran them)."""
    ours, default = _flat(to_dict(params)), _flat(to_dict(Params()))
    wanted = tuple(f"{section}." for section in sections)
    return {k: (ours[k], default[k]) for k in ours if ours[k] != default[k] and k.startswith(wanted)}


def banner(params: Params, entries: Iterable[dict], sections: Iterable[str] = PAPER_SECTIONS) -> list[str]:
    """Warnings a reader must see before any number: non-paper settings of ``sections`` and diverged
    seeds (``entries``: one dict per run, with its ``label`` and ``diverged_seeds``)."""
    lines = []
    changed = non_default_settings(params, sections)
    if changed:
        lines += ["> **Not the paper's settings.** These params differ from the defaults, which follow the paper's "
                  "reference code: " + "; ".join(f"`{k}: {a}` (default {b})" for k, (a, b) in changed.items())
                  + ". The numbers below are not a reproduction of Table 2.", ""]
    diverged = {e["label"]: e["diverged_seeds"] for e in entries if e["diverged_seeds"]}
    if diverged:
        lines += ["> **Diverged seeds.** The loss or weights went NaN/infinite in: "
                  + "; ".join(f"{k} seeds {v}" for k, v in diverged.items())
                  + ". Their later episodes were played by a NaN network (action 0 unless exploring), as the "
                  "reference's code would have; each seed's `metrics.json` gives the first non-finite update.", ""]
    return lines


def render_markdown(params: Params, table: dict, figure_names: dict[str, str]) -> str:
    n = len(table["seeds"])
    lines = [
        "# AQIL reproduction report",
        "",
        "Paper: Agarwal & Zhang, *Augmented Q-Imitation-Learning*, arXiv:2004.00993. "
        f"Seeds: {table['seeds']} ({n} run{'s' if n > 1 else ''} per method); the paper reports one run.",
        "",
        *banner(params, table["runs"].values()),
        "## Verdict",
        "",
        f"**Paper's conclusion (IL250+RL250 beats IL250, IL500 and RL500 on average and best reward): "
        f"{'HOLDS' if table['conclusion']['holds'] else 'DOES NOT HOLD'}.** {table['conclusion']['sentence']}",
        "",
        "## Table 2: training-episode reward, reproduced vs paper",
        "",
        "| run | column | our mean | std | 95% CI of our mean | our range | paper | paper's percentile | ratio "
        "| verdict |",
        "|---|---|---:|---:|---|---|---:|---:|---:|---|",
    ]
    for entry in table["runs"].values():
        for column, c in entry["columns"].items():
            est = Estimate(c["n"], c["mean"], c["std"], c["low"], c["high"])
            pct = "n/a" if c["percentile"] is None else f"{100 * c['percentile']:.0f}%"
            lines.append(
                f"| {entry['label']} | {paper.COLUMN_LABELS[column]} | {fmt(c['mean'])} | {_std(c)} | "
                f"{interval(est)} | {fmt(min(c['values']))} to {fmt(max(c['values']))} | {fmt(c['paper'])} | "
                f"{pct} | {c['ratio']:.2f} | {c['verdict']} |"
            )
    lines += ["", "Why each verdict:", ""]
    lines += [f"- {c['explanation']}" for e in table["runs"].values() for c in e["columns"].values()]
    lines += [
        "",
        "The paper reports one run per cell, so a verdict compares it with the spread of our single runs, not "
        "with the interval of our mean: a cell is *reproduced* when the paper's value lies within the range of "
        "our seeds. Beyond that range it is *higher*/*lower* only when a typical run would land there with "
        f"two-sided probability at most 5%, which takes {SEEDS_FOR_A_FINDING} seeds; with fewer the cell says "
        "*above/below our range*.",
        "",
        "Note on units, as in the paper: the IL rows are sums of the *imitation* reward (at most 1 per step, "
        "mostly for agreeing with the expert, on episodes the expert drove), the RL rows sums of the "
        "*environment* reward (at most 1 per step while the pole stays up). The conclusion compares them "
        "directly, as the paper's Table 2 does; the greedy evaluation below puts all four networks on the "
        "environment reward.",
        "",
        "## Does IL250+RL250 win? Probability of improvement over seeds",
        "",
        "| compared with | column | IL250+RL250 mean | other mean | P(IL250+RL250 > other) |",
        "|---|---|---:|---:|---:|",
    ]
    for c in table["conclusion"]["comparisons"]:
        poi = c["probability_of_improvement"]
        lines.append(f"| {RUNS[c['other']].label} | {paper.COLUMN_LABELS[c['column']]} | {fmt(c['winner_mean'])} | "
                     f"{fmt(c['other_mean'])} | {'n/a (1 seed)' if poi is None else f'{poi:.2f}'} |")
    lines += [
        "",
        "## Greedy evaluation (epsilon = 0, fixed start states)",
        "",
        f"Each trained network plays {params.evaluate.episodes} episodes from the same start states "
        f"(`evaluate.seed: {params.evaluate.seed}`), reward = environment (RL) reward. Training rewards of the IL "
        "runs come from episodes the expert drove; this is what the network does on its own.",
        "",
        "| run | mean episode reward | std over seeds | 95% CI | best episode (mean over seeds) | mean steps "
        "| capped episodes | P(IL250+RL250 > run) |",
        "|---|---:|---:|---|---:|---:|---:|---:|",
    ]
    winner_eval = table["runs"][paper.WINNER]["eval"]["avg_reward"]["values"]
    for run, entry in table["runs"].items():
        ev = entry["eval"]
        avg = ev["avg_reward"]
        est = Estimate(avg["n"], avg["mean"], avg["std"], avg["low"], avg["high"])
        poi = ("" if run == paper.WINNER else "n/a (1 seed)" if len(winner_eval) < 2
               else f"{probability_of_improvement(winner_eval, avg['values']):.2f}")
        lines.append(f"| {entry['label']} | {fmt(avg['mean'])} | {_std(avg)} | {interval(est)} | "
                     f"{fmt(ev['best_reward']['mean'])} | {ev['avg_steps']:,.1f} | {ev['capped_episodes']} | {poi} |")
    lines += ["", "## Figures", ""]
    lines += [f"![{title}](figures/{name})\n" for title, name in figure_names.items()]
    lines += [
        "## Deviations from the paper and its reference implementation",
        "",
        "| what | paper / reference | this run (switch) |",
        "|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in deviations(params, table)]
    lines += [
        "",
        "## Run facts",
        "",
        "Revision, package versions, CPU, date and wall time: `provenance.json` beside this report.",
        "",
        "| run | training steps (all seeds) | capped training episodes |",
        "|---|---:|---:|",
    ]
    lines += [f"| {e['label']} | {e['total_steps']:,} | {e['capped_episodes']} |" for e in table["runs"].values()]
    return "\n".join(lines) + "\n"


def draw_figures(params: Params, table: dict, results: Path, folder: Path) -> dict[str, str]:
    """All figures into ``folder``; returns {title: file name} in report order."""
    names: dict[str, str] = {}
    seeds = params.seeds
    first = seeds[0]
    for run in ORDER:
        spec = RUNS[run]
        curves_fig, weights_fig = paper.FIGURES[run]
        losses = {s: read_npy(run_dir(results, run, s) / "losses.npy", ndim=1) for s in seeds}
        tables = {s: run_dir(results, run, s) / "episodes.tsv" for s in seeds}
        rewards = {s: _read_tsv(tables[s], "reward") for s in seeds}
        expert = ({s: _read_tsv(tables[s], "expert_reward") for s in seeds}
                  if spec.method == "imitation" else None)
        reward_label = "episode reward (IL reward)" if spec.method == "imitation" else "episode reward"
        name = f"fig{curves_fig}_{run}_loss_reward.png"
        title = f"Fig. {curves_fig}: {spec.label} loss and reward"
        figures.curves_figure(folder / name, title, losses, rewards, expert, params.report.moving_average,
                              reward_label, paper.TABLE2[run]["avg_reward"], paper.TABLE2[run]["best_reward"],
                              params.env.max_episode_steps, table["runs"][run]["diverged_seeds"])
        names[title] = name
        name = f"fig{weights_fig}_{run}_weights.png"
        title = f"Fig. {weights_fig}: {spec.label} layer weights (seed {first})"
        figures.weights_figure(folder / name, title, _load_weights(run_dir(results, run, first) / "model.pt",
                                                                         params.dqn.hidden))
        names[title] = name
    labels = [RUNS[r].label for r in ORDER]
    cols = list(paper.COLUMNS)
    cells = {c: [table["runs"][r]["columns"][c] for r in ORDER] for c in cols}
    figures.table2_figure(
        folder / "table2.png", labels, [paper.COLUMN_LABELS[c] for c in cols],
        {paper.COLUMN_LABELS[c]: [cell["values"] for cell in cells[c]] for c in cols},
        {paper.COLUMN_LABELS[c]: [cell["paper"] for cell in cells[c]] for c in cols},
        {paper.COLUMN_LABELS[c]: [cell["verdict"] for cell in cells[c]] for c in cols},
        [table["runs"][r]["capped_episodes"] > 0 for r in ORDER],
    )
    names["Table 2 summary: reproduced vs paper"] = "table2.png"
    return names


def report_stage(params: Params, _seed: int, results: Path) -> None:
    out = results / "report"
    stale = prune.warning(results, params.seeds)
    if stale:
        print(stale, file=sys.stderr)
    table = build_table2(params, results)
    bad = first_non_finite(table)
    if bad:  # checked before anything is written, so a refused report leaves no half of itself
        raise ArtifactError(f"{results}: Table 2's {bad} is NaN or infinite; refusing to write a report")
    staging = out / ".figures.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        names = draw_figures(params, table, results, staging)
        shutil.rmtree(out / "figures", ignore_errors=True)
        os.replace(staging, out / "figures")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    write_json(out / "provenance.json", provenance(params, table, results))
    write_text(out / "table2.csv", _table2_csv(table))
    write_json(out / "table2.json", table)
    write_json(out / "summary.json", small_metrics(params, table))
    write_text(out / "report.md", render_markdown(params, table, names))
    summary = summary_lines(params, table)
    write_text(out / "summary.txt", summary + "\n")
    print(summary)


def _git(*args: str) -> str | None:
    try:
        proc = subprocess.run(["git", *args], capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip()


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance(params: Params, table: dict, results: Path) -> dict:
    """Where and with what these results were made. Kept out of report.md, whose bytes must not vary."""
    seconds, backends = 0.0, set()
    for run in ORDER:
        for seed in params.seeds:
            timing = read_json(timing_file(results, run, seed), ("seconds", "backend"), ("seconds",))
            seconds += float(timing["seconds"])
            backends.add(str(timing["backend"]))
    status = _git("status", "--porcelain", "--untracked-files=no")
    packages = ("torch", "numpy", "numba", "gymnasium", "dvc", "matplotlib", "mpmath", "ruamel.yaml")
    return {
        "git_revision": _git("rev-parse", "HEAD") or "unknown (not a git checkout)",
        "git_dirty": None if status is None else bool(status),
        "packages": {name: metadata.version(name) for name in packages},
        "python": platform.python_version(),
        "cpu": _cpu(),
        "date_utc": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "seeds": params.seeds,
        "non_default_settings": {k: a for k, (a, _) in non_default_settings(params).items()},
        "training_steps": int(sum(e["total_steps"] for e in table["runs"].values())),
        "training_wall_seconds": round(seconds, 1),
        "update_backends": sorted(backends),
    }


def small_metrics(params: Params, table: dict) -> dict:
    """The few numbers DVC should show and diff (``dvc metrics show``), one small block per run."""
    runs = {}
    for run, entry in table["runs"].items():
        a, b = entry["columns"]["avg_reward"], entry["columns"]["best_reward"]
        runs[run] = {
            "avg_reward": round(a["mean"], 2), "avg_ratio": round(a["ratio"], 3), "avg_verdict": a["verdict"],
            "best_reward": round(b["mean"], 2), "best_ratio": round(b["ratio"], 3), "best_verdict": b["verdict"],
            "eval_avg_reward": round(entry["eval"]["avg_reward"]["mean"], 2),
            "diverged_seeds": len(entry["diverged_seeds"]),
        }
    return {"seeds": len(table["seeds"]), "paper_settings": not non_default_settings(params),
            "conclusion_holds": table["conclusion"]["holds"], **runs}


def summary_lines(params: Params, table: dict) -> str:
    """The closing summary: the eight cells with their verdicts, and the conclusion."""
    rows = [f"{'run':<12} {'avg reward':>11} {'paper':>9} {'verdict':<22} {'best reward':>11} {'paper':>9} verdict"]
    for entry in table["runs"].values():
        a, b = entry["columns"]["avg_reward"], entry["columns"]["best_reward"]
        rows.append(f"{entry['label']:<12} {a['mean']:>11.2f} {a['paper']:>9.2f} {a['verdict']:<22} "
                    f"{b['mean']:>11.2f} {b['paper']:>9.2f} {b['verdict']}")
    holds = "HOLDS" if table["conclusion"]["holds"] else "DOES NOT HOLD"
    rows.append(f"Paper's conclusion: {holds}. {table['conclusion']['sentence']}")
    changed = non_default_settings(params)
    if changed:
        rows.append("Not the paper's settings: " + ", ".join(f"{k}={a}" for k, (a, _) in changed.items()) + ".")
    rows.append(f"Seeds: {table['seeds']}. Full report: results/report/report.md")
    return "\n".join(rows)

