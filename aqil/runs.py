"""Training the paper's four Table 2 runs: what every run shares, and the paper's two methods.

A run is imitation (on the expert's recorded episodes) or RL (in the environment), optionally
starting from another run's final network (aqil/layout.py names the runs and their paths).
``train_run`` does what every run shares (the learner, the continued network, timing, the outputs,
written only after training ends, into a staging folder moved into place whole); a method is one
function of a ``RunContext`` that picks a strategy and an environment (aqil/train.py, aqil/episodes.py).
Methods beyond the paper live in aqil/baselines.py, which the paper's stages never import, so that
adding or editing one leaves the paper's cached results valid.

Every run draws from its own random streams (``run_seed``): IL250 seed 3 and IL500 seed 3 share no
initialisation, exploration, sampling or expert episodes, as independent runs should not.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from aqil import trajectories
from aqil.artifacts import ArtifactError, read_json, write_json, write_text
from aqil.config import Params
from aqil.layout import PAPER_RUNS, RunSpec, run_dir, timing_file, trajectories_dir
from aqil.qnet import DQNLearner, resolve_device
from aqil.rewards import rl_env
from aqil.seeding import derive_seed, run_seed
from aqil.train import (
    Agent,
    Learning,
    RunResult,
    configure_torch,
    expert_episode_rewards,
    imitation_env,
    new_learner,
    train,
)
from aqil.trajectories import Trajectories

RUNS = PAPER_RUNS


@dataclass(frozen=True)
class RunContext:
    """What a method gets: the run, its params and seed, and the learner it trains."""

    spec: RunSpec
    params: Params
    seed: int
    results: Path
    learner: DQNLearner
    diverged: bool  # continuing a network that diverged
    label: str  # for progress bars and messages

    @property
    def episodes(self) -> int:
        return getattr(self.params, self.spec.name).episodes

    @property
    def stream_seed(self) -> int:
        """The root of this run's own random streams (see ``run_seed``)."""
        return run_seed(self.seed, self.spec.name)

    def agent(self, **hooks) -> Agent:
        """The learner with a fresh replay memory and exploration schedule (``hooks``: see ``Agent``)."""
        return Agent(self.learner, self.params.dqn, self.stream_seed, self.label, diverged=self.diverged, **hooks)

    def expert_data(self, episodes: int | None = None) -> Trajectories:
        """The expert episodes this run trains on; refuses a recording shorter than the run."""
        folder = trajectories_dir(self.results, self.spec.expert_from, self.seed)
        data = trajectories.load(folder)
        wanted = self.episodes if episodes is None else episodes
        if data.episodes < wanted:
            raise ArtifactError(f"{folder}: holds {data.episodes} expert episodes; {self.spec.name} needs {wanted} "
                                f"(rerun its collect stage: dvc repro collect_{self.spec.expert_from})")
        return data

    def imitation(self, strategy: Learning) -> tuple[RunResult, np.ndarray]:
        """``strategy`` on the expert's first episodes, scored by the IL reward; and the expert's own
        (RL) reward per episode, the curves' reference line."""
        data = self.expert_data()
        env = imitation_env(data, self.episodes, self.params.rewards)
        result = train(strategy, env, self.episodes, self.label)
        return result, expert_episode_rewards(data, self.episodes, self.params.rewards)

    def rl_env(self) -> gym.Env:
        """The paper's environment with its RL reward."""
        return rl_env(self.params.env, self.params.rewards)

    def rl(self, strategy: Learning, episodes: int, env: gym.Env | None = None) -> RunResult:
        """RL episodes in ``env`` (default ``rl_env()``), its start states seeded for this run and seed."""
        env = self.rl_env() if env is None else env
        return train(strategy, env, episodes, self.label, seed=derive_seed(self.stream_seed, "rl-env"))


# A method returns the run's result and, for runs on the expert's episodes, the expert's own reward
# per episode (the curves' reference line), else None.
Method = Callable[[RunContext], tuple[RunResult, np.ndarray | None]]


def q_imitation(ctx: RunContext) -> tuple[RunResult, np.ndarray]:
    """The paper's Q-imitation-learning on the expert's first episodes."""
    return ctx.imitation(Learning(ctx.agent()))


def q_learning(ctx: RunContext) -> tuple[RunResult, None]:
    """The paper's deep Q-learning in the environment."""
    return ctx.rl(Learning(ctx.agent()), ctx.episodes), None


METHODS: dict[str, Method] = {"imitation": q_imitation, "rl": q_learning}


def train_stage(run: str, params: Params, seed: int, results: Path) -> None:
    """Train one of the paper's runs for one seed and write its outputs atomically."""
    spec = RUNS[run]
    train_run(spec, METHODS[spec.method], params, seed, results)


