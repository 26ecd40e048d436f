"""Replay memory, the epsilon schedule, and short seeded training runs."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pytest
import torch

from aqil import trajectories
from aqil.config import DQNConfig, EnvConfig, ExpertConfig, RewardsConfig
from aqil.replay import ReplayMemory
from aqil.train import Agent, EpsilonGreedy, configure_torch, expert_episode_rewards, imitate, new_learner, reinforce

SMALL = dataclasses.replace(DQNConfig(), memory_size=2000)


@pytest.fixture(scope="module", autouse=True)
def _torch_settings():
    configure_torch()  # as every stage does (one thread, subnormals flushed): the pinned bytes assume it


def test_replay_is_a_ring_buffer_sampled_without_replacement():
    mem = ReplayMemory(5, 4, np.random.default_rng(0))
    for i in range(7):
        mem.add(np.full(4, i, np.float32), i % 2, float(i), np.full(4, i + 1, np.float32), i == 6)
    assert len(mem) == 5
    assert sorted(mem.reward.tolist()) == [2.0, 3.0, 4.0, 5.0, 6.0]
    batch = mem.sample(5)
    assert sorted(batch.reward.tolist()) == [2.0, 3.0, 4.0, 5.0, 6.0]  # all distinct
    assert batch.obs.dtype == np.float32 and batch.action.dtype == np.int64
    np.testing.assert_array_equal(batch.next_obs[:, 0], batch.obs[:, 0] + 1)


def test_epsilon_schedule_multiplies_after_each_update_and_floors():
    eps = EpsilonGreedy(DQNConfig(), np.random.default_rng(0))
    assert eps.epsilon == 0.3
    eps.decay()
    assert eps.epsilon == pytest.approx(0.3 * 0.995)
    for _ in range(2000):
        eps.decay()
    assert eps.epsilon == 0.01


def test_updates_start_once_memory_holds_a_batch():
    agent = Agent(new_learner(SMALL, 0, torch.device("cpu")), SMALL, 0)
    obs = np.zeros(4, np.float32)
    for i in range(25):
        agent.learn(obs, 0, 1.0, obs, False)
        assert len(agent.losses) == max(0, i + 1 - 19)
    assert agent.explorer.epsilon == pytest.approx(0.3 * 0.995**6)


@pytest.fixture(scope="module")
def expert_data():
    return trajectories.collect(EnvConfig(max_episode_steps=400), ExpertConfig(), 4, env_seed=3)


def test_imitation_scores_the_network_action_on_expert_states(expert_data):
    agent = Agent(new_learner(SMALL, 0, torch.device("cpu")), SMALL, 0)
    result = imitate(agent, expert_data, 2, RewardsConfig(), "test")
    first_two = expert_data.episode_length[:2]
    np.testing.assert_array_equal(result.episode_steps, first_two)
    assert len(result.losses) == first_two.sum() - 19
    # Each step earns at most 1 (angle 0.2 + agreement 0.8), the terminal step -1.
    assert np.all(result.episode_reward <= first_two)


def test_expert_episode_rewards_sum_the_rl_reward(expert_data):
    rewards = expert_episode_rewards(expert_data, 4, RewardsConfig())
    assert rewards.shape == (4,)
    lo, hi = expert_data.episode_bounds(1)
    assert lo == expert_data.episode_length[0] and hi - lo == expert_data.episode_length[1]
    assert np.all(rewards < expert_data.episode_length)


def _short_rl(seed: int, update: str = "sequential"):
    cfg = dataclasses.replace(SMALL, update=update)
    agent = Agent(new_learner(cfg, seed, torch.device("cpu")), cfg, seed)
    return reinforce(agent, EnvConfig(max_episode_steps=200), 8, RewardsConfig(), env_seed=seed, label="test")


def test_same_seed_same_numbers_bit_for_bit():
    a, b = _short_rl(1), _short_rl(1)
    np.testing.assert_array_equal(a.episode_reward, b.episode_reward)
    np.testing.assert_array_equal(a.losses, b.losses)
    c = _short_rl(2)
    assert not np.array_equal(a.episode_reward, c.episode_reward)


def test_pinned_short_run_bytes():
    """Guards the hot loop: an optimisation must not change what a seed produces, to the last bit.

    The default path (fused kernel, portable exp/cos/sin, numpy initialisation) has a fixed
    arithmetic order, so the pin is exact; the CI pipeline test checks the same across CPUs.
    """
    result = _short_rl(0)
    summary = result.summary()
    assert summary["total_steps"] == PINNED["total_steps"]
    assert summary["updates"] == PINNED["updates"]
    assert summary["avg_reward"] == PINNED["avg_reward"]
    digest = hashlib.sha256(result.episode_reward.tobytes() + result.losses.tobytes()).hexdigest()[:16]
    assert digest == PINNED["digest"]


# Recorded from the fused kernel when it became the default.
PINNED = {"total_steps": 167, "updates": 148, "avg_reward": 9.215738902977623, "digest": "be4ab8b7ea7d818e"}


def test_summary_of_a_diverged_run_is_valid_json_and_says_where_it_diverged():
    import json

    from aqil.train import RunResult

    result = RunResult(
        episode_reward=np.array([5.0, 3.0, 2.0]), episode_steps=np.array([5, 3, 2]),
        episode_capped=np.zeros(3, dtype=bool), episode_epsilon=np.full(3, 0.3),
        episode_max_q=np.array([12.0, np.inf, np.nan]), losses=np.array([1.0, 40.0, np.inf, np.nan], np.float32),
    )
    summary = result.summary()
    json.loads(json.dumps(summary, allow_nan=False))  # no NaN or Infinity in the metrics file
    assert summary["max_loss"] == 40.0 and summary["max_abs_q"] == 12.0
    assert summary["first_non_finite_update"] == 2 and summary["first_non_finite_episode"] == 1
    finite = dataclasses.replace(result, episode_max_q=np.array([1.0, 2.0, 3.0]), losses=np.ones(4, np.float32))
    assert finite.summary()["first_non_finite_update"] is None


def _diverging(on_divergence: str) -> tuple[Agent, DQNConfig]:
    cfg = dataclasses.replace(SMALL, learning_rate=10.0, on_divergence=on_divergence)
    return Agent(new_learner(cfg, 0, torch.device("cpu")), cfg, 0, "RL500 seed 0"), cfg


def test_divergence_under_stop_is_one_line_naming_run_episode_update_and_learning_rate():
    from aqil.train import TrainingDiverged

    agent, _ = _diverging("stop")
    with pytest.raises(TrainingDiverged) as info:
        reinforce(agent, EnvConfig(max_episode_steps=200), 50, RewardsConfig(), 1, "test")
    message = str(info.value)
    assert "\n" not in message
    where = f"episode {agent.episode}, update {len(agent.losses) - 1}"
    assert message.startswith(f"RL500 seed 0: training diverged in {where}")
    assert "dqn.learning_rate = 10" in message and "nothing was written" in message
    assert not np.isfinite(agent.losses[-1]) and np.isfinite(agent.losses[:-1]).all()  # stopped at the first


def test_divergence_under_record_goes_on_and_is_recorded_everywhere(tmp_path, capsys):
    from aqil.artifacts import ArtifactError

    agent, cfg = _diverging("record")
    result = reinforce(agent, EnvConfig(max_episode_steps=200), 30, RewardsConfig(), 1, "test")
    summary = result.summary()
    assert summary["diverged"] is True and summary["episodes"] == 30
    assert summary["first_non_finite_update"] is not None
    assert capsys.readouterr().err.count("aqil: warning: RL500 seed 0: training diverged") == 1
    agent.learner.save(tmp_path / "model.pt")
    fresh = new_learner(cfg, 1, torch.device("cpu"))
    damaged = r"NaN or infinite values, but its run's metrics\.json records no divergence"
    with pytest.raises(ArtifactError, match=damaged):
        fresh.load(tmp_path / "model.pt")
    fresh.load(tmp_path / "model.pt", diverged=True)  # a recorded divergence is loaded, and marked downstream
    assert fresh.non_finite_parameters() > 0
