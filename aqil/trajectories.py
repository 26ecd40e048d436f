"""Expert trajectories: recorded once by the PID expert, replayed by every imitation run.

In imitation mode the expert's action drives the environment and the network's action is only
scored, so the states an imitation run visits do not depend on the network: training on these
recordings gives exactly the results of imitating online.

Stored as a folder of ``.npy`` arrays plus ``meta.json`` (``.npy`` is byte-stable, unlike
``.npz`` whose zip entries carry the time of writing).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aqil.artifacts import ArtifactError, read_json, read_npy, write_json
from aqil.config import EnvConfig, ExpertConfig, Params
from aqil.env import capped_env
from aqil.episodes import Recorder, run_episodes
from aqil.expert import ExpertLabels, PIDExpert
from aqil.layout import collect_dir, trajectories_dir
from aqil.seeding import derive_seed, run_seed

FORMAT_VERSION = 1
# Largest |observation| a recording may hold: far above any CartPole state the params allow (a cart on a
# 10 km track, aqil/config.py), far below float32's overflow, so a damaged value of 3e38 is refused.
MAX_ABS_OBS = 1e6
ARRAYS = {  # name -> (dtype, trailing shape); first axis is steps (or episodes for per-episode arrays)
    "obs": (np.float32, (4,)),
    "next_obs": (np.float32, (4,)),
    "expert_action": (np.int8, ()),
    "terminated": (np.bool_, ()),
    "episode_length": (np.int64, ()),
    "capped": (np.bool_, ()),
}


@dataclass(frozen=True)
class Trajectories:
    obs: np.ndarray  # (steps, 4) observation before each step
    next_obs: np.ndarray  # (steps, 4) observation after it
    expert_action: np.ndarray  # (steps,) action the expert took
    terminated: np.ndarray  # (steps,) True on the step that ended an episode by failure
    episode_length: np.ndarray  # (episodes,) steps per episode; boundaries are its cumulative sum
    capped: np.ndarray  # (episodes,) True if the episode was cut at max_episode_steps

    @property
    def episodes(self) -> int:
        return len(self.episode_length)

    def episode_bounds(self, episode: int) -> tuple[int, int]:
        end = int(self.episode_length[: episode + 1].sum())
        return end - int(self.episode_length[episode]), end

    def first(self, episodes: int) -> Trajectories:
        """The first ``episodes`` episodes (what IL250 trains on)."""
        steps = int(self.episode_length[:episodes].sum())
        return Trajectories(
            self.obs[:steps], self.next_obs[:steps], self.expert_action[:steps], self.terminated[:steps],
            self.episode_length[:episodes], self.capped[:episodes],
        )


def collect(env_cfg: EnvConfig, expert_cfg: ExpertConfig, episodes: int, env_seed: int) -> Trajectories:
    """Run the PID expert for ``episodes`` episodes and record every transition."""
    recorder = Recorder()
    with ExpertLabels(capped_env(env_cfg), PIDExpert(expert_cfg)) as env:
        run_episodes(env, recorder, episodes, "collect (PID expert)", seed=env_seed)
    return Trajectories(**recorder.arrays())


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save(traj: Trajectories, folder: str | Path) -> None:
    """Write into a temporary folder and move it into place whole."""
    folder = Path(folder)
    tmp = folder.with_name(f".{folder.name}.partial")
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        digests = {}
        for name in ARRAYS:
            np.save(tmp / f"{name}.npy", getattr(traj, name), allow_pickle=False)
            digests[name] = _digest(tmp / f"{name}.npy")
        write_json(tmp / "meta.json", {
            "format_version": FORMAT_VERSION,
            "episodes": traj.episodes,
            "steps": len(traj.obs),
            "sha256": digests,
        })
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
    except OSError as exc:
        raise ArtifactError(f"{folder}: cannot write ({exc.strerror or exc}); nothing was kept") from None
    finally:  # also on Ctrl-C: never leave a half-written folder behind
        shutil.rmtree(tmp, ignore_errors=True)


def load(folder: str | Path) -> Trajectories:
    """Load and verify trajectories; any damage is an ``ArtifactError`` naming the file."""
    folder = Path(folder)
    meta_path = folder / "meta.json"
    meta = read_json(meta_path, required=("format_version", "episodes", "steps", "sha256"))
    version = meta["format_version"]
    if type(version) is not int or version != FORMAT_VERSION:  # "1", 1.0 and true are not the version 1
        raise ArtifactError(f"{meta_path}: format_version is {version!r}; expected {FORMAT_VERSION!r}")
    for key in ("episodes", "steps"):
        if type(meta[key]) is not int or meta[key] < 1:
            raise ArtifactError(f"{meta_path}: {key} is {meta[key]!r}; expected a positive integer")
    sha = meta["sha256"]
    if not isinstance(sha, dict) or not all(isinstance(sha.get(n), str) for n in ARRAYS):
        raise ArtifactError(f"{meta_path}: sha256 must map each of {', '.join(ARRAYS)} to a hex digest")
    arrays = {}
    for name, (dtype, tail) in ARRAYS.items():
        path = folder / f"{name}.npy"
        if not path.is_file():
            raise ArtifactError(f"{path}: missing; rerun the collect stage that records this folder (dvc repro)")
        if _digest(path) != meta["sha256"].get(name):
            raise ArtifactError(f"{path}: contents do not match meta.json (damaged or altered file)")
        arr = read_npy(path)
        expected_len = meta["episodes"] if name in ("episode_length", "capped") else meta["steps"]
        if arr.dtype != dtype or arr.shape != (expected_len, *tail):
            raise ArtifactError(
                f"{path}: shape {arr.shape} dtype {arr.dtype}, expected {(expected_len, *tail)} {np.dtype(dtype)}"
            )
        arrays[name] = arr
    traj = Trajectories(**arrays)
    if int(traj.episode_length.sum()) != meta["steps"]:
        raise ArtifactError(f"{folder / 'episode_length.npy'}: episode lengths do not add up to {meta['steps']}")
    _sanity_check(traj, folder)
    return traj


def _sanity_check(traj: Trajectories, folder: Path) -> None:
    """Contents a matching checksum cannot vouch for (a file rewritten together with its meta.json)."""
    if traj.episode_length.min() < 1:
        raise ArtifactError(f"{folder / 'episode_length.npy'}: an episode has {traj.episode_length.min()} steps")
    if not np.isin(traj.expert_action, (0, 1)).all():
        raise ArtifactError(f"{folder / 'expert_action.npy'}: actions other than 0 and 1")
    for name in ("obs", "next_obs"):
        values = getattr(traj, name)
        if not np.isfinite(values).all():
            raise ArtifactError(f"{folder / f'{name}.npy'}: NaN or infinite observations")
        largest = float(np.abs(values).max())
        if largest > MAX_ABS_OBS:
            raise ArtifactError(f"{folder / f'{name}.npy'}: an observation of magnitude {largest:.3g}; "
                                f"accepted: at most {MAX_ABS_OBS:g} (no CartPole state the params allow comes near)")
    _check_continuity(traj, folder)
    # An episode ends in a failure (terminated on its last step, nowhere else) or at the cap (never).
    last = np.cumsum(traj.episode_length) - 1
    expected = np.zeros(len(traj.terminated), dtype=bool)
    expected[last] = ~traj.capped
    if not np.array_equal(traj.terminated, expected):
        raise ArtifactError(
            f"{folder / 'terminated.npy'}: terminal flags do not match the episode lengths and capped flags"
        )


def _check_continuity(traj: Trajectories, folder: Path) -> None:
    """Within an episode each step starts where the previous one ended: obs[t + 1] == next_obs[t]."""
    same = (traj.obs[1:] == traj.next_obs[:-1]).all(axis=1)
    within = np.ones(len(same), dtype=bool)
    within[np.cumsum(traj.episode_length)[:-1] - 1] = False  # an episode's last step: the next one is a reset
    broken = np.flatnonzero(within & ~same)
    if broken.size:
        raise ArtifactError(f"{folder / 'next_obs.npy'}: step {int(broken[0])}'s next_obs is not step "
                            f"{int(broken[0]) + 1}'s obs, though both are in one episode")


def collect_stage(run: str, params: Params, seed: int, results: Path) -> None:
    """Record the PID expert's episodes that ``run`` trains on for this seed, from the run's own start
    states (the reference's imitation runs each drove the expert afresh)."""
    episodes = getattr(params, run).episodes
    traj = collect(params.env, params.expert, episodes, derive_seed(run_seed(seed, run), "collect-env"))
    out = collect_dir(results, run, seed)
    save(traj, trajectories_dir(results, run, seed))
    lengths = traj.episode_length
    write_json(out / "metrics.json", {
        "episodes": int(traj.episodes),
        "total_steps": int(lengths.sum()),
        "avg_steps": float(lengths.mean()),
        "best_steps": int(lengths.max()),
        "capped_episodes": int(traj.capped.sum()),
    })
