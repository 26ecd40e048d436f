"""The Q-network: Keras initialisation statistics, the Bellman target, and the hand-written update."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from aqil.config import DQNConfig
from aqil.qnet import DQNLearner, QNetwork, keras_init_


def _learner(update: str = "batched", seed: int = 0, **kw) -> DQNLearner:
    cfg = dataclasses.replace(DQNConfig(), update=update, **kw)
    net = QNetwork(cfg.hidden)
    keras_init_(net, torch.Generator().manual_seed(seed))
    return DQNLearner(cfg, net, torch.device("cpu"))


def _batch(n: int = 20, seed: int = 1, done_every: int = 4):
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(n, 4, generator=g) * 0.1
    next_obs = torch.randn(n, 4, generator=g) * 0.1
    action = torch.randint(0, 2, (n,), generator=g)
    reward = torch.rand(n, generator=g)
    done = torch.arange(n) % done_every == 0
    return obs, action, reward, next_obs, done


def test_architecture_is_4_128_256_256_2():
    net = QNetwork([128, 256, 256])
    assert [tuple(layer.weight.shape) for layer in net.layers] == [(128, 4), (256, 128), (256, 256), (2, 256)]


def test_keras_initialisation_statistics():
    net = QNetwork([512, 512, 512])
    keras_init_(net, torch.Generator().manual_seed(0))
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
    keras_init_(a, torch.Generator().manual_seed(3))
    keras_init_(b, torch.Generator().manual_seed(3))
    keras_init_(c, torch.Generator().manual_seed(4))
    assert torch.equal(a.layers[0].weight, b.layers[0].weight)
    assert not torch.equal(a.layers[0].weight, c.layers[0].weight)


def _reference_update(net: QNetwork, cfg: DQNConfig, batch, velocity_steps: int = 1) -> list[float]:
    """The same update written the plain way: autograd, Keras mse, torch.optim.SGD."""
    opt = torch.optim.SGD(net.parameters(), lr=cfg.learning_rate, momentum=cfg.momentum)
    obs, action, reward, next_obs, done = batch
    losses = []
    for _ in range(velocity_steps):
        rows = [slice(None)] if cfg.update == "batched" else [slice(i, i + 1) for i in range(len(obs))]
        step_losses = []
        for r in rows:
            with torch.no_grad():
                y = torch.where(done[r], reward[r], reward[r] + cfg.gamma * net(next_obs[r]).max(dim=1).values)
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


@pytest.mark.parametrize("update", ["batched", "sequential"])
def test_update_matches_autograd_and_torch_sgd(update):
    learner = _learner(update)
    reference = QNetwork([128, 256, 256])
    reference.load_state_dict({k: v.clone() for k, v in learner.net.state_dict().items()})
    batch = _batch()
    ours = [learner.update(*batch) for _ in range(3)]
    theirs = _reference_update(reference, learner_cfg(update), batch, velocity_steps=3)
    assert ours == pytest.approx(theirs, rel=1e-4)
    for mine, ref in zip(learner.net.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(mine, ref, rtol=1e-5, atol=1e-7)


def learner_cfg(update: str) -> DQNConfig:
    return dataclasses.replace(DQNConfig(), update=update)


def test_bellman_target_uses_reward_only_on_terminal_steps():
    learner = _learner()
    obs = torch.zeros(2, 4)
    next_obs = torch.full((2, 4), 0.05)
    action = torch.tensor([0, 0])
    reward = torch.tensor([0.5, 0.5])
    done = torch.tensor([False, True])
    with torch.no_grad():
        q = learner.net(obs)[:, 0]
        q_next = learner.net(next_obs).max(dim=1).values
    expected_error = torch.stack([q[0] - (0.5 + 0.95 * q_next[0]), q[1] - 0.5])
    loss = learner.update(obs, action, reward, next_obs, done)
    assert loss == pytest.approx(float((expected_error**2).mean() / 2), rel=1e-5)


def test_net_views_follow_the_flat_parameters():
    learner = _learner()
    before = learner.net.layers[2].weight.detach().clone()
    learner.update(*_batch())
    assert not torch.equal(before, learner.net.layers[2].weight)
    x = torch.randn(5, 4)
    torch.testing.assert_close(learner.net(x), learner.q_values(x))


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
