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
import itertools
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ruamel.yaml import YAML
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError

from aqil.layout import ALL_RUNS


class ConfigError(ValueError):
    """A params.yaml problem; its message is the one line the user sees."""


def _check(kind: str, low: float | None = None, high: float | None = None) -> dict[str, Any]:
    """Field metadata: a range rule checked by ``_validate_value``."""
    return {"rule": (kind, low, high)}


def positive(**kw: Any) -> Any:
    return field(metadata=_check("positive"), **kw)


def nonnegative(**kw: Any) -> Any:
    return field(metadata=_check("nonnegative"), **kw)


def unit_interval(**kw: Any) -> Any:
    return field(metadata=_check("interval", 0.0, 1.0), **kw)


def count(high: int, **kw: Any) -> Any:
    """A positive integer with an upper bound that keeps memory and run time finite."""
    return field(metadata=_check("interval_open_low", 0, high), **kw)


# Upper bounds: far above any sensible run, low enough that a typo (an extra zero, 10**12) is one
# line here rather than a MemoryError or an overflow deep inside a stage.
MAX_EPISODES = 1_000_000
MAX_STEPS = 100_000_000
MAX_MEMORY = 100_000_000  # replay transitions (49 bytes each: 4.9 GB)
MAX_WEIGHTS = 100_000_000  # network parameters (weights + momentum: 800 MB in float32)


@dataclass(frozen=True)
class EnvConfig:
    theta_limit_deg: float = field(default=50.0, metadata=_check("interval_open_low", 0.0, 180.0))
    x_limit: float = positive(default=2.4)
    init_range: float = positive(default=0.05)
    max_episode_steps: int = count(MAX_STEPS, default=15_000)


@dataclass(frozen=True)
class ILRewardConfig:
    angle_weight: float = nonnegative(default=0.2)
    action_weight: float = nonnegative(default=0.8)
    sigma2: float = positive(default=0.5)
    sigma2_units: Literal["degrees", "raw"] = "degrees"


@dataclass(frozen=True)
class RewardsConfig:
    sigma1: float = positive(default=10.0)
    sigma1_units: Literal["degrees", "raw"] = "degrees"
    terminal: float = -1.0
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
    learning_rate: float = positive(default=1e-5)
    momentum: float = unit_interval(default=0.95)
    gamma: float = unit_interval(default=0.95)
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
    lambda_n: float = nonnegative(default=1.0)  # weight of the n-step loss (the paper's lambda_1 = 1)
    lambda_e: float = nonnegative(default=1.0)  # weight of the large-margin loss (the paper's lambda_2 = 1)


@dataclass(frozen=True)
class EvaluateConfig:
    episodes: int = count(MAX_EPISODES, default=10)
    seed: int = field(default=2004, metadata=_check("interval", 0, 2**63 - 1))


@dataclass(frozen=True)
class ReportConfig:
    moving_average: int = count(MAX_EPISODES, default=20)
    bootstrap_samples: int = count(1_000_000, default=10_000)
    bootstrap_seed: int = field(default=0, metadata=_check("interval", 0, 2**63 - 1))


_SEED_RULE = _check("interval", 0, 2**63 - 1)  # one run's training seeds: distinct non-negative integers


@dataclass(frozen=True)
class SeedsConfig:
    """The seeds of each run (one training run per seed). A section of their own, apart from each
    run's settings, so that adding a seed to one run reruns only that seed's stages (a stage depends
    on its run's settings, never on this list)."""

    rl500: list[int] = field(default_factory=lambda: [0], metadata=_SEED_RULE)
    il250: list[int] = field(default_factory=lambda: [0], metadata=_SEED_RULE)
    il500: list[int] = field(default_factory=lambda: [0], metadata=_SEED_RULE)
    il250_rl250: list[int] = field(default_factory=lambda: [0], metadata=_SEED_RULE)
    bc250: list[int] = field(default_factory=lambda: [0], metadata=_SEED_RULE)
    bc250_rl250: list[int] = field(default_factory=lambda: [0], metadata=_SEED_RULE)
    dagger250: list[int] = field(default_factory=lambda: [0], metadata=_SEED_RULE)
    dqfd250_rl250: list[int] = field(default_factory=lambda: [0], metadata=_SEED_RULE)

    def of(self, run: str) -> list[int]:
        return getattr(self, run)


