"""The paper's figures, drawn with matplotlib and written byte-stably (no timestamps, fixed fonts)."""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

STYLE = {
    "font.family": "DejaVu Sans",  # shipped with matplotlib: same glyphs on every machine
    "font.size": 10,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "svg.hashsalt": "aqil",
    "path.simplify": True,
}
DPI = 110
SEED_COLORS = plt.get_cmap("tab10").colors


def save(fig: plt.Figure, path: Path) -> None:
    fig.savefig(path, dpi=DPI, metadata={"Software": None}, format="png")
    plt.close(fig)


def moving_average(x: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over up to ``window`` episodes (shorter at the start)."""
    c = np.cumsum(np.insert(np.asarray(x, dtype=np.float64), 0, 0.0))
    idx = np.arange(1, len(x) + 1)
    start = np.maximum(idx - window, 0)
    return (c[idx] - c[start]) / (idx - start)


def _by_fraction(values: np.ndarray, bins: int) -> np.ndarray:
    """Mean of ``values`` in ``bins`` equal slices of the run (NaN where a slice is empty or non-finite)."""
    n = len(values)
    out = np.full(bins, np.nan)
    if n == 0:
        return out
    edges = np.linspace(0, n, bins + 1).astype(np.int64)
    for b in range(bins):
        chunk = values[edges[b]:edges[b + 1]]
        if len(chunk) and np.isfinite(chunk).all():
            out[b] = float(np.mean(chunk))
    return out


def _band(ax: plt.Axes, x: np.ndarray, rows: np.ndarray, color: str, label: str, log: bool = False) -> None:
    """Mean over seeds (geometric when ``log``) as a line, the range over seeds as a band."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # columns where every seed is NaN stay NaN
        finite = np.where(np.isfinite(rows), rows, np.nan)
        low, high = np.nanmin(finite, axis=0), np.nanmax(finite, axis=0)
        centre = np.exp(np.nanmean(np.log(finite), axis=0)) if log else np.nanmean(finite, axis=0)
    n = len(rows)
    ax.plot(x, centre, color=color, lw=1.6, label=label + (f" ({'geometric ' if log else ''}mean of {n} seeds)"
                                                           if n > 1 else ""))
    if n > 1:
        ax.fill_between(x, low, high, color=color, alpha=0.2, lw=0, label="range over seeds")


def curves_figure(
    path: Path, title: str, losses: dict[int, np.ndarray], rewards: dict[int, np.ndarray],
    expert: dict[int, np.ndarray] | None, window: int, reward_label: str,
    paper_avg: float, paper_best: float, cap: int, diverged: list[int],
) -> None:
    """Loss over the run (log y) and reward per episode, mean over seeds with the range as a band.

    The loss is drawn against the fraction of the run, so a seed that trains 20 times longer than
    another does not squeeze the rest into a corner; a diverged seed's loss stops at its first NaN.
    """
    bins = 200
    seeds = sorted(rewards)
    with plt.rc_context(STYLE):
        fig, (ax_loss, ax_reward) = plt.subplots(1, 2, figsize=(13, 5.4))
        loss_rows = np.array([_by_fraction(losses[s].astype(np.float64), bins) for s in seeds])
        _band(ax_loss, (np.arange(bins) + 0.5) / bins, np.maximum(loss_rows, 1e-12), SEED_COLORS[0], "loss",
              log=True)
        ax_loss.set_yscale("log")
        ax_loss.set_xlabel("fraction of the run's updates")
        ax_loss.set_ylabel("loss (mean squared Bellman error / 2)")
        updates = ", ".join(f"seed {s}: {len(losses[s]):,}" for s in seeds)
        ax_loss.set_title(f"Loss ({updates} updates)" if len(seeds) <= 3 else "Loss over the run", fontsize=9)
        if diverged:
            ax_loss.text(0.02, 0.02, f"diverged to NaN: seeds {diverged} (loss drawn up to the first NaN)",
                         transform=ax_loss.transAxes, fontsize=8, color="#c44e52")
        ax_loss.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, fontsize=8, frameon=False)

        length = max(len(rewards[s]) for s in seeds)
        reward_rows = np.full((len(seeds), length), np.nan)
        for i, s in enumerate(seeds):
            reward_rows[i, : len(rewards[s])] = moving_average(rewards[s], window)
        episodes = np.arange(1, length + 1)
        _band(ax_reward, episodes, reward_rows, SEED_COLORS[0], f"{window}-episode average")
        ax_reward.axhline(paper_avg, color="#dd8452", ls="--", lw=1.2, label=f"paper: average {paper_avg:,.2f}")
        ax_reward.axhline(paper_best, color="#dd8452", ls=":", lw=1.2, label=f"paper: best episode {paper_best:,.2f}")
        ax_reward.axhline(cap, color="0.4", ls="-.", lw=1.0, label=f"episode cap ({cap:,} steps: reward <= {cap:,})")
        ax_reward.set_xlabel("episode")
        ax_reward.set_ylabel(reward_label)
        ax_reward.set_title("Reward per episode")
        if expert is not None:
            ax_expert = ax_reward.twinx()
            expert_rows = np.array([moving_average(expert[s], window) for s in seeds if s in expert])
            ax_expert.plot(np.arange(1, expert_rows.shape[1] + 1), expert_rows.mean(axis=0), color="#55a868", lw=1.2,
                           ls="--", label=f"PID expert, environment reward ({window}-ep. avg.)")
            ax_expert.set_ylabel("expert's environment reward", color="#55a868")
            ax_expert.grid(False)
            ax_expert.legend(loc="upper center", bbox_to_anchor=(0.5, -0.27), fontsize=8, frameon=False)
        ax_reward.set_yscale("symlog", linthresh=10)
        ax_reward.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3, fontsize=7, frameon=False)
        fig.suptitle(title)
        fig.tight_layout()
        save(fig, path)


