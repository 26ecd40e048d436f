"""The ground floor: every run's name, its parents, and every path a stage writes or reads.

One owner for these facts, so that training, evaluation, reporting and the sweep agree on them
without importing each other. Nothing here imports the rest of aqil.

Layout of one run and seed (each file moved into place atomically once its stage has finished)::

    results/collect/<run>/seed<N>/trajectories/   the PID expert's episodes an imitation run trains on
    results/<run>/seed<N>/model.pt                weights + SGD momentum
    results/<run>/seed<N>/losses.npy              mean loss of every update (float32)
    results/<run>/seed<N>/metrics.json            per-seed summary
    results/<run>/seed<N>/episodes.tsv            per-episode curves
    results/eval/<run>/seed<N>.json               greedy evaluation of the final network
    results/timing/<run>/seed<N>.json             wall time per trained step (bytes vary between runs)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunSpec:
    """A training run: its stage name, the paper's label, and the runs it builds on."""

    name: str  # stage, folder and params.yaml section name
    label: str  # the paper's name
    method: str  # the key of the method that trains it (aqil/runs.py, aqil/baselines.py)
    init_from: str | None = None  # run whose final network (and momentum) this one continues
    expert_from: str | None = None  # run whose recorded expert episodes this one trains on
    paper: bool = True  # a row of the paper's Table 2 (else a baseline beside it)
    settings: str = "episodes"  # the shape of its params.yaml section: episodes | finetune | dqfd (aqil/config.py)
    episodes: int = 250  # its default number of training episodes

    @property
    def parents(self) -> tuple[str, ...]:
        """Runs that must have trained the same seed before this one can."""
        return tuple(dict.fromkeys(p for p in (self.init_from, self.expert_from) if p and p != self.name))


# The paper's runs in the report's order, then the baselines beside them (README, "Beyond the paper").
# An imitation run of the paper records its own expert episodes (as the reference's runs each drove
# their own expert); the baselines reuse IL250's, so that they differ from IL250 only in their method.
_SPECS = (
    RunSpec("rl500", "RL500", "rl", episodes=500),
    RunSpec("il250", "IL250", "imitation", expert_from="il250"),
    RunSpec("il500", "IL500", "imitation", expert_from="il500", episodes=500),
    RunSpec("il250_rl250", "IL250+RL250", "rl", init_from="il250", settings="finetune"),
    RunSpec("bc250", "BC250", "bc", expert_from="il250", paper=False),
    RunSpec("bc250_rl250", "BC250+RL250", "rl", init_from="bc250", paper=False, settings="finetune"),
    RunSpec("dagger250", "DAgger250", "dagger", paper=False),
    RunSpec("dqfd250_rl250", "DQfD250+RL250", "dqfd", expert_from="il250", paper=False, settings="dqfd"),
)
ALL_RUNS: dict[str, RunSpec] = {spec.name: spec for spec in _SPECS}
PAPER_RUNS: dict[str, RunSpec] = {n: s for n, s in ALL_RUNS.items() if s.paper}
BASELINE_RUNS: dict[str, RunSpec] = {n: s for n, s in ALL_RUNS.items() if not s.paper}
# The params sections the baselines' comparison reads: IL250+RL250's chain, the baselines and the settings
# every run shares (an edit elsewhere, e.g. of rl500, leaves the comparison up to date).
COMPARE_SECTIONS: tuple[str, ...] = ("env", "expert", "dqn", "rewards", "il250", "il250_rl250", *BASELINE_RUNS,
                                     "evaluate", "report")
# Runs that record expert episodes of their own (a collect stage each).
COLLECTING_RUNS: tuple[str, ...] = tuple(n for n, s in ALL_RUNS.items() if s.expert_from == n)


def collect_dir(results: Path, run: str, seed: int) -> Path:
    return results / "collect" / run / f"seed{seed}"


def trajectories_dir(results: Path, run: str, seed: int) -> Path:
    return collect_dir(results, run, seed) / "trajectories"


def run_dir(results: Path, run: str, seed: int) -> Path:
    return results / run / f"seed{seed}"


def eval_file(results: Path, run: str, seed: int) -> Path:
    return results / "eval" / run / f"seed{seed}.json"


def timing_file(results: Path, run: str, seed: int) -> Path:
    return results / "timing" / run / f"seed{seed}.json"
