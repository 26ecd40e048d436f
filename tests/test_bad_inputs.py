"""Bad inputs a user can realistically produce, each through a stage's real entry point.

Every case must end with exit code != 0, exactly one line on stderr that names the key or file, no
traceback, and no new file in the results folder (so DVC can cache nothing). The same cases generate
docs/bad-inputs.md; ``test_the_documented_table_is_what_the_cases_give`` keeps that table true
(rewrite it with ``AQIL_WRITE_DOCS=1 python -m pytest tests/test_bad_inputs.py``).
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch

from aqil import trajectories
from aqil.cli import run_stage
from aqil.config import confirm_valid, load_params
from aqil.evaluate import evaluate_stage
from aqil.report import EVAL_FIELDS, ORDER, SUMMARY_FIELDS, report_stage
from aqil.runs import RUNS, train_stage
from aqil.train import new_learner

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "data" / "tiny_params.yaml"
DOC = ROOT / "docs" / "bad-inputs.md"


@dataclass(frozen=True)
class Case:
    name: str  # what the user did
    expect: str  # words the one line must contain (the key or file)
    params: Callable[[str], str] | None = None  # edit of params.yaml's text
    raw_params: bytes | None = None  # params.yaml's bytes, replacing the file
    damage: Callable[[Path], None] | None = None  # edit of a valid results folder
    stage: str = "check_params"  # check_params | il250 | evaluate | report
    seed: int | None = None
    disk_full: bool = False  # every file move fails with ENOSPC, as on a full disk


def _replace(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert old in text, old
        return text.replace(old, new, 1)

    return edit


def _append(extra: str) -> Callable[[str], str]:
    return lambda text: text + extra


def _json_edit(rel: str, key: str, raw_value: str) -> Callable[[Path], None]:
    """Set ``key`` of a JSON file to ``raw_value`` written verbatim (NaN, Infinity, "strings")."""

    def edit(results: Path) -> None:
        path = results / rel
        data = json.loads(path.read_text())
        data[key] = "__X__"
        path.write_text(json.dumps(data).replace('"__X__"', raw_value))

    return edit


def _traj_edit(name: str, change: Callable[[np.ndarray], None]) -> Callable[[Path], None]:
    """Change one trajectory array and re-sign meta.json, so that only the sanity checks can catch it."""

    def edit(results: Path) -> None:
        folder = results / "collect" / "seed0" / "trajectories"
        arr = np.load(folder / f"{name}.npy")
        change(arr)
        np.save(folder / f"{name}.npy", arr)
        meta = json.loads((folder / "meta.json").read_text())
        meta["sha256"][name] = trajectories._digest(folder / f"{name}.npy")
        (folder / "meta.json").write_text(json.dumps(meta))

    return edit


def _meta_edit(key: str, value) -> Callable[[Path], None]:
    def edit(results: Path) -> None:
        path = results / "collect" / "seed0" / "trajectories" / "meta.json"
        meta = json.loads(path.read_text())
        meta[key] = value
        path.write_text(json.dumps(meta))

    return edit


def _model_edit(change: Callable[[dict], None], rel: str = "il250/seed0/model.pt") -> Callable[[Path], None]:
    def edit(results: Path) -> None:
        state = torch.load(results / rel, weights_only=True)
        change(state)
        torch.save(state, results / rel)

    return edit


def _nan_weights(state: dict) -> None:
    state["layers.0.weight"][:] = float("nan")


def _write(rel: str, data: bytes) -> Callable[[Path], None]:
    return lambda results: (results / rel).write_bytes(data)


def _set(path: str, value: str) -> Callable[[str], str]:
    """Replace the value of ``section.key`` in params.yaml's text (first occurrence after the section)."""
    *sections, key = path.split(".")

    def edit(text: str) -> str:
        lines = text.splitlines(keepends=True)
        start = 0
        for depth, section in enumerate(sections):
            start = next(i for i in range(start, len(lines)) if lines[i].startswith("  " * depth + f"{section}:"))
        indent = "  " * len(sections)
        i = next(i for i in range(start, len(lines)) if lines[i].startswith(f"{indent}{key}:"))
        lines[i] = f"{indent}{key}: {value}\n"
        return "".join(lines)

    return edit


