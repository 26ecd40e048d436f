"""The report's figures, drawn from the records and written byte-stably (no timestamps, fixed fonts).

Rewards span four decades (a diverged network's ~8 to a balancing one's 15,000), so reward axes are
logarithmic from 1 up; many seeds are drawn as a median with quantile bands, the reference's own
logged run over them.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from aqil import paper, verdict
from aqil.layout import PAPER_RUNS
from aqil.reporting.records import SeedRecord

STYLE = {"font.family": "DejaVu Sans", "font.size": 10, "axes.grid": True, "grid.alpha": 0.3,
         "svg.hashsalt": "aqil", "path.simplify": True}
DPI = 110
OURS, DIVERGED, REFERENCE, EXPERT, PAPER = "#4c72b0", "#c44e52", "#222222", "#55a868", "#dd8452"
RUN_COLORS = {"rl500": "#c44e52", "il250": "#55a868", "il500": "#8172b3", "il250_rl250": "#4c72b0"}


def save(fig: plt.Figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, metadata={"Software": None}, format="png")
    plt.close(fig)


def moving_average(x: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over up to ``window`` episodes (shorter at the start)."""
    c = np.cumsum(np.insert(np.asarray(x, dtype=np.float64), 0, 0.0))
    idx = np.arange(1, len(x) + 1)
    start = np.maximum(idx - window, 0)
    return (c[idx] - c[start]) / (idx - start)


