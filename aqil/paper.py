"""What the paper reports (Agarwal & Zhang, arXiv:2004.00993, Table 2 and Sec. III)."""

from __future__ import annotations

# Table 2: average training-episode reward and best single training-episode reward.
TABLE2: dict[str, dict[str, float]] = {
    "rl500": {"avg_reward": 331.63, "best_reward": 1949.39},
    "il250": {"avg_reward": 593.1, "best_reward": 6082.91},
    "il500": {"avg_reward": 681.91, "best_reward": 4652.33},
    "il250_rl250": {"avg_reward": 1937.61, "best_reward": 13043.02},
}

# The paper's conclusion: this run beats the others on both columns.
WINNER = "il250_rl250"
COLUMNS = ("avg_reward", "best_reward")
COLUMN_LABELS = {"avg_reward": "average reward", "best_reward": "best reward"}
FIGURES = {"rl500": (2, 3), "il250": (4, 5), "il500": (6, 7), "il250_rl250": (8, 9)}  # (curves, weights)