def train_run(spec: RunSpec, method: Method, params: Params, seed: int, results: Path) -> None:
    """Train ``spec`` with ``method`` for one seed and write its outputs as one set (``write_outputs``)."""
    configure_torch()
    learner = new_learner(params.dqn, run_seed(seed, spec.name), resolve_device(params.dqn.device))
    inherited = False  # a run that continues a diverged network starts diverged
    if spec.init_from is not None:
        parent = run_dir(results, spec.init_from, seed)
        inherited = recorded_divergence(parent)
        learner.load(
            parent / "model.pt",
            keep_optimizer_state=getattr(params, spec.name).keep_optimizer_state,
            diverged=inherited,
        )
    ctx = RunContext(spec, params, seed, results, learner, inherited, f"{spec.label} seed {seed}")
    start = time.perf_counter()
    result, expert = method(ctx)
    seconds = time.perf_counter() - start
    steps = int(result.episode_steps.sum()) + result.pretraining_steps  # every step the stage trained on
    timing = {
        "us_per_step": round(seconds / max(steps, 1) * 1e6, 1), "steps": steps,
        "pretraining_steps": result.pretraining_steps, "seconds": round(seconds, 1),
        "backend": learner.backend, "update": params.dqn.update,
    }
    write_outputs(run_dir(results, spec.name, seed), timing_file(results, spec.name, seed), learner, result,
                  expert, timing)


def write_outputs(out: Path, timing_path: Path, learner: DQNLearner, result: RunResult,
                  expert: np.ndarray | None, timing: dict[str, Any]) -> None:
    """Write a run's files into a staging folder beside ``out``, then swap it in for ``out`` whole and
    write ``timing_path`` last (``_swap_in``): after a failure or Ctrl-C at any point, the stage's
    outputs are either the previous set or none, so "no output of this stage was kept" is true."""
    staged = out.with_name(f".{out.name}.partial")
    try:
        shutil.rmtree(staged, ignore_errors=True)
        staged.mkdir(parents=True)
        learner.save(staged / "model.pt")
        with (staged / "losses.npy").open("wb") as fh:
            np.save(fh, result.losses, allow_pickle=False)
        write_text(staged / "episodes.tsv", episodes_tsv(result, expert))
        write_json(staged / "metrics.json", result.summary())
        _keep_others(out, staged)
        _swap_in(staged, out, timing_path, timing)
    except OSError as exc:  # disk full, read-only folder, ...: name the folder, keep nothing
        raise ArtifactError(f"{out}: cannot write ({exc.strerror or exc}); nothing was kept") from None
    finally:  # also on Ctrl-C: never leave a half-written folder behind
        shutil.rmtree(staged, ignore_errors=True)


def _keep_others(out: Path, staged: Path) -> None:
    """Carry over DVC's .gitignore of the run folder (git may track it): the swap replaces the outputs,
    not what DVC keeps beside them."""
    ignore = out / ".gitignore"
    if ignore.is_file() and not ignore.is_symlink():
        shutil.copy2(ignore, staged / ".gitignore")


def _swap_in(staged: Path, out: Path, timing_path: Path, timing: dict[str, Any]) -> None:
    """Replace ``out`` with ``staged``, then write the timing file (the stale one goes first); on any
    failure on the way ``out`` goes too, so no part of the new set stays without the rest."""
    try:
        timing_path.unlink(missing_ok=True)
        shutil.rmtree(out, ignore_errors=True)
        os.replace(staged, out)
        write_json(timing_path, timing)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise


def recorded_divergence(folder: Path) -> bool:
    """Whether a trained run's metrics.json records that it diverged (its model may then hold NaN)."""
    path = folder / "metrics.json"
    value = read_json(path, ("diverged",))["diverged"]
    if not isinstance(value, bool):
        raise ArtifactError(f"{path}: diverged is {value!r}; expected true or false")
    return value


def episodes_tsv(result: RunResult, expert_reward: np.ndarray | None = None) -> str:
    """Per-episode curves, one row per episode, for ``dvc plots`` and the report."""
    columns = ["episode", "reward", "steps", "epsilon", "capped", "max_abs_q"]
    if expert_reward is not None:
        columns.append("expert_reward")
    rows = ["\t".join(columns)]
    for i in range(len(result.episode_reward)):
        row = [str(i), repr(float(result.episode_reward[i])), str(int(result.episode_steps[i])),
               repr(float(result.episode_epsilon[i])), str(int(result.episode_capped[i])),
               repr(float(result.episode_max_q[i]))]
        if expert_reward is not None:
            row.append(repr(float(expert_reward[i])))
        rows.append("\t".join(row))
    return "\n".join(rows) + "\n"


