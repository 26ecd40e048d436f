"""The fused kernel's fits for the baselines beside AQIL: behavioural cloning's cross-entropy and
DQfD's TD + n-step + large-margin loss, each against autograd + torch.optim.SGD; DQfD's n-step returns.

Tolerances as in tests/test_qnet.py: one fit's step agrees with torch to float32 rounding (the two
sum the same products in different orders), so 1e-6 relative on the weights after one step.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_qnet import _batch, _learner

from aqil import kernel_losses
from aqil.dqfd import DQfDMemory
from aqil.qnet import QNetwork


def _reference_with_momentum(learner) -> tuple[QNetwork, torch.optim.SGD]:
    """A torch copy of the learner's network and its SGD momentum buffers."""
    learner.sync()
    reference = QNetwork([128, 256, 256])
    reference.load_state_dict({k: v.clone() for k, v in learner.net.state_dict().items()})
    opt = torch.optim.SGD(reference.parameters(), lr=1e-5, momentum=0.95)
    for p in reference.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    offset = 0
    for p in reference.parameters():
        n = p.numel()
        v = learner.velocity[offset : offset + n]
        if p.dim() == 2:
            v = v.view(p.shape[1], p.shape[0]).t()
        opt.state[p]["momentum_buffer"].copy_(v.reshape(p.shape))
        offset += n
    return reference, opt


