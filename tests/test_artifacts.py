"""Damaged or foreign inputs give one clear error naming the file; outputs are written atomically."""

from __future__ import annotations

import dataclasses
import json
import pickle
import re

import numpy as np
import pytest
import torch

from aqil import trajectories
from aqil.artifacts import ArtifactError, atomic_path, read_json, read_npy, read_timing
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


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, torch.float64, torch.float16])
def test_model_of_another_dtype_is_rejected_though_names_and_shapes_match(tmp_path, dtype):
    """load_state_dict would convert these silently: a foreign file evaluated and fine-tuned, exit 0."""
    learner = _learner([8])
    state = {k: v.to(dtype) for k, v in learner.state_dict().items()}
    torch.save(state, tmp_path / "model.pt")
    kind = str(dtype).removeprefix("torch.")
    with pytest.raises(ArtifactError, match=rf"model\.pt: layers\.0\.weight holds {kind} values; expected dense "
                                            r"float32 tensors \(not a model saved by this pipeline\)$"):
        _learner([8]).load(tmp_path / "model.pt")
    learner.save(tmp_path / "model.pt")
    _learner([8]).load(tmp_path / "model.pt")  # the pipeline's own file loads


def test_sparse_model_tensor_is_rejected(tmp_path):
    state = _learner([8]).state_dict()
    state["layers.0.weight"] = state["layers.0.weight"].to_sparse()
    torch.save(state, tmp_path / "model.pt")
    with pytest.raises(ArtifactError, match=r"layers\.0\.weight holds float32 \(sparse_coo\) values"):
        _learner([8]).load(tmp_path / "model.pt")


@pytest.mark.parametrize(("array", "accepted"), [(np.ones(3, np.float32), True), (np.arange(3), True),
                                                 (np.ones(3, np.complex128), False), (np.ones(3, bool), False),
                                                 (np.array(["a"]), False)])
def test_numeric_npy_must_hold_real_numbers(tmp_path, array, accepted):
    np.save(tmp_path / "losses.npy", array)
    if accepted:
        assert read_npy(tmp_path / "losses.npy", ndim=1).dtype == array.dtype
    else:
        with pytest.raises(ArtifactError, match=rf"losses\.npy: dtype {array.dtype}, expected real numbers"):
            read_npy(tmp_path / "losses.npy", ndim=1)


TIMING = {"us_per_step": 12.5, "steps": 100, "pretraining_steps": 0, "seconds": 0.1, "backend": "fused"}


@pytest.mark.parametrize(("key", "value", "message"), [
    ("seconds", -5, "field seconds is -5; expected a number >= 0"),
    ("seconds", None, "field seconds is None; expected a finite number"),
    ("us_per_step", [1.0], "field us_per_step is [1.0]; expected a number >= 0"),
    ("steps", 2.5, "field steps is 2.5; expected an integer"),
    ("backend", 3, "field backend is 3; expected a string"),
])
def test_a_negative_or_null_timing_is_refused(tmp_path, key, value, message):
    path = tmp_path / "seed0.json"
    path.write_text(json.dumps(TIMING))
    assert read_timing(path) == TIMING
    path.write_text(json.dumps(TIMING | {key: value}))
    with pytest.raises(ArtifactError, match=f"^{path}: {re.escape(message)}$"):
        read_timing(path)


def _resign(folder, name: str, arr: np.ndarray) -> None:
    np.save(folder / f"{name}.npy", arr)
    meta = json.loads((folder / "meta.json").read_text())
    meta["sha256"][name] = trajectories._digest(folder / f"{name}.npy")
    (folder / "meta.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("version", ["1", 1.0, True, 2])
def test_format_version_is_shown_as_written(saved, version):
    _, folder = saved
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps(meta | {"format_version": version}))
    with pytest.raises(ArtifactError, match=rf"meta\.json: format_version is {re.escape(repr(version))}; expected 1$"):
        trajectories.load(folder)


def test_an_unphysical_observation_is_refused(saved):
    traj, folder = saved
    obs = traj.obs.copy()
    obs[3, 1] = -3e38
    _resign(folder, "obs", obs)
    with pytest.raises(ArtifactError, match=r"obs\.npy: an observation of magnitude 3e\+38; accepted: at most 1e\+06"):
        trajectories.load(folder)


def test_next_obs_must_continue_obs_within_an_episode(saved):
    traj, folder = saved
    end = int(traj.episode_length[0]) - 1  # the first episode's last step: the next obs is a reset, unchecked
    next_obs = traj.next_obs.copy()
    next_obs[end] += 1.0
    _resign(folder, "next_obs", next_obs)
    trajectories.load(folder)
    next_obs[end - 1, 2] += 1e-3
    _resign(folder, "next_obs", next_obs)
    with pytest.raises(ArtifactError, match=rf"next_obs\.npy: step {end - 1}'s next_obs is not step {end}'s obs"):
        trajectories.load(folder)
