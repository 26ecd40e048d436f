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

What makes it fast, none of which changes an operation or its order (measured with
benchmarks/bench.py and benchmarks/kernel_compare.py; the README's "Performance" has the figures):

* No views. Hot loops index the flat buffers with unsigned (uint64) offsets: numba then emits no
  negative-index wrap-around, which would keep LLVM from vectorizing, and makes no array view per row
  or per layer. Each view, and each array argument of a call that numba's reference-count pruning
  cannot see through, costs an atomic increment and decrement, and an atomic operation waits for
  every pending store of the row updates before it. So the helpers called per row or per layer are
  inlined (``inline="always"``), which leaves the per-fit path without a reference count.
* No unpredictable branches per unit. Whether a ReLU unit is active is a coin flip to the CPU; the
  active units are listed without a branch (``_active_units``), and so are those of them whose rows
  owe decays; the loops run over those lists.
* Owed decays: four per visit of a weight while a row owes four or more, so it is read and written
  once per four.

Subnormal floats are slow on x86 and appear once the momentum of dead units decays; the training
process flushes them to zero as TensorFlow did (``torch.set_flush_denormal(True)`` sets the
CPU's FTZ/DAZ flags, which this kernel runs under too).
"""

from __future__ import annotations

import numpy as np
from numba import njit

_NARROW = 16  # layers with fewer outputs skip the vector loops, whose set-up costs more than they save

# Offsets are unsigned (see "No views" above). numba types uint64 + int64 as float64, so every offset
# below is built from uint64 values only.
_U = np.uint64


@njit(cache=True, nogil=True, inline="always")
def _settle(
    params: np.ndarray, velocity: np.ndarray, owed: np.ndarray, row: int, start: int, n: int,
    lr: np.float32, momentum: np.float32,
) -> None:
    """Apply the decays that weight row ``row`` (params[start : start + n]) still owes.

    Once the row's velocity is all zeros, one more decay is the last that can change a byte:
    v stays the same zero, and w - lr*v changes w only when w is -0.0 and v is -0.0 (to +0.0),
    after which nothing changes. So a row dead for a million fits costs a few thousand decays,
    with exactly the eager loop's bytes. While four or more are owed, four are applied per visit of
    each weight, each with exactly the eager loop's operations: the same bytes, less memory traffic.
    """
    s = _U(start)
    width = _U(n)
    remaining = owed[row]
    while remaining > 0:
        if remaining > 1 and remaining % 64 == 0 and _all_zero(velocity, s, width):
            remaining = 1
        count = remaining - 64 * ((remaining - 1) // 64)  # decays until the test above is due again
        remaining -= count
        while count > 0:
            times = 4 if count >= 4 else 1
            _decay(params, velocity, s, width, times, lr, momentum)
            count -= times
    owed[row] = 0


@njit(cache=True, nogil=True, inline="always")
def _decay(
    params: np.ndarray, velocity: np.ndarray, s: np.uint64, width: np.uint64, times: int,
    lr: np.float32, momentum: np.float32,
) -> None:
    """``times`` (1 or 4) decays v <- m*v, w <- w - lr*v of params[s : s + width], one after another."""
    if times == 1:
        for o in range(width):
            k = s + o
            v = momentum * velocity[k]
            velocity[k] = v
            params[k] -= lr * v
        return
    for o in range(width):
        k = s + o
        v = momentum * velocity[k]
        w = params[k] - lr * v
        v = momentum * v
        w = w - lr * v
        v = momentum * v
        w = w - lr * v
        v = momentum * v
        velocity[k] = v
        params[k] = w - lr * v


@njit(cache=True, nogil=True, inline="always")
def _all_zero(values: np.ndarray, s: np.uint64, width: np.uint64) -> bool:
    for o in range(width):  # noqa: SIM110 (numba compiles no generator inside all())
        if values[s + o] != 0.0:
            return False
    return True


@njit(cache=True, nogil=True)
def settle_all(
    params: np.ndarray, velocity: np.ndarray, owed: np.ndarray, sizes: np.ndarray, lr: float, momentum: float,
) -> None:
    """Apply every owed decay, so that params and velocity hold the eager loop's values."""
    p = _U(0)
    row = _U(0)
    for layer in range(sizes.shape[0] - 1):
        n_in = _U(sizes[layer])
        n_out = _U(sizes[layer + 1])
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
    ``acts`` and ``active`` are work buffers as ``scratch`` makes them.
    """
    for i in range(sizes[0]):
        acts[i] = x[i]
    return _forward(params, velocity, owed, sizes, lr, momentum, acts, active)


@njit(cache=True, nogil=True)
def forward_row(
    params: np.ndarray, velocity: np.ndarray, owed: np.ndarray, sizes: np.ndarray,
    lr: np.float32, momentum: np.float32, inputs: np.ndarray, r: int, acts: np.ndarray, active: np.ndarray,
) -> int:
    """``forward`` of the row inputs[r], without making a view of it (see "No views" above)."""
    for i in range(sizes[0]):
        acts[i] = inputs[r, i]
    return _forward(params, velocity, owed, sizes, lr, momentum, acts, active)


@njit(cache=True, nogil=True, inline="always")
def _forward(
    params: np.ndarray, velocity: np.ndarray, owed: np.ndarray, sizes: np.ndarray,
    lr: np.float32, momentum: np.float32, acts: np.ndarray, active: np.ndarray,
) -> int:
    """``forward`` with the input already in acts[:sizes[0]]."""
    n_layers = sizes.shape[0] - 1
    p = _U(0)  # offset of the layer's W in params
    a_in = _U(0)  # offset of the layer's input in acts; also its first row in owed
    for layer in range(n_layers):
        n_in = _U(sizes[layer])
        n_out = _U(sizes[layer + 1])
        a_out = a_in + n_in
        b = p + n_in * n_out
        for o in range(n_out):
            acts[a_out + o] = params[b + o]
        n_active = _active_units(acts, a_in, n_in, active)
        # the active units whose rows owe decays, listed without a branch after the active ones
        n_owing = 0
        for j in range(n_active):
            i = active[j]
            active[n_in + _U(n_owing)] = i
            n_owing += np.int64(owed[a_in + _U(i)] > 0)
        for j in range(n_owing):
            i = _U(active[n_in + _U(j)])
            _settle(params, velocity, owed, a_in + i, p + i * n_out, n_out, lr, momentum)
        if n_out < _U(_NARROW):  # e.g. the 2 Q-values: one running sum per output, same order
            for o in range(n_out):
                total = acts[a_out + o]
                for j in range(n_active):
                    i = _U(active[j])
                    total += acts[a_in + i] * params[p + i * n_out + o]
                acts[a_out + o] = total
        else:
            n4 = n_active - n_active % 4
            for j in range(0, n4, 4):
                i0, i1, i2, i3 = _U(active[j]), _U(active[j + 1]), _U(active[j + 2]), _U(active[j + 3])
                h0, h1, h2, h3 = acts[a_in + i0], acts[a_in + i1], acts[a_in + i2], acts[a_in + i3]
                r0, r1, r2, r3 = p + i0 * n_out, p + i1 * n_out, p + i2 * n_out, p + i3 * n_out
                for o in range(n_out):
                    k = a_out + o
                    acts[k] = (((acts[k] + h0 * params[r0 + o]) + h1 * params[r1 + o])
                               + h2 * params[r2 + o]) + h3 * params[r3 + o]
            for j in range(n4, n_active):
                i0 = _U(active[j])
                h0 = acts[a_in + i0]
                r0 = p + i0 * n_out
                for o in range(n_out):
                    acts[a_out + o] += h0 * params[r0 + o]
        # every hidden layer, narrow or wide, gets its ReLU (the backward's masks read it); the output stays linear
        if layer < n_layers - 1:
            for o in range(n_out):
                if acts[a_out + o] < 0.0:
                    acts[a_out + o] = 0.0
        p = b + n_out
        a_in = a_out
    return np.int64(a_in)


@njit(cache=True, nogil=True, inline="always")
def _active_units(acts: np.ndarray, a_in: np.uint64, n_in: np.uint64, active: np.ndarray) -> int:
    """Write the indices i of the units with acts[a_in + i] != 0 (NaN included) to ``active``; return how many.

    Without a branch: whether a ReLU unit is active is a coin flip the CPU cannot predict.
    """
    n_active = 0
    for i in range(n_in):
        active[n_active] = np.int64(i)
        n_active += np.int64(acts[a_in + i] != 0.0)
    return n_active


@njit(cache=True, nogil=True)
def argmax(values: np.ndarray) -> int:
    """First index of the largest value, as ``np.argmax`` (a NaN counts as the largest)."""
    return _argmax_at(values, 0, values.shape[0])


@njit(cache=True, nogil=True)
def _argmax_at(values: np.ndarray, start: int, n: int) -> int:
    """``argmax(values[start : start + n])`` without making the view."""
    best = 0
    for k in range(n):
        if values[start + k] != values[start + k]:
            return k
        if values[start + k] > values[start + best]:
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
    active = np.empty(2 * sizes.max(), dtype=np.int64)
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
    active = np.empty(2 * sizes.max(), dtype=np.int64)
    out = forward(params, velocity, owed, sizes, np.float32(lr), np.float32(momentum), obs, acts, active)
    return _argmax_at(acts, out, sizes[sizes.shape[0] - 1])


@njit(cache=True, nogil=True, inline="always")
def _sum8(t: np.ndarray, n: np.uint64) -> np.float32:
    """sum of t[:n] in 8 partial sums (lane k: t[k], t[k+8], ...) combined pairwise."""
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = np.float32(0.0)
    n8 = n - n % _U(8)
    for j in range(n8 // _U(8)):
        o = _U(8) * j
        s0 += t[o]
        s1 += t[o + _U(1)]
        s2 += t[o + _U(2)]
        s3 += t[o + _U(3)]
        s4 += t[o + _U(4)]
        s5 += t[o + _U(5)]
        s6 += t[o + _U(6)]
        s7 += t[o + _U(7)]
    rest = np.float32(0.0)
    for o in range(n8, n):
        rest += t[o]
    return (((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))) + rest


@njit(cache=True, nogil=True, inline="always")
def _sum_folded(t: np.ndarray, n: int) -> np.float32:
    """sum of t[:n], overwriting t: while the length is even and at least 32, the second half is
    added onto the first (t[k] += t[k + n/2], a long vector loop); then ``_sum8``. The order
    depends on n alone."""
    m = _U(n)
    while m >= _U(32) and m % _U(2) == _U(0):
        half = m // _U(2)
        for k in range(half):
            t[k] += t[k + half]
        m = half
    return _sum8(t, m)


@njit(inline="always")
def _step_row(
    params: np.ndarray, velocity: np.ndarray, products: np.ndarray, delta: np.ndarray, row: np.uint64,
    n: np.uint64, h: np.float32, lr: np.float32, momentum: np.float32,
) -> None:
    """One weight row's momentum step; ``products`` keeps weight x error (at the old weights) for the layer below."""
    for o in range(n):
        products[o] = params[row + o] * delta[o]
        v = momentum * velocity[row + o] + h * delta[o]
        velocity[row + o] = v
        params[row + o] -= lr * v


@njit(inline="always")
def _step_row_pair(
    params: np.ndarray, velocity: np.ndarray, products: np.ndarray, delta: np.ndarray, row: np.uint64,
    half: np.uint64, h: np.float32, lr: np.float32, momentum: np.float32,
) -> None:
    """``_step_row`` over both halves of an even row at once: products[k] = products(k) + products(k + half),
    the first fold of ``_sum_folded``, so the error below sums to the same bytes."""
    row2 = row + half
    for o in range(half):
        products[o] = params[row + o] * delta[o] + params[row2 + o] * delta[half + o]
        v = momentum * velocity[row + o] + h * delta[o]
        velocity[row + o] = v
        params[row + o] -= lr * v
        v2 = momentum * velocity[row2 + o] + h * delta[half + o]
        velocity[row2 + o] = v2
        params[row2 + o] -= lr * v2


@njit(cache=True, nogil=True)
def step_on_outputs(
    params: np.ndarray, velocity: np.ndarray, owed: np.ndarray, sizes: np.ndarray, acts: np.ndarray,
    out: int, lr: np.float32, momentum: np.float32, delta: np.ndarray, below: np.ndarray, products: np.ndarray,
    active: np.ndarray,
) -> None:
    """One SGD-with-momentum step for d(loss)/d(outputs) = delta[:n_outputs] (float32, any values).

    ``acts`` holds the forward pass of this sample (which settled every row with an active input).
    Layers are visited from the output down; a row's share of the error for the layer below is
    taken from its weights before they change, so the step is the gradient at the old weights.
    """
    n_layers = sizes.shape[0] - 1
    p_end = _U(params.shape[0])
    a_in = _U(out)
    for layer in range(n_layers - 1, -1, -1):
        n_in = _U(sizes[layer])
        n_out = _U(sizes[layer + 1])
        a_in -= n_in
        b = p_end - n_out
        p = b - n_in * n_out
        half = n_out // _U(2)
        paired = n_out % _U(2) == _U(0) and n_out >= _U(32)
        # inactive units: no gradient (their rows owe a decay), and for hidden layers no error below
        for i in range(n_in):
            owed[a_in + i] += np.int64(acts[a_in + i] == 0.0)
            below[i] = 0.0
        n_active = _active_units(acts, a_in, n_in, active)
        for j in range(n_active):
            i = _U(active[j])
            row = p + i * n_out
            if paired:  # both halves in one pass; the products are already the first fold of _sum_folded
                _step_row_pair(params, velocity, products, delta, row, half, acts[a_in + i], lr, momentum)
                if layer > 0:  # h > 0 here, so the ReLU derivative is 1
                    below[i] = _sum_folded(products, half)
            else:
                _step_row(params, velocity, products, delta, row, n_out, acts[a_in + i], lr, momentum)
                if layer > 0:
                    below[i] = _sum_folded(products, n_out)
        for o in range(n_out):
            v = momentum * velocity[b + o] + delta[o]
            velocity[b + o] = v
            params[b + o] -= lr * v
        if layer > 0:
            for i in range(n_in):
                delta[i] = below[i]
        p_end = p


@njit(cache=True, nogil=True)
def scratch(sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Work buffers of one fit: acts (every layer's values), delta, below, products, and active (the
    active units of a layer, then those of them whose rows owe decays)."""
    width = sizes.max()
    return (np.empty(sizes.sum(), dtype=np.float32), np.empty(width, dtype=np.float32),
            np.empty(width, dtype=np.float32), np.empty(width, dtype=np.float32), np.empty(2 * width, dtype=np.int64))


@njit(inline="always")
def fit_setup(sizes: np.ndarray, lr: float, momentum: float) -> tuple:
    """What every fused fit starts with: its work buffers, the number of outputs, and the learning rate and
    momentum in float32 (the precision of the weights they step)."""
    acts, delta, below, products, active = scratch(sizes)
    return acts, delta, below, products, active, sizes[sizes.shape[0] - 1], np.float32(lr), np.float32(momentum)


@njit(inline="always")
def max_q(
    params: np.ndarray, velocity: np.ndarray, owed: np.ndarray, sizes: np.ndarray, lr: np.float32,
    momentum: np.float32, states: np.ndarray, r: int, acts: np.ndarray, active: np.ndarray,
) -> np.float64:
    """The largest Q-value of ``states[r]`` from the network as it is now, in float64 (a bootstrap target
    is formed in float64, as the reference's numpy did)."""
    out = forward_row(params, velocity, owed, sizes, lr, momentum, states, r, acts, active)
    return np.float64(acts[out + _argmax_at(acts, out, sizes[sizes.shape[0] - 1])])


@njit(inline="always")
def td_target(
    params: np.ndarray, velocity: np.ndarray, owed: np.ndarray, sizes: np.ndarray, lr: np.float32,
    momentum: np.float32, gamma: float, reward: np.ndarray, next_obs: np.ndarray, done: np.ndarray, r: int,
    acts: np.ndarray, active: np.ndarray,
) -> np.float64:
    """The 1-step target r + gamma max Q(s'), or r on a terminal step."""
    if done[r]:
        return reward[r]
    return reward[r] + gamma * max_q(params, velocity, owed, sizes, lr, momentum, next_obs, r, acts, active)


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
    acts, delta, below, products, active, n_act, lr32, m32 = fit_setup(sizes, lr, momentum)
    total = 0.0
    largest = 0.0
    for r in range(obs.shape[0]):
        target = td_target(params, velocity, owed, sizes, lr32, m32, gamma, reward, next_obs, done, r, acts, active)
        out = forward_row(params, velocity, owed, sizes, lr32, m32, obs, r, acts, active)
        error = acts[out + action[r]] - np.float32(target)
        total += np.float64(error) * np.float64(error) / n_act
        for a in range(n_act):
            q = abs(np.float64(acts[out + a]))
            if q > largest or q != q:
                largest = q
        for a in range(n_act):  # d(loss)/dQ: the error at the action taken, 0 at the other
            delta[a] = 0.0
        delta[action[r]] = error
        step_on_outputs(params, velocity, owed, sizes, acts, out, lr32, m32, delta, below, products, active)
    return total / obs.shape[0], largest
