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
from aqil.env import THETA_INDEX, make_env, reset_options
from aqil.expert import PIDExpert
from aqil.layout import collect_dir, trajectories_dir
from aqil.progress import progress
from aqil.seeding import derive_seed, run_seed

FORMAT_VERSION = 1
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
    env = make_env(env_cfg)
    expert = PIDExpert(expert_cfg)
    obs_l: list[np.ndarray] = []
    next_l: list[np.ndarray] = []
    act_l: list[int] = []
    term_l: list[bool] = []
    lengths, capped = [], []
    obs, _ = env.reset(seed=env_seed, options=reset_options(env_cfg))
    with progress(episodes, "collect (PID expert)") as bar:
        for _ in range(episodes):
            expert.start_episode(float(obs[THETA_INDEX]))
            steps = 0
            while True:
                action = expert.act()
                next_obs, _, terminated, _, _ = env.step(action)
                expert.observe(next_obs[THETA_INDEX])
                obs_l.append(obs)
                next_l.append(next_obs)
                act_l.append(action)
                term_l.append(terminated)
                steps += 1
                obs = next_obs
                if terminated or steps >= env_cfg.max_episode_steps:
                    break
            lengths.append(steps)
            capped.append(not terminated)
            bar.episode_done(steps=steps, capped=not terminated)
            obs, _ = env.reset(options=reset_options(env_cfg))
    env.close()
    return Trajectories(
        obs=np.asarray(obs_l, dtype=np.float32).reshape(-1, 4),
        next_obs=np.asarray(next_l, dtype=np.float32).reshape(-1, 4),
        expert_action=np.asarray(act_l, dtype=np.int8),
        terminated=np.asarray(term_l, dtype=np.bool_),
        episode_length=np.asarray(lengths, dtype=np.int64),
        capped=np.asarray(capped, dtype=np.bool_),
    )


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
    if meta["format_version"] != FORMAT_VERSION:
        raise ArtifactError(f"{meta_path}: format_version {meta['format_version']}, expected {FORMAT_VERSION}")
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
            raise ArtifactError(f"{path}: missing; rerun the collect stage (dvc repro -f -s collect)")
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
        if not np.isfinite(getattr(traj, name)).all():
            raise ArtifactError(f"{folder / f'{name}.npy'}: NaN or infinite observations")
    # An episode ends in a failure (terminated on its last step, nowhere else) or at the cap (never).
    last = np.cumsum(traj.episode_length) - 1
    expected = np.zeros(len(traj.terminated), dtype=bool)
    expected[last] = ~traj.capped
    if not np.array_equal(traj.terminated, expected):
        raise ArtifactError(
            f"{folder / 'terminated.npy'}: terminal flags do not match the episode lengths and capped flags"
        )


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
