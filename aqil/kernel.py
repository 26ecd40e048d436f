"""The reference's update rule as one compiled CPU kernel: 20 one-sample Keras fits per call.

The reference (Keras) fits each of the 20 sampled transitions on its own: the target
y = r + gamma * max_a' Q(s', a') comes from the network as it is at that fit, the label of the
untaken action equals its prediction, and SGD with momentum takes one step on the Keras ``mse``
(mean over the two outputs), whose gradient with respect to Q(s, a) is Q(s, a) - y. Through torch
that is many small calls per fit; here a whole minibatch, or a greedy action, is one numba call.

Same bytes on any x86-64 CPU: the arithmetic order is fixed in the code and ``fastmath`` is off,
so LLVM may vectorize but never reassociates, and never fuses a multiply with an add.

* Parameters live in one flat float32 buffer, each layer as W (in, out) followed by b (out), and
  the momentum buffer has the same layout.
* Forward: out[o] = b[o], then out[o] += h[i] * W[i, o] for the inputs i in order (vectorized over
  o; four inputs per pass, still added one after another). Inputs that are exactly zero
  (inactive ReLU units) add nothing and are skipped.
* Backward: the error for the layer below, sum_o W[i, o] * delta[o], uses W before the step: the
  products are formed in the same pass as the step and summed afterwards in a fixed order
  (halves folded onto each other, then 8 partial sums; see ``_sum_folded``).
* Momentum step, as ``torch.optim.SGD(momentum=m, dampening=0)``: v <- m*v + g, p <- p - lr*v,
  with g = h[i] * delta[o] rounded before it is added.
* A weight row whose input unit is inactive gets no gradient, only the decay v <- m*v,
  p <- p - lr*v. Those decays are counted per row (``owed``) and applied, one after another with
  exactly the same operations, the next time the row is read (``_settle``) or when the network is
  saved (``settle_all``). The bytes are those of the eager loop (its gradient there is 0 * delta,
  so m*v + 0 = m*v while delta is finite); the memory traffic of dead rows is saved.

Subnormal floats are slow on x86 and appear once the momentum of dead units decays; the training
process flushes them to zero as TensorFlow did (``torch.set_flush_denormal(True)`` sets the
CPU's FTZ/DAZ flags, which this kernel runs under too).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_NARROW = 16  # layers with fewer outputs skip the vector loops, whose set-up costs more than they save

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
def _settle(
    params: np.ndarray, velocity: np.ndarray, owed: np.ndarray, row: int, start: int, n: int,
    lr: np.float32, momentum: np.float32,
) -> None:
    """Apply the decays that weight row ``row`` (params[start : start + n]) still owes."""
    w = params[start : start + n]
    vw = velocity[start : start + n]
    for _ in range(owed[row]):
        for o in range(n):
            v = momentum * vw[o]
            vw[o] = v
            w[o] -= lr * v
    owed[row] = 0


@njit(cache=True, nogil=True)
def settle_all(
    params: np.ndarray, velocity: np.ndarray, owed: np.ndarray, sizes: np.ndarray, lr: float, momentum: float,
) -> None:
    """Apply every owed decay, so that params and velocity hold the eager loop's values."""
    p = 0
    row = 0
    for layer in range(sizes.shape[0] - 1):
        n_in = sizes[layer]
        n_out = sizes[layer + 1]
        for i in range(n_in):
            if owed[row + i] > 0:
                _settle(params, velocity, owed, row + i, p + i * n_out, n_out, np.float32(lr), np.float32(momentum))
        p += n_in * n_out + n_out
        row += n_in