def weights_figure(path: Path, title: str, weights: list[np.ndarray]) -> None:
    """Each layer's weight matrix as a heat map (paper Figs. 3/5/7/9)."""
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, len(weights), figsize=(3.4 * len(weights), 3.6))
        for i, (ax, w) in enumerate(zip(np.atleast_1d(axes), weights, strict=True)):
            finite = np.abs(w[np.isfinite(w)])
            limit = (float(finite.max()) if finite.size else 0.0) or 1.0
            image = ax.imshow(w, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto", interpolation="nearest")
            bad = int((~np.isfinite(w)).sum())
            note = f"\n{bad:,} NaN/inf (diverged)" if bad else ""
            ax.set_title(f"layer {i + 1}: {w.shape[1]} -> {w.shape[0]}{note}")
            ax.set_xlabel("input unit")
            ax.set_ylabel("output unit")
            ax.grid(False)
            fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        fig.suptitle(title)
        fig.tight_layout()
        save(fig, path)


def table2_figure(
    path: Path, labels: list[str], columns: list[str], values: dict[str, list[list[float]]],
    paper: dict[str, list[float]], verdicts: dict[str, list[str]], capped: list[bool],
) -> None:
    """Per Table 2 column: our mean (bar) and every seed (dots) beside the paper, with each cell's verdict."""
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, len(columns), figsize=(6.5 * len(columns), 5.0))
        x = np.arange(len(labels))
        n = len(values[columns[0]][0])
        for ax, column in zip(np.atleast_1d(axes), columns, strict=True):
            means = np.array([np.mean(v) for v in values[column]])
            bars = ax.bar(x - 0.2, means, 0.4, color="#4c72b0", label=f"ours: mean of {n} seed{'s' if n > 1 else ''}")
            for j, bar in enumerate(bars):
                if capped[j]:
                    bar.set_hatch("//")
                    bar.set_edgecolor("white")
                seeds = values[column][j]
                ax.plot(np.full(len(seeds), x[j] - 0.2), seeds, "o", ms=3, color="black", alpha=0.6,
                        label="ours: one seed" if j == 0 else None)
            ax.bar(x + 0.2, paper[column], 0.4, color="#dd8452", label="paper (one run)")
            ticks = [f"{label}\n{word}" + ("\n(capped)" if capped[j] and "capped" not in word else "")
                     for j, (label, word) in enumerate(zip(labels, verdicts[column], strict=True))]
            ax.set_xticks(x, ticks, fontsize=8)
            ax.set_ylabel("reward")
            ax.set_title(column)
            ax.legend(fontsize=8, loc="upper left")
        fig.suptitle("Table 2: ours vs the paper; verdict per cell; hatched: some training episodes hit the step cap")
        fig.tight_layout()
        save(fig, path)


def evaluation_figure(path: Path, labels: list[str], evals: list[dict]) -> None:
    """Greedy-evaluation reward by method: mean over seeds, its 95% interval, and every seed."""
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(1.6 * len(labels) + 2.5, 4.5))
        for j, ev in enumerate(evals):
            if ev["low"] is not None:
                ax.plot([j, j], [ev["low"], ev["high"]], color="#4c72b0", lw=6, alpha=0.35,
                        label="95% interval of the mean" if j == 0 else None)
            ax.plot(j, ev["mean"], "D", color="#4c72b0", ms=8, label="mean over seeds" if j == 0 else None)
            ax.plot(np.full(len(ev["values"]), j + 0.15), ev["values"], "o", ms=3, color="black", alpha=0.6,
                    label="one seed" if j == 0 else None)
        ax.set_xticks(np.arange(len(labels)), labels, fontsize=8)
        ax.set_ylabel("greedy episode reward (RL reward)")
        ax.set_yscale("symlog", linthresh=10)
        # From 0 (or the lowest value) to well above the highest, so that seeds at the episode cap are not
        # drawn on the frame; the legend sits below the axes, where it cannot hide a method's marks.
        values = np.concatenate([np.asarray(ev["values"], dtype=float) for ev in evals])
        ax.set_ylim(min(0.0, float(values.min())), 3.0 * max(10.0, float(values.max())))
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=3, frameon=False)
        ax.set_title("Greedy evaluation by method (epsilon = 0, fixed start states)")
        fig.tight_layout()
        save(fig, path)
