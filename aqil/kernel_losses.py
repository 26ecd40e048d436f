"""The baselines' losses (aqil/baselines.py), fused like the paper's fit in aqil/kernel.py.

Each fits a minibatch one sample after another, with one SGD-with-momentum step per sample, and
reuses the paper kernel's forward pass and backward step (``kernel.forward_row``, ``kernel.step_on_outputs``),
so its arithmetic order, and so its bytes on every x86-64 CPU, are fixed in the code in the same way.
The paper's runs never import this module: editing a baseline's loss leaves their cached results valid.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from aqil.kernel import fit_setup, forward_row, max_q, step_on_outputs, td_target

# exp and log for the classification losses, as fixed sequences of float64 operations (no libm, whose
# last bit depends on the CPU): not correctly rounded (a few units in the last place), but the same
# bytes everywhere. exp: x = k ln2 + r with |r| <= ln2/2 (Cody-Waite, ln2 in two parts), e^r by its
# Taylor polynomial to degree 13 (truncation < 1e-17 relative), times 2^k.
_LN2_HI = 0.6931471803691238  # ln 2 to 32 bits: k * _LN2_HI is exact for |k| < 2^20
_LN2_LO = 1.9082149292705877e-10  # ln 2 - _LN2_HI
_INV_LN2 = 1.4426950408889634
_EXP_TAYLOR = (1.0 / 6227020800.0, 1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0, 1.0 / 362880.0,
               1.0 / 40320.0, 1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0)



@njit(cache=True, nogil=True)
def exp64(x: float) -> float:
    """e^x in float64, the same bytes on every CPU (see _EXP_TAYLOR)."""
    if x != x:
        return x
    if x > 709.0:
        return math.inf
    if x < -745.0:
        return 0.0
    k = math.floor(x * _INV_LN2 + 0.5)
    r = (x - k * _LN2_HI) - k * _LN2_LO
    p = 0.0
    for c in _EXP_TAYLOR:
        p = p * r + c
    return math.ldexp(p, int(k))


@njit(cache=True, nogil=True)
def log_1_to_2(s: float) -> float:
    """ln(s) for 1 <= s <= 2 (a softmax normaliser of two outputs): 2 atanh((s - 1)/(s + 1)) by its
    series, |u| <= 1/3, 20 terms (truncation < 1e-20); the same bytes on every CPU."""
    u = (s - 1.0) / (s + 1.0)
    u2 = u * u
    total = 0.0
    for k in range(19, -1, -1):
        total = total * u2 + 1.0 / (2 * k + 1)
    return 2.0 * u * total


@njit(cache=True, nogil=True)
def large_margin(q: np.ndarray, expert_action: int, margin: float) -> tuple[float, int]:
    """DQfD's supervised loss max_a [Q(a) + margin [a != a_E]] - Q(a_E), and the maximising action.

    Zero, with a_E as the maximiser, when Q(a_E) leads every other action by at least ``margin``
    (ties go to the expert's action, so the loss and its gradient vanish together).
    """
    best = expert_action
    best_value = np.float64(q[expert_action])
    for k in range(q.shape[0]):
        if k != expert_action and np.float64(q[k]) + margin > best_value:
            best, best_value = k, np.float64(q[k]) + margin
    return best_value - np.float64(q[expert_action]), best


@njit(cache=True, nogil=True)
def fit_classifier(
    params: np.ndarray, velocity: np.ndarray, owed: np.ndarray, sizes: np.ndarray, lr: float, momentum: float,
    obs: np.ndarray, label: np.ndarray,
) -> tuple[float, float]:
    """Behavioural cloning: fit the samples one after another, each one SGD-with-momentum step on the
    softmax cross-entropy of the two outputs (as logits) against the expert's action, as a Keras
    ``categorical_crossentropy`` fit of one sample would. d(loss)/d(logit k) = p_k - [k == label].

    Returns the mean cross-entropy and the largest |logit| seen. Two outputs only (the softmax
    normaliser is then in [1, 2]).
    """
    acts, delta, below, products, active, _, lr32, m32 = fit_setup(sizes, lr, momentum)
    total = 0.0
    largest = 0.0
    for r in range(obs.shape[0]):
        out = forward_row(params, velocity, owed, sizes, lr32, m32, obs, r, acts, active)
        z0 = np.float64(acts[out])
        z1 = np.float64(acts[out + 1])
        for z in (abs(z0), abs(z1)):
            if z > largest or z != z:
                largest = z
        top = z0 if z0 >= z1 else z1
        e0 = exp64(z0 - top)
        e1 = exp64(z1 - top)
        norm = e0 + e1
        y = label[r]
        total += log_1_to_2(norm) - ((z1 if y == 1 else z0) - top)
        delta[0] = np.float32(e0 / norm - (1.0 if y == 0 else 0.0))
        delta[1] = np.float32(e1 / norm - (1.0 if y == 1 else 0.0))
        step_on_outputs(params, velocity, owed, sizes, acts, out, lr32, m32, delta, below, products, active)
    return total / obs.shape[0], largest


@njit(cache=True, nogil=True)
def fit_dqfd(
    params: np.ndarray, velocity: np.ndarray, owed: np.ndarray, sizes: np.ndarray, lr: float, momentum: float,
    gamma: float, obs: np.ndarray, action: np.ndarray, reward: np.ndarray, next_obs: np.ndarray,
    done: np.ndarray, n_return: np.ndarray, n_obs: np.ndarray, n_discount: np.ndarray, n_done: np.ndarray,
    expert: np.ndarray, margin: float, lambda_n: float, lambda_e: float,
) -> tuple[float, float]:
    """DQfD's loss, fitted one sample after another like the reference's Q-learning fits.

    Per sample: J = (Q(s,a) - y1)^2 / 2 + lambda_n (Q(s,a) - yn)^2 / 2 + lambda_e J_E, with the 1-step
    target y1 = r + gamma max Q(s'), the n-step target yn = R_n + n_discount max Q(s_n) (no bootstrap
    past a terminal step), both from the network as it is at that fit, and, for expert samples, the
    large-margin loss J_E = max_a [Q(s,a) + margin [a != a_E]] - Q(s, a_E) (a_E = the stored action).
    The TD terms are halved so that lambda_n = 0 and lambda_e = 0 give exactly ``fit_sequential``'s
    gradient, Q(s,a) - y1 (the Keras mse over two outputs).

    Returns the mean J and the largest |Q(s, a)| seen.
    """
    acts, delta, below, products, active, n_act, lr32, m32 = fit_setup(sizes, lr, momentum)
    total = 0.0
    largest = 0.0
    for r in range(obs.shape[0]):
        y1 = td_target(params, velocity, owed, sizes, lr32, m32, gamma, reward, next_obs, done, r, acts, active)
        yn = n_return[r]
        if not n_done[r]:
            yn = n_return[r] + n_discount[r] * max_q(params, velocity, owed, sizes, lr32, m32, n_obs, r, acts, active)
        out = forward_row(params, velocity, owed, sizes, lr32, m32, obs, r, acts, active)
        a = action[r]
        e1 = acts[out + a] - np.float32(y1)
        en = acts[out + a] - np.float32(yn)
        for k in range(n_act):
            delta[k] = 0.0
            q = abs(np.float64(acts[out + k]))
            if q > largest or q != q:
                largest = q
        delta[a] = e1 + np.float32(lambda_n) * en
        loss = 0.5 * np.float64(e1) * np.float64(e1) + 0.5 * lambda_n * np.float64(en) * np.float64(en)
        if expert[r]:
            j_e, best = large_margin(acts[out : out + n_act], a, margin)
            loss += lambda_e * j_e
            if best != a:  # d J_E / dQ = +1 at the best-with-margin action, -1 at the expert's
                delta[best] += np.float32(lambda_e)
                delta[a] -= np.float32(lambda_e)
        total += loss
        step_on_outputs(params, velocity, owed, sizes, acts, out, lr32, m32, delta, below, products, active)
    return total / obs.shape[0], largest
