"""Writing outputs so that DVC can never cache a half-written one, and reading them back safely.

Every file goes to a temporary name beside its destination and is moved into place only when
complete (``os.replace`` is atomic on one filesystem). A stage killed mid-run therefore leaves
either the previous output or none, and ``dvc repro`` reruns it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

_move = os.replace  # atomic on one filesystem (a name of its own, so a test can simulate a full disk)


class TrainingError(RuntimeError):
    """Training itself failed (a numerical event, not a bad input or file); the message is one line."""


class ArtifactError(RuntimeError):
    """A missing or damaged input file; the message names the file and what is wrong."""


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it onto ``path`` only if the block succeeds."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        _move(tmp, path)
    except OSError as exc:  # disk full, read-only folder, ...: name the file, keep nothing
        raise ArtifactError(f"{path}: cannot write ({exc.strerror or exc}); nothing was kept") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def first_non_finite(data: Any, where: str = "") -> str | None:
    """Path of the first NaN or infinite number inside nested dicts and lists, or None."""
    if isinstance(data, float) and not math.isfinite(data):
        return where or "value"
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in items:
        found = first_non_finite(value, f"{where}.{key}" if where and isinstance(key, str) else
                                 f"{where}[{key}]" if not isinstance(key, str) else key)
        if found:
            return found
    return None


def write_json(path: str | Path, data: Any) -> None:
    """Stable JSON (sorted keys, fixed indentation) so equal results give equal bytes.

    Strict JSON only: a NaN or infinity is refused, naming the field, and nothing is written.
    """
    bad = first_non_finite(data)
    if bad:
        raise ArtifactError(f"{path}: {bad} is NaN or infinite; refusing to write it (nothing was written)")
    text = json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def missing_file(path: Path) -> ArtifactError:
    return ArtifactError(f"{path}: missing; run the stage that writes it (dvc repro)")


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not strict JSON")


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def read_json(path: str | Path, required: tuple[str, ...] = (), numeric: tuple[str, ...] = ()) -> dict[str, Any]:
    """Read a strict JSON object (no NaN or Infinity) and check its fields.

    ``required`` keys must be present; ``numeric`` ones must be finite numbers or non-empty lists of them.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(), parse_constant=_reject_constant)
    except FileNotFoundError:
        raise missing_file(path) from None
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ArtifactError(f"{path}: expected a JSON object")
    missing = [k for k in (*required, *numeric) if k not in data]
    if missing:
        raise ArtifactError(f"{path}: missing fields {', '.join(dict.fromkeys(missing))}")
    for key in numeric:
        value = data[key]
        values = value if isinstance(value, list) and value else [value]
        if not all(_is_number(v) and _finite(v) for v in values):
            raise ArtifactError(f"{path}: field {key} is {value!r}; expected a finite number")
    return data


def read_npy(path: str | Path, ndim: int | None = None) -> np.ndarray:
    """Load a ``.npy`` array without unpickling; damage is an ``ArtifactError`` naming the file.

    With ``ndim`` (a numeric result such as losses.npy) the array must also hold real numbers: complex
    values would pass ``np.number`` and be averaged silently (their imaginary part dropped)."""
    path = Path(path)
    try:
        array = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise missing_file(path) from None
    except (ValueError, OSError, EOFError) as exc:
        raise ArtifactError(f"{path}: not a readable .npy array ({exc})") from None
    if ndim is not None and array.ndim != ndim:
        raise ArtifactError(f"{path}: a {array.ndim}-D array, expected {ndim}-D")
    real = np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)
    if ndim is not None and not real:
        raise ArtifactError(f"{path}: dtype {array.dtype}, expected real numbers (integers or floats)")
    return array


TIMING_FIELDS = ("seconds", "us_per_step", "steps", "pretraining_steps")  # what a training stage records


def read_timing(path: str | Path) -> dict[str, Any]:
    """A training stage's timing record (results/timing/<run>/seed<N>.json): every count and duration a
    finite number >= 0 (a negative or null time would be summed into the report's wall time)."""
    data = read_json(path, ("backend",), TIMING_FIELDS)
    for key in TIMING_FIELDS:
        if not _is_number(data[key]) or data[key] < 0:
            raise ArtifactError(f"{path}: field {key} is {data[key]!r}; expected a number >= 0")
    for key in ("steps", "pretraining_steps"):
        if not isinstance(data[key], int):
            raise ArtifactError(f"{path}: field {key} is {data[key]!r}; expected an integer")
    if not isinstance(data["backend"], str):
        raise ArtifactError(f"{path}: field backend is {data['backend']!r}; expected a string")
    return data
