"""Episode progress bars that stay readable in a terminal and in CI logs."""

from __future__ import annotations

import contextlib
import sys
from collections import deque
from collections.abc import Iterator

from tqdm import tqdm


class EpisodeBar:
    """A tqdm bar over episodes showing the last and running-average reward and steps."""

    def __init__(self, bar: tqdm, window: int = 20) -> None:
        self.bar = bar
        self.rewards: deque[float] = deque(maxlen=window)
        self.steps = 0
        self.capped = 0

    def episode_done(self, steps: int, reward: float | None = None, capped: bool = False, **extra: float) -> None:
        """Count one episode; the bar shows steps, steps per second, capped episodes and rewards."""
        self.steps += steps
        self.capped += bool(capped)
        elapsed = self.bar.format_dict.get("elapsed") or 0.0
        postfix: dict[str, str] = {"steps": f"{self.steps:,}"}
        if elapsed > 0:
            postfix["steps/s"] = f"{self.steps / elapsed:,.0f}"
        if self.capped:
            postfix["capped"] = str(self.capped)
        if reward is not None:
            self.rewards.append(reward)
            postfix["reward"] = f"{reward:.1f}"
            postfix[f"avg{self.rewards.maxlen}"] = f"{sum(self.rewards) / len(self.rewards):.1f}"
        postfix.update({k: f"{v:.3g}" for k, v in extra.items()})
        self.bar.set_postfix(postfix, refresh=False)
        self.bar.update(1)


@contextlib.contextmanager
def progress(total: int, description: str) -> Iterator[EpisodeBar]:
    # Redraw often on a terminal; in a log file (CI) print a line every 30 s at most.
    interactive = sys.stderr.isatty()
    bar = tqdm(
        total=total, desc=description, unit="ep", file=sys.stderr, dynamic_ncols=interactive,
        mininterval=0.2 if interactive else 30.0, ascii=not interactive,
    )
    try:
        yield EpisodeBar(bar)
    finally:
        bar.close()
