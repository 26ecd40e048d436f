"""The Q-network: Keras initialisation, the Bellman target, and both implementations of the update.

Tolerances. float32 has a relative precision of 6e-8. The fused kernel and torch (BLAS) sum the
same products in different orders, so each forward or backward value may differ by a few units in
the last place (ulp); one fit's gradient is then the same to about 1e-6 relative. Over N fits such
differences add up roughly like a random walk, so after 4,000 fits (200 environment steps of 20)
the *change* of the weights should agree to ~1e-6 * sqrt(4000) ~ 6e-5 relative, far below the
1e-3 we allow, and far above what any real bug would give (a wrong momentum decay or target
changes the update by O(1)).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from aqil import kernel
from aqil.config import DQNConfig
from aqil.qnet import DQNLearner, QNetwork, keras_init_
from aqil.train import new_learner

CPU = torch.device("cpu")


def _learner(update: str = "sequential", seed: int = 0, backend: str = "fused", **kw) -> DQNLearner:
    cfg = dataclasses.replace(DQNConfig(), update=update, **kw)
    return new_learner(cfg, seed, CPU, backend)


def _batch(n: int = 20, seed: int = 1, done_every: int = 4):
    rng = np.random.default_rng(seed)
    obs = (rng.standard_normal((n, 4)) * 0.1).astype(np.float32)
    next_obs = (rng.standard_normal((n, 4)) * 0.1).astype(np.float32)
    action = rng.integers(0, 2, n)
    reward = rng.random(n)
    done = np.arange(n) % done_every == 0
    return obs, action, reward, next_obs, done


def test_architecture_is_4_128_256_256_2():
    net = QNetwork([128, 256, 256])
    assert [tuple(layer.weight.shape) for layer in net.layers] == [(128, 4), (256, 128), (256, 256), (2, 256)]


def test_keras_initialisation_statistics():
    net = QNetwork([512, 512, 512])
    keras_init_(net, np.random.default_rng(0))
    for layer in net.layers[:-1]:  # he_normal, truncated at 2 std of the underlying normal
        w = layer.weight.detach().numpy().ravel()
        target = math.sqrt(2.0 / layer.in_features)
        assert abs(w.mean()) < 0.05 * target
        assert w.std() == pytest.approx(target, rel=0.03)
        assert np.abs(w).max() <= 2 * target / 0.87962566103423978 + 1e-6
        assert torch.count_nonzero(layer.bias) == 0
    out = net.layers[-1]  # glorot_uniform
    limit = math.sqrt(6.0 / (out.in_features + out.out_features))
    w = out.weight.detach().numpy()
    assert np.abs(w).max() <= limit
    assert w.std() == pytest.approx(limit / math.sqrt(3), rel=0.1)
    assert torch.count_nonzero(out.bias) == 0


def test_initialisation_is_seeded():
    a, b, c = QNetwork([8, 8]), QNetwork([8, 8]), QNetwork([8, 8])
    keras_init_(a, np.random.default_rng(3))
    keras_init_(b, np.random.default_rng(3))
    keras_init_(c, np.random.default_rng(4))
    assert torch.equal(a.layers[0].weight, b.layers[0].weight)
    assert not torch.equal(a.layers[0].weight, c.layers[0].weight)


def _reference_update(net: QNetwork, cfg: DQNConfig, batch, velocity_steps: int = 1) -> list[float]:
    """The same update written the plain way: autograd, Keras mse, torch.optim.SGD."""
    opt = torch.optim.SGD(net.parameters(), lr=cfg.learning_rate, momentum=cfg.momentum)
    obs, action, reward, next_obs, done = (torch.from_numpy(np.asarray(x)) for x in batch)
    losses = []
    for _ in range(velocity_steps):
        rows = [slice(None)] if cfg.update == "batched" else [slice(i, i + 1) for i in range(len(obs))]
        step_losses = []
        for r in rows:
            with torch.no_grad():  # target as the reference's numpy: float64, then into the float32 label
                q_next = net(next_obs[r]).max(dim=1).values.double()
                y = torch.where(done[r], reward[r], reward[r] + cfg.gamma * q_next).float()
            q = net(obs[r])
            labels = q.detach().clone()
            labels[torch.arange(len(y)), action[r]] = y
            per_sample = ((labels - q) ** 2).mean(dim=1)  # Keras mse: mean over the two outputs
            opt.zero_grad()
            per_sample.sum().backward()  # batched: summed gradient; sequential: one sample
            opt.step()
            step_losses.extend(per_sample.detach().tolist())
        losses.append(float(np.mean(step_losses)))
    return losses


@pytest.mark.parametrize(("update", "backend"), [("batched", "torch"), ("sequential", "torch"),
                                                 ("sequential", "fused")])
def test_update_matches_autograd_and_torch_sgd(update, backend):
    learner = _learner(update, backend=backend)
    reference = QNetwork([128, 256, 256])
    reference.load_state_dict({k: v.clone() for k, v in learner.net.state_dict().items()})
    batch = _batch()
    ours = [learner.update(*batch)[0] for _ in range(3)]
    theirs = _reference_update(reference, dataclasses.replace(DQNConfig(), update=update), batch, velocity_steps=3)
    assert ours == pytest.approx(theirs, rel=1e-4)
    learner.sync()
    for mine, ref in zip(learner.net.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(mine, ref, rtol=1e-5, atol=1e-7)


def test_one_fused_fit_equals_autograd_sgd_step():
    """A single transition: the kernel's step against autograd + torch.optim.SGD, from non-zero momentum."""
    learner = _learner(backend="fused")
    warm = _batch(seed=5)
    learner.update(*warm)  # non-zero momentum buffers
    learner.sync()
    reference = QNetwork([128, 256, 256])
    reference.load_state_dict({k: v.clone() for k, v in learner.net.state_dict().items()})
    opt = torch.optim.SGD(reference.parameters(), lr=1e-5, momentum=0.95)
    for p in reference.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()  # creates the buffers; zero gradients leave the weights unchanged ...
    offset = 0
    for p in reference.parameters():  # ... then copy our momentum into them
        n = p.numel()
        v = learner.velocity[offset : offset + n]
        if p.dim() == 2:
            v = v.view(p.shape[1], p.shape[0]).t()
            # the flat buffer holds W^T (in, out), then the bias
        opt.state[p]["momentum_buffer"].copy_(v.reshape(p.shape))
        offset += n
    one = tuple(x[:1] for x in _batch(seed=6, done_every=2))
    learner.update(*one)
    learner.sync()
    _reference_update_no_new_buffers(reference, opt, one)
    for mine, ref in zip(learner.net.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(mine, ref, rtol=1e-6, atol=1e-9)


def _reference_update_no_new_buffers(net: QNetwork, opt: torch.optim.SGD, batch) -> None:
    obs, action, reward, next_obs, done = (torch.from_numpy(np.asarray(x)) for x in batch)
    with torch.no_grad():
        y = torch.where(done, reward, reward + 0.95 * net(next_obs).max(dim=1).values.double()).float()
    q = net(obs)
    labels = q.detach().clone()
    labels[torch.arange(1), action] = y
    opt.zero_grad()
    ((labels - q) ** 2).mean(dim=1).sum().backward()
    opt.step()


def test_fused_and_torch_agree_over_200_environment_steps():
    """Same start, same sampled minibatches, 4,000 fits: see the module docstring for the tolerance."""
    fused, ref = _learner(backend="fused"), _learner(backend="torch")
    assert torch.equal(fused.params, ref.params)
    start = ref.params.clone()
    data = _batch(n=2000, seed=2, done_every=25)
    rng = np.random.default_rng(0)
    fused_losses, ref_losses = [], []
    for _ in range(200):
        idx = rng.choice(2000, 20, replace=False)
        rows = tuple(x[idx] for x in data)
        fused_losses.append(fused.update(*rows)[0])
        ref_losses.append(ref.update(*rows)[0])
    fused.sync()
    moved = (ref.params - start).norm()
    assert moved > 0
    assert float((fused.params - ref.params).norm() / moved) < 1e-3
    assert float((fused.velocity - ref.velocity).norm() / ref.velocity.norm()) < 1e-3
    np.testing.assert_allclose(fused_losses, ref_losses, rtol=1e-3)


def test_deferred_decays_give_the_eager_bytes():
    """Settling every row after every update (eager) and settling only when read (lazy) agree exactly."""
    lazy, eager = _learner(), _learner()
    data = _batch(n=500, seed=3)
    rng = np.random.default_rng(1)
    for _ in range(60):
        idx = rng.choice(500, 20, replace=False)
        rows = tuple(x[idx] for x in data)
        assert lazy.update(*rows) == eager.update(*rows)
        eager.sync()
        assert lazy.greedy_action(data[0][idx[0]]) == eager.greedy_action(data[0][idx[0]])
    assert np.any(lazy._owed > 0)  # some rows really were deferred
    lazy.sync()
    assert torch.equal(lazy.params, eager.params)
    assert torch.equal(lazy.velocity, eager.velocity)


def _decaying_row(case: str) -> tuple[np.ndarray, np.ndarray, int]:
    rng = np.random.default_rng(7)
    w = rng.standard_normal(40).astype(np.float32) * np.float32(0.05)
    w[:3] = np.float32(-0.0)
    if case == "zero velocity":  # caught at the first check: -0.0 weights turn +0.0 in the one pass left
        return w, np.full(40, -0.0, dtype=np.float32), 128
    v = rng.standard_normal(40).astype(np.float32) * np.float32(1e-3)
    v[0], v[1], v[2] = np.float32(-1e-30), np.float32(1e-30), np.float32(-0.0)
    return w, v, 5_003  # long enough for the velocity to reach zero, denormals or not


@pytest.mark.parametrize("case", ["decaying velocity", "zero velocity"])
@pytest.mark.parametrize("flush_denormals", [False, True])
def test_a_long_owed_decay_gives_the_eager_bytes(case, flush_denormals):
    """A row dead for thousands of fits stops decaying once its velocity is zero: the bytes are
    those of applying every decay, one after another (signed zeros included: -0.0 - lr * -0.0 = +0.0)."""
    w0, v0, owed = _decaying_row(case)
    lr, momentum = np.float32(1e-5), np.float32(0.95)
    before = torch.set_flush_denormal(flush_denormals)
    try:
        w, v = w0.copy(), v0.copy()
        for _ in range(owed):  # the eager loop, in numpy float32 (no fused multiply-add)
            v = momentum * v
            w = w - lr * v
        params, velocity = w0.copy(), v0.copy()
        owed_rows = np.array([owed], dtype=np.int64)
        kernel._settle(params, velocity, owed_rows, 0, 0, 40, lr, momentum)
    finally:
        torch.set_flush_denormal(before)
    assert not np.any(v) and owed_rows[0] == 0  # the velocity reached zero, so the early stop was taken
    np.testing.assert_array_equal(velocity.view(np.uint32), v.view(np.uint32))
    np.testing.assert_array_equal(params.view(np.uint32), w.view(np.uint32))


@pytest.mark.parametrize("owed", [1, 2, 3, 4, 5, 7, 8, 63, 64, 65, 129])
def test_owed_decays_applied_several_per_visit_give_the_eager_bytes(owed):
    """_settle applies four decays per visit of a weight while four or more are owed, each with the eager
    loop's operations; every count, and the points where the all-zero test runs (multiples of 64), give
    the eager bytes."""
    rng = np.random.default_rng(owed)
    w0 = rng.standard_normal(37).astype(np.float32) * np.float32(0.05)  # odd width: vector loop and remainder
    v0 = rng.standard_normal(37).astype(np.float32) * np.float32(1e-3)
    v0[0], w0[1] = np.float32(-0.0), np.float32(-0.0)
    lr, momentum = np.float32(1e-5), np.float32(0.95)
    w, v = w0.copy(), v0.copy()
    for _ in range(owed):
        v = momentum * v
        w = w - lr * v
    params, velocity = w0.copy(), v0.copy()
    owed_rows = np.array([owed], dtype=np.int64)
    kernel._settle(params, velocity, owed_rows, 0, 0, 37, lr, momentum)
    assert owed_rows[0] == 0
    np.testing.assert_array_equal(velocity.view(np.uint32), v.view(np.uint32))
    np.testing.assert_array_equal(params.view(np.uint32), w.view(np.uint32))


def test_same_seed_same_bytes():
    a, b = _learner(), _learner()
    for seed in range(5):
        batch = _batch(seed=seed)
        assert a.update(*batch) == b.update(*batch)
    a.sync()
    b.sync()
    assert torch.equal(a.params, b.params) and torch.equal(a.velocity, b.velocity)


def test_greedy_action_and_q_values_match_torch():
    learner = _learner()
    learner.update(*_batch())
    obs = _batch(n=50, seed=4)[0]
    q_fused = learner.q_values(obs)
    learner.sync()
    with torch.no_grad():
        q_torch = learner.net(torch.from_numpy(obs)).numpy()
    np.testing.assert_allclose(q_fused, q_torch, rtol=1e-5, atol=1e-6)
    decided = np.abs(q_torch[:, 0] - q_torch[:, 1]) > 1e-4
    actions = np.array([learner.greedy_action(o) for o in obs])
    np.testing.assert_array_equal(actions[decided], q_torch.argmax(axis=1)[decided])


def test_kernel_sums_in_a_fixed_order():
    """_sum_folded adds halves then 8 lanes: equal to writing that order out in float32."""
    t = np.random.default_rng(0).standard_normal(256).astype(np.float32)
    by_hand = t.copy()
    for half in (128, 64, 32, 16):
        by_hand = by_hand[:half] + by_hand[half : 2 * half]
    lanes = by_hand.reshape(2, 8).sum(axis=0, dtype=np.float32)  # lane k: t[k] + t[k + 8]
    expected = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]))
    assert kernel._sum_folded(t.copy(), 256) == np.float32(expected)


