"""params.yaml, read once into typed, validated dataclasses.

Every check happens here, before any stage writes anything, and every failure is one
``ConfigError`` line naming the key, the value and what is accepted.

The file is parsed exactly as DVC parses it (ruamel.yaml's safe loader, YAML 1.2), so the values
DVC hashes for a stage are the values the stage runs with: ``1e-4`` is a number, ``010`` is ten,
``yes`` is a string, and a key written twice is refused.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import itertools
import math
import struct
import sys
import typing
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ruamel.yaml import YAML
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError

from aqil.layout import ALL_RUNS, RunSpec


class ConfigError(ValueError):
    """A params.yaml problem; its message is the one line the user sees."""


Precision = Literal["float32", "float64"]


def _check(kind: str | None, low: float | None = None, high: float | None = None,
           precision: Precision = "float64") -> dict[str, Any]:
    """Field metadata: a range rule checked by ``_validate_value``, and the precision the value is used in."""
    return {"rule": None if kind is None else (kind, low, high), "precision": precision}


def positive(precision: Precision = "float64", **kw: Any) -> Any:
    return field(metadata=_check("positive", precision=precision), **kw)


def nonnegative(precision: Precision = "float64", **kw: Any) -> Any:
    return field(metadata=_check("nonnegative", precision=precision), **kw)


def unit_interval(precision: Precision = "float64", **kw: Any) -> Any:
    return field(metadata=_check("interval", 0.0, 1.0, precision), **kw)


def used_in(precision: Precision, **kw: Any) -> Any:
    """A float without a range rule, used in ``precision`` (checked to be representable there)."""
    return field(metadata=_check(None, precision=precision), **kw)


def count(high: int, **kw: Any) -> Any:
    """A positive integer with an upper bound that keeps memory and run time finite."""
    return field(metadata=_check("interval_open_low", 0, high), **kw)


# The magnitudes each precision holds as normal numbers. Training runs with flush-to-zero
# (torch.set_flush_denormal, as TensorFlow): a smaller magnitude acts as 0, a larger one is infinite.
# float32: the learning rate and momentum in the kernel's arithmetic, and everything that ends in a
# float32 training target (rewards) or a float32 loss weight (DQfD's lambdas); float64: the rest.
NORMAL_RANGE: dict[str, tuple[float, float]] = {
    "float32": (1.1754943508222875e-38, 3.4028234663852886e38),
    "float64": (sys.float_info.min, sys.float_info.max),
}

# Upper bounds: far above any sensible run, low enough that a typo (an extra zero, 10**12) is one
# line here rather than a MemoryError or an overflow deep inside a stage.
MAX_EPISODES = 1_000_000
MAX_STEPS = 100_000_000
MAX_MEMORY = 100_000_000  # replay transitions (49 bytes each: 4.9 GB)
MAX_WEIGHTS = 100_000_000  # network parameters (weights + momentum: 800 MB in float32)
# Cart positions and start states: a 10 km track keeps every observation of an episode far below the
# magnitude recorded trajectories may hold (aqil/trajectories.py, MAX_ABS_OBS = 1e6).
MAX_TRACK = 10_000.0
# Reward widths, in radians: (angle / width)^2 overflows float64 for narrower Gaussians.
MIN_WIDTH_RAD = 1e-100
# Bootstrap resamples: the 2.5% tails of a 95% percentile interval need at least 25 resamples each.
MIN_BOOTSTRAP = 1_000


@dataclass(frozen=True)
class EnvConfig:
    theta_limit_deg: float = field(default=50.0, metadata=_check("interval_open_low", 0.0, 180.0))
    x_limit: float = field(default=2.4, metadata=_check("interval_open_low", 0.0, MAX_TRACK))
    init_range: float = field(default=0.05, metadata=_check("interval_open_low", 0.0, MAX_TRACK))
    max_episode_steps: int = count(MAX_STEPS, default=15_000)


@dataclass(frozen=True)
class ILRewardConfig:
    # rewards end in the float32 training targets
    angle_weight: float = nonnegative("float32", default=0.2)
    action_weight: float = nonnegative("float32", default=0.8)
    sigma2: float = positive(default=0.5)
    sigma2_units: Literal["degrees", "raw"] = "degrees"


@dataclass(frozen=True)
class RewardsConfig:
    sigma1: float = positive(default=10.0)
    sigma1_units: Literal["degrees", "raw"] = "degrees"
    terminal: float = used_in("float32", default=-1.0)
    il: ILRewardConfig = field(default_factory=ILRewardConfig)


@dataclass(frozen=True)
class ExpertConfig:
    kp: float = 0.6
    ki: float = 0.00625
    kd: float = 0.8
    reset_per_episode: bool = False


@dataclass(frozen=True)
class DQNConfig:
    hidden: list[int] = field(
        default_factory=lambda: [128, 256, 256], metadata=_check("interval_open_low", 0, MAX_WEIGHTS)
    )
    learning_rate: float = positive("float32", default=1e-5)  # the kernel's lr is float32
    momentum: float = unit_interval("float32", default=0.95)  # as is its momentum
    gamma: float = unit_interval(default=0.95)  # the targets are formed in float64, as the reference's numpy
    memory_size: int = count(MAX_MEMORY, default=1_000_000)
    batch_size: int = count(1_000_000, default=20)
    update: Literal["batched", "sequential"] = "sequential"
    epsilon_start: float = unit_interval(default=0.3)
    epsilon_decay: float = unit_interval(default=0.995)
    epsilon_min: float = unit_interval(default=0.01)
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    # record: a NaN/inf loss or weight is logged and training goes on, as the reference's Keras
    # code would (the report names every diverged seed); stop: the stage fails with one line.
    on_divergence: Literal["record", "stop"] = "record"


@dataclass(frozen=True)
class EpisodesConfig:
    episodes: int = count(MAX_EPISODES, default=250)


@dataclass(frozen=True)
class FinetuneConfig:
    episodes: int = count(MAX_EPISODES, default=250)
    keep_optimizer_state: bool = True


@dataclass(frozen=True)
class DQfDConfig:
    """DQfD250+RL250; constants from Hester et al. (2018), "Deep Q-learning from Demonstrations"."""

    demo_episodes: int = count(MAX_EPISODES, default=250)  # expert episodes: pretraining data, kept in replay
    episodes: int = count(MAX_EPISODES, default=250)  # RL episodes after the pretraining
    n_step: int = count(1_000, default=10)  # n of the n-step return (the paper's n = 10)
    margin: float = positive(default=0.8)  # large-margin l(a_E, a) for a != a_E (the paper's 0.8)
    lambda_n: float = nonnegative("float32", default=1.0)  # weight of the n-step loss (the paper's lambda_1 = 1)
    lambda_e: float = nonnegative("float32", default=1.0)  # weight of the large-margin loss (the paper's lambda_2 = 1)


@dataclass(frozen=True)
class EvaluateConfig:
    episodes: int = count(MAX_EPISODES, default=10)
    seed: int = field(default=2004, metadata=_check("interval", 0, 2**63 - 1))


@dataclass(frozen=True)
class ReportConfig:
    moving_average: int = count(MAX_EPISODES, default=20)
    bootstrap_samples: int = field(default=10_000, metadata=_check("interval", MIN_BOOTSTRAP, 1_000_000))
    bootstrap_seed: int = field(default=0, metadata=_check("interval", 0, 2**63 - 1))


_SEED_RULE = _check("interval", 0, 2**63 - 1)  # one run's training seeds: distinct non-negative integers


def _seeds_of(self: Any, run: str) -> list[int]:
    return getattr(self, run)


# The run sections are made from the run registry (aqil/layout.py), so that a new run needs no edit here.
# The price: static type checkers see Params and SeedsConfig as plain types, not their fields.
SeedsConfig = dataclasses.make_dataclass(
    "SeedsConfig", [(run, list[int], field(default_factory=lambda: [0], metadata=_SEED_RULE)) for run in ALL_RUNS],
    namespace={"of": _seeds_of, "__module__": __name__}, frozen=True)
SeedsConfig.__doc__ = """The seeds of each run (one training run per seed). A section of their own, apart from each
run's settings, so that adding a seed to one run reruns only that seed's stages (a stage depends on its
run's settings, never on this list). ``seeds.of(run)``: one run's list."""

RUN_SETTINGS: dict[str, type] = {"episodes": EpisodesConfig, "finetune": FinetuneConfig, "dqfd": DQfDConfig}


def _run_field(spec: RunSpec) -> tuple[str, type, Any]:
    if spec.settings not in RUN_SETTINGS:
        raise ValueError(f"aqil/layout.py: run {spec.name}: settings {spec.settings!r}; accepted: "
                         + ", ".join(RUN_SETTINGS))
    kind = RUN_SETTINGS[spec.settings]
    return spec.name, kind, field(default_factory=functools.partial(kind, episodes=spec.episodes))


Params = dataclasses.make_dataclass("Params", [
    ("seeds", SeedsConfig, field(default_factory=SeedsConfig)),
    ("env", EnvConfig, field(default_factory=EnvConfig)),
    ("rewards", RewardsConfig, field(default_factory=RewardsConfig)),
    ("expert", ExpertConfig, field(default_factory=ExpertConfig)),
    ("dqn", DQNConfig, field(default_factory=DQNConfig)),
    *(_run_field(spec) for spec in ALL_RUNS.values()),  # rl500: EpisodesConfig(500), ... (aqil/layout.py)
    ("evaluate", EvaluateConfig, field(default_factory=EvaluateConfig)),
    ("report", ReportConfig, field(default_factory=ReportConfig)),
], namespace={"__module__": __name__}, frozen=True)
Params.__doc__ = "params.yaml, typed: the shared sections, one section per run of the registry, evaluate, report."


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin is list:
        return f"a non-empty list, each item {_type_name(typing.get_args(tp)[0])}"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(tp, str(tp))


def _odd_characters(text: str) -> str:
    """Name the characters a terminal shows wrongly or not at all (a Cyrillic e, a zero-width space)."""
    odd = dict.fromkeys(c for c in text if not (c.isascii() and c.isprintable()))
    if not odd:
        return ""
    names = ", ".join(f"U+{ord(c):04X} {unicodedata.name(c, 'unnamed character')}" for c in odd)
    return f" (contains {names})"


def _show(value: Any) -> str:
    """A value as a message shows it: its repr with every non-ASCII character escaped, and strings'
    unusual characters named, so that a look-alike letter is never shown as the expected one."""
    text = ascii(value)
    if isinstance(value, str):
        return text + _odd_characters(value)
    return text if text == repr(value) else f"{text} (contains non-ASCII characters)"


def _show_key(key: Any) -> str:
    """A key as it appears in a dotted path: as written when it is plain ASCII, else escaped and named."""
    if isinstance(key, str) and key.isascii() and key.isprintable():
        return key
    return _show(key)


def _fmt(x: float) -> str:
    return f"{x:.8g}" if x and not 1e-4 <= abs(x) < 1e16 else repr(float(x))


def _range_accepted(kind: str, low: Any, high: Any) -> str:
    if kind in ("positive", "nonnegative"):
        return f"a value {'>' if kind == 'positive' else '>='} 0"
    if isinstance(high, int):
        return f"a value {'>=' if kind == 'interval' else '>'} {low:,} and <= {high:,}"
    return f"a value in {'[' if kind == 'interval' else '('}{low}, {high}]"


def _check_range(key: str, value: Any, rule: tuple) -> None:
    kind, low, high = rule
    ok = {
        "positive": lambda v: v > 0,
        "nonnegative": lambda v: v >= 0,
        "interval": lambda v: low <= v <= high,
        "interval_open_low": lambda v: low < v <= high,
    }[kind](value)
    if not ok:
        raise ConfigError(f"{key}: got {_show(value)}; accepted: {_range_accepted(kind, low, high)}")


def _is_zero(x: float) -> bool:
    """Compared bit by bit: under flush-to-zero (which training sets for its process) 1e-320 == 0 holds."""
    return struct.pack("<d", x).strip(b"\0") in (b"", b"\x80")


def _check_precision(key: str, value: float, rule: tuple | None, precision: str) -> None:
    """Refuse a value that is 0 or infinite in the precision it is used in: ``1e-46`` passes ``> 0`` in
    Python, yet a float32 learning rate of 1e-46 is 0, and training would silently not learn."""
    tiny, largest = NORMAL_RANGE[precision]
    size = abs(value)
    if _is_zero(value) or tiny <= size <= largest:
        return
    kind, _, high = rule or (None, None, None)
    top = _fmt(largest if high is None else min(high, largest))
    accepted = {
        None: f"0 or a magnitude in [{_fmt(tiny)}, {_fmt(largest)}]",
        "positive": f"a value in [{_fmt(tiny)}, {top}]",
        "interval_open_low": f"a value in [{_fmt(tiny)}, {top}]",
    }.get(kind, f"0 or a value in [{_fmt(tiny)}, {top}]")
    why = (f"0 in {precision}, the precision training uses for it (magnitudes below {_fmt(tiny)} are flushed "
           "to 0)" if size < tiny else f"infinite in {precision}, the precision training uses for it")
    raise ConfigError(f"{key}: got {value!r}, which is {why}; accepted: {accepted}")


def _validate_list(key: str, value: Any, item_tp: Any, meta: dict) -> list:
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{key}: got {_show(value)}; expected a non-empty list, each item {_type_name(item_tp)}")
    items = [_validate_value(f"{key}[{i}]", v, item_tp, meta) for i, v in enumerate(value)]
    if key.startswith("seeds.") and len(set(items)) != len(items):
        dupes = sorted({v for v in items if items.count(v) > 1})
        raise ConfigError(f"{key}: got {value!r}; seeds must be distinct (repeated: {dupes})")
    return items


def _validate_value(key: str, value: Any, tp: Any, meta: dict) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key)
    if origin is list:
        return _validate_list(key, value, typing.get_args(tp)[0], meta)
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ConfigError(f"{key}: got {_show(value)}; accepted: {' | '.join(map(str, allowed))}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: got {_show(value)}; expected true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: got {_show(value)}; expected an integer")
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: got {_show(value)}; expected a number")
        try:
            value = float(value)
        except OverflowError:  # an integer beyond float64
            value = math.inf
        if not math.isfinite(value):
            raise ConfigError(f"{key}: got {value!r}; expected a finite number")
    rule = meta.get("rule")
    if tp is float:  # first: under flush-to-zero the range rule would see a subnormal as 0
        _check_precision(key, value, rule, meta.get("precision", "float64"))
    if rule is not None:
        _check_range(key, value, rule)
    return value


def _build(cls: type, raw: Any, prefix: str) -> Any:
    where = prefix or "params.yaml"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: got {_show(raw)}; expected a mapping of keys to values")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in fields:
            full = f"{prefix}.{_show_key(key)}" if prefix else _show_key(key)
            close = difflib.get_close_matches(str(key), fields, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"{full}: unknown key{hint} (accepted here: {', '.join(fields)})")
    values = {}
    for name, f in fields.items():
        full = f"{prefix}.{name}" if prefix else name
        if name not in raw:
            raise ConfigError(f"{full}: missing; expected {_type_name(hints[name])}")
        values[name] = _validate_value(full, raw[name], hints[name], f.metadata)
    return cls(**values)


def n_weights(hidden: list[int], n_obs: int = 4, n_actions: int = 2) -> int:
    """Parameters of the Q-network: weights and biases of every layer."""
    sizes = [n_obs, *hidden, n_actions]
    return sum((a + 1) * b for a, b in itertools.pairwise(sizes))


def _cross_checks(p: Params) -> None:
    weights = n_weights(p.dqn.hidden)
    if weights > MAX_WEIGHTS:
        raise ConfigError(
            f"dqn.hidden: got {p.dqn.hidden} ({weights:,} parameters); accepted: at most {MAX_WEIGHTS:,} parameters"
        )
    for key, episodes in (("bc250.episodes", p.bc250.episodes), ("dqfd250_rl250.demo_episodes",
                                                                    p.dqfd250_rl250.demo_episodes)):
        if episodes > p.il250.episodes:
            raise ConfigError(f"{key}: got {episodes}; accepted: at most il250.episodes ({p.il250.episodes}), "
                              "since it trains on IL250's recorded expert episodes")
    _check_parent_seeds(p.seeds)
    _check_reward_widths(p.rewards)
    if p.dqn.epsilon_min > p.dqn.epsilon_start:
        raise ConfigError(
            f"dqn.epsilon_min: got {p.dqn.epsilon_min}; accepted: a value <= dqn.epsilon_start "
            f"({p.dqn.epsilon_start})"
        )
    if p.dqn.batch_size > p.dqn.memory_size:
        raise ConfigError(
            f"dqn.batch_size: got {p.dqn.batch_size}; accepted: a value <= dqn.memory_size ({p.dqn.memory_size})"
        )


def _check_reward_widths(rewards: RewardsConfig) -> None:
    """The Gaussians' widths as the rewards use them (in radians): a narrower one makes (angle / width)^2
    overflow, and the stage would fail deep inside an episode."""
    for key, width, units in (("rewards.sigma1", rewards.sigma1, rewards.sigma1_units),
                              ("rewards.il.sigma2", rewards.il.sigma2, rewards.il.sigma2_units)):
        radians = math.radians(width) if units == "degrees" else width
        if radians < MIN_WIDTH_RAD:
            shown = f"{width!r} ({units}: {radians!r} radians)" if units == "degrees" else repr(width)
            raise ConfigError(f"{key}: got {shown}; accepted: a width of at least {MIN_WIDTH_RAD:g} radians "
                              "(narrower Gaussians overflow)")


def _check_parent_seeds(seeds: SeedsConfig) -> None:
    """A run continues its parent's network, or trains on another run's expert episodes, of the same
    seed: each of its seeds must be one of the parent's."""
    for run in ALL_RUNS.values():
        for parent in run.parents:
            missing = sorted(set(seeds.of(run.name)) - set(seeds.of(parent)))
            if missing:
                raise ConfigError(f"seeds.{run.name}: seeds {missing} are not in seeds.{parent}; accepted: seeds "
                                  f"of {parent}, which {run.name} builds on (add them there too)")


def parse_params(raw: Any) -> Params:
    """Validate an already-parsed YAML document."""
    params = _build(Params, raw, "")
    _cross_checks(params)
    return params


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate params.yaml; every problem is a one-line ``ConfigError``."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (undecodable byte at offset {exc.start})") from None
    return parse_params(read_yaml(text, path))


def read_yaml(text: str, path: str | Path = "params.yaml") -> Any:
    """Parse YAML as DVC does (ruamel.yaml, safe, YAML 1.2); every failure is one ``ConfigError`` line."""
    try:
        return YAML(typ="safe", pure=True).load(text)
    except DuplicateKeyError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}: {exc.problem.split(' with value')[0]}{where}; each key may appear once") from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where} ({exc.problem or exc.context})") from None
    except Exception as exc:  # ruamel raises several unrelated types for garbage input
        raise ConfigError(f"{path}: not valid YAML ({type(exc).__name__})") from None


def to_dict(obj: Any) -> Any:
    """Plain-dict view of a config (for logs and the report)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, list):
        return [to_dict(v) for v in obj]
    return obj


__all__ = ["ConfigError", "Params", "load_params", "parse_params", "to_dict"]
