"""The one episode runner (aqil/episodes.py), its environments and wrappers, and a run's outputs as one set."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aqil import runs, trajectories
from aqil.artifacts import ArtifactError
from aqil.config import ConfigError, DQNConfig, EnvConfig, ExpertConfig, RewardsConfig
from aqil.env import EXPERT_ACTION, THETA_INDEX, capped_env, make_env
from aqil.episodes import Episode, RecordedEpisodes, Recorder, Step, follow_expert, run_episode, run_episodes
from aqil.expert import ExpertLabels, PIDExpert
from aqil.rewards import Rewards, rl_env
from aqil.train import RunResult, TrainingDiverged, TrainingError, configure_torch, imitation_env, new_learner


class Always:
    """A strategy that pushes one way and keeps every step."""

    def __init__(self, action: int = 1) -> None:
        self.action = action
        self.steps: list[Step] = []

    def act(self, obs: np.ndarray, expert_action: int | None) -> int:
        return self.action

    def store(self, step: Step) -> None:
        self.steps.append(step)

    def end_episode(self, episode: Episode) -> dict[str, float]:
        return {}


# A short track: two of the four episodes fail (the cart leaves it), two are capped.
SHORT_TRACK = EnvConfig(max_episode_steps=120, x_limit=0.2)


@pytest.fixture(scope="module")
def recording() -> trajectories.Trajectories:
    data = trajectories.collect(SHORT_TRACK, ExpertConfig(), 4, env_seed=5)
    assert data.capped.tolist() == [True, False, True, False]
    return data


def _steps_to_failure(state: list[float]) -> int:
    env = make_env(EnvConfig())
    env.reset(seed=0)
    env.state = np.array(state)
    for step in range(1, 10_000):
        if env.step(1)[2]:
            return step
    raise AssertionError("never terminated")


@pytest.mark.parametrize("extra", [0, -1])
def test_capped_means_truncated_by_the_time_limit_and_not_failed(extra):
    """An episode that fails on the cap's own step failed; one the cap cuts short is capped."""
    state = [0.0, 0.0, 0.3, 0.0]
    failure = _steps_to_failure(state)
    env = capped_env(EnvConfig(max_episode_steps=failure + extra))
    obs, info = env.reset(seed=0)
    env.unwrapped.state = np.array(state)
    obs = np.array(state, dtype=np.float32)
    episode = run_episode(env, Always(), obs, info)
    assert episode.steps == failure + extra
    assert episode.capped == (extra < 0)


def test_the_first_reset_alone_is_seeded():
    """A run's start states are one stream: the same as seeding once and resetting without a seed."""
    cfg = EnvConfig(max_episode_steps=5)
    strategy = Always()
    run_episodes(capped_env(cfg), strategy, 3, "test", seed=11)
    starts = [s.obs for s in strategy.steps[::5]]
    env = make_env(cfg)
    expected = [env.reset(seed=11)[0], env.reset()[0], env.reset()[0]]
    np.testing.assert_array_equal(starts, expected)


def test_the_recording_replays_to_itself(recording):
    """Following the labels of the replayed recording records the same arrays, bit for bit."""
    recorder = Recorder()
    run_episodes(RecordedEpisodes(recording), recorder, recording.episodes, "test")
    for name, array in recorder.arrays().items():
        np.testing.assert_array_equal(array, getattr(recording, name))
        assert array.dtype == getattr(recording, name).dtype


def test_a_replay_ignores_the_action_and_refuses_to_run_past_its_end(recording):
    a, b = Always(0), Always(1)
    run_episodes(RecordedEpisodes(recording), a, 2, "test")
    run_episodes(RecordedEpisodes(recording), b, 2, "test")
    np.testing.assert_array_equal([s.next_obs for s in a.steps], [s.next_obs for s in b.steps])
    env = RecordedEpisodes(recording.first(1))
    env.reset()
    with pytest.raises(ValueError, match="all 1 recorded episodes"):
        env.reset()


def test_collection_is_the_expert_driving_itself(recording):
    """Following the watching expert's labels gives the episodes of the expert acting on its own."""
    env, expert = make_env(SHORT_TRACK), PIDExpert(ExpertConfig())
    obs, _ = env.reset(seed=5)
    actions, lengths = [], []
    for _ in range(recording.episodes):
        expert.start_episode(float(obs[THETA_INDEX]))
        steps, terminated = 0, False
        while not terminated and steps < 120:
            actions.append(expert.act())
            obs, _, terminated, _, _ = env.step(actions[-1])
            expert.observe(obs[THETA_INDEX])
            steps += 1
        lengths.append(steps)
        obs, _ = env.reset()
    assert recording.expert_action.tolist() == actions and recording.episode_length.tolist() == lengths


