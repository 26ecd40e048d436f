"""The fused kernel against the torch path of the same learner, over random architectures.

The kernel has two code paths per layer (a running sum per output for layers narrower than
``kernel._NARROW``, vector loops for wider ones); a narrow hidden layer once skipped its ReLU, so
``dqn.hidden: [8, 8, 8, 8, 8]`` trained another network than ``QNetwork``. Here 200 architectures drawn
with a fixed seed (1 to 4 hidden layers, widths 1 to 300, each under 16 with even odds), plus the default
[128, 256, 256] and a few edge cases, must give torch's Q-values and greedy actions, and the same
minibatch update (4 sequential fits, owed decays included), from the same weights and the same samples.

Tolerances (float32, relative precision 6e-8). Both paths form the same products but sum them in
different orders, so a value may differ by a few ulp of the terms summed -- not of the result, which
may cancel to near zero -- and a sum of n terms adds ~sqrt(n) such roundings. So each bound is relative
to the scale of the values, not to each value:

* Q-values: within 1e-4 of the batch's largest |Q| (+1e-6). Measured worst: 1e-6 of it (|Q| up to ~10
  for unit-scale observations), so a 100x margin; a missing ReLU changes Q by O(1) of it.
* Greedy action: the same wherever the two Q-values are further apart than twice that bound.
* The update, compared on the momentum buffer, which after one update from zero holds the sum of the
  fits' gradients (the weights move by lr = 1e-5 times that, too little to show a wrong gradient): each
  layer's entries within 1e-4 of that layer's largest entry, plus rtol 1e-4. Measured worst: 1.3% of that
  bound. A missing ReLU derivative changes whole rows by O(1) of it. The fits' mean loss and largest |Q|
  within rtol 1e-5 (as tests/test_qnet.py, whose helpers build the learners and samples here).

With the narrow path's ReLU missing, every one of the architectures with a narrow hidden layer fails;
with only the backward's ReLU derivative missing there, all but those whose narrow units were never
inactive fail. The whole file runs in a few seconds on one core (numba compiles once).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_qnet import _batch, _learner

from aqil import kernel
from aqil.qnet import DQNLearner

DEFAULT = (128, 256, 256)
N_RANDOM = 200
Q_RTOL, Q_ATOL = 1e-4, 1e-6  # of the batch's largest |Q|; see the module docstring
V_RTOL = 1e-4  # of each entry, and of its layer's largest entry


def _architectures(n: int, seed: int = 20240601) -> list[tuple[int, ...]]:
    """``n`` hidden-layer lists drawn with a fixed seed: 1 to 4 layers, each width narrow (1 to 15) or
    wide (16 to 300) with equal odds, so both kernel paths, and every mix of them, are covered."""
    rng = np.random.default_rng(seed)
    drawn = []
    for _ in range(n):
        depth = int(rng.integers(1, 5))
        narrow = rng.random(depth) < 0.5
        widths = np.where(narrow, rng.integers(1, kernel._NARROW, depth), rng.integers(kernel._NARROW, 301, depth))
        drawn.append(tuple(int(w) for w in widths))
    return drawn


# the default, the bug report's cases, the narrow/wide boundary, then the random draws
ARCHITECTURES = [DEFAULT, (1,), (8, 8, 8, 8, 8), (kernel._NARROW - 1,), (kernel._NARROW,), (300, 1, 300),
                 *_architectures(N_RANDOM)]


def _pair(hidden: tuple[int, ...], seed: int) -> tuple[DQNLearner, DQNLearner]:
    """The fused and the torch learner of one architecture, with the same (seeded) weights."""
    fused = _learner(backend="fused", seed=seed, hidden=list(hidden))
    reference = _learner(backend="torch", seed=seed, hidden=list(hidden))
    assert torch.equal(fused.params, reference.params)
    return fused, reference


def _assert_same_policy(fused: DQNLearner, reference: DQNLearner, obs: np.ndarray) -> None:
    """Q-values within the module's tolerance; the same greedy action wherever the two Q-values are
    further apart than twice that (a closer pair may be ordered either way by float32 rounding)."""
    q_fused, q_torch = fused.q_values(obs), reference.q_values(obs)
    tolerance = Q_RTOL * float(np.abs(q_torch).max()) + Q_ATOL
    np.testing.assert_allclose(q_fused, q_torch, rtol=0, atol=tolerance)
    decided = np.abs(q_torch[:, 0] - q_torch[:, 1]) > 2 * tolerance
    actions = np.array([fused.greedy_action(o) for o in obs])
    expected = np.array([reference.greedy_action(o) for o in obs])
    np.testing.assert_array_equal(actions[decided], expected[decided])


@pytest.mark.parametrize(("seed", "hidden"), [pytest.param(seed, hidden, id=f"{seed}:" + "-".join(map(str, hidden)))
                                             for seed, hidden in enumerate(ARCHITECTURES)])
def test_fused_kernel_matches_torch_for_any_architecture(seed: int, hidden: tuple[int, ...]) -> None:
    """Forward, greedy action and one update agree with the torch path: whatever the widths, both train
    the same network (ReLU on every hidden layer, linear output)."""
    fused, reference = _pair(hidden, seed)
    obs = _batch(n=16, seed=seed)[0] * np.float32(10.0)  # CartPole's scale: most units of a layer vary
    _assert_same_policy(fused, reference, obs)

    batch = _batch(n=4, seed=seed + 1)
    (loss_fused, largest_fused), (loss_torch, largest_torch) = fused.update(*batch), reference.update(*batch)
    assert loss_fused == pytest.approx(loss_torch, rel=1e-5, abs=1e-9)
    assert largest_fused == pytest.approx(largest_torch, rel=1e-5, abs=1e-9)
    fused.sync()
    for v_fused, v_torch in zip(fused.weight_t_velocity + fused.bias_velocity,
                                reference.weight_t_velocity + reference.bias_velocity, strict=True):
        scale = float(v_torch.abs().max())
        torch.testing.assert_close(v_fused, v_torch, rtol=V_RTOL, atol=V_RTOL * scale + 1e-12)
    _assert_same_policy(fused, reference, obs)
