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
from aqil.artifacts import write_json, write_text
from aqil.cli import run_stage
from aqil.config import load_params
from aqil.evaluate import evaluate_stage
from aqil.layout import COLLECTING_RUNS, PAPER_RUNS, eval_file, run_dir, timing_file, trajectories_dir
from aqil.pipeline import check_params_stage
from aqil.reporting.build import report_stage
from aqil.runs import RUNS, episodes_tsv, train_stage
from aqil.train import RunResult, new_learner

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
        folder = trajectories_dir(results, "il250", 0)
        arr = np.load(folder / f"{name}.npy")
        change(arr)
        np.save(folder / f"{name}.npy", arr)
        meta = json.loads((folder / "meta.json").read_text())
        meta["sha256"][name] = trajectories._digest(folder / f"{name}.npy")
        (folder / "meta.json").write_text(json.dumps(meta))

    return edit


def _meta_edit(key: str, value) -> Callable[[Path], None]:
    def edit(results: Path) -> None:
        path = trajectories_dir(results, "il250", 0) / "meta.json"
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


def _section(name: str, text: str) -> Callable[[str], str]:
    """Replace a whole top-level section of params.yaml's text (its line and the indented lines under it)."""

    def edit(params: str) -> str:
        lines = params.splitlines(keepends=True)
        start = next(i for i, line in enumerate(lines) if line.startswith(f"{name}:"))
        end = next((i for i in range(start + 1, len(lines)) if lines[i].strip() and not lines[i].startswith(" ")),
                   len(lines))
        return "".join([*lines[:start], text, *lines[end:]])

    return edit


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