@njit(cache=True, nogil=True)
def _forward(
    params: np.ndarray, velocity: np.ndarray, owed: np.ndarray, sizes: np.ndarray,
    lr: np.float32, momentum: np.float32, x: np.ndarray, acts: np.ndarray, active: np.ndarray,
) -> int:
    """Fill ``acts`` with the input and every layer's output (ReLU on hidden layers).

    Returns the offset of the output layer in ``acts``. Each output is accumulated in input order,
    out[o] = (((b[o] + h0 W[i0, o]) + h1 W[i1, o]) + ...). Rows that are read are settled first.
    """
    n_layers = sizes.shape[0] - 1
    for i in range(sizes[0]):
        acts[i] = x[i]
    p = 0
    a_in = 0  # offset of the layer's input in acts; also its first row in owed
    for layer in range(n_layers):
        n_in = sizes[layer]
        n_out = sizes[layer + 1]
        a_out = a_in + n_in
        b = p + n_in * n_out
        # slices indexed by range variables: numba then drops its negative-index handling,
        # which would keep LLVM from vectorizing
        h = acts[a_in:a_out]
        y = acts[a_out : a_out + n_out]
        bias = params[b : b + n_out]
        for o in range(n_out):
            y[o] = bias[o]
        n_active = 0
        for i in range(n_in):
            if h[i] != 0.0:
                active[n_active] = i
                n_active += 1
                if owed[a_in + i] > 0:
                    _settle(params, velocity, owed, a_in + i, p + i * n_out, n_out, lr, momentum)
        if n_out < _NARROW:  # e.g. the 2 Q-values: one running sum per output, same order
            for o in range(n_out):
                total = y[o]
                for j in range(n_active):
                    total += h[active[j]] * params[p + active[j] * n_out + o]
                y[o] = total
            p = b + n_out
            a_in = a_out
            continue
        n4 = n_active - n_active % 4
        for j in range(0, n4, 4):
            i0, i1, i2, i3 = active[j], active[j + 1], active[j + 2], active[j + 3]
            h0, h1, h2, h3 = h[i0], h[i1], h[i2], h[i3]
            w0 = params[p + i0 * n_out : p + (i0 + 1) * n_out]
            w1 = params[p + i1 * n_out : p + (i1 + 1) * n_out]
            w2 = params[p + i2 * n_out : p + (i2 + 1) * n_out]
            w3 = params[p + i3 * n_out : p + (i3 + 1) * n_out]
            for o in range(n_out):
                y[o] = (((y[o] + h0 * w0[o]) + h1 * w1[o]) + h2 * w2[o]) + h3 * w3[o]
        for j in range(n4, n_active):
            i0 = active[j]
            h0 = h[i0]
            w0 = params[p + i0 * n_out : p + (i0 + 1) * n_out]
            for o in range(n_out):
                y[o] += h0 * w0[o]
        if layer < n_layers - 1:
            for o in range(n_out):
                if y[o] < 0.0:
                    y[o] = 0.0
        p = b + n_out
        a_in = a_out
    return a_in


@njit(cache=True, nogil=True)
def _exp(x: float) -> float:
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
def _log_1_to_2(s: float) -> float:
    """ln(s) for 1 <= s <= 2 (a softmax normaliser of two outputs): 2 atanh((s - 1)/(s + 1)) by its
    series, |u| <= 1/3, 20 terms (truncation < 1e-20); the same bytes on every CPU."""
    u = (s - 1.0) / (s + 1.0)
    u2 = u * u
    total = 0.0
    for k in range(19, -1, -1):
        total = total * u2 + 1.0 / (2 * k + 1)
    return 2.0 * u * total


@njit(cache=True, nogil=True)
def _argmax(values: np.ndarray) -> int:
    """First index of the largest value, as ``np.argmax`` (a NaN counts as the largest)."""
    best = 0
    for k in range(values.shape[0]):
        if values[k] != values[k]:
            return k
        if values[k] > values[best]:
            best = k
    return best


@njit(cache=True, nogil=True)
def q_values(
    params: np.ndarray, velocity: np.ndarray, owed: np.ndarray, sizes: np.ndarray, lr: float, momentum: float,
    obs: np.ndarray,
) -> np.ndarray:
    """Q-values of a batch of float32 observations, one row each."""
    n_act = sizes[sizes.shape[0] - 1]
    acts = np.empty(sizes.sum(), dtype=np.float32)
    active = np.empty(sizes.max(), dtype=np.int64)
    q = np.empty((obs.shape[0], n_act), dtype=np.float32)
    for r in range(obs.shape[0]):
        out = _forward(params, velocity, owed, sizes, np.float32(lr), np.float32(momentum), obs[r], acts, active)
        q[r] = acts[out : out + n_act]
    return q


@njit(cache=True, nogil=True)
def greedy_action(
    params: np.ndarray, velocity: np.ndarray, owed: np.ndarray, sizes: np.ndarray, lr: float, momentum: float,
    obs: np.ndarray,
) -> int:
    """argmax_a Q(obs, a) for one float32 observation."""
    acts = np.empty(sizes.sum(), dtype=np.float32)
    active = np.empty(sizes.max(), dtype=np.int64)
    out = _forward(params, velocity, owed, sizes, np.float32(lr), np.float32(momentum), obs, acts, active)
    return _argmax(acts[out : out + sizes[sizes.shape[0] - 1]])


