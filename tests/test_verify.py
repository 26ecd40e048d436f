"""python -m aqil.verify: a published seed, retrained from its record, gives the same bytes; a tampered
record is caught."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from aqil.config import load_params
from aqil.evaluate import evaluate_stage
from aqil.layout import ALL_RUNS
from aqil.published import export_seed, seed_files
from aqil.runs import train_stage
from aqil.trajectories import collect_stage
from aqil.verify import verify

TINY = Path(__file__).resolve().parent / "data" / "tiny_params.yaml"


def _publish(results: Path, records: Path, run: str) -> None:
    params = load_params(TINY)
    for name in [*ALL_RUNS[run].parents, run]:
        if ALL_RUNS[name].expert_from == name:
            collect_stage(name, params, 0, results)
        train_stage(name, params, 0, results)
        evaluate_stage(ALL_RUNS[name], params, 0, results)
    export_seed(results, records, run, 0, "c0ffee", params)


def test_a_retrained_seed_has_the_records_bytes_and_a_tampered_record_is_caught(tmp_path: Path):
    records = tmp_path / "records"
    _publish(tmp_path / "results", records, "il250_rl250")  # the chain: collect, IL250, then IL250+RL250
    assert verify(records, "il250_rl250", 0) == []
    record = seed_files(records, "il250_rl250", 0)[1]
    data = json.loads(record.read_text())
    data["sha256"]["model.pt"] = "0" * 64
    record.write_text(json.dumps(data))
    assert verify(records, "il250_rl250", 0) == ["model.pt"]
    shutil.rmtree(tmp_path / "results")
