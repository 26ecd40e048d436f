"""The report's records, cross-checks and tables on constructed and on real published records."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from aqil.artifacts import ArtifactError
from aqil.config import Params, to_dict
from aqil.published import episode_losses
from aqil.reporting import records, render, tables

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "results" / "report" / "episodes"


def test_episode_losses_assign_each_update_to_its_episode():
    """Updates start at the 20th transition and follow every step; DQfD's pretraining updates come first."""
    steps = np.array([10, 15, 5])
    losses = np.arange(30 - 19, dtype=np.float32)  # 11 updates: none in episode 0, 6 in 1, 5 in 2
    n, mean, peak = episode_losses(losses, steps)
    assert n.tolist() == [0, 6, 5] and np.isnan(mean[0])
    assert mean[1] == pytest.approx(np.mean(np.arange(6))) and peak[2] == 10
    # DQfD: 100 pretraining updates first fill the memory, so every later step makes an update
    n, _, _ = episode_losses(np.zeros(100 + 30, np.float32), steps)
    assert n.tolist() == [10, 15, 5]


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """The published records of one seed of every run, copied to be damaged."""
    if not all((PUBLISHED / run / "seed0.json").is_file() for run in tables.ORDER):
        pytest.fail("results/report/episodes must hold seed 0 of every run")
    for run in tables.ORDER:
        (tmp_path / run).mkdir()
        for suffix in (".json", ".tsv"):
            shutil.copy2(PUBLISHED / run / f"seed0{suffix}", tmp_path / run / f"seed0{suffix}")
    return tmp_path