@njit(cache=True, nogil=True)
def _sum8(t: np.ndarray, n: int) -> np.float32:
    """sum of t[:n] in 8 partial sums (lane k: t[k], t[k+8], ...) combined pairwise."""
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = np.float32(0.0)
    n8 = n - n % 8
    for j in range(n8 // 8):
        o = 8 * j
        s0 += t[o]
        s1 += t[o + 1]
        s2 += t[o + 2]
        s3 += t[o + 3]
        s4 += t[o + 4]
        s5 += t[o + 5]
        s6 += t[o + 6]
        s7 += t[o + 7]
    rest = np.float32(0.0)
    for o in range(n8, n):
        rest += t[o]
    return (((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))) + rest


@njit(cache=True, nogil=True)
def _sum_folded(t: np.ndarray, n: int) -> np.float32:
    """sum of t[:n], overwriting t: while the length is even and at least 32, the second half is
    added onto the first (t[k] += t[k + n/2], a long vector loop); then ``_sum8``. The order
    depends on n alone."""
    m = n
    while m >= 32 and m % 2 == 0:
        half = m // 2
        for k in range(half):
            t[k] += t[k + half]
        m = half
    return _sum8(t, m)


@njit(cache=True, nogil=True)
def _step(
    params: np.ndarray, velocity: np.ndarray, owed: np.ndarray, sizes: np.ndarray, acts: np.ndarray,
    out: int, action: int, error: np.float32, lr: np.float32, momentum: np.float32,
    delta: np.ndarray, below: np.ndarray, products: np.ndarray,
) -> None:
    """One SGD-with-momentum step for d(loss)/dQ = error at ``action`` (0 elsewhere)."""
    for a in range(sizes[sizes.shape[0] - 1]):
        delta[a] = 0.0
    delta[action] = error
    _step_on_outputs(params, velocity, owed, sizes, acts, out, lr, momentum, delta, below, products)


@njit(cache=True, nogil=True)
def _step_on_outputs(
    params: np.ndarray, velocity: np.ndarray, owed: np.ndarray, sizes: np.ndarray, acts: np.ndarray,
    out: int, lr: np.float32, momentum: np.float32, delta: np.ndarray, below: np.ndarray, products: np.ndarray,
) -> None:
    """One SGD-with-momentum step for d(loss)/d(outputs) = delta[:n_outputs] (float32, any values).

    ``acts`` holds the forward pass of this sample (which settled every row with an active input).
    Layers are visited from the output down; a row's share of the error for the layer below is
    taken from its weights before they change, so the step is the gradient at the old weights.
    """
    n_layers = sizes.shape[0] - 1
    p_end = params.shape[0]
    a_in = out
    for layer in range(n_layers - 1, -1, -1):
        n_in = sizes[layer]
        n_out = sizes[layer + 1]
        a_in -= n_in
        b = p_end - n_out
        p = b - n_in * n_out
        x = acts[a_in : a_in + n_in]
        d = delta[:n_out]
        for i in range(n_in):
            h = x[i]
            if h == 0.0:  # inactive unit: no gradient, and for hidden layers no error below
                owed[a_in + i] += 1
                below[i] = 0.0
                continue
            row = p + i * n_out
            if n_out < _NARROW:
                for o in range(n_out):
                    products[o] = params[row + o] * d[o]
                    v = momentum * velocity[row + o] + h * d[o]
                    velocity[row + o] = v
                    params[row + o] -= lr * v
                if layer > 0:  # h > 0 here, so the ReLU derivative is 1
                    below[i] = _sum_folded(products, n_out)
                continue
            w = params[row : row + n_out]
            vw = velocity[row : row + n_out]
            half = n_out // 2
            if n_out % 2 == 0 and n_out >= 32:
                # both halves in one pass; products[k] is already the first fold of _sum_folded,
                # products(k) + products(k + half), so the sum below is unchanged
                w2 = w[half:]
                vw2 = vw[half:]
                d2 = d[half:]
                for o in range(half):
                    products[o] = w[o] * d[o] + w2[o] * d2[o]
                    v = momentum * vw[o] + h * d[o]
                    vw[o] = v
                    w[o] -= lr * v
                    v2 = momentum * vw2[o] + h * d2[o]
                    vw2[o] = v2
                    w2[o] -= lr * v2
                if layer > 0:
                    below[i] = _sum_folded(products, half)
                continue
            for o in range(n_out):
                products[o] = w[o] * d[o]
                v = momentum * vw[o] + h * d[o]
                vw[o] = v
                w[o] -= lr * v
            if layer > 0:
                below[i] = _sum_folded(products, n_out)
        wb = params[b : b + n_out]
        vb = velocity[b : b + n_out]
        for o in range(n_out):
            v = momentum * vb[o] + d[o]
            vb[o] = v
            wb[o] -= lr * v
        if layer > 0:
            for i in range(n_in):
                delta[i] = below[i]
        p_end = p


@njit(cache=True, nogil=True)
def fit_sequential(
    params: np.ndarray, velocity: np.ndarray, owed: np.ndarray, sizes: np.ndarray, lr: float, momentum: float,
    gamma: float, obs: np.ndarray, action: np.ndarray, reward: np.ndarray, next_obs: np.ndarray,
    done: np.ndarray,
) -> tuple[float, float]:
    """Fit the transitions one after another (the reference's loop).

    Returns the mean Keras mse and the largest |Q(s, a)| seen (a divergence diagnostic).

    The target is formed as the reference's numpy did: float64 reward + gamma * (float32 max Q)
    in float64, then stored into the float32 label. Rewards are float64, observations float32.
    """
    width = sizes.max()
    acts = np.empty(sizes.sum(), dtype=np.float32)
    delta = np.empty(width, dtype=np.float32)
    below = np.empty(width, dtype=np.float32)
    products = np.empty(width, dtype=np.float32)
    active = np.empty(width, dtype=np.int64)
    n_act = sizes[sizes.shape[0] - 1]
    lr32 = np.float32(lr)
    m32 = np.float32(momentum)
    total = 0.0
    largest = 0.0
    for r in range(obs.shape[0]):
        target = reward[r]
        if not done[r]:
            out = _forward(params, velocity, owed, sizes, lr32, m32, next_obs[r], acts, active)
            q_next = acts[out : out + n_act]
            target = reward[r] + gamma * np.float64(q_next[_argmax(q_next)])
        out = _forward(params, velocity, owed, sizes, lr32, m32, obs[r], acts, active)
        error = acts[out + action[r]] - np.float32(target)
        total += np.float64(error) * np.float64(error) / n_act
        for a in range(n_act):
            q = abs(np.float64(acts[out + a]))
            if q > largest or q != q:
                largest = q
        _step(params, velocity, owed, sizes, acts, out, action[r], error, lr32, m32, delta, below, products)
    return total / obs.shape[0], largest


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
    width = sizes.max()
    acts = np.empty(sizes.sum(), dtype=np.float32)
    delta = np.empty(width, dtype=np.float32)
    below = np.empty(width, dtype=np.float32)
    products = np.empty(width, dtype=np.float32)
    active = np.empty(width, dtype=np.int64)
    lr32 = np.float32(lr)
    m32 = np.float32(momentum)
    total = 0.0
    largest = 0.0
    for r in range(obs.shape[0]):
        out = _forward(params, velocity, owed, sizes, lr32, m32, obs[r], acts, active)
        z0 = np.float64(acts[out])
        z1 = np.float64(acts[out + 1])
        for z in (abs(z0), abs(z1)):
            if z > largest or z != z:
                largest = z
        top = z0 if z0 >= z1 else z1
        e0 = _exp(z0 - top)
        e1 = _exp(z1 - top)
        norm = e0 + e1
        y = label[r]
        total += _log_1_to_2(norm) - ((z1 if y == 1 else z0) - top)
        delta[0] = np.float32(e0 / norm - (1.0 if y == 0 else 0.0))
        delta[1] = np.float32(e1 / norm - (1.0 if y == 1 else 0.0))
        _step_on_outputs(params, velocity, owed, sizes, acts, out, lr32, m32, delta, below, products)
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
    width = sizes.max()
    acts = np.empty(sizes.sum(), dtype=np.float32)
    delta = np.empty(width, dtype=np.float32)
    below = np.empty(width, dtype=np.float32)
    products = np.empty(width, dtype=np.float32)
    active = np.empty(width, dtype=np.int64)
    n_act = sizes[sizes.shape[0] - 1]
    lr32 = np.float32(lr)
    m32 = np.float32(momentum)
    total = 0.0
    largest = 0.0
    for r in range(obs.shape[0]):
        y1 = reward[r]
        if not done[r]:
            out = _forward(params, velocity, owed, sizes, lr32, m32, next_obs[r], acts, active)
            q_next = acts[out : out + n_act]
            y1 = reward[r] + gamma * np.float64(q_next[_argmax(q_next)])
        yn = n_return[r]
        if not n_done[r]:
            out = _forward(params, velocity, owed, sizes, lr32, m32, n_obs[r], acts, active)
            q_n = acts[out : out + n_act]
            yn = n_return[r] + n_discount[r] * np.float64(q_n[_argmax(q_n)])
        out = _forward(params, velocity, owed, sizes, lr32, m32, obs[r], acts, active)
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
        _step_on_outputs(params, velocity, owed, sizes, acts, out, lr32, m32, delta, below, products)
    return total / obs.shape[0], largest
