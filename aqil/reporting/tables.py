"""Every number of the report, from the records: Table 2 with its verdicts, the regimes, the paper's
conclusion tested, and our episodes against the reference's.

The verdict rule (docs/statistics.md says why): within the paper's regime (seeds that did not diverge;
the reference's four Table 2 runs did not), a two-sided rank test of the paper's single value among our
seeds, Holm-corrected over Table 2's 8 cells, and a 95% Clopper-Pearson interval for the paper's
percentile. *inconsistent* when the adjusted p <= 0.05, *consistent* when the interval lies inside
(0.025, 0.975), otherwise *undecided*, with the seeds a decisive verdict would need.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np

from aqil import paper, verdict
from aqil.config import Params, to_dict
from aqil.layout import PAPER_RUNS
from aqil.reporting.records import SeedRecord
from aqil.stats import estimate

ORDER = ("rl500", "il250", "il500", "il250_rl250")
BALANCE_STEPS = 1_000  # "learns to balance": some training episode lasts this many steps
THRESHOLDS = (1_000.0, 5_000.0, 13_044.0)  # episode rewards: reaching the reference's best (13,043.02) and beyond
# params that do not change what Table 2 measures (where the report is written, the device, the figures)
NEUTRAL = ("dqn.device", "report.")
# "Per-step reward": the episode's reward over its steps, so that an expert's long episodes (which the
# imitation runs replay) do not pass for skill.
MEASURES = {"eval_reward": "greedy evaluation, average reward (environment reward)",
            "reward_per_step": "training reward per step (imitation reward for IL rows, environment for RL)"}


def _flat(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        out |= _flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v}
    return out


def non_paper_settings(params: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Every param that differs from the defaults (the paper's settings as its reference code ran them)."""
    ours, default = _flat(params), _flat({k: v for k, v in to_dict(Params()).items() if k != "seeds"})
    return {k: (ours[k], v) for k, v in default.items() if k in ours and ours[k] != v and not k.startswith(NEUTRAL)}


def _values(recs: list[SeedRecord], column: str) -> np.ndarray:
    return np.asarray([float(r.metrics[column]) for r in recs], dtype=np.float64)


def _estimates(values: np.ndarray, samples: int, rng: np.random.Generator) -> dict[str, Any]:
    if not len(values):
        return {"n": 0}
    out = asdict(estimate(values, samples, rng))
    out["iqm"] = verdict.interquartile_mean(values) if len(values) >= 4 else None
    out["median"] = float(np.median(values))
    return out


def run_entry(run: str, recs: list[SeedRecord], samples: int, rng: np.random.Generator) -> dict[str, Any]:
    """One row of Table 2: seeds, regimes, and each column over all seeds and within the paper's regime."""
    diverged = np.asarray([r.diverged for r in recs], dtype=bool)
    balance = np.asarray([r.metrics["best_steps"] >= BALANCE_STEPS for r in recs], dtype=bool)
    entry: dict[str, Any] = {
        "label": PAPER_RUNS[run].label, "seeds": [r.seed for r in recs], "n": len(recs),
        "diverged": asdict(verdict.share_with_interval(int(diverged.sum()), len(recs))),
        "diverged_seeds": [r.seed for r in recs if r.diverged],
        "balance": asdict(verdict.share_with_interval(int(balance.sum()), len(recs))),
        "capped_seeds": [r.seed for r in recs if r.capped],
        "updates": int(sum(r.metrics["updates"] for r in recs)), "columns": {},
    }
    for column in paper.COLUMNS:
        values = _values(recs, column)
        entry["columns"][column] = {
            "values": values.tolist(), "paper": paper.TABLE2[run][column],
            "all": _estimates(values, samples, rng), "finite": _estimates(values[~diverged], samples, rng),
        }
    evals = np.asarray([float(r.eval["avg_reward"]) for r in recs])
    entry["eval"] = {"values": evals.tolist(), **_estimates(evals, samples, rng),
                     "capped_episodes": int(sum(r.eval.get("capped_episodes", 0) for r in recs))}
    return entry


def _cell(run: str, column: str, recs: list[SeedRecord]) -> verdict.Cell:
    """One Table 2 cell within the paper's regime. A capped seed's best reward is a lower bound
    (right-censored); its average is not (the run after its first capped episode is another run), so
    its side of the paper's value is unknown: passed as capped at the paper's value, which counts it
    against any verdict."""
    finite = [r for r in recs if not r.diverged]
    y = paper.TABLE2[run][column]
    values = _values(finite, column)
    capped = np.asarray([r.capped for r in finite], dtype=bool)
    if column == "avg_reward":
        values = np.where(capped, np.minimum(values, y), values)
    return verdict.Cell(f"{run}.{column}", values, y, capped)


def verdicts(records: dict[str, list[SeedRecord]]) -> dict[str, dict[str, Any]]:
    """Every cell's verdict, Holm-corrected over the 8 cells."""
    cells = [_cell(run, column, records[run]) for run in ORDER for column in paper.COLUMNS]
    return {v.name: asdict(v) for v in verdict.cell_verdicts(cells)}


