"""The paper's figures, drawn with matplotlib and written byte-stably (no timestamps, fixed fonts)."""

from __future__ import annotations

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


def _binned(losses: np.ndarray, bins: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """Mean loss in equal bins of training steps, so a million points draw as a readable line."""
    n = len(losses)
    if n <= bins:
        return np.arange(n), losses
    edges = np.linspace(0, n, bins + 1).astype(np.int64)
    means = np.add.reduceat(losses.astype(np.float64), edges[:-1]) / np.diff(edges)
    return (edges[:-1] + edges[1:]) / 2, means


def curves_figure(
    path: Path, title: str, losses: dict[int, np.ndarray], rewards: dict[int, np.ndarray],
    expert: dict[int, np.ndarray] | None, window: int, reward_label: str,
) -> None:
    """Loss per training step (log y) and reward per episode with a moving average (paper Figs. 2/4/6/8)."""
    with plt.rc_context(STYLE):
        fig, (ax_loss, ax_reward) = plt.subplots(1, 2, figsize=(12, 4.2))
        for i, (seed, loss) in enumerate(sorted(losses.items())):
            x, y = _binned(loss)
            ax_loss.plot(x, np.maximum(y, 1e-12), color=SEED_COLORS[i % 10], lw=0.8, label=f"seed {seed}")
        ax_loss.set_yscale("log")
        ax_loss.set_xlabel("training step (update)")
        ax_loss.set_ylabel("loss (mean squared Bellman error / 2)")
        ax_loss.set_title("Loss per training step")
        ax_loss.legend(loc="upper right", fontsize=8)
        for i, (seed, reward) in enumerate(sorted(rewards.items())):
            color = SEED_COLORS[i % 10]
            episodes = np.arange(1, len(reward) + 1)
            ax_reward.plot(episodes, reward, color=color, lw=0.5, alpha=0.35)
            ax_reward.plot(episodes, moving_average(reward, window), color=color, lw=1.6,
                           label=f"seed {seed}: {window}-episode average")
            if expert is not None and seed in expert:
                ax_reward.plot(episodes, moving_average(expert[seed], window), color=color, lw=1.2, ls="--",
                               label=f"seed {seed}: PID expert, environment reward ({window}-ep. avg.)")
        ax_reward.set_xlabel("episode")
        ax_reward.set_ylabel(reward_label)
        ax_reward.set_title("Reward per episode (thin: single episodes)")
        ax_reward.legend(loc="upper left", fontsize=8)
        fig.suptitle(title)
        fig.tight_layout()
        save(fig, path)


def weights_figure(path: Path, title: str, weights: list[np.ndarray]) -> None:
    """Each layer's weight matrix as a heat map (paper Figs. 3/5/7/9)."""
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, len(weights), figsize=(3.4 * len(weights), 3.6))
        for i, (ax, w) in enumerate(zip(np.atleast_1d(axes), weights, strict=True)):
            limit = float(np.abs(w).max()) or 1.0
            image = ax.imshow(w, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto", interpolation="nearest")
            ax.set_title(f"layer {i + 1}: {w.shape[1]} -> {w.shape[0]}")
            ax.set_xlabel("input unit")
            ax.set_ylabel("output unit")
            ax.grid(False)
            fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        fig.suptitle(title)
        fig.tight_layout()
        save(fig, path)


def table2_figure(
    path: Path, labels: list[str], columns: list[str], ours: dict[str, list[float]],
    errors: dict[str, list[tuple[float, float] | None]], paper: dict[str, list[float]], n_seeds: int,
) -> None:
    """Grouped bars: reproduced (mean, 95% CI when several seeds) beside the paper, per Table 2 column."""
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, len(columns), figsize=(6 * len(columns), 4.2))
        x = np.arange(len(labels))
        for ax, column in zip(np.atleast_1d(axes), columns, strict=True):
            means = np.asarray(ours[column])
            err = np.zeros((2, len(labels)))
            for j, ci in enumerate(errors[column]):
                if ci is not None:
                    err[:, j] = [means[j] - ci[0], ci[1] - means[j]]
            ax.bar(x - 0.2, means, 0.4, yerr=err if n_seeds > 1 else None, capsize=4, color="#4c72b0",
                   label=f"reproduced ({n_seeds} seed{'s' if n_seeds > 1 else ''})")
            ax.bar(x + 0.2, paper[column], 0.4, color="#dd8452", label="paper")
            ax.set_xticks(x, labels)
            ax.set_ylabel("reward")
            ax.set_title(column)
            ax.legend(fontsize=8)
        fig.suptitle("Table 2: reproduced vs paper" + (" (error bars: 95% bootstrap CI)" if n_seeds > 1 else ""))
        fig.tight_layout()
        save(fig, path)