def test_bellman_target_uses_reward_only_on_terminal_steps():
    learner = _learner(update="batched", backend="torch")
    obs = np.zeros((2, 4), dtype=np.float32)
    next_obs = np.full((2, 4), 0.05, dtype=np.float32)
    action = np.array([0, 0])
    reward = np.array([0.5, 0.5])
    done = np.array([False, True])
    with torch.no_grad():
        q_full = learner.net(torch.from_numpy(obs))
        q = q_full[:, 0]
        q_next = learner.net(torch.from_numpy(next_obs)).max(dim=1).values
    expected_error = torch.stack([q[0] - (0.5 + 0.95 * q_next[0]), q[1] - 0.5])
    loss, largest = learner.update(obs, action, reward, next_obs, done)
    assert loss == pytest.approx(float((expected_error**2).mean() / 2), rel=1e-5)
    assert largest == pytest.approx(float(q_full.abs().max()), rel=1e-6)


def test_net_views_follow_the_flat_parameters():
    learner = _learner()
    before = learner.net.layers[2].weight.detach().clone()
    learner.update(*_batch())
    learner.sync()
    assert not torch.equal(before, learner.net.layers[2].weight)
    x = _batch(n=5)[0]
    with torch.no_grad():
        np.testing.assert_allclose(learner.net(torch.from_numpy(x)).numpy(), learner.q_values(x), rtol=1e-5, atol=1e-6)


