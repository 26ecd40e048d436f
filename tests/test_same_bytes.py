"""Same params, same bytes, on any x86-64 CPU: the whole tiny pipeline on this CPU and on a generic one.

A module of its own, so that pytest-xdist (``--dist loadscope``) can run it beside the long chain of
``test_pipeline.py``, which shares one run.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from test_pipeline import RUNS, _output_hashes, dvc, fresh_copy, run

pytestmark = pytest.mark.pipeline

# A generic x86-64 CPU as far as every library on the training path can be told: numba compiles for
# the baseline instruction set, torch's dispatcher and numpy's SIMD loops stay at their baseline, and
# glibc's libm does not pick its FMA/AVX2 variants.
GENERIC_CPU = {
    "NUMBA_CPU_NAME": "generic",
    "ATEN_CPU_CAPABILITY": "default",
    "NPY_ENABLE_CPU_FEATURES": "X86_V2",  # numpy's baseline (SSE4.2); drops its AVX2 / AVX-512 loops
    "GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX512F,-AVX2,-FMA,-AVX",
}


def test_same_bytes_on_a_generic_cpu_and_on_this_one(tmp_path):
    """The whole tiny pipeline, in two fresh copies: every output hash in dvc.lock must be equal."""
    host = fresh_copy(tmp_path / "host")
    generic = fresh_copy(tmp_path / "generic")
    dvc(host, "repro")
    dvc(generic, "repro", env=GENERIC_CPU)
    probe = ("import numba, numpy; print(numba.config.CPU_NAME, "
             "numpy.show_config(mode='dicts')['SIMD Extensions'].get('found', []))")
    assert run(generic, sys.executable, "-c", probe, env=GENERIC_CPU).stdout.strip() == "generic []"
    # On a CPU with FMA, the generic setting really changes what CPU-dependent code computes: glibc's
    # exp and numpy's give other last bits there, so equal pipeline bytes are not an accident of the
    # machine. (A CPU without FMA computes the same either way; then only the hashes below are checked.)
    libm = ("import hashlib, math, numpy as np; x = np.linspace(-30, 0, 200_001); "
            "y = [math.exp(v) for v in x.tolist()]; "
            "print(hashlib.md5(np.array(y).tobytes() + np.exp(x).tobytes()).hexdigest())")
    if " fma " in Path("/proc/cpuinfo").read_text():
        ours = run(host, sys.executable, "-c", libm).stdout
        assert ours != run(generic, sys.executable, "-c", libm, env=GENERIC_CPU).stdout
    hashes = _output_hashes(host / "dvc.lock")
    assert {f"results/{r}/seed0/model.pt" for r in RUNS} | {"results/local/report"} <= hashes.keys()
    assert hashes == _output_hashes(generic / "dvc.lock")
