"""The baselines' training loops (aqil/baselines.py): what BC and DAgger store and fit. Their losses
are tested against autograd in tests/test_kernel_losses.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_replay_train import SMALL

from aqil import trajectories
from aqil.baselines import ALL_RUNS, BASELINES, Cloning, cloning_fit
from aqil.config import EnvConfig, ExpertConfig, RewardsConfig
from aqil.expert import ExpertLabels, PIDExpert
from aqil.rewards import rl_env
from aqil.runs import RUNS
from aqil.train import Agent, configure_torch, imitation_env, new_learner, train


@pytest.fixture(scope="module", autouse=True)
def _torch_settings():
    configure_torch()  # as every stage does


@pytest.fixture(scope="module")
def expert_data():
    return trajectories.collect(EnvConfig(max_episode_steps=400), ExpertConfig(), 4, env_seed=3)


def test_behavioural_cloning_stores_and_fits_the_expert_action(expert_data):
    learner = new_learner(SMALL, 0, torch.device("cpu"))
    agent = Agent(learner, SMALL, 0, fit=cloning_fit(learner))
    result = train(Cloning(agent), imitation_env(expert_data, 2, RewardsConfig()), 2, "test")
    n = int(expert_data.episode_length[:2].sum())
    np.testing.assert_array_equal(agent.memory.action[:n], expert_data.expert_action[:n])
    assert len(result.losses) == n - 19 and np.all(np.isfinite(result.losses))
    assert np.all(result.losses > 0) and np.all(result.losses < 10)  # cross-entropies, not squared TD errors


def test_dagger_labels_the_states_the_network_visits_with_the_shadowing_expert():
    learner = new_learner(SMALL, 0, torch.device("cpu"))
    agent = Agent(learner, SMALL, 0, fit=cloning_fit(learner))
    env = ExpertLabels(rl_env(EnvConfig(max_episode_steps=200), RewardsConfig()), PIDExpert(ExpertConfig()))
    result = train(Cloning(agent), env, 3, "test", seed=0)
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


def test_every_setting_but_the_neutral_ones_is_checked_against_the_papers():
    """The report's "Not the paper's settings" banner sees a change of any param, the baselines' included
    (a baseline's settings change nothing of Table 2, but a report must not mix settings silently)."""
    from aqil.config import Params, to_dict
    from aqil.reporting.tables import _flat, non_paper_settings

    defaults = {k: v for k, v in to_dict(Params()).items() if k != "seeds"}
    for key, value in _flat(defaults).items():
        changed = _flat(defaults) | {key: ("x" if isinstance(value, str) else [1] if isinstance(value, list)
                                          else not value if isinstance(value, bool) else value + 1)}
        nested: dict = {}
        for k, v in changed.items():
            node = nested
            *parents, last = k.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[last] = v
        assert (key in non_paper_settings(nested)) == (key != "dqn.device" and not key.startswith("report.")), key
