"""The baselines' training loops (aqil/baselines.py): what BC and DAgger store and fit. Their losses
are tested against autograd in tests/test_kernel_losses.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_replay_train import SMALL

from aqil import trajectories
from aqil.baselines import ALL_RUNS, BASELINES, cloning_fit
from aqil.config import EnvConfig, ExpertConfig, RewardsConfig
from aqil.expert import PIDExpert
from aqil.runs import RUNS
from aqil.train import Agent, imitate, new_learner, reinforce


@pytest.fixture(scope="module")
def expert_data():
    return trajectories.collect(EnvConfig(max_episode_steps=400), ExpertConfig(), 4, env_seed=3)


def test_behavioural_cloning_stores_and_fits_the_expert_action(expert_data):
    learner = new_learner(SMALL, 0, torch.device("cpu"))
    agent = Agent(learner, SMALL, 0, fit=cloning_fit(learner))
    result = imitate(agent, expert_data, 2, RewardsConfig(), "test", store_expert_action=True)
    n = int(expert_data.episode_length[:2].sum())
    np.testing.assert_array_equal(agent.memory.action[:n], expert_data.expert_action[:n])
    assert len(result.losses) == n - 19 and np.all(np.isfinite(result.losses))
    assert np.all(result.losses > 0) and np.all(result.losses < 10)  # cross-entropies, not squared TD errors


def test_dagger_labels_the_states_the_network_visits_with_the_shadowing_expert():
    learner = new_learner(SMALL, 0, torch.device("cpu"))
    agent = Agent(learner, SMALL, 0, fit=cloning_fit(learner))
    result = reinforce(agent, EnvConfig(max_episode_steps=200), 3, RewardsConfig(), env_seed=0, label="test",
                       labeller=PIDExpert(ExpertConfig()))
    n = int(result.episode_steps.sum())
    shadow, labels = PIDExpert(ExpertConfig()), []  # replay the expert along the stored states
    starts = set(np.cumsum(result.episode_steps)[:-1].tolist()) | {0}
    for t in range(n):
        if t in starts:
            shadow.start_episode(float(agent.memory.obs[t, 2]))
        labels.append(shadow.act())
        shadow.observe(float(agent.memory.next_obs[t, 2]))
    np.testing.assert_array_equal(agent.memory.action[:n], labels)


def test_baselines_are_registered_apart_from_the_paper_runs():
    """The paper's stages import aqil/runs.py only; the report sees every run, the paper's first."""
    assert not set(BASELINES) & set(RUNS)
    assert list(ALL_RUNS) == [*RUNS, *BASELINES]
    assert all(spec.init_from in (None, *ALL_RUNS) for spec in ALL_RUNS.values())


def test_every_params_section_is_the_papers_or_a_baselines():
    """The report's "Not the paper's settings" banner reads the paper's sections only: a section in
    neither list would be left out of every banner."""
    from dataclasses import fields

    from aqil.config import Params
    from aqil.report import PAPER_SECTIONS

    sections = {f.name for f in fields(Params)} - {"seeds"}
    assert sections == set(PAPER_SECTIONS) | set(BASELINES)


def test_compare_stage_reads_the_params_it_reports():
    """dvc.yaml's compare stage lists exactly the sections its banner reads, plus the seeds."""
    from pathlib import Path

    import yaml

    from aqil.compare import SECTIONS

    stage = yaml.safe_load((Path(__file__).resolve().parents[1] / "dvc.yaml").read_text())["stages"]["compare"]
    assert stage["params"] == ["seeds", *SECTIONS]
