"""Writing outputs so that DVC can never cache a half-written one, and reading them back safely.

Every file goes to a temporary name beside its destination and is moved into place only when
complete (``os.replace`` is atomic on one filesystem). A stage killed mid-run therefore leaves
either the previous output or none, and ``dvc repro`` reruns it.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np


class ArtifactError(RuntimeError):
    """A missing or damaged input file; the message names the file and what is wrong."""


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_json(path: str | Path, data: Any) -> None:
    """Stable JSON (sorted keys, fixed indentation) so equal results give equal bytes."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def missing_file(path: Path) -> ArtifactError:
    return ArtifactError(f"{path}: missing; run the stage that writes it (dvc repro)")


def read_json(path: str | Path, required: tuple[str, ...] = ()) -> dict[str, Any]:
    """Read a JSON object and check that ``required`` keys are present."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise missing_file(path) from None
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ArtifactError(f"{path}: expected a JSON object")
    missing = [k for k in required if k not in data]
    if missing:
        raise ArtifactError(f"{path}: missing fields {', '.join(missing)}")
    return data


def read_npy(path: str | Path) -> np.ndarray:
    """Load a ``.npy`` array without unpickling; damage is an ``ArtifactError`` naming the file."""
    path = Path(path)
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise missing_file(path) from None
    except (ValueError, OSError, EOFError) as exc:
        raise ArtifactError(f"{path}: not a readable .npy array ({exc})") from None