def _quantiles(rows: np.ndarray, percents: list[int]) -> np.ndarray:
    """Per episode (column), the given percentiles over the seeds (rows) that have it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an episode where every seed is NaN stays NaN
        return np.nanpercentile(rows, percents, axis=0)


def _bands(ax: plt.Axes, rows: np.ndarray, color: str, label: str) -> None:
    """Median over seeds as a line; the 25-75% band, and the 5-95% band when there are 10 seeds or more."""
    x = np.arange(1, rows.shape[1] + 1)
    q = _quantiles(rows, [5, 25, 50, 75, 95])
    n = len(rows)
    ax.plot(x, q[2], color=color, lw=1.6, label=f"{label}: median of {n} seed{'s' if n > 1 else ''}")
    if n >= 4:
        ax.fill_between(x, q[1], q[3], color=color, alpha=0.25, lw=0, label="25-75% of seeds")
    if n >= 10:
        ax.fill_between(x, q[0], q[4], color=color, alpha=0.1, lw=0, label="5-95% of seeds")


def _rows(recs: list[SeedRecord], column: str, window: int | None) -> np.ndarray:
    length = max(len(r.episodes[column]) for r in recs)
    rows = np.full((len(recs), length), np.nan)
    for i, r in enumerate(recs):
        values = r.episodes[column]
        rows[i, : len(values)] = moving_average(values, window) if window else values
    return rows


def curves_table(records: dict[str, list[SeedRecord]], window: int) -> str:
    """The data of DVC's overlay plot (dvc.yaml's top-level ``plots``): per run and episode, the median
    and quartiles over seeds of the trailing mean reward, as in the figures. Summaries, not every seed,
    keep the git-tracked file small (a few hundred kB at 100 seeds)."""
    lines = ["run\tepisode\tseeds\tmedian\tq25\tq75"]
    for run, recs in records.items():
        if not recs:
            continue
        rows = _rows(recs, "reward", window)
        q = _quantiles(rows, [25, 50, 75])
        seeds = np.sum(np.isfinite(rows), axis=0)
        lines += [f"{PAPER_RUNS[run].label}\t{i + 1}\t{seeds[i]}\t{q[1, i]:.5g}\t{q[0, i]:.5g}\t{q[2, i]:.5g}"
                  for i in range(rows.shape[1]) if seeds[i]]
    return "\n".join(lines) + "\n"


def _reward_panel(ax: plt.Axes, run: str, recs: list[SeedRecord], reference: np.ndarray, window: int) -> None:
    finite = [r for r in recs if not r.diverged]
    diverged = [r for r in recs if r.diverged]
    if finite:
        _bands(ax, np.maximum(_rows(finite, "reward", window), 1.0), OURS, "ours, did not diverge")
    if diverged:
        _bands(ax, np.maximum(_rows(diverged, "reward", window), 1.0), DIVERGED, "ours, diverged")
    ax.plot(np.arange(1, len(reference) + 1), np.maximum(moving_average(reference, window), 1.0), color=REFERENCE,
            lw=1.2, label="reference's logged run")
    if "expert_reward" in recs[0].episodes:
        expert = np.nanmedian(_rows(recs, "expert_reward", window), axis=0)
        ax.plot(np.arange(1, len(expert) + 1), expert, color=EXPERT, lw=1.0, ls="--",
                label="PID expert (environment reward), median")
    ax.axhline(paper.TABLE2[run]["avg_reward"], color=PAPER, ls="--", lw=1.1, label="paper: average")
    ax.axhline(paper.TABLE2[run]["best_reward"], color=PAPER, ls=":", lw=1.1, label="paper: best episode")
    ax.set_yscale("log")
    ax.set_ylim(bottom=1.0)
    ax.set(xlabel="episode", ylabel=f"episode reward, {window}-episode average",
           title="Reward" + (" (imitation reward)" if PAPER_RUNS[run].method == "imitation" else ""))
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3, fontsize=7, frameon=False)


def _loss_panel(ax: plt.Axes, recs: list[SeedRecord]) -> None:
    rows = _rows(recs, "loss_mean", None)
    rows[~np.isfinite(rows)] = np.nan
    _bands(ax, np.maximum(rows, 1e-6), OURS, "mean loss of the episode's updates")
    nan_seeds = sum(r.diverged for r in recs)
    if nan_seeds:
        ax.text(0.02, 0.02, f"{nan_seeds} of {len(recs)} seeds diverged: their loss stops at the first NaN",
                transform=ax.transAxes, fontsize=8, color=DIVERGED)
    ax.set_yscale("log")
    ax.set(xlabel="episode", ylabel="loss (Keras mse: half the squared TD error)", title="Loss")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize=7, frameon=False)


def curves_figure(path: Path, run: str, recs: list[SeedRecord], reference: np.ndarray, window: int) -> None:
    with plt.rc_context(STYLE):
        fig, (ax_loss, ax_reward) = plt.subplots(1, 2, figsize=(13, 5.6))
        _loss_panel(ax_loss, recs)
        _reward_panel(ax_reward, run, recs, reference, window)
        fig.suptitle(f"{PAPER_RUNS[run].label}: loss and reward per episode (the paper's Fig. "
                     f"{paper.FIGURES[run][0]})")
        fig.tight_layout()
        save(fig, path)


def table2_figure(path: Path, records: dict[str, list[SeedRecord]]) -> None:
    """Each seed's value as a dot (red: diverged), our median as a bar, the paper's value as a diamond."""
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, 2, figsize=(12, 5))
        for ax, column in zip(axes, paper.COLUMNS, strict=True):
            for i, (run, recs) in enumerate(records.items()):
                values = np.asarray([r.metrics[column] for r in recs], dtype=float)
                bad = np.asarray([r.diverged for r in recs])
                jitter = np.linspace(-0.2, 0.2, len(values)) if len(values) > 1 else np.zeros(1)
                ax.scatter(i + jitter[~bad], values[~bad], s=10, color=OURS, alpha=0.6, lw=0)
                ax.scatter(i + jitter[bad], values[bad], s=10, color=DIVERGED, alpha=0.6, lw=0)
                if len(values[~bad]):
                    median = float(np.median(values[~bad]))
                    ax.hlines(median, i - 0.25, i + 0.25, color=OURS, lw=2)
                    ax.annotate(f"{median:,.0f}", (i + 0.27, median), fontsize=8, color=OURS, va="center")
                y = paper.TABLE2[run][column]
                ax.scatter([i], [y], marker="D", s=60, color=PAPER, zorder=5, edgecolor="black", lw=0.6)
                ax.annotate(f"{y:,.0f}", (i, y), xytext=(0, 7), textcoords="offset points", fontsize=8,
                            color=PAPER, va="bottom", ha="center", fontweight="bold", zorder=6,
                            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85})
            ax.set_yscale("log")
            ax.set_ylim(top=ax.get_ylim()[1] * 2.5)  # room for the labels above the highest mark
            ax.set_xticks(range(len(records)), [PAPER_RUNS[r].label for r in records])
            ax.set(title=f"Table 2, {paper.COLUMN_LABELS[column]}", ylabel="training-episode reward")
        handles = [plt.Line2D([], [], color=OURS, marker="o", ls="", label="our seed (bar: median)"),
                   plt.Line2D([], [], color=DIVERGED, marker="o", ls="", label="our seed that diverged"),
                   plt.Line2D([], [], color=PAPER, marker="D", ls="", label="paper")]
        fig.legend(handles=handles, loc="lower center", ncol=3, frameon=False)
        fig.tight_layout(rect=(0, 0.06, 1, 1))
        save(fig, path)


def profile_figure(path: Path, records: dict[str, list[SeedRecord]]) -> None:
    """The fraction of seeds whose average training reward exceeds each level, one line per run."""
    levels = np.logspace(0, 4.3, 300)
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(8, 5))
        for run, recs in records.items():
            values = np.asarray([r.metrics["avg_reward"] for r in recs], dtype=float)
            color = RUN_COLORS[run]
            ax.plot(levels, verdict.performance_profile(values, levels), color=color,
                    label=f"{PAPER_RUNS[run].label} ({len(values)} seeds)")
            y = paper.TABLE2[run]["avg_reward"]
            ax.scatter([y], verdict.performance_profile(values, [y]), marker="D", color=color, edgecolor="black",
                       zorder=5)
        ax.set_xscale("log")
        ax.set(xlabel="average training-episode reward", ylabel="fraction of seeds above",
               title="Performance profile (diamond: the paper's value on its run's line)")
        ax.legend(frameon=False)
        fig.tight_layout()
        save(fig, path)


def survival_figure(path: Path, records: dict[str, list[SeedRecord]], reference: dict[str, np.ndarray]) -> None:
    """Kaplan-Meier curves of the episode reward (capped episodes censored), ours against the reference's."""
    runs = ("rl500", "il250_rl250")
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
        for ax, run in zip(axes, runs, strict=True):
            finite = [r for r in records[run] if not r.diverged] or records[run]
            rewards = np.concatenate([r.episodes["reward"] for r in finite])
            capped = np.concatenate([r.episodes["capped"].astype(bool) for r in finite])
            t, s = verdict.survival_curve(np.maximum(rewards, 1.0), capped)
            which = "did not diverge" if any(not r.diverged for r in records[run]) else "all diverged"
            ax.step(t, s, where="post", color=OURS,
                    label=f"ours ({len(rewards):,} episodes of {len(finite)} seed(s); {which})")
            t, s = verdict.survival_curve(np.maximum(reference[run], 1.0), np.zeros(len(reference[run]), bool))
            ax.step(t, s, where="post", color=REFERENCE, label=f"reference ({len(reference[run])} episodes)")
            ax.set_xscale("log")
            ax.set(xlabel="episode reward (capped episodes censored)", ylabel="share of episodes above",
                   title=PAPER_RUNS[run].label)
            ax.legend(frameon=False, fontsize=8)
        fig.tight_layout()
        save(fig, path)


def evaluation_figure(path: Path, labels: list[str], evals: list[dict]) -> None:
    """Greedy-evaluation reward by method: every seed, the median over seeds and the mean's 95% interval."""
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(1.6 * len(labels) + 2.5, 4.5))
        for j, ev in enumerate(evals):
            values = np.maximum(np.asarray(ev["values"], dtype=float), 1.0)
            if ev.get("low") is not None:
                ax.plot([j, j], [max(ev["low"], 1.0), max(ev["high"], 1.0)], color=OURS, lw=6, alpha=0.35,
                        label="95% interval of the mean" if j == 0 else None)
            ax.hlines(np.median(values), j - 0.25, j + 0.25, color=OURS, lw=2, label="median" if j == 0 else None)
            ax.plot(np.full(len(values), j + 0.15), values, "o", ms=3, color="black", alpha=0.6,
                    label="one seed" if j == 0 else None)
        ax.set_xticks(np.arange(len(labels)), labels, fontsize=8)
        ax.set(ylabel="greedy episode reward (environment reward)", yscale="log")
        ax.set_ylim(bottom=1.0)
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=3, frameon=False)
        ax.set_title("Greedy evaluation by method (epsilon = 0, fixed start states)")
        fig.tight_layout()
        save(fig, path)