def _edit(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


CONTRADICTIONS = [
    ("avg above best", lambda d: d["metrics"].update(avg_reward=d["metrics"]["best_reward"] + 1), "avg_reward"),
    ("negative steps", lambda d: d["metrics"].update(total_steps=-5), "total_steps"),
    ("negative capped", lambda d: d["metrics"].update(capped_episodes=-1), "capped_episodes"),
    ("episodes not the params'", lambda d: d["params"]["il250"].update(episodes=6), "episodes in params"),
    ("evaluation summary", lambda d: d["eval"].update(avg_reward=d["eval"]["avg_reward"] + 1), "evaluation"),
]


@pytest.mark.parametrize(("name", "edit", "needle"), CONTRADICTIONS, ids=[c[0] for c in CONTRADICTIONS])
def test_a_record_that_contradicts_itself_is_refused_with_one_line(copy: Path, name, edit, needle):
    _edit(copy / "il250" / "seed0.json", edit)
    with pytest.raises(ArtifactError, match="seed0.json: .*" + needle.split()[0]) as info:
        records.load_records(copy)
    assert "\n" not in str(info.value)


def test_a_nan_loss_in_a_run_that_says_it_did_not_diverge_is_refused(copy: Path):
    table = copy / "il250" / "seed0.tsv"
    lines = table.read_text().splitlines()
    cells = lines[5].split("\t")
    cells[-1] = "nan"
    lines[5] = "\t".join(cells)
    table.write_text("\n".join(lines) + "\n")
    with pytest.raises(ArtifactError, match="diverged is false but a loss is NaN"):
        records.load_records(copy)


def test_the_published_records_make_a_table_with_every_cell(copy: Path):
    recs = records.load_records(copy)
    params = records.common_params(recs)
    table = tables.build(recs, params, records.reference_rewards(ROOT / "data" / "reference"))
    assert table["judged"] and set(table["verdicts"]) == {f"{r}.{c}" for r in tables.ORDER
                                                          for c in ("avg_reward", "best_reward")}
    assert all(v["word"].startswith(("undecided", "no data", "consistent", "inconsistent"))
               for v in table["verdicts"].values())
    assert len(table["conclusion"]["comparisons"]) == 6
    summary = render.summary_lines(table)
    assert summary.startswith("Paper's conclusion (IL250+RL250 beats IL250, IL500 and RL500): ")
    assert render.small_metrics(table)["seeds"] == dict.fromkeys(tables.ORDER, 1)


def test_non_paper_settings_are_not_judged(copy: Path):
    for run in tables.ORDER:
        _edit(copy / run / "seed0.json", lambda d: d["params"]["dqn"].update(learning_rate=2e-5))
    recs = records.load_records(copy)
    table = tables.build(recs, records.common_params(recs), records.reference_rewards(ROOT / "data" / "reference"))
    assert not table["judged"] and table["non_paper_settings"] == {"dqn.learning_rate": (2e-5, 1e-5)}
    assert render.conclusion_line(table) == "Paper's conclusion: not judged (not the paper's settings)."


def test_records_of_different_settings_are_not_mixed(copy: Path):
    _edit(copy / "rl500" / "seed0.json", lambda d: d["params"]["dqn"].update(gamma=0.9))
    with pytest.raises(ArtifactError, match="ran with other params"):
        records.common_params(records.load_records(copy))


def _record(run: str, seed: int, score: float, eval_capped: int = 0, updates: int = 100) -> records.SeedRecord:
    n = 10
    episodes = {"reward": np.full(n, score), "steps": np.full(n, 10_000.0), "capped": np.zeros(n),
                "epsilon": np.full(n, 0.01), "max_abs_q": np.ones(n), "loss_mean": np.ones(n),
                "loss_max": np.ones(n), "updated": np.ones(n, bool)}
    metrics = {"avg_reward": score, "best_reward": score, "diverged": False, "capped_episodes": 0,
               "best_steps": int(score), "updates": updates}
    evaluation = {"avg_reward": score, "capped_episodes": eval_capped}
    return records.SeedRecord(run, seed, metrics, evaluation, episodes, {}, None)


def _records(**overrides) -> dict[str, list[records.SeedRecord]]:
    scores = {"rl500": 10.0, "il250": 500.0, "il500": 600.0, "il250_rl250": 5000.0}
    return {run: [_record(run, s, scores[run] + s, **overrides.get(run, {})) for s in range(8)] for run in scores}


def test_a_clear_win_holds_and_a_capped_loser_counts_at_its_worst():
    rng = np.random.default_rng(0)
    table = tables.conclusion(_records(), 1000, rng)
    assert table["holds"] and not table["refuted"]
    plain = next(r for r in table["comparisons"] if (r["other"], r["measure"]) == ("il250", "eval_reward"))
    recs = _records()
    for rec in recs["il250"][:1]:  # one capped IL250 evaluation, ranked above every IL250+RL250 seed
        rec.eval["capped_episodes"] = 3
    one = tables.conclusion(recs, 1000, rng)
    row = next(r for r in one["comparisons"] if (r["other"], r["measure"]) == ("il250", "eval_reward"))
    assert row["censored_b"] == 1 and row["probability_of_improvement"] == pytest.approx(56 / 64)
    assert one["holds"] and row["p"] > plain["p"] and plain["censored_b"] == 0
    every = tables.conclusion(_records(il250={"eval_capped": 3}), 1000, rng)  # every IL250 seed may lie above
    assert not every["holds"] and every["failed"] == ["IL250 (eval_reward)"] and not every["refuted"]


def test_the_reverse_test_ranks_the_winners_capped_seeds_first():
    recs = _records(il250_rl250={"eval_capped": 1})
    for rec in recs["il250_rl250"]:  # a loss on the observed values, but every winner's value is a lower bound
        rec.eval["avg_reward"] = 1.0
    table = tables.conclusion(recs, 1000, np.random.default_rng(0))
    row = next(r for r in table["comparisons"] if (r["other"], r["measure"]) == ("il250", "eval_reward"))
    assert row["censored_reverse"] == 8 and row["p_reverse"] > 0.99 and not table["refuted"]


def test_nothing_trained_is_not_judged():
    recs = _records(**{run: {"updates": 0} for run in ("rl500", "il250", "il500", "il250_rl250")})
    params = {k: v for k, v in to_dict(Params()).items() if k != "seeds"}
    table = tables.build(recs, params, {run: np.ones(5) for run in recs})
    assert not table["judged"] and table["not_judged_because"].startswith("nothing was trained in RL500")
    assert render.conclusion_line(table).startswith("Paper's conclusion: not judged (nothing was trained")