CASES = [
    # params.yaml, through the check_params stage (every other stage runs the same check first)
    Case("misspelled top-level section", "evalute: unknown key; did you mean 'evaluate'",
         _append("evalute:\n  seed: 1\n")),
    Case("misspelled key", "dqn.learning_rte: unknown key", _replace("learning_rate:", "learning_rte:")),
    Case("a key written twice", 'duplicate key "seeds"', _append("seeds: [1]\n")),
    Case("integer written as 6.0", "il500.episodes: got 6.0", _set("il500.episodes", "6.0")),
    Case("zero episodes", "il250.episodes: got 0", _set("il250.episodes", "0")),
    Case("negative episodes", "rl500.episodes: got -5", _set("rl500.episodes", "-5")),
    Case("episodes as a word", "il250_rl250.episodes: got 'many'", _set("il250_rl250.episodes", "many")),
    Case("episodes as a boolean", "collect.episodes: got True", _set("collect.episodes", "true")),
    Case("absurd episode count", "rl500.episodes: got 10000000000", _set("rl500.episodes", "10000000000")),
    Case("epsilon above 1", "dqn.epsilon_start: got 1.5", _set("dqn.epsilon_start", "1.5")),
    Case("gamma above 1", "dqn.gamma: got 1.2", _set("dqn.gamma", "1.2")),
    Case("learning rate 0", "dqn.learning_rate: got 0", _set("dqn.learning_rate", "0")),
    Case("learning rate as a word", "dqn.learning_rate: got 'fast'", _set("dqn.learning_rate", "fast")),
    Case("learning rate NaN", "dqn.learning_rate: got nan", _set("dqn.learning_rate", ".nan")),
    Case("learning rate infinite", "dqn.learning_rate: got inf", _set("dqn.learning_rate", ".inf")),
    Case("replay memory of 10**12", "dqn.memory_size: got 1000000000000", _set("dqn.memory_size", "1000000000000")),
    Case("hidden layers [100000, 100000]", "dqn.hidden: got [100000, 100000]", _set("dqn.hidden", "[100000, 100000]")),
    Case("a hidden layer of width 0", "dqn.hidden[1]: got 0", _set("dqn.hidden", "[128, 0]")),
    Case("hidden not a list", "dqn.hidden: got 128", _set("dqn.hidden", "128")),
    Case("moving average of 10**30", "report.moving_average: got", _set("report.moving_average", "1" + "0" * 30)),
    Case("bootstrap of 10**9 samples", "report.bootstrap_samples: got", _set("report.bootstrap_samples", "1000000000")),
    Case("unknown update mode", "dqn.update: got 'parallel'", _set("dqn.update", "parallel")),
    Case("unknown device", "dqn.device: got 'tpu'", _set("dqn.device", "tpu")),
    Case("unknown divergence policy", "dqn.on_divergence: got 'ignore'", _set("dqn.on_divergence", "ignore")),
    Case("unknown unit", "rewards.il.sigma2_units: got 'radians'", _set("rewards.il.sigma2_units", "radians")),
    Case("negative seed", "seeds[1]: got -1", _set("seeds", "[0, -1]")),
    Case("repeated seed", "seeds: got [1, 2, 1]", _set("seeds", "[1, 2, 1]")),
    Case("no seeds", "seeds: got []", _set("seeds", "[]")),
    Case("seeds not a list", "seeds: got 3", _set("seeds", "3")),
    Case("YAML 1.1 boolean 'no'", "expert.reset_per_episode: got 'no'", _set("expert.reset_per_episode", "no")),
    Case("pole limit 0", "env.theta_limit_deg: got 0.0", _set("env.theta_limit_deg", "0")),
    Case("episode cap of 10**12", "env.max_episode_steps: got", _set("env.max_episode_steps", "1000000000000")),
    Case("fewer expert episodes than IL500 uses", "collect.episodes: got 5", _set("collect.episodes", "5")),
    Case("epsilon floor above its start", "dqn.epsilon_min: got 0.5", _set("dqn.epsilon_min", "0.5")),
    Case("batch larger than the memory", "dqn.batch_size: got 20", _set("dqn.memory_size", "10")),
    Case("a section's key deleted", "report.bootstrap_seed: missing",
         _replace("  bootstrap_seed:", "  # bootstrap_seed:")),
    Case("a section that is not a mapping", "report: got 20", lambda t: t[: t.index("\nreport:")] + "\nreport: 20\n"),
    Case("seeds given as a mapping", "seeds: got {'a': 1}", _set("seeds", "{a: 1}")),
    Case("a list instead of a mapping", "params.yaml: got", raw_params=b"- just\n- a list\n"),
    Case("broken YAML syntax", "not valid YAML at line", raw_params=b"seeds: [0\nenv: {\n"),
    Case("bytes that are not UTF-8", "not UTF-8 text", raw_params=b"seeds: [0]\n\xff\xfe\n"),
    Case("an empty params.yaml", "params.yaml: got None", raw_params=b""),
    Case("--seed not among the seeds", "--seed: got 7", stage="il250", seed=7),
    # results, through the stage that reads them
    Case("meta.json's sha256 is a list", "meta.json: sha256 must map", damage=_meta_edit("sha256", [1, 2]),
         stage="il250"),
    Case("meta.json's steps is a string", "meta.json: steps is '5'", damage=_meta_edit("steps", "5"), stage="il250"),
    Case("trajectory altered, checksum kept", "expert_action.npy: contents do not match",
         damage=lambda r: np.save(r / "collect/seed0/trajectories/expert_action.npy",
                                  np.zeros_like(np.load(r / "collect/seed0/trajectories/expert_action.npy"))),
         stage="il250"),
    Case("re-signed trajectory with action 2", "expert_action.npy: actions other than 0 and 1",
         damage=_traj_edit("expert_action", lambda a: a.__setitem__(0, 2)), stage="il250"),
    Case("re-signed trajectory with a NaN state", "obs.npy: NaN or infinite observations",
         damage=_traj_edit("obs", lambda a: a.__setitem__((0, 0), np.nan)), stage="il250"),
    Case("re-signed terminal flags that contradict the lengths", "terminated.npy: terminal flags",
         damage=_traj_edit("terminated", lambda a: a.__setitem__(0, True)), stage="il250"),
    Case("model with NaN weights, no divergence recorded", "il250/seed0/model.pt: 512 NaN or infinite values",
         damage=_model_edit(_nan_weights), stage="evaluate"),
    Case("model without its momentum buffer", "momentum buffer (optimizer.velocity) is missing",
         damage=_model_edit(lambda s: s.pop("optimizer.velocity")), stage="evaluate"),
    Case("model of another architecture", "model does not match this network",
         damage=_model_edit(lambda s: s.__setitem__("layers.0.weight", torch.zeros(5, 4))), stage="evaluate"),
    Case("model file that is not a model", "il250/seed0/model.pt: not a readable model file",
         damage=_write("il250/seed0/model.pt", b"not a model"), stage="evaluate"),
    Case("metrics.json missing", "il250/seed0/metrics.json: missing",
         damage=lambda r: (r / "il250/seed0/metrics.json").unlink(), stage="evaluate"),
    Case("diverged flag that is not a boolean", "metrics.json: diverged is 'yes'",
         damage=_json_edit("il250/seed0/metrics.json", "diverged", '"yes"'), stage="evaluate"),
    Case("NaN in a metrics file", "rl500/seed0/metrics.json: not valid JSON (NaN is not strict JSON)",
         damage=_json_edit("rl500/seed0/metrics.json", "avg_reward", "NaN"), stage="report"),
    Case("Infinity in an evaluation file", "eval/rl500/seed0.json: not valid JSON (Infinity",
         damage=_json_edit("eval/rl500/seed0.json", "avg_reward", "Infinity"), stage="report"),
    Case("a number too large for a float", "rl500/seed0/metrics.json: field best_reward is inf",
         damage=_json_edit("rl500/seed0/metrics.json", "best_reward", "1e999"), stage="report"),
    Case("a metrics field that is a string", "il500/seed0/metrics.json: field avg_reward is '12.5'",
         damage=_json_edit("il500/seed0/metrics.json", "avg_reward", '"12.5"'), stage="report"),
    Case("a metrics field missing", "metrics.json: missing fields total_steps",
         damage=lambda r: _drop(r / "il250_rl250/seed0/metrics.json", "total_steps"), stage="report"),
    Case("a 3-D losses.npy", "rl500/seed0/losses.npy: a 3-D array, expected 1-D",
         damage=lambda r: np.save(r / "rl500/seed0/losses.npy", np.zeros((2, 2, 2), np.float32)), stage="report"),
    Case("report: a model of another architecture", "rl500/seed0/model.pt: model does not match this network",
         damage=_model_edit(lambda s: s.__setitem__("layers.0.weight", torch.zeros(5, 4)), "rl500/seed0/model.pt"),
         stage="report"),
    Case("disk full while writing the evaluation", "eval/il250/seed0.json: cannot write (No space left on device)",
         stage="evaluate", disk_full=True),
    Case("losses.npy that needs unpickling", "rl500/seed0/losses.npy: not a readable .npy array",
         damage=lambda r: np.save(r / "rl500/seed0/losses.npy", np.array([{}], dtype=object), allow_pickle=True),
         stage="report"),
]


