"""exp, cos and sin with the same bytes on every CPU.

glibc's libm picks FMA or non-FMA code for the CPU it runs on, and numpy's ``np.exp`` has an
AVX-512 kernel of its own, so the same float64 argument can give results one unit in the last place
apart on two machines (measured on 200,000 arguments between an AVX-512 host and the same host
with FMA/AVX/AVX-512 masked: ``math.exp`` differed for 142, ``math.cos`` for 34, ``np.exp`` for 9,754). Rewards and
the cart-pole dynamics use these functions every step, and a one-ulp difference grows into a
different training run. mpmath computes them in integer arithmetic with guard bits and rounds to
the nearest float64, so the answer depends on the argument only (and is the correctly rounded
one; ``tests/test_env_rewards_expert.py`` checks that against 200-bit values).
About 10 us per call: a few percent of a training step.
"""

from __future__ import annotations

import numpy as np
from mpmath.libmp import from_float, mpf_cos_sin, mpf_exp, round_nearest, to_float

# Work with 30 bits beyond float64's 53, then round once to the nearest float64: mpmath at 53 bits is
# faithful (within one ulp) but not always correctly rounded; with the guard bits it is, except
# when the exact value lies within 2^-83 of a rounding boundary.
_PREC = 83


def exp(x: float) -> float:
    return to_float(mpf_exp(from_float(float(x)), _PREC, round_nearest), rnd=round_nearest)


def cos_sin(x: float) -> tuple[float, float]:
    c, s = mpf_cos_sin(from_float(float(x)), _PREC, round_nearest)
    return to_float(c, rnd=round_nearest), to_float(s, rnd=round_nearest)


def exp_array(x: np.ndarray) -> np.ndarray:
    """Elementwise ``exp`` of a float64 array."""
    flat = np.asarray(x, dtype=np.float64).ravel()
    return np.fromiter((exp(v) for v in flat.tolist()), dtype=np.float64, count=flat.size).reshape(np.shape(x))
