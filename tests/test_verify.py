"""python -m aqil.verify: a published seed, retrained from its record, gives the same bytes; a tampered
record is caught."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

from aqil.config import SeedsConfig, load_params
from aqil.evaluate import evaluate_stage
from aqil.layout import ALL_RUNS
from aqil.published import export_seed, seed_files
from aqil.runs import train_stage
from aqil.trajectories import collect_stage
from aqil.verify import verify

TINY = Path(__file__).resolve().parent / "data" / "tiny_params.yaml"


def _publish(results: Path, records: Path, run: str, seed: int) -> None:
    params = dataclasses.replace(load_params(TINY), seeds=SeedsConfig(**{key: [seed] for key in ALL_RUNS}))
    for name in [*ALL_RUNS[run].parents, run]:
        if ALL_RUNS[name].expert_from == name:
            collect_stage(name, params, seed, results)
        train_stage(name, params, seed, results)
        evaluate_stage(ALL_RUNS[name], params, seed, results)
    export_seed(results, records, run, seed, "c0ffee", params)


def test_a_retrained_seed_has_the_records_bytes_and_a_tampered_record_is_caught(tmp_path: Path):
    records = tmp_path / "records"
    _publish(tmp_path / "results", records, "il250_rl250", 1)  # the chain: collect, IL250, then IL250+RL250
    assert verify(records, "il250_rl250", 1) == []
    record = seed_files(records, "il250_rl250", 1)[1]
    data = json.loads(record.read_text())
    data["sha256"]["model.pt"] = "0" * 64
    record.write_text(json.dumps(data))
    assert verify(records, "il250_rl250", 1) == ["model.pt"]
    shutil.rmtree(tmp_path / "results")