def test_the_watching_expert_labels_every_state_but_an_episodes_last():
    """It acts once per state it would act in driving, never on the state an episode ends in
    (an extra act would move its integral term)."""
    env = ExpertLabels(capped_env(EnvConfig(max_episode_steps=8)), PIDExpert(ExpertConfig()))
    _, info = env.reset(seed=5)
    assert info[EXPERT_ACTION] in (0, 1)
    ended = False
    while not ended:
        _, _, terminated, truncated, info = env.step(0)
        ended = terminated or truncated
        assert (EXPERT_ACTION in info) != ended


def test_followers_need_labels():
    assert follow_expert(1) == 1
    with pytest.raises(ValueError, match="follows the expert"):
        follow_expert(None)


def test_the_rl_wrapper_pays_the_papers_reward():
    cfg = EnvConfig(max_episode_steps=60)
    strategy = Always()
    run_episodes(rl_env(cfg, RewardsConfig()), strategy, 2, "test", seed=3)
    rewards = Rewards(RewardsConfig())
    for s in strategy.steps:
        assert s.reward == float(rewards.rl(s.next_obs[THETA_INDEX], s.terminated))
    assert strategy.steps[-1].terminated and strategy.steps[-1].reward == -1.0


def test_the_imitation_wrapper_scores_the_action_against_the_experts(recording):
    strategy = Always(1)
    run_episodes(imitation_env(recording, 1, RewardsConfig()), strategy, 1, "test")
    rewards = Rewards(RewardsConfig())
    for t, s in enumerate(strategy.steps):
        theta, expert = recording.next_obs[t, THETA_INDEX], recording.expert_action[t]
        assert s.reward == float(rewards.il(theta, expert, 1, recording.terminated[t])) and s.expert_action == expert
    agree = [s.reward for s in strategy.steps if s.expert_action == 1 and not s.terminated]
    assert agree and all(r > 0.8 for r in agree)


def test_a_recordings_own_reward_is_the_vectorised_rl_reward(recording):
    reward = Rewards(RewardsConfig()).rl_of_recording(recording)
    strategy = Always()
    run_episodes(RecordedEpisodes(recording, reward=reward), strategy, recording.episodes, "test")
    assert [s.reward for s in strategy.steps] == reward.tolist()


def test_training_diverged_is_a_training_error_not_a_config_error():
    """A numerical event, not a params.yaml mistake; aqil/cli.py reports a TrainingError in one line."""
    assert issubclass(TrainingDiverged, TrainingError) and not issubclass(TrainingDiverged, ConfigError)


def _outputs(tmp_path):
    configure_torch()
    learner = new_learner(DQNConfig(), 0, torch.device("cpu"))
    result = RunResult(np.ones(2), np.array([3, 4]), np.zeros(2, bool), np.full(2, 0.3), np.ones(2),
                       np.ones(5, np.float32))
    out, timing = tmp_path / "il250" / "seed0", tmp_path / "timing" / "il250" / "seed0.json"
    return out, timing, learner, result


def test_a_runs_outputs_replace_the_folder_whole_and_timing_comes_last(tmp_path):
    out, timing, learner, result = _outputs(tmp_path)
    out.mkdir(parents=True)
    (out / "stale.txt").write_text("from an earlier run")
    (out / ".gitignore").write_text("/model.pt\n")  # DVC's, which git may track: kept
    runs.write_outputs(out, timing, learner, result, None, {"seconds": 1.0})
    assert sorted(p.name for p in out.iterdir()) == [".gitignore", "episodes.tsv", "losses.npy", "metrics.json",
                                                      "model.pt"]
    assert timing.is_file()
    assert [p.name for p in out.parent.iterdir()] == ["seed0"]  # no staging folder left


@pytest.mark.parametrize("fails", ["metrics.json", "seed0.json"])
def test_an_interrupted_write_keeps_none_of_the_new_outputs(tmp_path, monkeypatch, fails):
    """Ctrl-C while writing metrics.json (staged) or the timing file (after the swap): nothing new stays."""
    out, timing, learner, result = _outputs(tmp_path)
    write_json = runs.write_json

    def interrupted(path, data):
        if path.name == fails:
            raise KeyboardInterrupt
        write_json(path, data)

    monkeypatch.setattr(runs, "write_json", interrupted)
    with pytest.raises(KeyboardInterrupt):
        runs.write_outputs(out, timing, learner, result, None, {"seconds": 1.0})
    assert not any(out.parent.iterdir()) and not timing.exists()


def test_a_disk_error_names_the_run_folder(tmp_path, monkeypatch):
    out, timing, learner, result = _outputs(tmp_path)

    def full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(runs.os, "replace", full)
    with pytest.raises(ArtifactError, match=r"il250/seed0: cannot write \(No space left on device\); nothing was kept"):
        runs.write_outputs(out, timing, learner, result, None, {"seconds": 1.0})
    assert not any(out.parent.iterdir())