IL250_TRAJ = "collect/il250/seed0/trajectories"

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
    Case("episodes as a boolean", "il500.episodes: got True", _set("il500.episodes", "true")),
    Case("absurd episode count", "rl500.episodes: got 10000000000", _set("rl500.episodes", "10000000000")),
    Case("epsilon above 1", "dqn.epsilon_start: got 1.5", _set("dqn.epsilon_start", "1.5")),
    Case("gamma above 1", "dqn.gamma: got 1.2", _set("dqn.gamma", "1.2")),
    Case("learning rate 0", "dqn.learning_rate: got 0", _set("dqn.learning_rate", "0")),
    Case("learning rate that is 0 in float32", "dqn.learning_rate: got 1e-46, which is 0 in float32",
         _set("dqn.learning_rate", "1.0e-46")),
    Case("learning rate below float32's smallest normal number", "dqn.learning_rate: got 1e-40",
         _set("dqn.learning_rate", "1.0e-40")),
    Case("momentum that is 0 in float32", "dqn.momentum: got 1e-45, which is 0 in float32",
         _set("dqn.momentum", "1.0e-45")),
    Case("DQfD loss weight infinite in float32", "dqfd250_rl250.lambda_e: got 1e+39, which is infinite in float32",
         _set("dqfd250_rl250.lambda_e", "1.0e+39")),
    Case("terminal reward infinite in float32", "rewards.terminal: got -1e+39, which is infinite in float32",
         _set("rewards.terminal", "-1.0e+39")),
    Case("discount below float64's smallest normal number", "dqn.gamma: got 1e-320, which is 0 in float64",
         _set("dqn.gamma", "1.0e-320")),
    Case("reward width so narrow the Gaussian overflows", "rewards.sigma1: got 1e-120 (degrees",
         _set("rewards.sigma1", "1.0e-120")),
    Case("learning rate as a word", "dqn.learning_rate: got 'fast'", _set("dqn.learning_rate", "fast")),
    Case("learning rate NaN", "dqn.learning_rate: got nan", _set("dqn.learning_rate", ".nan")),
    Case("learning rate infinite", "dqn.learning_rate: got inf", _set("dqn.learning_rate", ".inf")),
    Case("a Cyrillic letter in a key", "dqn.'l\\u0435arning_rate' (contains U+0435 CYRILLIC SMALL LETTER IE)",
         _replace("learning_rate:", "l\u0435arning_rate:")),
    Case("a Cyrillic letter in a number", "dqn.learning_rate: got '1.0\\u0435-5' (contains U+0435",
         _set("dqn.learning_rate", "1.0\u0435-5")),
    Case("a zero-width space in a value", "dqn.update: got 'sequential\\u200b' (contains U+200B ZERO WIDTH SPACE)",
         _set("dqn.update", "sequential\u200b")),
    Case("replay memory of 10**12", "dqn.memory_size: got 1000000000000", _set("dqn.memory_size", "1000000000000")),
    Case("hidden layers [100000, 100000]", "dqn.hidden: got [100000, 100000]", _set("dqn.hidden", "[100000, 100000]")),
    Case("a hidden layer of width 0", "dqn.hidden[1]: got 0", _set("dqn.hidden", "[128, 0]")),
    Case("hidden not a list", "dqn.hidden: got 128", _set("dqn.hidden", "128")),
    Case("moving average of 10**30", "report.moving_average: got", _set("report.moving_average", "1" + "0" * 30)),
    Case("bootstrap of 10**9 samples", "report.bootstrap_samples: got", _set("report.bootstrap_samples", "1000000000")),
    Case("bootstrap of 1 sample", "report.bootstrap_samples: got 1; accepted: a value >= 1,000",
         _set("report.bootstrap_samples", "1")),
    Case("unknown update mode", "dqn.update: got 'parallel'", _set("dqn.update", "parallel")),
    Case("unknown device", "dqn.device: got 'tpu'", _set("dqn.device", "tpu")),
    Case("unknown divergence policy", "dqn.on_divergence: got 'ignore'", _set("dqn.on_divergence", "ignore")),
    Case("unknown unit", "rewards.il.sigma2_units: got 'radians'", _set("rewards.il.sigma2_units", "radians")),
    Case("negative seed", "seeds.il250[1]: got -1", _set("seeds.il250", "[0, -1]")),
    Case("repeated seed", "seeds.rl500: got [1, 2, 1]", _set("seeds.rl500", "[1, 2, 1]")),
    Case("no seeds", "seeds.rl500: got []", _set("seeds.rl500", "[]")),
    Case("seeds not a list", "seeds.rl500: got 3", _set("seeds.rl500", "3")),
    Case("one seed list for every run (the old format)", "seeds: got [0]; expected a mapping",
         _section("seeds", "seeds: [0]\n")),
    Case("a run left out of seeds", "seeds.dagger250: missing", _replace("  dagger250: [0]\n", "")),
    Case("a seed its parent run does not train", "seeds.il250_rl250: seeds [1] are not in seeds.il250",
         _set("seeds.il250_rl250", "[0, 1]")),
    Case("YAML 1.1 boolean 'no'", "expert.reset_per_episode: got 'no'", _set("expert.reset_per_episode", "no")),
    Case("pole limit 0", "env.theta_limit_deg: got 0.0", _set("env.theta_limit_deg", "0")),
    Case("a track of 100 km", "env.x_limit: got 100000.0", _set("env.x_limit", "100000.0")),
    Case("episode cap of 10**12", "env.max_episode_steps: got", _set("env.max_episode_steps", "1000000000000")),
    Case("an old params.yaml's collect section", "collect: unknown key", _append("collect:\n  episodes: 6\n")),
    Case("BC250 on more expert episodes than IL250 records", "bc250.episodes: got 5", _set("bc250.episodes", "5")),
    Case("epsilon floor above its start", "dqn.epsilon_min: got 0.5", _set("dqn.epsilon_min", "0.5")),
    Case("batch larger than the memory", "dqn.batch_size: got 20", _set("dqn.memory_size", "10")),
    Case("a section's key deleted", "report.bootstrap_seed: missing",
         _replace("  bootstrap_seed:", "  # bootstrap_seed:")),
    Case("a section that is not a mapping", "report: got 20", lambda t: t[: t.index("\nreport:")] + "\nreport: 20\n"),
    Case("a run's seeds given as a mapping", "seeds.il250: got {'a': 1}", _set("seeds.il250", "{a: 1}")),
    Case("a list instead of a mapping", "params.yaml: got", raw_params=b"- just\n- a list\n"),
    Case("broken YAML syntax", "not valid YAML at line", raw_params=b"seeds: [0\nenv: {\n"),
    Case("bytes that are not UTF-8", "not UTF-8 text", raw_params=b"seeds: [0]\n\xff\xfe\n"),
    Case("an empty params.yaml", "params.yaml: got None", raw_params=b""),
    Case("--seed not among the run's seeds", "--seed: got 7; accepted: one of seeds.il250 [0]", stage="il250",
         seed=7),
    # results, through the stage that reads them
    Case("meta.json's sha256 is a list", "meta.json: sha256 must map", damage=_meta_edit("sha256", [1, 2]),
         stage="il250"),
    Case("meta.json's steps is a string", "meta.json: steps is '5'", damage=_meta_edit("steps", "5"), stage="il250"),
    Case("meta.json's format_version is a string", "meta.json: format_version is '1'; expected 1",
         damage=_meta_edit("format_version", "1"), stage="il250"),
    Case("trajectory altered, checksum kept", "expert_action.npy: contents do not match",
         damage=lambda r: np.save(r / IL250_TRAJ / "expert_action.npy",
                                  np.zeros_like(np.load(r / IL250_TRAJ / "expert_action.npy"))),
         stage="il250"),
    Case("re-signed trajectory with action 2", "expert_action.npy: actions other than 0 and 1",
         damage=_traj_edit("expert_action", lambda a: a.__setitem__(0, 2)), stage="il250"),
    Case("re-signed trajectory with a NaN state", "obs.npy: NaN or infinite observations",
         damage=_traj_edit("obs", lambda a: a.__setitem__((0, 0), np.nan)), stage="il250"),
    Case("re-signed trajectory with a state of 3e38", "obs.npy: an observation of magnitude 3e+38",
         damage=_traj_edit("obs", lambda a: a.__setitem__((0, 0), 3e38)), stage="il250"),
    Case("re-signed next_obs that does not continue obs", "next_obs.npy: step 0's next_obs is not step 1's obs",
         damage=_traj_edit("next_obs", lambda a: a.__setitem__((0, 1), a[0, 1] + 0.5)), stage="il250"),
    Case("re-signed terminal flags that contradict the lengths", "terminated.npy: terminal flags",
         damage=_traj_edit("terminated", lambda a: a.__setitem__(0, True)), stage="il250"),
    Case("model with NaN weights, no divergence recorded", "il250/seed0/model.pt: 512 NaN or infinite values",
         damage=_model_edit(_nan_weights), stage="evaluate"),
    Case("model without its momentum buffer", "momentum buffer (optimizer.velocity) is missing",
         damage=_model_edit(lambda s: s.pop("optimizer.velocity")), stage="evaluate"),
    Case("model of another architecture", "model does not match this network",
         damage=_model_edit(lambda s: s.__setitem__("layers.0.weight", torch.zeros(5, 4))), stage="evaluate"),
    Case("model of int64 tensors (right names and shapes)", "il250/seed0/model.pt: layers.0.weight holds int64",
         damage=_model_edit(lambda s: s.update({k: v.long() for k, v in s.items()})), stage="evaluate"),
    Case("model of bool tensors (right names and shapes)", "il250/seed0/model.pt: layers.0.weight holds bool",
         damage=_model_edit(lambda s: s.update({k: v.bool() for k, v in s.items()})), stage="evaluate"),
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
    Case("a 3-D losses.npy", "rl500/seed0/losses.npy: a 3-D array, expected 1-D",
         damage=lambda r: np.save(r / "rl500/seed0/losses.npy", np.zeros((2, 2, 2), np.float32)), stage="report"),
    Case("a complex losses.npy", "rl500/seed0/losses.npy: dtype complex64, expected real numbers",
         damage=lambda r: np.save(r / "rl500/seed0/losses.npy", np.ones(60, np.complex64)), stage="report"),
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


