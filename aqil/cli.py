"""Entry-point plumbing shared by the stage scripts: arguments, params, and one-line errors.

A failing stage ends with one ``aqil: error: ...`` line naming the file or key; the full
traceback appears only with ``AQIL_DEBUG=1``. SIGTERM is handled like Ctrl-C so that staged
outputs are cleaned up and nothing half-written is left for DVC to cache.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

from aqil.artifacts import ArtifactError
from aqil.config import ConfigError, load_params


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _quit_before_start(signum: int, frame: object) -> None:
    """Ctrl-C while the stage is still importing (torch takes seconds): one line, no traceback."""
    print("aqil: error: interrupted before the stage started; nothing was written", file=sys.stderr)
    os._exit(130)


# Stage scripts import this module first, so the rest of their imports are covered. A SIGINT that
# the parent shell told us to ignore (a background job) stays ignored.
_SIGINT_IGNORED = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
if not _SIGINT_IGNORED:
    signal.signal(signal.SIGINT, _quit_before_start)
signal.signal(signal.SIGTERM, _quit_before_start)


def _fail(message: str, code: int) -> None:
    print(f"aqil: error: {message}", file=sys.stderr)
    sys.exit(code)


def run_stage(stage: Callable[..., None], description: str, run: str | None = None,
              runs: list[str] | None = None, argv: list[str] | None = None) -> None:
    """Parse ``--params/--results[/--seed]``, validate params.yaml, run ``stage(params, seed, results)``.

    A stage of one run passes ``run``; a stage shared by several (``python -m stages.evaluate RUN``)
    passes ``runs`` and gets the chosen run first. The seed must be one of that run's seeds."""
    parser = argparse.ArgumentParser(description=description)
    if runs is not None:
        parser.add_argument("run", choices=runs, help="which run")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="params file (default: %(default)s)")
    parser.add_argument("--results", type=Path, default=Path("results"), help="results folder (default: %(default)s)")
    per_seed = run is not None or runs is not None
    if per_seed:
        parser.add_argument("--seed", type=int, required=True, help="training seed (one of the run's seeds)")
    args = parser.parse_args(argv)
    if runs is not None:
        run, stage = args.run, partial(stage, args.run)
    if not _SIGINT_IGNORED:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    debug = os.environ.get("AQIL_DEBUG", "") not in ("", "0")
    try:
        params = load_params(args.params)
        seed = args.seed if per_seed else -1
        if run is not None and seed not in params.seeds.of(run):
            raise ConfigError(f"--seed: got {seed}; accepted: one of seeds.{run} {params.seeds.of(run)} "
                              f"in {args.params}")
        stage(params, seed, args.results)
    except (ConfigError, ArtifactError) as exc:
        if debug:
            raise
        _fail(str(exc), 2)
    except KeyboardInterrupt:
        _fail("interrupted; no output of this stage was kept, rerun with dvc repro", 130)
    except Exception as exc:
        if debug:
            raise
        _fail(f"{type(exc).__name__}: {exc} (set AQIL_DEBUG=1 to see the traceback)", 1)
