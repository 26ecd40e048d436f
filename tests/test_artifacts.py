"""Damaged or foreign inputs give one clear error naming the file; outputs are written atomically."""

from __future__ import annotations

import dataclasses
import json
import pickle

import numpy as np
import pytest
import torch

from aqil import trajectories
from aqil.artifacts import ArtifactError, atomic_path, read_json
from aqil.config import DQNConfig, EnvConfig, ExpertConfig
from aqil.qnet import DQNLearner, QNetwork


@pytest.fixture()
def saved(tmp_path):
    traj = trajectories.collect(EnvConfig(max_episode_steps=200), ExpertConfig(), 3, env_seed=0)
    folder = tmp_path / "trajectories"
    trajectories.save(traj, folder)
    return traj, folder


def test_trajectories_roundtrip_and_are_byte_stable(saved, tmp_path):
    traj, folder = saved
    loaded = trajectories.load(folder)
    for name in trajectories.ARRAYS:
        np.testing.assert_array_equal(getattr(loaded, name), getattr(traj, name))
    trajectories.save(traj, tmp_path / "again")
    for f in folder.iterdir():
        assert f.read_bytes() == (tmp_path / "again" / f.name).read_bytes()
    assert not list(tmp_path.glob(".*partial*"))


def test_truncated_trajectory_file_is_named(saved):
    _, folder = saved
    path = folder / "obs.npy"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ArtifactError, match=r"obs\.npy: contents do not match meta\.json"):
        trajectories.load(folder)


def test_altered_trajectory_file_is_named(saved):
    _, folder = saved
    arr = np.load(folder / "expert_action.npy")
    arr[0] = 1 - arr[0]
    np.save(folder / "expert_action.npy", arr)
    with pytest.raises(ArtifactError, match=r"expert_action\.npy: contents do not match"):
        trajectories.load(folder)


def test_missing_trajectory_file_and_meta(saved):
    _, folder = saved
    (folder / "capped.npy").unlink()
    with pytest.raises(ArtifactError, match=r"capped\.npy: missing"):
        trajectories.load(folder)
    (folder / "meta.json").unlink()
    with pytest.raises(ArtifactError, match=r"meta\.json: missing"):
        trajectories.load(folder)


def test_meta_with_missing_fields(saved):
    _, folder = saved
    (folder / "meta.json").write_text(json.dumps({"episodes": 3}))
    with pytest.raises(ArtifactError, match=r"meta\.json: missing fields format_version, steps, sha256"):
        trajectories.load(folder)


def _learner(hidden):
    cfg = dataclasses.replace(DQNConfig(), hidden=hidden)
    return DQNLearner(cfg, QNetwork(hidden), torch.device("cpu"))


def test_model_from_another_architecture_is_rejected(tmp_path):
    _learner([16, 16]).save(tmp_path / "small.pt")
    with pytest.raises(ArtifactError, match=r"small\.pt: model does not match this network .*4 -> 16 -> 16 -> 2"):
        _learner([128, 256, 256]).load(tmp_path / "small.pt")


def test_garbage_model_file_is_rejected(tmp_path):
    (tmp_path / "bad.pt").write_bytes(b"not a model")
    with pytest.raises(ArtifactError, match=r"bad\.pt: not a readable model file"):
        _learner([8]).load(tmp_path / "bad.pt")


class _Payload:
    def __reduce__(self):
        return (exec, ("raise SystemExit('code ran')",))


def test_model_loading_never_runs_code(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"x": _Payload()}, path, pickle_module=pickle)
    with pytest.raises(ArtifactError, match="not a readable model file"):
        _learner([8]).load(path)


def test_metrics_file_with_missing_fields(tmp_path):
    (tmp_path / "metrics.json").write_text('{"avg_reward": 1.0}')
    with pytest.raises(ArtifactError, match=r"metrics\.json: missing fields best_reward"):
        read_json(tmp_path / "metrics.json", ("avg_reward", "best_reward"))
    (tmp_path / "broken.json").write_text('{"avg_reward": ')
    with pytest.raises(ArtifactError, match=r"broken\.json: not valid JSON"):
        read_json(tmp_path / "broken.json")


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []
    with atomic_path(target) as tmp:
        tmp.write_text("whole")
    assert target.read_text() == "whole"