@dataclass(frozen=True)
class Params:
    seeds: SeedsConfig = field(default_factory=SeedsConfig)
    env: EnvConfig = field(default_factory=EnvConfig)
    rewards: RewardsConfig = field(default_factory=RewardsConfig)
    expert: ExpertConfig = field(default_factory=ExpertConfig)
    dqn: DQNConfig = field(default_factory=DQNConfig)
    il250: EpisodesConfig = field(default_factory=lambda: EpisodesConfig(250))
    il500: EpisodesConfig = field(default_factory=lambda: EpisodesConfig(500))
    rl500: EpisodesConfig = field(default_factory=lambda: EpisodesConfig(500))
    il250_rl250: FinetuneConfig = field(default_factory=FinetuneConfig)
    # Beyond the paper: standard uses of the same expert data (aqil/baselines.py)
    bc250: EpisodesConfig = field(default_factory=lambda: EpisodesConfig(250))
    bc250_rl250: FinetuneConfig = field(default_factory=FinetuneConfig)
    dagger250: EpisodesConfig = field(default_factory=lambda: EpisodesConfig(250))
    dqfd250_rl250: DQfDConfig = field(default_factory=DQfDConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    report: ReportConfig = field(default_factory=ReportConfig)


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin is list:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(tp, str(tp))


def _validate_value(key: str, value: Any, tp: Any, rule: tuple | None) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key)
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if not isinstance(value, list) or not value:
            raise ConfigError(f"{key}: got {value!r}; expected a non-empty list, each item {_type_name(item_tp)}")
        items = [_validate_value(f"{key}[{i}]", v, item_tp, rule) for i, v in enumerate(value)]
        if key.startswith("seeds.") and len(set(items)) != len(items):
            dupes = sorted({v for v in items if items.count(v) > 1})
            raise ConfigError(f"seeds: got {value!r}; seeds must be distinct (repeated: {dupes})")
        return items
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ConfigError(f"{key}: got {value!r}; accepted: {' | '.join(map(str, allowed))}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: got {value!r}; expected true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: got {value!r}; expected an integer")
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: got {value!r}; expected a number")
        value = float(value)
        if not math.isfinite(value):
            raise ConfigError(f"{key}: got {value!r}; expected a finite number")
    if rule is not None:
        kind, low, high = rule
        ok = {
            "positive": lambda v: v > 0,
            "nonnegative": lambda v: v >= 0,
            "interval": lambda v: low <= v <= high,
            "interval_open_low": lambda v: low < v <= high,
        }[kind](value)
        if not ok:
            accepted = {
                "positive": "a value > 0",
                "nonnegative": "a value >= 0",
                "interval": f"a value >= {low:,} and <= {high:,}" if isinstance(high, int)
                else f"a value in [{low}, {high}]",
                "interval_open_low": f"a value > {low:,} and <= {high:,}" if isinstance(high, int)
                else f"a value in ({low}, {high}]",
            }[kind]
            raise ConfigError(f"{key}: got {value!r}; accepted: {accepted}")
    return value


def _build(cls: type, raw: Any, prefix: str) -> Any:
    where = prefix or "params.yaml"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: got {raw!r}; expected a mapping of keys to values")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in fields:
            full = f"{prefix}.{key}" if prefix else str(key)
            close = difflib.get_close_matches(str(key), fields, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"{full}: unknown key{hint} (accepted here: {', '.join(fields)})")
    values = {}
    for name, f in fields.items():
        full = f"{prefix}.{name}" if prefix else name
        if name not in raw:
            raise ConfigError(f"{full}: missing; expected {_type_name(hints[name])}")
        values[name] = _validate_value(full, raw[name], hints[name], f.metadata.get("rule"))
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
    if p.dqn.epsilon_min > p.dqn.epsilon_start:
        raise ConfigError(
            f"dqn.epsilon_min: got {p.dqn.epsilon_min}; accepted: a value <= dqn.epsilon_start "
            f"({p.dqn.epsilon_start})"
        )
    if p.dqn.batch_size > p.dqn.memory_size:
        raise ConfigError(
            f"dqn.batch_size: got {p.dqn.batch_size}; accepted: a value <= dqn.memory_size ({p.dqn.memory_size})"
        )


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


def confirm_valid(params: Params, _seed: int, _results: Path) -> None:
    """The check_params stage: ``run_stage`` has already validated the file; say so."""
    counts = ", ".join(f"{run} {len(params.seeds.of(run))}" for run in ALL_RUNS)
    print(f"params.yaml: valid (seeds per run: {counts})")


def to_dict(obj: Any) -> Any:
    """Plain-dict view of a config (for logs and the report)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, list):
        return [to_dict(v) for v in obj]
    return obj


__all__ = ["ConfigError", "Params", "load_params", "parse_params", "to_dict"]
