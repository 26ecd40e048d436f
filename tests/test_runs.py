"""A run trains on exactly the episodes it was asked for, or refuses."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from aqil.artifacts import ArtifactError
from aqil.config import EpisodesConfig, load_params
from aqil.runs import train_stage
from aqil.trajectories import collect_stage

TINY = Path(__file__).resolve().parent / "data" / "tiny_params.yaml"


def test_a_run_refuses_a_recording_with_fewer_episodes_than_it_needs(tmp_path: Path):
    """A recording of 3 expert episodes (from a run with il500.episodes: 3) and il500.episodes: 6: IL500
    must not train on 3 and report 6."""
    params = load_params(TINY)
    short = dataclasses.replace(params, il500=EpisodesConfig(3))
    collect_stage("il500", short, 0, tmp_path)
    with pytest.raises(ArtifactError, match=r"holds 3 expert episodes; il500 needs 6 \(rerun its collect stage"):
        train_stage("il500", params, 0, tmp_path)
    assert not (tmp_path / "il500").exists()
