"""Entry-point plumbing shared by the stage scripts: arguments, params, and one-line errors.

A failing stage ends with one ``aqil: error: ...`` line naming the file or key; the full
traceback appears only with ``AQIL_DEBUG=1``. SIGTERM is handled like Ctrl-C so that staged
outputs are cleaned up and nothing half-written is left for DVC to cache. A stage whose parent
(``dvc``) has died stops the same way: an orphan would go on and overwrite newer results later.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from types import TracebackType

from aqil.artifacts import ArtifactError, TrainingError
from aqil.config import ConfigError, load_params

PARENT_CHECK_SECONDS = 1.0  # how often a running stage checks that the process that started it is alive


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _quit_before_start(signum: int, frame: object) -> None:
    """Ctrl-C while the stage is still importing (torch takes seconds): one line, no traceback."""
    print("aqil: error: interrupted before the stage started; nothing was written", file=sys.stderr)
    os._exit(130)


def _debug() -> bool:
    return os.environ.get("AQIL_DEBUG", "") not in ("", "0")


# -- numba's cache: the compiled kernel is stored beside aqil/kernel.py (aqil/__pycache__) ----------------
_NO_LOCATOR = re.compile(r"cannot cache function .*: no locator available for file '(.*)'")


def _unusable_cache(exc: BaseException) -> str | None:
    """numba found no writable folder for its cache (at import: the kernel is decorated with cache=True)."""
    match = _NO_LOCATOR.fullmatch(str(exc)) if isinstance(exc, RuntimeError) else None
    if not match:
        return None
    folder = Path(match.group(1)).parent / "__pycache__"
    user = Path(os.environ.get("XDG_CACHE_HOME") or Path("~/.cache").expanduser()) / "numba"
    given = os.environ.get("NUMBA_CACHE_DIR")
    also = f", nor NUMBA_CACHE_DIR ({given})" if given else ""
    return (f"{folder}: not writable, nor is numba's user cache folder {user}{also}; numba cannot cache the "
            "compiled kernel: set NUMBA_CACHE_DIR to a writable folder (e.g. NUMBA_CACHE_DIR=/tmp/numba-cache)")


def _damaged_cache(exc: BaseException) -> str | None:
    """numba failed to read one of its cache files (truncated or garbage): name it, not just UnpicklingError."""
    tb: TracebackType | None = exc.__traceback__
    path = None
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_filename.endswith(os.path.join("numba", "core", "caching.py")):
            if frame.f_code.co_name == "_load_index":
                path = getattr(frame.f_locals.get("self"), "_index_path", None)
            elif frame.f_code.co_name == "_load_data":
                path = frame.f_locals.get("path")
        tb = tb.tb_next
    if path is None:
        return None
    folder = Path(path).parent
    return (f"{path}: a damaged numba cache file ({type(exc).__name__}); delete the kernel's cache files "
            f"({folder}/*.nbi and *.nbc: numba compiles the kernel again) or set NUMBA_CACHE_DIR to an empty folder")


def describe(exc: BaseException) -> str:
    """The one line for an unexpected exception."""
    known = _unusable_cache(exc) or _damaged_cache(exc)
    return known or f"{type(exc).__name__}: {exc} (set AQIL_DEBUG=1 to see the traceback)"


def _uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    """An error while a stage script still imports (before ``run_stage``), such as numba finding no
    writable cache folder: one line too."""
    if _debug() or issubclass(kind, KeyboardInterrupt | SystemExit):
        sys.__excepthook__(kind, exc, tb)
        return
    print(f"aqil: error: {describe(exc)}", file=sys.stderr)


def guard_imports() -> None:
    """Called first by a stage script, before its slow imports (torch, the kernel): Ctrl-C, SIGTERM or an
    error while importing ends with one line, not a traceback. Importing this module changes nothing
    (no signal handler, no hook), so the library can be imported anywhere. A SIGINT that the parent
    shell told us to ignore (a background job) stays ignored."""
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, _quit_before_start)
    signal.signal(signal.SIGTERM, _quit_before_start)
    sys.excepthook = _uncaught



def _fail(message: str, code: int) -> None:
    print(f"aqil: error: {message}", file=sys.stderr)
    sys.exit(code)


class _ParentWatch:
    """Stop the stage (SIGTERM, handled as Ctrl-C: nothing is written) once the process that started it
    is gone. Killing ``dvc`` does not kill its stage; reparented, the stage would run on and write its
    outputs over those of the next ``dvc repro``."""

    def __init__(self) -> None:
        self.parent = os.getppid()
        self.orphaned = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="aqil-parent-watch", daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(PARENT_CHECK_SECONDS):
            if os.getppid() != self.parent:
                self.orphaned.set()
                os.kill(os.getpid(), signal.SIGTERM)
                return

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        self._thread.start()
        try:
            yield
        finally:
            self._stop.set()
            self._thread.join()


def _parse(description: str, run: str | None, runs: list[str] | None, argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    if runs is not None:
        parser.add_argument("run", choices=runs, help="which run")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file (default: %(default)s)")
    parser.add_argument("--results", type=Path, default=Path("results"), help="results folder (default: %(default)s)")
    if run is not None or runs is not None:
        parser.add_argument("--seed", type=int, required=True, help="training seed (one of the run's seeds)")
    return parser.parse_args(argv)


def run_stage(stage: Callable[..., None], description: str, run: str | None = None,
              runs: list[str] | None = None, argv: list[str] | None = None) -> None:
    """Parse ``--params/--results[/--seed]``, validate params.yaml, run ``stage(params, seed, results)``.

    A stage of one run passes ``run``; a stage shared by several (``python -m stages.evaluate RUN``)
    passes ``runs`` and gets the chosen run first. The seed must be one of that run's seeds."""
    args = _parse(description, run, runs, argv)
    if runs is not None:
        run, stage = args.run, partial(stage, args.run)
    seed = args.seed if run is not None else -1
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    watch = _ParentWatch()
    try:
        with watch.running():
            params = load_params(args.params)
            if run is not None and seed not in params.seeds.of(run):
                raise ConfigError(f"--seed: got {seed}; accepted: one of seeds.{run} {params.seeds.of(run)} "
                                  f"in {args.params}")
            stage(params, seed, args.results)
    except (ConfigError, ArtifactError, TrainingError) as exc:
        if _debug():
            raise
        _fail(str(exc), 2)
    except KeyboardInterrupt:
        if watch.orphaned.is_set():
            _fail(f"the process that started this stage (pid {watch.parent}) is gone; stopped so that nothing is "
                  "written (rerun with dvc repro)", 130)
        _fail("interrupted; no output of this stage was kept, rerun with dvc repro", 130)
    except Exception as exc:
        if _debug():
            raise
        _fail(describe(exc), 1)