def test_save_load_roundtrip_keeps_weights_and_momentum(tmp_path):
    learner = _learner()
    learner.update(*_batch())
    learner.save(tmp_path / "m.pt")
    other = _learner(seed=9)
    other.load(tmp_path / "m.pt")
    assert torch.equal(other.params, learner.params)
    assert torch.equal(other.velocity, learner.velocity)
    fresh = _learner(seed=9)
    fresh.load(tmp_path / "m.pt", keep_optimizer_state=False)
    assert torch.count_nonzero(fresh.velocity) == 0


def test_save_is_byte_stable(tmp_path):
    learner = _learner()
    learner.save(tmp_path / "a.pt")
    learner.save(tmp_path / "b.pt")
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()


@pytest.mark.parametrize("lr", [1e-5, 1e-6])
def test_batched_is_not_a_first_order_copy_of_sequential(lr):
    """From the same weights and (non-zero) momentum, one environment step of each rule differs by
    a large fraction of the step itself, at any learning rate: in ``sequential`` the momentum
    decays 20 times (0.95^20 = 0.36) and the incoming velocity moves the weights about 12 times,
    in ``batched`` once. This pins the README's statement that ``batched`` is an ablation."""
    warm = _learner(backend="torch", learning_rate=lr)
    for seed in range(3):
        warm.update(*_batch(seed=10 + seed))
    state = (warm.params.clone(), warm.velocity.clone())
    steps = {}
    for update in ("sequential", "batched"):
        learner = _learner(update, backend="torch", learning_rate=lr)
        learner.params.copy_(state[0])
        learner.velocity.copy_(state[1])
        learner.update(*_batch(seed=20))
        steps[update] = learner.params - state[0]
    gap = float((steps["sequential"] - steps["batched"]).norm() / steps["sequential"].norm())
    assert gap > 0.5