def _drop(path: Path, key: str) -> None:
    data = json.loads(path.read_text())
    del data[key]
    path.write_text(json.dumps(data))


@pytest.fixture(scope="module")
def valid_results(tmp_path_factory) -> Path:
    """A complete, valid results folder for the tiny params, built without training (fast)."""
    results = tmp_path_factory.mktemp("valid") / "results"
    params = load_params(TINY)
    with contextlib.redirect_stderr(io.StringIO()):
        trajectories.collect_stage(params, 0, results)
    for run in ORDER:
        folder = results / run / "seed0"
        folder.mkdir(parents=True)
        new_learner(params.dqn, 0, torch.device("cpu")).save(folder / "model.pt")
        np.save(folder / "losses.npy", np.ones(5, np.float32))
        (folder / "episodes.tsv").write_text("episode\treward\tsteps\texpert_reward\n0\t1.0\t1\t1.0\n")
        (folder / "metrics.json").write_text(json.dumps({**dict.fromkeys(SUMMARY_FIELDS, 1), "diverged": False}))
        (results / "eval" / run).mkdir(parents=True)
        (results / "eval" / run / "seed0.json").write_text(
            json.dumps({**dict.fromkeys(EVAL_FIELDS, 1), "episode_reward": [1.0], "diverged": False}))
    return results


