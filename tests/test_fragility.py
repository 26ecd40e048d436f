"""The fragility study's truncation and the independent reference port (benchmarks/, seconds in all)."""

import json
import math

from aqil.config import Params
from benchmarks import fragility
from benchmarks.reference_port import PortConfig, run_port


def test_port_is_finite_at_a_small_learning_rate():
    result = run_port(PortConfig(learning_rate=1e-6), seed=0, max_updates=300)
    assert result.updates == 300
    assert result.first_nan is None
    assert all(math.isfinite(loss) for loss in result.losses)
    assert result.weights_finite
    assert sum(result.episode_steps) == 300 + 19  # updates start once the memory holds 20 transitions


def test_port_goes_nan_at_an_absurd_learning_rate():
    result = run_port(PortConfig(learning_rate=1.0), seed=0, max_updates=300)
    assert result.first_nan is not None
    assert result.updates == result.first_nan + 1  # it stops at the first NaN
    assert not math.isfinite(result.losses[-1])
    assert all(math.isfinite(loss) for loss in result.losses[:-1])


def test_study_truncation_stops_at_the_budget():
    params = fragility.with_dqn(Params(), 2.5e-6, 0.3)
    outcome = fragility.train_rl500(params, seed=0, budget=120)
    assert (outcome.end, outcome.updates, outcome.first_nan, outcome.weights_finite) == ("budget", 120, None, True)
    assert not fragility.diverged_within(vars(outcome), 120)


def test_study_stops_at_the_first_nan():
    outcome = fragility.train_rl500(fragility.with_dqn(Params(), 1.0, 0.3), seed=0, budget=120)
    assert outcome.end == "nan"
    assert outcome.updates == outcome.first_nan + 1 < 120
    assert fragility.diverged_within(vars(outcome), 120)


def test_short_mode_writes_the_study(tmp_path, capsys):
    data = fragility.run_study(fragility.main_args(["--short", "--out", str(tmp_path)]))
    assert [c["seeds"] for c in data["grid"]] == [2, 2]
    assert data["port"]["port"]["seeds"] == data["port"]["pipeline"]["seeds"] == 2
    assert 0.0 <= data["port"]["fisher_exact_p"] <= 1.0
    assert json.loads((tmp_path / "fragility.json").read_text())["budget_updates"] == 150
    assert (tmp_path / "fragility.png").read_bytes()[:4] == b"\x89PNG"
