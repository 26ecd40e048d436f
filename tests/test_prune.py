"""aqil/prune.py: which result files belong to seeds no longer listed, and their removal."""

from __future__ import annotations

from pathlib import Path

import yaml

from aqil.config import Params, to_dict
from aqil.prune import main, stale_seed_paths, warning


def _layout(results: Path, seeds: list[int]) -> None:
    for seed in seeds:
        for run in ("collect", "il250", "rl500"):
            (results / run / f"seed{seed}").mkdir(parents=True)
            (results / run / f"seed{seed}" / "metrics.json").write_text("{}")
        for kind in ("eval", "timing"):
            (results / kind / "il250").mkdir(parents=True, exist_ok=True)
            (results / kind / "il250" / f"seed{seed}.json").write_text("{}")
    (results / "report").mkdir(exist_ok=True)
    (results / "il250" / "seed1.partial").mkdir()  # not a seed's folder: never touched


def test_stale_paths_are_exactly_the_unlisted_seeds(tmp_path):
    _layout(tmp_path, [0, 1, 10])
    stale = [p.relative_to(tmp_path).as_posix() for p in stale_seed_paths(tmp_path, [0, 10])]
    assert stale == ["collect/seed1", "eval/il250/seed1.json", "il250/seed1", "rl500/seed1", "timing/il250/seed1.json"]
    assert stale_seed_paths(tmp_path, [0, 1, 10]) == [] and warning(tmp_path, [0, 1, 10]) is None
    assert "5 result paths belong to seeds not in params.yaml's seeds [0, 10]" in warning(tmp_path, [0, 10])


def test_prune_lists_without_yes_and_removes_with_it(tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(to_dict(Params()) | {"seeds": [0]}))
    results = tmp_path / "results"
    _layout(results, [0, 1])
    args = ["--params", str(params), "--results", str(results)]
    assert main(args) == 0
    assert "stale: " in capsys.readouterr().out and (results / "il250" / "seed1").is_dir()
    assert main([*args, "--yes"]) == 0
    assert stale_seed_paths(results, [0]) == []
    assert (results / "il250" / "seed0" / "metrics.json").is_file() and (results / "il250" / "seed1.partial").is_dir()
    assert main(args) == 0 and "nothing to remove" in capsys.readouterr().out


def test_bad_params_is_one_line(tmp_path, capsys):
    (tmp_path / "params.yaml").write_text("seeds: [0]\nevalute: {}\n")
    assert main(["--params", str(tmp_path / "params.yaml"), "--results", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("aqil: error: ")