STAGES = {
    "check_params": (confirm_valid, False),
    "il250": (partial(train_stage, "il250"), True),
    "evaluate": (partial(evaluate_stage, RUNS["il250"]), True),
    "report": (report_stage, False),
}


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def outcome(case: Case, work: Path, valid: Path, capsys) -> tuple[int, str, set[str]]:
    """Run the case through ``run_stage``: (exit code, stderr, files the stage added)."""
    params_file = work / "params.yaml"
    if case.raw_params is not None:
        params_file.write_bytes(case.raw_params)
    else:
        text = TINY.read_text()
        params_file.write_text(case.params(text) if case.params else text)
    results = work / "results"
    shutil.rmtree(results, ignore_errors=True)
    shutil.copytree(valid, results)
    if case.damage:
        case.damage(results)
    before = _files(results)
    fn, per_seed = STAGES[case.stage]
    argv = ["--params", str(params_file), "--results", str(results)]
    if per_seed:
        argv += ["--seed", str(0 if case.seed is None else case.seed)]
    capsys.readouterr()
    os.environ.pop("AQIL_DEBUG", None)
    with contextlib.ExitStack() as stack:
        if case.disk_full:
            full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            stack.enter_context(mock.patch("aqil.artifacts._move", side_effect=full))  # only our writes
        info = stack.enter_context(pytest.raises(SystemExit))
        run_stage(fn, case.name, per_seed=per_seed, argv=argv)
    err = capsys.readouterr().err
    return int(info.value.code or 0), err, _files(results) - before


def _error_line(err: str) -> str:
    return [line for line in err.splitlines() if line.startswith("aqil: error:")][-1]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_one_line_naming_its_cause_and_writes_nothing(case, tmp_path, valid_results, capsys):
    code, err, added = outcome(case, tmp_path, valid_results, capsys)
    assert code != 0
    lines = [line for line in err.splitlines() if line.strip() and "%|" not in line]  # progress bars aside
    assert len(lines) == 1 and lines[0].startswith("aqil: error: "), err
    assert case.expect in lines[0], lines[0]
    assert "Traceback" not in err
    assert not added, added


def render(rows: list[tuple[str, str, int, str]]) -> str:
    out = [
        "# Bad inputs and what they get",
        "",
        "Generated by `tests/test_bad_inputs.py` (each row is one of its cases, run through the stage's real",
        "entry point on the tiny params; the test fails if this table and the code disagree). Every case exits",
        "non-zero with one line, and no stage output is written.",
        "",
        "| # | what the user did | stage | exit | the one line |",
        "|---:|---|---|---:|---|",
    ]
    for i, (name, stage, code, line) in enumerate(rows, 1):
        line = line.replace("|", "\\|")
        out.append(f"| {i} | {name} | `{stage}` | {code} | `{line}` |")
    return "\n".join(out) + "\n"


def test_the_documented_table_is_what_the_cases_give(tmp_path, valid_results, capsys):
    rows = []
    for i, case in enumerate(CASES):
        work = tmp_path / str(i)
        work.mkdir()
        code, err, _ = outcome(case, work, valid_results, capsys)
        line = _error_line(err).replace(str(work) + "/", "").replace(str(work), ".")
        rows.append((case.name, case.stage, code, line))
    assert len(rows) >= 40
    text = render(rows)
    if os.environ.get("AQIL_WRITE_DOCS") == "1":
        DOC.write_text(text)
    assert DOC.read_text() == text, "docs/bad-inputs.md is stale; rewrite it with AQIL_WRITE_DOCS=1 (see above)"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupt_while_a_stage_still_imports_is_one_line(signum):
    """Stages import aqil.cli first; torch's import takes seconds after it (simulated by a sleep)."""
    script = "import aqil.cli, time; print('imported', flush=True); time.sleep(60)"
    proc = subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # A suite started in the background of a script inherits an ignored SIGINT; a terminal's Ctrl-C does not.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stdout.readline().strip() == "imported"
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert err.strip() == "aqil: error: interrupted before the stage started; nothing was written"
