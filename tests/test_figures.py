"""The report's figures on constructed records: every mark readable, whatever the values."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest

from aqil.reporting import plots
from aqil.reporting.records import SeedRecord


def record(run: str, seed: int, rewards: np.ndarray, diverged: bool = False) -> SeedRecord:
    n = len(rewards)
    steps = np.maximum(rewards, 1.0).round()
    episodes = {"reward": rewards, "steps": steps, "capped": np.zeros(n), "epsilon": np.full(n, 0.01),
                "max_abs_q": np.ones(n), "loss_mean": np.linspace(1.0, 0.1, n), "loss_max": np.ones(n),
                "updated": np.ones(n, bool)}
    if diverged:
        episodes["loss_mean"][n // 2:] = np.nan
    metrics = {"avg_reward": float(rewards.mean()), "best_reward": float(rewards.max()), "diverged": diverged,
               "capped_episodes": 0, "best_steps": int(steps.max())}
    return SeedRecord(run, seed, metrics, {"avg_reward": 10.0}, episodes, {}, "c0ffee")


@pytest.fixture
def kept(monkeypatch: pytest.MonkeyPatch):
    """Figures drawn, kept open to inspect (``save`` would close them)."""
    figures: list[plt.Figure] = []
    monkeypatch.setattr(plots, "save", lambda fig, path: (fig.savefig(path), figures.append(fig)))
    yield figures
    for fig in figures:
        plt.close(fig)


def test_reward_axis_starts_at_one_and_has_no_second_axis(kept, tmp_path: Path) -> None:
    """A log axis from 1: no empty negative decades; the expert shares the reward axis (no twin axis)."""
    rng = np.random.default_rng(0)
    recs = [record("il250", s, rng.uniform(5, 3000, 250)) for s in range(12)] + [record("il250", 99, np.full(250, 8.0),
                                                                                      diverged=True)]
    for r in recs:
        r.episodes["expert_reward"] = np.full(250, 700.0)
    plots.curves_figure(tmp_path / "c.png", "il250", recs, rng.uniform(10, 6000, 250), window=20)
    fig = kept[0]
    assert len(fig.axes) == 2  # loss and reward, nothing layered over them
    reward = fig.axes[1]
    assert reward.get_yscale() == "log" and reward.get_ylim()[0] == 1.0
    labels = [t.get_text() for t in reward.get_legend().get_texts()]
    assert any("diverged" in t for t in labels) and any("reference" in t for t in labels)
    assert any("5-95%" in t for t in labels)  # 12 finite seeds: quantile bands


def test_table2_figure_labels_every_median_and_paper_value(kept, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    records = {run: [record(run, s, rng.uniform(5, 500, 20)) for s in range(5)]
               for run in ("rl500", "il250", "il500", "il250_rl250")}
    plots.table2_figure(tmp_path / "t.png", records)
    ax = kept[0].axes[0]
    assert ax.get_yscale() == "log"  # RL500's ~8 and IL250+RL250's thousands both visible
    texts = [t.get_text() for t in ax.texts]
    assert "332" in texts and "1,938" in texts  # the paper's values, written on the bars


def test_evaluation_figure_keeps_capped_values_inside_the_axes_and_the_legend_below(kept, tmp_path: Path) -> None:
    evals = [
        {"mean": 8986.1, "low": 3050.2, "high": 14922.1, "values": [14994.9, 14995.5, 303.8, 6.7, 14629.7]},
        {"mean": 6.7, "low": 6.7, "high": 6.7, "values": [6.7] * 5},
        {"mean": 2051.1, "low": None, "high": None, "values": [2051.1]},
    ]
    plots.evaluation_figure(tmp_path / "eval.png", ["A", "B", "C"], evals)
    fig = kept[0]
    ax = fig.axes[0]
    low, high = ax.get_ylim()
    values = [v for ev in evals for v in ev["values"]]
    assert low <= min(values) and max(values) < high
    fig.canvas.draw()
    assert ax.get_legend().get_window_extent().y1 < ax.get_window_extent().y0


def test_curves_table_gives_median_and_quartiles_per_run_and_episode() -> None:
    """The data of DVC's overlay plot: one row per run and episode, quartiles over the seeds that have it."""
    recs = {"rl500": [record("rl500", s, np.arange(1.0, 5.0) * (s + 1)) for s in range(3)],
            "il250": [record("il250", 0, np.array([2.0, 4.0]))], "il500": [], "il250_rl250": []}
    lines = plots.curves_table(recs, window=1).splitlines()
    assert lines[0] == "run\tepisode\tseeds\tmedian\tq25\tq75"
    assert lines[1:] == ["RL500\t1\t3\t2\t1.5\t2.5", "RL500\t2\t3\t4\t3\t5", "RL500\t3\t3\t6\t4.5\t7.5",
                         "RL500\t4\t3\t8\t6\t10", "IL250\t1\t1\t2\t2\t2", "IL250\t2\t1\t4\t4\t4"]
    window = plots.curves_table({"rl500": recs["rl500"][:1]}, window=2).splitlines()
    assert [line.split("\t")[3] for line in window[1:]] == ["1", "1.5", "2.5", "3.5"]  # trailing means
