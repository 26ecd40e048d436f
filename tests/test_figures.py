"""The comparison figure: every method's marks readable, whatever the values."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pytest

from aqil import figures


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Draw the evaluation figure and keep it open to inspect (``save`` would close it)."""
    kept: list[plt.Figure] = []
    monkeypatch.setattr(figures, "save", lambda fig, path: (fig.savefig(path), kept.append(fig)))
    evals = [
        {"mean": 8986.1, "low": 3050.2, "high": 14922.1, "values": [14994.9, 14995.5, 303.8, 6.7, 14629.7]},
        {"mean": 6.7, "low": 6.7, "high": 6.7, "values": [6.7] * 5},
        {"mean": 2051.1, "low": None, "high": None, "values": [2051.1]},
    ]
    figures.evaluation_figure(tmp_path / "eval.png", ["A", "B", "C"], evals)
    yield kept[0], evals
    plt.close(kept[0])


def test_values_at_the_cap_are_inside_the_axes(drawn) -> None:
    fig, evals = drawn
    ax = fig.axes[0]
    low, high = ax.get_ylim()
    values = [v for ev in evals for v in ev["values"]]
    assert low <= 0.0 < min(values) and max(values) * 2 < high


def test_legend_is_below_the_axes(drawn) -> None:
    """The legend once sat over the first method's mean; now it is outside the plotting area."""
    fig, _ = drawn
    ax = fig.axes[0]
    fig.canvas.draw()
    legend = ax.get_legend().get_window_extent()
    assert legend.y1 < ax.get_window_extent().y0