def _valid_run(params, results: Path, run: str) -> None:
    """One trained and evaluated seed 0 of ``run``, in the formats the stages write (without training)."""
    n = getattr(params, run).episodes
    result = RunResult(np.linspace(1.0, 2.0, n), np.full(n, 10), np.zeros(n, bool), np.full(n, 0.3), np.ones(n),
                       np.ones(10 * n, np.float32))
    folder = run_dir(results, run, 0)
    new_learner(params.dqn, 0, torch.device("cpu")).save(folder / "model.pt")
    np.save(folder / "losses.npy", result.losses)
    expert = np.ones(n) if PAPER_RUNS[run].method == "imitation" else None
    write_text(folder / "episodes.tsv", episodes_tsv(result, expert))
    write_json(folder / "metrics.json", result.summary())
    k = params.evaluate.episodes
    write_json(eval_file(results, run, 0), {"episode_reward": [1.0] * k, "episode_steps": [5] * k, "avg_reward": 1.0,
                                            "best_reward": 1.0, "avg_steps": 5.0, "capped_episodes": 0,
                                            "diverged": False})
    write_json(timing_file(results, run, 0), {"us_per_step": 1.0, "steps": 10 * n, "pretraining_steps": 0,
                                              "seconds": 0.1, "backend": "fused", "update": "sequential"})