def _per_step(rec: SeedRecord) -> float:
    return float(np.mean(rec.episodes["reward"] / rec.episodes["steps"]))


def conclusion(records: dict[str, list[SeedRecord]], samples: int, rng: np.random.Generator) -> dict[str, Any]:
    """The paper's claim, IL250+RL250 beats IL250, IL500 and RL500, tested on both measures with one-sided
    Mann-Whitney tests in both directions (the claim, and the other run better), Holm-corrected over all 12.
    A greedy evaluation that hit the cap is a lower bound: each test ranks the claimed loser's capped seeds
    first, so neither direction gains from the cap."""
    measure = {"eval_reward": lambda r: float(r.eval["avg_reward"]), "reward_per_step": _per_step}
    censored = {"eval_reward": lambda r: r.eval.get("capped_episodes", 0) > 0, "reward_per_step": lambda r: False}
    rows = []
    winner = records[paper.WINNER]
    for other in (r for r in ORDER if r != paper.WINNER):
        for name, get in measure.items():
            ours, theirs = [get(r) for r in winner], [get(r) for r in records[other]]
            capped = censored[name]
            c = verdict.compare_runs(ours, theirs, samples, rng, [capped(r) for r in records[other]])
            reverse = verdict.compare_runs(theirs, ours, 1, rng, [capped(r) for r in winner])  # the claim refuted
            rows.append({"other": other, "measure": name, **asdict(c), "p_reverse": reverse.p,
                         "censored_reverse": reverse.censored_b})
    adjusted = verdict.holm([r["p"] for r in rows] + [r["p_reverse"] for r in rows])
    for row, p, q in zip(rows, adjusted[: len(rows)].tolist(), adjusted[len(rows):].tolist(), strict=True):
        row["p_holm"], row["p_reverse_holm"] = p, q
        row["significant"] = p <= verdict.ALPHA
        row["refuted"] = q <= verdict.ALPHA
    return {"holds": all(r["significant"] for r in rows), "refuted": any(r["refuted"] for r in rows),
            "comparisons": rows,
            "failed": [f"{PAPER_RUNS[r['other']].label} ({r['measure']})" for r in rows if not r["significant"]],
            "against": [f"{PAPER_RUNS[r['other']].label} ({r['measure']})" for r in rows if r["refuted"]]}


def against_reference(run: str, recs: list[SeedRecord], reference: np.ndarray) -> dict[str, Any]:
    """Our episodes against the reference's logged episodes of the same run (its regime: finite seeds)."""
    finite = [r for r in recs if not r.diverged] or recs
    ours = np.concatenate([r.episodes["reward"] for r in finite])
    capped = np.concatenate([r.episodes["capped"].astype(bool) for r in finite])
    ks = verdict.ks_two_sample(ours, reference)
    out: dict[str, Any] = {"episodes_ours": len(ours), "episodes_reference": len(reference),
                           "seeds": len(finite), "ks_statistic": ks.statistic, "ks_p": ks.p,
                           "capped_share": float(capped.mean())}
    if capped.any() or run in ("rl500", "il250_rl250"):
        lr = verdict.logrank(ours, capped, reference, np.zeros(len(reference), dtype=bool))
        out |= {"logrank_statistic": lr.statistic, "logrank_p": lr.p}
    out["first_reaching"] = {}
    for t in THRESHOLDS:
        ours_first = [verdict.first_episode_reaching(r.episodes["reward"], t) for r in finite]
        reached = [e for e in ours_first if e is not None]
        out["first_reaching"][f"{t:.0f}"] = {
            "reference": verdict.first_episode_reaching(reference, t), "seeds_reaching": len(reached),
            "median_episode": float(np.median(reached)) if reached else None}
    return out


def build(records: dict[str, list[SeedRecord]], params: dict[str, Any], reference: dict[str, np.ndarray]) -> dict:
    """The whole table: runs, verdicts, conclusion, reference comparison, and whether it may be judged."""
    report = params["report"]
    rng = np.random.default_rng(report["bootstrap_seed"])
    samples = report["bootstrap_samples"]
    changed = non_paper_settings(params)
    empty = [PAPER_RUNS[r].label for r in ORDER if not records[r]]
    untrained = [PAPER_RUNS[r].label for r in ORDER if records[r] and not sum(x.metrics["updates"] for x in records[r])]
    reason = ("no seeds of " + ", ".join(empty) if empty else
              "nothing was trained in " + ", ".join(untrained) if untrained else
              "not the paper's settings" if changed else None)
    table: dict[str, Any] = {"judged": reason is None, "not_judged_because": reason, "non_paper_settings": changed,
                             "runs": {r: run_entry(r, records[r], samples, rng) for r in ORDER if records[r]}}
    if empty:
        return table
    table["verdicts"] = verdicts(records)
    table["conclusion"] = conclusion(records, samples, rng)
    table["reference"] = {r: against_reference(r, records[r], reference[r]) for r in ORDER}
    return table
