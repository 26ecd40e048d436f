"""params.yaml checking: every bad input is one line naming the key, the value and what is accepted."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from aqil.config import ConfigError, Params, load_params, parse_params, read_yaml, to_dict

ROOT = Path(__file__).resolve().parents[1]
# The code's defaults, not the working params.yaml: users edit that file, and the suite must pass
# whatever it holds (.ci/run checks separately that the shipped params.yaml equals these defaults).
DEFAULT = to_dict(Params())


def _with(path: str, value, delete: bool = False) -> dict:
    raw = copy.deepcopy(DEFAULT)
    node = raw
    *parents, last = path.split(".")
    for key in parents:
        node = node[key]
    if delete:
        del node[last]
    else:
        node[last] = value
    return raw


def test_default_params_match_the_paper():
    p = parse_params(DEFAULT)
    assert p == Params()
    assert p.env.theta_limit_deg == 50 and p.env.x_limit == 2.4
    assert (p.expert.kp, p.expert.ki, p.expert.kd) == (0.6, 0.00625, 0.8)
    assert p.dqn.hidden == [128, 256, 256]
    assert (p.dqn.learning_rate, p.dqn.momentum, p.dqn.gamma) == (1e-5, 0.95, 0.95)
    assert (p.dqn.memory_size, p.dqn.batch_size) == (1_000_000, 20)
    assert (p.dqn.epsilon_start, p.dqn.epsilon_decay, p.dqn.epsilon_min) == (0.3, 0.995, 0.01)
    assert (p.il250.episodes, p.il500.episodes, p.rl500.episodes, p.il250_rl250.episodes) == (250, 500, 500, 250)


def test_tiny_params_are_valid():
    load_params(ROOT / "tests" / "data" / "tiny_params.yaml")


BAD = [
    # (key path, value, words the one-line message must contain)
    ("dqn.learning_rte", 1e-3, ["dqn.learning_rte", "unknown key", "did you mean 'learning_rate'"]),
    ("sedes", [0], ["sedes", "unknown key", "did you mean 'seeds'"]),
    ("rewards.il.sigma3", 1.0, ["rewards.il.sigma3", "did you mean 'sigma2'"]),
    ("il250.episodes", 0, ["il250.episodes", "got 0", "> 0"]),
    ("rl500.episodes", -5, ["rl500.episodes", "got -5", "> 0"]),
    ("il500.episodes", 2.5, ["il500.episodes", "got 2.5", "integer"]),
    ("il250_rl250.episodes", "many", ["il250_rl250.episodes", "'many'", "integer"]),
    ("il500.episodes", True, ["il500.episodes", "True", "integer"]),
    ("dqn.epsilon_start", 1.5, ["dqn.epsilon_start", "1.5", "[0.0, 1.0]"]),
    ("dqn.epsilon_min", -0.1, ["dqn.epsilon_min", "-0.1", "[0.0, 1.0]"]),
    ("dqn.gamma", 1.2, ["dqn.gamma", "1.2", "[0.0, 1.0]"]),
    ("dqn.learning_rate", 0, ["dqn.learning_rate", "got 0", "> 0"]),
    ("dqn.learning_rate", "fast", ["dqn.learning_rate", "'fast'", "a number"]),
    ("rewards.sigma1", 0, ["rewards.sigma1", "> 0"]),
    ("rewards.il.sigma2", -0.5, ["rewards.il.sigma2", "-0.5", "> 0"]),
    ("rewards.il.sigma2_units", "radians", ["rewards.il.sigma2_units", "'radians'", "degrees | raw"]),
    ("dqn.update", "parallel", ["dqn.update", "'parallel'", "batched | sequential"]),
    ("dqn.device", "tpu", ["dqn.device", "cpu | cuda | auto"]),
    ("seeds.il250", [0, -1], ["seeds.il250[1]", "-1", ">= 0"]),
    ("seeds.rl500", [1, 2, 1], ["seeds.rl500: got [1, 2, 1]", "distinct", "[1]"]),
    ("seeds.il500", [], ["seeds.il500", "non-empty list"]),
    ("seeds.rl500", 3, ["seeds.rl500", "got 3", "list"]),
    ("seeds", [0], ["seeds: got [0]", "expected a mapping"]),
    ("seeds.il250_rl250", [0, 1], ["seeds.il250_rl250", "[1] are not in seeds.il250"]),
    ("seeds.bc250", [3], ["seeds.bc250", "[3] are not in seeds.il250"]),
    ("seeds.il25", [0], ["seeds.il25", "unknown key", "did you mean 'il250'"]),
    ("env.max_episode_steps", 0, ["env.max_episode_steps", "got 0", "> 0"]),
    ("env.theta_limit_deg", 0, ["env.theta_limit_deg", "(0.0, 180.0]"]),
    ("expert.reset_per_episode", "no", ["expert.reset_per_episode", "'no'", "true or false"]),
    ("dqn.hidden", [128, 0], ["dqn.hidden[1]", "got 0", "> 0"]),
    ("dqn.memory_size", 10, ["dqn.batch_size", "dqn.memory_size (10)"]),
    ("collect", {"episodes": 500}, ["collect", "unknown key"]),  # a params.yaml of the old layout
    ("bc250.episodes", 300, ["bc250.episodes", "got 300", "at most il250.episodes (250)"]),
    ("dqn.epsilon_min", 0.5, ["dqn.epsilon_min", "<= dqn.epsilon_start"]),
    ("evaluate.seed", -3, ["evaluate.seed", ">= 0"]),
    ("report", {"moving_average": 20}, ["report.bootstrap_samples", "missing"]),
    ("dqn", "fast", ["dqn", "'fast'", "mapping"]),
    ("env.x_limit", float("nan"), ["env.x_limit", "finite"]),
    ("dqn.memory_size", 10**12, ["dqn.memory_size", "<= 100,000,000"]),
    ("dqn.hidden", [100000, 100000], ["dqn.hidden", "parameters", "at most 100,000,000"]),
    ("report.moving_average", 10**30, ["report.moving_average", "<= 1,000,000"]),
    ("il500.episodes", 6.0, ["il500.episodes", "got 6.0", "integer"]),
    ("dqn.on_divergence", "ignore", ["dqn.on_divergence", "record | stop"]),
    ("report.bootstrap_samples", 1, ["report.bootstrap_samples", "got 1", ">= 1,000"]),
    ("report.bootstrap_samples", 999, ["report.bootstrap_samples", "got 999", ">= 1,000"]),
    ("env.x_limit", 1e5, ["env.x_limit", "(0.0, 10000.0]"]),
    ("env.init_range", 1e30, ["env.init_range", "(0.0, 10000.0]"]),
    ("rewards.sigma1", 1e-120, ["rewards.sigma1", "radians", "at least 1e-100 radians"]),
    ("rewards.il.sigma2", 0.0, ["rewards.il.sigma2", "> 0"]),
]

# Each float at the precision it is used in: 0 or infinite there is refused, naming the precision.
PRECISION = [
    ("dqn.learning_rate", 1e-46, "0 in float32", "a value in [1.1754944e-38, 3.4028235e+38]"),
    ("dqn.learning_rate", 1e-40, "0 in float32", "a value in [1.1754944e-38, 3.4028235e+38]"),  # subnormal
    ("dqn.learning_rate", 1e39, "infinite in float32", "a value in [1.1754944e-38, 3.4028235e+38]"),
    ("dqn.momentum", 1e-45, "0 in float32", "0 or a value in [1.1754944e-38, 1.0]"),
    ("dqfd250_rl250.lambda_n", 1e-40, "0 in float32", "0 or a value in [1.1754944e-38, 3.4028235e+38]"),
    ("dqfd250_rl250.lambda_e", 1e39, "infinite in float32", "0 or a value in [1.1754944e-38, 3.4028235e+38]"),
    ("rewards.terminal", -1e39, "infinite in float32", "0 or a magnitude in [1.1754944e-38, 3.4028235e+38]"),
    ("rewards.il.angle_weight", 1e-40, "0 in float32", "0 or a value in [1.1754944e-38, 3.4028235e+38]"),
    ("dqn.gamma", 1e-320, "0 in float64", "0 or a value in [2.2250739e-308, 1.0]"),
    ("dqn.epsilon_decay", 5e-324, "0 in float64", "0 or a value in [2.2250739e-308, 1.0]"),
    ("dqfd250_rl250.margin", 1e-310, "0 in float64", "a value in [2.2250739e-308, 1.7976931e+308]"),
]


@pytest.mark.parametrize(("path", "value", "becomes", "accepted"), PRECISION,
                         ids=[f"{p}={v!r}" for p, v, _, _ in PRECISION])
def test_a_float_that_is_zero_or_infinite_where_it_is_used_is_refused(path, value, becomes, accepted):
    with pytest.raises(ConfigError) as info:
        parse_params(_with(path, value))
    assert str(info.value) == (f"{path}: got {value!r}, which is {becomes}, the precision training uses for it"
                               + (f" (magnitudes below {accepted.split('[')[1].split(',')[0]} are flushed to 0)"
                                  if becomes.startswith("0") else "") + f"; accepted: {accepted}")


def test_precision_checks_hold_under_flush_to_zero():
    """Training sets the CPU's flush-to-zero mode for its process, where 1e-320 == 0 and 1e-320 > 0 is false;
    the checks must not depend on it (a sweep or a test may load params after training). Only the value's
    repr differs there (the float formatting flushes it too)."""
    torch = pytest.importorskip("torch")
    torch.set_flush_denormal(True)
    try:
        with pytest.raises(ConfigError, match=r"^dqn\.gamma: got .*, which is 0 in float64"):
            parse_params(_with("dqn.gamma", 1e-320))
        with pytest.raises(ConfigError, match=r"^dqfd250_rl250\.margin: got .*, which is 0 in float64"):
            parse_params(_with("dqfd250_rl250.margin", 1e-310))
    finally:
        torch.set_flush_denormal(False)


@pytest.mark.parametrize(("path", "value"), [("dqn.learning_rate", 1.1754944e-38), ("dqn.momentum", 0.0),
                                             ("dqn.learning_rate", 3.4e38), ("rewards.terminal", 0.0),
                                             ("dqn.gamma", 1e-300), ("rewards.il.sigma2", 1e-97)])
def test_the_smallest_and_largest_representable_values_pass(path, value):
    parse_params(_with(path, value))


LOOK_ALIKES = [
    # (key path, value, the exact message): invisible or look-alike characters are escaped and named
    ("dqn.update", "sequenti\u0430l",
     "dqn.update: got 'sequenti\\u0430l' (contains U+0430 CYRILLIC SMALL LETTER A); accepted: batched | sequential"),
    ("dqn.device", "cpu\u200b",
     "dqn.device: got 'cpu\\u200b' (contains U+200B ZERO WIDTH SPACE); accepted: cpu | cuda | auto"),
    ("dqn.learning_rate", "1\u0435-5",
     "dqn.learning_rate: got '1\\u0435-5' (contains U+0435 CYRILLIC SMALL LETTER IE); expected a number"),
]


@pytest.mark.parametrize(("path", "value", "message"), LOOK_ALIKES, ids=[m.split(":")[0] for _, _, m in LOOK_ALIKES])
def test_look_alike_characters_in_a_value_are_named(path, value, message):
    with pytest.raises(ConfigError) as info:
        parse_params(_with(path, value))
    assert str(info.value) == message


def test_look_alike_characters_in_a_key_are_named():
    raw = copy.deepcopy(DEFAULT)
    raw["dqn"]["learning_rate\u200b"] = raw["dqn"].pop("learning_rate")
    with pytest.raises(ConfigError) as info:
        parse_params(raw)
    assert str(info.value).startswith(
        "dqn.'learning_rate\\u200b' (contains U+200B ZERO WIDTH SPACE): unknown key; did you mean 'learning_rate'?")
    raw = copy.deepcopy(DEFAULT)
    raw["s\u0435eds"] = raw.pop("seeds")
    with pytest.raises(ConfigError, match=r"^'s\\u0435eds' \(contains U\+0435 CYRILLIC SMALL LETTER IE\): unknown key"):
        parse_params(raw)


@pytest.mark.parametrize(("path", "value", "words"), BAD, ids=[f"{p}={v!r}" for p, v, _ in BAD])
def test_bad_value_is_one_clear_line(path, value, words):
    with pytest.raises(ConfigError) as info:
        parse_params(_with(path, value))
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message


@pytest.mark.parametrize("path", ["rl500.episodes", "dqn.gamma", "seeds", "seeds.dagger250", "rewards.il"])
def test_missing_key_is_named(path):
    with pytest.raises(ConfigError, match=rf"^{path.replace('.', '[.]')}: missing"):
        parse_params(_with(path, None, delete=True))


def test_unreadable_and_invalid_yaml_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "params.yaml"
    bad.write_text("seeds: [0\nenv: {")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load_params(bad)
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_params(bad)


def test_yaml_is_read_as_dvc_reads_it(tmp_path):
    """YAML 1.2, as DVC's loader: what DVC hashes is what the stage runs with."""
    assert read_yaml("a: 1e-4\nb: 010\nc: yes\nd: 0o10\n") == {"a": 1e-4, "b": 10, "c": "yes", "d": 8}
    with pytest.raises(ConfigError, match=r"duplicate key \"seeds\" at line 2; each key may appear once"):
        read_yaml("seeds: [0]\nseeds: [1]\n")
    raw = copy.deepcopy(DEFAULT)
    raw["expert"]["reset_per_episode"] = read_yaml("x: no")["x"]  # YAML 1.1's boolean is a string in 1.2
    with pytest.raises(ConfigError, match=r"expert\.reset_per_episode: got 'no'; expected true or false"):
        parse_params(raw)


def test_undecodable_params_file_is_one_line(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_bytes(b"seeds: [0]\n\xff\xfe\n")
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_params(bad)
