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
  so m*v + 0 = m*v while delta is finite); the memory traffic of dead rows is saved, and a row
  whose velocity has decayed to zero stops decaying early, bytes unchanged.

Subnormal floats are slow on x86 and appear once the momentum of dead units decays; the training
process flushes them to zero as TensorFlow did (``torch.set_flush_denormal(True)`` sets the
CPU's FTZ/DAZ flags, which this kernel runs under too).
"""

from __future__ import annotations

import numpy as np
from numba import njit

_NARROW = 16  # layers with fewer outputs skip the vector loops, whose set-up costs more than they save

@njit(cache=True, nogil=True)
def _settle(
    params: np.ndarray, velocity: np.ndarray, owed: np.ndarray, row: int, start: int, n: int,
    lr: np.float32, momentum: np.float32,
) -> None:
    """Apply the decays that weight row ``row`` (params[start : start + n]) still owes.

    Once the row's velocity is all zeros, one more decay is the last that can change a byte:
    v stays the same zero, and w - lr*v changes w only when w is -0.0 and v is -0.0 (to +0.0),
    after which nothing changes. So a row dead for a million fits costs a few thousand decays,
    with exactly the eager loop's bytes.
    """
    w = params[start : start + n]
    vw = velocity[start : start + n]
    remaining = owed[row]
    while remaining > 0:
        if remaining > 1 and remaining % 64 == 0 and _all_zero(vw, n):
            remaining = 1
        for o in range(n):
            v = momentum * vw[o]
            vw[o] = v
            w[o] -= lr * v
        remaining -= 1
    owed[row] = 0


@njit(cache=True, nogil=True)
def _all_zero(values: np.ndarray, n: int) -> bool:
    for o in range(n):  # noqa: SIM110 (numba compiles no generator inside all())
        if values[o] != 0.0:
            return False
    return True


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
def forward(
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
def argmax(values: np.ndarray) -> int:
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
        out = forward(params, velocity, owed, sizes, np.float32(lr), np.float32(momentum), obs[r], acts, active)
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
    out = forward(params, velocity, owed, sizes, np.float32(lr), np.float32(momentum), obs, acts, active)
    return argmax(acts[out : out + sizes[sizes.shape[0] - 1]])


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
    step_on_outputs(params, velocity, owed, sizes, acts, out, lr, momentum, delta, below, products)


@njit(cache=True, nogil=True)
def step_on_outputs(
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
def scratch(sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Work buffers of one fit: acts (every layer's values), delta, below, products, active."""
    width = sizes.max()
    return (np.empty(sizes.sum(), dtype=np.float32), np.empty(width, dtype=np.float32),
            np.empty(width, dtype=np.float32), np.empty(width, dtype=np.float32), np.empty(width, dtype=np.int64))


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
    acts, delta, below, products, active = scratch(sizes)
    n_act = sizes[sizes.shape[0] - 1]
    lr32 = np.float32(lr)
    m32 = np.float32(momentum)
    total = 0.0
    largest = 0.0
    for r in range(obs.shape[0]):
        target = reward[r]
        if not done[r]:
            out = forward(params, velocity, owed, sizes, lr32, m32, next_obs[r], acts, active)
            q_next = acts[out : out + n_act]
            target = reward[r] + gamma * np.float64(q_next[argmax(q_next)])
        out = forward(params, velocity, owed, sizes, lr32, m32, obs[r], acts, active)
        error = acts[out + action[r]] - np.float32(target)
        total += np.float64(error) * np.float64(error) / n_act
        for a in range(n_act):
            q = abs(np.float64(acts[out + a]))
            if q > largest or q != q:
                largest = q
        _step(params, velocity, owed, sizes, acts, out, action[r], error, lr32, m32, delta, below, products)
    return total / obs.shape[0], largest
