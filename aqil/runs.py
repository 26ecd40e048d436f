"""The four training runs of the paper's Table 2, and what each training or evaluation stage writes.

A run is imitation (on the expert's recorded episodes) or RL (in the environment), optionally
starting from another run's final network. Adding a method means adding a ``RunSpec`` here, a
stage in dvc.yaml and a three-line script in ``stages/``.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from aqil import trajectories
from aqil.artifacts import ArtifactError, atomic_path, read_json, write_json, write_text
from aqil.config import Params
from aqil.dqfd import train_dqfd
from aqil.expert import PIDExpert
from aqil.qnet import resolve_device
from aqil.seeding import derive_seed
from aqil.train import Agent, RunResult, expert_episode_rewards, imitate, new_learner, reinforce
from aqil.trajectories import collect_dir


@dataclass(frozen=True)
class RunSpec:
    name: str  # stage and folder name
    label: str  # the paper's name
    method: Literal["imitation", "rl", "bc", "dagger", "dqfd"]
    init_from: str | None = None  # run whose final network (and momentum) this one continues
    paper: bool = True  # one of the paper's Table 2 runs (False: a baseline beside AQIL)


RUNS: dict[str, RunSpec] = {
    spec.name: spec
    for spec in (
        RunSpec("rl500", "RL500", "rl"),
        RunSpec("il250", "IL250", "imitation"),
        RunSpec("il500", "IL500", "imitation"),
        RunSpec("il250_rl250", "IL250+RL250", "rl", init_from="il250"),
        RunSpec("bc250", "BC250", "bc", paper=False),
        RunSpec("bc250_rl250", "BC250+RL250", "rl", init_from="bc250", paper=False),
        RunSpec("dagger250", "DAgger250", "dagger", paper=False),
        RunSpec("dqfd250_rl250", "DQfD250+RL250", "dqfd", paper=False),
    )
}
PAPER_RUNS = [name for name, spec in RUNS.items() if spec.paper]


def run_dir(results: Path, run: str, seed: int) -> Path:
    return results / run / f"seed{seed}"


def _episodes(params: Params, run: str) -> int:
    return getattr(params, run).episodes


def train_stage(run: str, params: Params, seed: int, results: Path) -> None:
    """Train one run for one seed and write its outputs atomically."""
    spec = RUNS[run]
    device = resolve_device(params.dqn.device)
    learner = new_learner(params.dqn, seed, device)
    inherited = False  # a run that continues a diverged network starts diverged
    if spec.init_from is not None:
        parent = run_dir(results, spec.init_from, seed)
        inherited = recorded_divergence(parent)
        learner.load(
            parent / "model.pt",
            keep_optimizer_state=getattr(params, run).keep_optimizer_state,
            diverged=inherited,
        )
    label = f"{spec.label} seed {seed}"
    classify = spec.method in ("bc", "dagger")  # fit the expert's action (cross-entropy), not Q-values
    agent = Agent(learner, params.dqn, seed, label, diverged=inherited,
                  fit=(lambda b: learner.fit_classifier(b.obs, b.action)) if classify else None)
    episodes = _episodes(params, run)

    imitation = spec.method in ("imitation", "bc")  # episodes of the expert's data, in IL-reward units
    needs_data = imitation or spec.method == "dqfd"
    traj = trajectories.load(collect_dir(results, seed) / "trajectories") if needs_data else None
    start = time.perf_counter()
    if imitation:
        result = imitate(agent, traj, episodes, params.rewards, label, store_expert_action=spec.method == "bc")
    elif spec.method == "dqfd":
        result = train_dqfd(learner, params, seed, traj, label)
    else:
        labeller = PIDExpert(params.expert) if spec.method == "dagger" else None
        result = reinforce(agent, params.env, episodes, params.rewards, derive_seed(seed, "rl-env"), label,
                           labeller=labeller)
    seconds = time.perf_counter() - start
    expert = expert_episode_rewards(traj, episodes, params.rewards) if imitation else None

    out = run_dir(results, run, seed)
    learner.save(out / "model.pt")
    with atomic_path(out / "losses.npy") as tmp, tmp.open("wb") as fh:
        np.save(fh, result.losses, allow_pickle=False)
    write_text(out / "episodes.tsv", episodes_tsv(result, expert))
    write_json(out / "metrics.json", result.summary())
    steps = int(result.episode_steps.sum())
    write_json(timing_file(results, run, seed), {
        "us_per_step": round(seconds / max(steps, 1) * 1e6, 1), "steps": steps, "seconds": round(seconds, 1),
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