def _assert_same_weights(learner, reference) -> None:
    learner.sync()
    for mine, ref in zip(learner.net.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(mine, ref, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("label", [0, 1])
def test_bc_fit_equals_autograd_cross_entropy_step(label):
    learner = _learner()
    learner.update(*_batch(seed=5))  # non-zero momentum
    reference, opt = _reference_with_momentum(learner)
    obs = (np.random.default_rng(3).standard_normal((1, 4)) * 0.5).astype(np.float32)
    loss, _ = learner.fit_fused(kernel_losses.fit_classifier, "BC", obs, np.array([label]))
    opt.zero_grad()
    expected = F.cross_entropy(reference(torch.from_numpy(obs)), torch.tensor([label]))
    expected.backward()
    opt.step()
    assert loss == pytest.approx(expected.item(), rel=1e-6)
    _assert_same_weights(learner, reference)


def _dqfd_inputs(n: int, expert: bool, seed: int = 6):
    obs, action, reward, next_obs, done = _batch(n=n, seed=seed, done_every=3)
    rng = np.random.default_rng(seed + 1)
    n_obs = (rng.standard_normal((n, 4)) * 0.1).astype(np.float32)
    return dict(obs=obs, action=action, reward=reward, next_obs=next_obs, done=done,
                n_return=rng.random(n) * 5, n_obs=n_obs, n_discount=np.full(n, 0.95**10),
                n_done=np.arange(n) % 4 == 1, expert=np.full(n, expert))


def _dqfd(learner, inputs, margin=0.8, lambda_n=1.0, lambda_e=1.0):
    return kernel_losses.fit_dqfd(*learner._kernel_state(), 0.95, *inputs.values(), margin, lambda_n, lambda_e)


def test_dqfd_fit_equals_autograd_step_on_its_loss():
    learner = _learner()
    learner.update(*_batch(seed=5))
    reference, opt = _reference_with_momentum(learner)
    inputs = {k: v[:1] for k, v in _dqfd_inputs(4, expert=True).items()}
    loss, _ = _dqfd(learner, inputs, lambda_n=0.7, lambda_e=0.5)
    t = {k: torch.from_numpy(np.asarray(v)) for k, v in inputs.items()}
    with torch.no_grad():
        y1 = torch.where(t["done"], t["reward"], t["reward"] + 0.95 * reference(t["next_obs"]).max(1).values.double())
        yn = torch.where(t["n_done"], t["n_return"],
                         t["n_return"] + t["n_discount"] * reference(t["n_obs"]).max(1).values.double())
    q = reference(t["obs"])[0]
    a = int(t["action"][0])
    margins = torch.full((2,), 0.8)
    margins[a] = 0.0
    j = (0.5 * (q[a] - y1.float()[0]) ** 2 + 0.7 * 0.5 * (q[a] - yn.float()[0]) ** 2
         + 0.5 * ((q + margins).max() - q[a]))
    opt.zero_grad()
    j.backward()
    opt.step()
    assert loss == pytest.approx(j.item(), rel=1e-5)
    _assert_same_weights(learner, reference)


def test_dqfd_without_n_step_and_margin_terms_is_the_reference_fit():
    """lambda_n = lambda_e = 0 on agent samples: exactly the bytes of the paper's sequential fits."""
    dqfd, plain = _learner(), _learner()
    inputs = _dqfd_inputs(20, expert=False)
    _dqfd(dqfd, inputs, lambda_n=0.0, lambda_e=0.0)
    plain.update(inputs["obs"], inputs["action"], inputs["reward"], inputs["next_obs"], inputs["done"])
    dqfd.sync()
    plain.sync()
    assert torch.equal(dqfd.params, plain.params) and torch.equal(dqfd.velocity, plain.velocity)


def test_large_margin_is_zero_when_the_expert_leads_by_the_margin():
    q = np.array([1.0, 1.8], dtype=np.float32)
    assert kernel_losses.large_margin(q, 1, 0.75) == (0.0, 1)  # leads by 0.8 > 0.75
    assert kernel_losses.large_margin(np.array([1.0, 1.75], dtype=np.float32), 1, 0.75) == (0.0, 1)  # exactly
    loss, best = kernel_losses.large_margin(q, 1, 0.9)  # leads by less than the margin
    assert best == 0 and loss == pytest.approx(0.1, abs=1e-6)
    loss, best = kernel_losses.large_margin(q, 0, 0.8)  # the expert's action is the worse one
    assert best == 1 and loss == pytest.approx(0.8 + 0.8, abs=1e-6)


def test_n_step_returns_on_a_hand_made_trajectory():
    """Two episodes: 4 steps ending in termination, then 3 steps cut at the cap (not terminated)."""
    memory = DQfDMemory(capacity=10, n=2, gamma=0.5, rng=np.random.default_rng(0))
    obs = [np.full(4, t, dtype=np.float32) for t in range(8)]  # state t+1 follows state t
    steps = [(0, 1.0, False), (1, 2.0, False), (2, 3.0, False), (3, -1.0, True), (4, 0.5, False), (5, 0.5, False),
             (6, 0.5, False)]
    for t, r, done in steps:
        memory.add(obs[t], t % 2, r, obs[t + 1], done)
        if t == 3:
            assert len(memory) == 4  # a terminated episode is stored at once
    assert len(memory) == 6  # the last one waits for its n-step return ...
    memory.end_episode()  # ... until the episode is cut
    assert len(memory) == 7 and memory.n_demo == 7 and memory.expert[:7].all()
    np.testing.assert_allclose(memory.n_return[:7], [1 + 0.5 * 2, 2 + 0.5 * 3, 3 + 0.5 * -1, -1, 0.75, 0.75, 0.5])
    assert memory.n_obs[:7, 0].tolist() == [2, 3, 4, 4, 6, 7, 7]  # the state to bootstrap from
    np.testing.assert_allclose(memory.n_discount[:7], [0.25, 0.25, 0.25, 0.5, 0.25, 0.25, 0.5])
    assert memory.n_done[:7].tolist() == [False, False, True, True, False, False, False]


def test_demonstrations_stay_while_agent_transitions_cycle():
    memory = DQfDMemory(capacity=5, n=1, gamma=0.9, rng=np.random.default_rng(0))
    for _ in range(3):
        memory.add(np.zeros(4), 1, 1.0, np.zeros(4), False)
    memory.stop_demonstrations()
    for t in range(5):
        memory.add(np.full(4, t), 0, 0.0, np.zeros(4), False)
    assert memory.expert.tolist() == [True, True, True, False, False] and memory.n_demo == 3
    assert memory.obs[3:, 0].tolist() == [4, 3]  # the agent's ring after the demonstrations
    assert len(memory) == 5 and memory.sample(5).expert.sum() == 3


def test_portable_exp_and_log_are_within_a_few_ulp_of_libm():
    xs = np.concatenate([np.linspace(-40, 40, 20_001), [0.0, -0.0, 1e-300, -700.0, 700.0]])
    for x in xs.tolist():
        assert abs(kernel_losses.exp64(x) - math.exp(x)) <= 4 * math.ulp(math.exp(x)), x
    for s in np.linspace(1.0, 2.0, 10_001).tolist():
        assert abs(kernel_losses.log_1_to_2(s) - math.log(s)) <= 4 * math.ulp(math.log(s)), s
    assert kernel_losses.exp64(800.0) == math.inf and kernel_losses.exp64(-800.0) == 0.0
    assert math.isnan(kernel_losses.exp64(math.nan))
