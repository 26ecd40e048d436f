"""Per-seed records (aqil/published.py's format), loaded and cross-checked before any number is reported.

A record's summary must agree with its own per-episode table and with the settings it ran with: a
summary edited by hand, a table cut short, or a run that trained on fewer episodes than it was asked
for is refused with one line naming the file, never reported.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aqil.artifacts import ArtifactError, read_json
from aqil.layout import PAPER_RUNS

COLUMNS = ("reward", "steps", "capped", "epsilon", "max_abs_q", "loss_mean", "loss_max")


@dataclass(frozen=True)
class SeedRecord:
    run: str
    seed: int
    metrics: dict[str, Any]
    eval: dict[str, Any]
    episodes: dict[str, np.ndarray]  # COLUMNS (+ expert_reward for imitation runs), one value per episode
    params: dict[str, Any]
    commit: str | None  # None in your run's report (only published records name their code's commit)

    @property
    def diverged(self) -> bool:
        return bool(self.metrics["diverged"])

    @property
    def capped(self) -> bool:
        """Some training episode was cut at the step cap (its reward is a lower bound)."""
        return self.metrics["capped_episodes"] > 0


def _float(text: str) -> float:
    return math.nan if text == "" else float(text)


def read_table(path: Path) -> dict[str, np.ndarray]:
    """A record's per-episode table; refuses a malformed or non-numeric one."""
    try:
        with path.open(newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
        names = [c for c in (*COLUMNS, "expert_reward") if rows and c in rows[0]]
        table = {c: np.asarray([_float(r[c]) for r in rows], dtype=np.float64) for c in names}
        table["updated"] = np.asarray([r["loss_mean"] != "" for r in rows], dtype=bool)  # made an update
    except FileNotFoundError:
        raise ArtifactError(f"{path}: missing") from None
    except (KeyError, ValueError, TypeError, csv.Error):
        raise ArtifactError(f"{path}: not a per-episode table (columns {', '.join(COLUMNS)})") from None
    if not rows or set(COLUMNS) - set(table):
        raise ArtifactError(f"{path}: no episodes, or a column of {', '.join(COLUMNS)} is missing")
    for c in ("reward", "steps", "capped"):
        if not np.isfinite(table[c]).all():
            raise ArtifactError(f"{path}: column {c} holds NaN or infinite values")
    return table


def _check(path: Path, what: str, ok: bool) -> None:
    if not ok:
        raise ArtifactError(f"{path}: {what}; the record contradicts itself (re-export this seed)")


def cross_check(path: Path, rec: SeedRecord) -> None:
    """The summary against its own table and params, the evaluation against its own episodes."""
    m, t = rec.metrics, rec.episodes
    episodes = rec.params[rec.run]["episodes"]
    _check(path, f"{len(t['reward'])} episodes in the table, {m['episodes']} in metrics, {episodes} in params",
           len(t["reward"]) == m["episodes"] == episodes)
    _check(path, "avg_reward is not the table's mean", math.isclose(m["avg_reward"], float(t["reward"].mean()),
                                                                    rel_tol=1e-12, abs_tol=1e-12))
    _check(path, "best_reward is not the table's largest", m["best_reward"] == float(t["reward"].max()))
    _check(path, "avg_reward is above best_reward", m["avg_reward"] <= m["best_reward"])
    _check(path, "total_steps is not the table's sum", m["total_steps"] == int(t["steps"].sum()) >= 0)
    _check(path, "capped_episodes is not the table's count", m["capped_episodes"] == int(t["capped"].sum()) >= 0)
    bad_loss = not np.isfinite(t["loss_max"][t["updated"]]).all()
    _check(path, "diverged is false but a loss is NaN or infinite", m["diverged"] or not bad_loss)
    ev = rec.eval
    steps, rewards = ev["episode_steps"], ev["episode_reward"]
    _check(path, "the evaluation's summary disagrees with its episodes",
           len(steps) == len(rewards) == rec.params["evaluate"]["episodes"]
           and math.isclose(ev["avg_reward"], float(np.mean(rewards)), rel_tol=1e-12)
           and ev["best_reward"] == float(np.max(rewards)) and ev["avg_steps"] == float(np.mean(steps)))


def load_record(table_path: Path, record_path: Path) -> SeedRecord:
    data = read_json(record_path, ("run", "seed", "metrics", "eval", "params", "commit"))
    rec = SeedRecord(data["run"], data["seed"], data["metrics"], data["eval"], read_table(table_path),
                     data["params"], data["commit"])
    cross_check(record_path, rec)
    return rec


def load_records(folder: Path) -> dict[str, list[SeedRecord]]:
    """Every paper run's records in ``folder``/<run>/seed<N>.{tsv,json}, ordered by seed."""
    out: dict[str, list[SeedRecord]] = {}
    for run in PAPER_RUNS:
        paths = sorted((folder / run).glob("seed*.json"), key=lambda p: int(p.stem[4:]))
        out[run] = [load_record(p.with_suffix(".tsv"), p) for p in paths]
        for path, rec in zip(paths, out[run], strict=True):
            if rec.run != run or f"seed{rec.seed}" != path.stem:
                raise ArtifactError(f"{path}: holds {rec.run} seed {rec.seed}; expected {run} {path.stem}")
    return out


def common_params(records: dict[str, list[SeedRecord]]) -> dict[str, Any]:
    """The settings every record ran with; refuses records of different settings mixed in one report."""
    seen: dict[str, Any] | None = None
    for recs in records.values():
        for rec in recs:
            if seen is None:
                seen = rec.params
            elif rec.params != seen:
                raise ArtifactError(f"{rec.run} seed {rec.seed}: ran with other params than the other records; "
                                    "a report covers one setting")
    if seen is None:
        raise ArtifactError("no records to report on: train and evaluate at least one seed of each run")
    return seen


def reference_rewards(folder: Path) -> dict[str, np.ndarray]:
    """The reference implementation's per-episode rewards of each Table 2 run (data/reference)."""
    manifest = json.loads((folder / "manifest.json").read_text())
    out = {}
    for run, entry in manifest["runs"].items():
        with (folder / entry["files"][0]).open(newline="") as fh:
            out[run] = np.asarray([float(r[entry["reward_column"]]) for r in csv.DictReader(fh)], dtype=np.float64)
    return out