@pytest.fixture(scope="module")
def valid_results(tmp_path_factory) -> Path:
    """A complete, valid results folder for the tiny params (seed 0 of every paper run), built without
    training (fast); test_valid_results_pass_every_stage checks that it is valid."""
    results = tmp_path_factory.mktemp("valid") / "results"
    params = load_params(TINY)
    with contextlib.redirect_stderr(io.StringIO()):
        for run in COLLECTING_RUNS:
            trajectories.collect_stage(run, params, 0, results)
    for run in PAPER_RUNS:
        _valid_run(params, results, run)
    return results


STAGES = {  # stage -> (entry function, run_stage's keyword arguments, arguments before the options)
    "check_params": (check_params_stage, {}, []),
    "il250": (partial(train_stage, "il250"), {"run": "il250"}, []),
    "evaluate": (lambda run, *args: evaluate_stage(RUNS[run], *args), {"runs": list(RUNS)}, ["il250"]),
    "report": (report_stage, {}, []),
}


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def _params_text(case: Case | None) -> bytes:
    if case is not None and case.raw_params is not None:
        return case.raw_params
    text = TINY.read_text()
    return (case.params(text) if case is not None and case.params else text).encode()


def run_case(case: Case | None, stage: str, work: Path, valid: Path, capsys) -> tuple[int, str, set[str]]:
    """Run ``stage`` through ``run_stage`` on ``case`` (None: the valid inputs): (exit code, stderr, files
    the stage added)."""
    params_file = work / "params.yaml"
    params_file.write_bytes(_params_text(case))
    results = work / "results"
    shutil.rmtree(results, ignore_errors=True)
    shutil.copytree(valid, results)
    if case is not None and case.damage:
        case.damage(results)
    before = _files(results)
    fn, kwargs, first = STAGES[stage]
    argv = [*first, "--params", str(params_file), "--results", str(results)]
    if kwargs:
        argv += ["--seed", str(0 if case is None or case.seed is None else case.seed)]
    capsys.readouterr()
    os.environ.pop("AQIL_DEBUG", None)
    torch.set_flush_denormal(False)  # as in a fresh stage process (training in this one may have set it)
    code = 0
    with contextlib.ExitStack() as stack:
        if case is not None and case.disk_full:
            full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            stack.enter_context(mock.patch("aqil.artifacts._move", side_effect=full))  # only our writes
        try:
            run_stage(fn, stage if case is None else case.name, **kwargs, argv=argv)
        except SystemExit as exc:
            code = int(exc.code or 0)
    err = capsys.readouterr().err
    return code, err, _files(results) - before


def outcome(case: Case, work: Path, valid: Path, capsys) -> tuple[int, str, set[str]]:
    return run_case(case, case.stage, work, valid, capsys)


def _error_line(err: str) -> str:
    return [line for line in err.splitlines() if line.startswith("aqil: error:")][-1]


@pytest.mark.parametrize("stage", STAGES)
def test_valid_results_pass_every_stage(stage, tmp_path, valid_results, capsys):
    """The cases' starting point is valid, so that each case fails for its own damage only."""
    code, err, _ = run_case(None, stage, tmp_path, valid_results, capsys)
    assert code == 0, err
    assert "aqil: error" not in err


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
    assert len(rows) >= 80
    text = render(rows)
    if os.environ.get("AQIL_WRITE_DOCS") == "1":
        DOC.write_text(text)
    assert DOC.read_text() == text, "docs/bad-inputs.md is stale; rewrite it with AQIL_WRITE_DOCS=1 (see above)"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupt_while_a_stage_still_imports_is_one_line(signum):
    """Stage scripts call aqil.cli.guard_imports() first; torch's import takes seconds after it (a sleep here)."""
    script = "import aqil.cli, time; aqil.cli.guard_imports(); print('imported', flush=True); time.sleep(60)"
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
