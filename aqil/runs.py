"""The four training runs of the paper's Table 2, and what each training or evaluation stage writes.

A run is imitation (on the expert's recorded episodes) or RL (in the environment), optionally
starting from another run's final network. ``train_run`` does what every run shares (the learner,
the continued network, timing, the outputs); a method is one function of a ``RunContext``.
Methods beyond the paper live in aqil/baselines.py, which the paper's stages never import, so that
adding or editing one leaves the paper's cached results valid. Adding a method there means a
``RunSpec``, a params block, a stage in dvc.yaml and a three-line script in ``stages/``.

Layout of one run and seed, each file written only after training ends and moved into place
atomically (an interrupted stage leaves nothing DVC could take for a result)::

    results/<run>/seed<N>/model.pt       weights + SGD momentum (torch.load(weights_only=True))
    results/<run>/seed<N>/losses.npy     mean loss of every update (float32)
    results/<run>/seed<N>/metrics.json   summary, a DVC metrics file
    results/<run>/seed<N>/episodes.tsv   per-episode curves, a DVC plots file
    results/timing/<run>/seed<N>.json    wall time per trained step (the only output whose bytes
                                         vary between runs, so kept out of the report's inputs)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aqil import trajectories
from aqil.artifacts import ArtifactError, atomic_path, read_json, write_json, write_text
from aqil.config import Params
from aqil.expert import PIDExpert
from aqil.qnet import DQNLearner, resolve_device
from aqil.seeding import derive_seed
from aqil.train import Agent, RunResult, expert_episode_rewards, imitate, new_learner, reinforce
from aqil.trajectories import Trajectories, collect_dir


@dataclass(frozen=True)
class RunSpec:
    name: str  # stage and folder name
    label: str  # the paper's name
    method: str  # a key of the methods table that trains it (here: imitation, rl)
    init_from: str | None = None  # run whose final network (and momentum) this one continues


RUNS: dict[str, RunSpec] = {
    spec.name: spec
    for spec in (
        RunSpec("rl500", "RL500", "rl"),
        RunSpec("il250", "IL250", "imitation"),
        RunSpec("il500", "IL500", "imitation"),
        RunSpec("il250_rl250", "IL250+RL250", "rl", init_from="il250"),
    )
}


def run_dir(results: Path, run: str, seed: int) -> Path:
    return results / run / f"seed{seed}"


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

    def agent(self, **hooks) -> Agent:
        """The learner with a fresh replay memory and exploration schedule (``hooks``: see ``Agent``)."""
        return Agent(self.learner, self.params.dqn, self.seed, self.label, diverged=self.diverged, **hooks)

    def expert_data(self) -> Trajectories:
        return trajectories.load(collect_dir(self.results, self.seed) / "trajectories")

    def rl(self, agent: Agent, episodes: int, labeller: PIDExpert | None = None) -> RunResult:
        """The paper's RL episodes, in the environment seeded for this run's seed."""
        return reinforce(agent, self.params.env, episodes, self.params.rewards, derive_seed(self.seed, "rl-env"),
                         self.label, labeller=labeller)


# A method returns the run's result and, for runs on the expert's episodes, the expert's own reward
# per episode (the curves' reference line), else None.
Method = Callable[[RunContext], tuple[RunResult, np.ndarray | None]]


def q_imitation(ctx: RunContext) -> tuple[RunResult, np.ndarray]:
    """The paper's Q-imitation-learning on the expert's first episodes."""
    data = ctx.expert_data()
    result = imitate(ctx.agent(), data, ctx.episodes, ctx.params.rewards, ctx.label)
    return result, expert_episode_rewards(data, ctx.episodes, ctx.params.rewards)


def q_learning(ctx: RunContext) -> tuple[RunResult, None]:
    """The paper's deep Q-learning in the environment."""
    return ctx.rl(ctx.agent(), ctx.episodes), None


METHODS: dict[str, Method] = {"imitation": q_imitation, "rl": q_learning}


def train_stage(run: str, params: Params, seed: int, results: Path) -> None:
    """Train one of the paper's runs for one seed and write its outputs atomically."""
    spec = RUNS[run]
    train_run(spec, METHODS[spec.method], params, seed, results)


def train_run(spec: RunSpec, method: Method, params: Params, seed: int, results: Path) -> None:
    """Train ``spec`` with ``method`` for one seed and write its outputs atomically."""
    learner = new_learner(params.dqn, seed, resolve_device(params.dqn.device))
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

    out = run_dir(results, spec.name, seed)
    learner.save(out / "model.pt")
    with atomic_path(out / "losses.npy") as tmp, tmp.open("wb") as fh:
        np.save(fh, result.losses, allow_pickle=False)
    write_text(out / "episodes.tsv", episodes_tsv(result, expert))
    write_json(out / "metrics.json", result.summary())
    steps = int(result.episode_steps.sum()) + result.pretraining_steps  # every step the stage trained on
    write_json(timing_file(results, spec.name, seed), {
        "us_per_step": round(seconds / max(steps, 1) * 1e6, 1), "steps": steps,
        "pretraining_steps": result.pretraining_steps, "seconds": round(seconds, 1),
        "backend": learner.backend, "update": params.dqn.update,
    })


def recorded_divergence(folder: Path) -> bool:
    """Whether a trained run's metrics.json records that it diverged (its model may then hold NaN)."""
    path = folder / "metrics.json"
    value = read_json(path, ("diverged",))["diverged"]
    if not isinstance(value, bool):
        raise ArtifactError(f"{path}: diverged is {value!r}; expected true or false")
    return value


def timing_file(results: Path, run: str, seed: int) -> Path:
    return results / "timing" / run / f"seed{seed}.json"


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


