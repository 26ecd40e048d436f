"""Beyond the paper: the standard ways of using the same expert data, beside AQIL.

Each baseline is a ``RunSpec`` and a method (aqil/runs.py: ``train_run``), with the paper's network,
optimizer, replay, exploration, episode cap and expert data; only what it fits differs:

* BC250: behavioural cloning, softmax cross-entropy on the expert's action for the states of the
  first 250 expert episodes, one update per step as IL250 makes (aqil/kernel_losses.py).
* BC250+RL250: BC250's network, its two logits taken as Q-values, then the paper's RL.
* DAgger250: the network drives (epsilon-greedy), the PID expert labels every visited state, and the
  network is fitted by BC on the aggregate in replay (Ross et al., 2011, with beta = 0).
* DQfD250+RL250: Hester et al. (2018): pretraining on the demonstrations with 1-step and n-step TD
  and a large-margin loss, then RL with the demonstrations kept in replay (aqil/dqfd.py).

Each is a strategy for the one episode runner (aqil/episodes.py) in one of its environments: BC and
DAgger are ``Cloning`` (the network acts, the memory holds the expert's action) on the recorded episodes
and in the environment the PID expert watches (``ExpertLabels``); DQfD is aqil/dqfd.py.

The paper's stages import none of this, so a baseline can change without rerunning them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from aqil import kernel_losses
from aqil.config import Params
from aqil.dqfd import train_dqfd
from aqil.episodes import Step, follow_expert
from aqil.expert import ExpertLabels, PIDExpert
from aqil.layout import ALL_RUNS, BASELINE_RUNS
from aqil.qnet import DQNLearner
from aqil.replay import Batch
from aqil.runs import METHODS, Method, RunContext, train_run
from aqil.train import Learning, RunResult

BASELINES = BASELINE_RUNS
__all__ = ["ALL_RUNS", "BASELINES", "train_stage"]


class Cloning(Learning):
    """BC's and DAgger's strategy: the network acts (epsilon-greedily), the memory holds the expert's
    action in the state it acted in, the label that ``cloning_fit`` fits."""

    def label(self, step: Step) -> int:
        return follow_expert(step.expert_action)


def cloning_fit(learner: DQNLearner) -> Callable[[Batch], tuple[float, float]]:
    """One update: the cross-entropy of the network's logits against the stored (expert's) actions."""

    def fit(batch: Batch) -> tuple[float, float]:
        return learner.fit_fused(kernel_losses.fit_classifier, "behavioural cloning",
                                     np.ascontiguousarray(batch.obs, dtype=np.float32),
                                     np.ascontiguousarray(batch.action, dtype=np.int64))

    return fit


def behavioural_cloning(ctx: RunContext) -> tuple[RunResult, np.ndarray]:
    """BC on the expert's episodes, replayed as IL250 replays them; the reported reward is the IL
    reward of the network's own action (the same units as IL250's)."""
    return ctx.imitation(Cloning(ctx.agent(fit=cloning_fit(ctx.learner))))


def dagger(ctx: RunContext) -> tuple[RunResult, None]:
    """The network drives; the PID expert watches, and the memory holds its label of each visited state."""
    env = ExpertLabels(ctx.rl_env(), PIDExpert(ctx.params.expert))
    return ctx.rl(Cloning(ctx.agent(fit=cloning_fit(ctx.learner))), ctx.episodes, env), None


def dqfd(ctx: RunContext) -> tuple[RunResult, None]:
    return train_dqfd(ctx, ctx.expert_data(ctx.params.dqfd250_rl250.demo_episodes)), None


BASELINE_METHODS: dict[str, Method] = {"bc": behavioural_cloning, "dagger": dagger, "dqfd": dqfd, "rl": METHODS["rl"]}


def train_stage(run: str, params: Params, seed: int, results: Path) -> None:
    """Train one baseline for one seed and write its outputs atomically."""
    spec = BASELINES[run]
    train_run(spec, BASELINE_METHODS[spec.method], params, seed, results)
