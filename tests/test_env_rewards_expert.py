"""Environment limits, the two Gaussian rewards and the PID expert."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from aqil.config import EnvConfig, ExpertConfig, RewardsConfig
from aqil.env import make_env, reset_options
from aqil.expert import PIDExpert
from aqil.rewards import Rewards


def _run_until_done(env, state, action=1, limit=10_000):
    env.reset(seed=0)
    env.state = np.array(state, dtype=np.float64)
    for step in range(1, limit):
        obs, _, terminated, truncated, _ = env.step(action)
        assert not truncated  # no TimeLimit wrapper
        if terminated:
            return step, obs
    raise AssertionError("never terminated")


def test_pole_terminates_at_50_degrees_not_12():
    env = make_env(EnvConfig())
    assert env.theta_threshold_radians == pytest.approx(math.radians(50))
    # 20 degrees is far past gymnasium's 12-degree limit but still alive here.
    env.reset(seed=0)
    env.state = np.array([0.0, 0.0, math.radians(20), 0.0])
    _, _, terminated, _, _ = env.step(0)
    assert not terminated
    _, obs = _run_until_done(env, [0.0, 0.0, math.radians(20), 0.0], action=1)
    assert abs(obs[2]) > math.radians(50)


def test_observation_space_covers_the_new_limit():
    env = make_env(EnvConfig())
    assert env.observation_space.high[2] == pytest.approx(2 * math.radians(50))
    assert env.observation_space.high[0] == pytest.approx(4.8)


def test_cart_limit_and_start_states():
    cfg = EnvConfig(x_limit=2.4, init_range=0.05)
    env = make_env(cfg)
    starts = np.array([env.reset(seed=s, options=reset_options(cfg))[0] for s in range(200)])
    assert np.abs(starts).max() <= 0.05
    _, obs = _run_until_done(env, [2.39, 1.0, 0.0, 0.0], action=1)
    assert obs[0] > 2.4


def test_a_reset_without_options_draws_from_the_configs_start_range():
    """The loops reset with no options: the start states must be those ``reset_options`` asks for."""
    cfg = EnvConfig(init_range=0.01)
    plain, explicit = make_env(cfg), make_env(cfg)
    for s in range(20):
        start = plain.reset(seed=s)[0]
        assert np.abs(start).max() <= 0.01
        np.testing.assert_array_equal(start, explicit.reset(seed=s, options=reset_options(cfg))[0])


def test_rl_reward_is_gaussian_in_theta_and_minus_one_on_termination():
    r = Rewards(RewardsConfig())
    assert r.rl(0.0, False) == pytest.approx(1.0)
    assert r.rl(math.radians(10), False) == pytest.approx(math.exp(-0.5))
    assert r.rl(-math.radians(20), False) == pytest.approx(math.exp(-2.0))
    assert r.rl(0.0, True) == -1.0


def test_il_reward_reference_sigma2_is_half_a_degree_in_radians():
    r = Rewards(RewardsConfig())
    assert r.sigma2 == pytest.approx(math.radians(0.5))
    assert r.il(0.0, 1, 1, False) == pytest.approx(1.0)
    assert r.il(0.0, 1, 0, False) == pytest.approx(0.2)  # exp(-0.5 * (1/0.0087)^2) underflows to 0
    assert r.il(math.radians(10), 0, 0, False) == pytest.approx(0.2 * math.exp(-0.5) + 0.8)
    assert r.il(0.0, 1, 1, True) == -1.0


def test_il_reward_paper_sigma2_is_raw_half():
    cfg = RewardsConfig(il=dataclasses.replace(RewardsConfig().il, sigma2_units="raw"))
    r = Rewards(cfg)
    assert r.sigma2 == 0.5
    assert r.il(0.0, 1, 0, False) == pytest.approx(0.2 + 0.8 * math.exp(-2.0))


def test_rewards_are_vectorised():
    r = Rewards(RewardsConfig())
    out = r.rl(np.array([0.0, 0.1]), np.array([False, True]))
    np.testing.assert_allclose(out, [1.0, -1.0])


def test_pid_formula_and_action_sign():
    pid = PIDExpert(ExpertConfig())
    pid.start_episode(0.3)  # carries state by default: the first step still sees theta = 0
    assert pid.act() == 0  # u = 0 -> not < 0 -> push left (0)
    pid.observe(0.1)  # pole leans right: e = -0.1
    e = -0.1
    u = 0.6 * e + 0.00625 * e + 0.8 * (e - 0.0)
    assert u < 0
    assert pid.act() == 1
    assert pid.integral == pytest.approx(-0.1)
    pid.observe(-0.2)  # e = 0.2, integral 0.1, derivative 0.3
    u = 0.6 * 0.2 + 0.00625 * 0.1 + 0.8 * 0.3
    assert u > 0
    assert pid.act() == 0


def test_pid_carries_state_across_episodes_by_default():
    pid = PIDExpert(ExpertConfig())
    pid.observe(0.2)
    pid.act()
    pid.observe(0.4)
    pid.start_episode(0.0)
    assert pid.theta == 0.4 and pid.integral == pytest.approx(-0.2) and pid.prev_error == pytest.approx(-0.2)


def test_pid_reset_per_episode_clears_integral_and_error():
    pid = PIDExpert(ExpertConfig(reset_per_episode=True))
    pid.observe(0.2)
    pid.act()
    pid.start_episode(0.01)
    assert (pid.integral, pid.prev_error, pid.theta) == (0.0, 0.0, 0.01)


def test_pid_expert_balances_far_longer_than_chance():
    cfg = EnvConfig()
    env = make_env(cfg)
    pid = PIDExpert(ExpertConfig())
    obs, _ = env.reset(seed=1, options=reset_options(cfg))
    lengths = []
    for _ in range(5):
        pid.start_episode(obs[2])
        steps, done = 0, False
        while not done and steps < 5000:
            obs, _, done, _, _ = env.step(pid.act())
            pid.observe(obs[2])
            steps += 1
        lengths.append(steps)
        obs, _ = env.reset(options=reset_options(cfg))
    assert np.mean(lengths) > 100  # random play lasts ~20-40 steps


def test_portable_functions_are_correctly_rounded():
    import mpmath

    from aqil import portable

    rng = np.random.default_rng(0)
    with mpmath.workprec(200):
        for x in (rng.standard_normal(300) * 2).tolist():
            assert portable.exp(-0.5 * x * x) == float(mpmath.exp(mpmath.mpf(-0.5 * x * x)))
            c, s = portable.cos_sin(x)
            assert c == float(mpmath.cos(mpmath.mpf(x))) and s == float(mpmath.sin(mpmath.mpf(x)))
    z = rng.standard_normal((3, 4))
    np.testing.assert_array_equal(portable.exp_array(z), [[portable.exp(v) for v in row] for row in z.tolist()])


def test_dynamics_equal_gymnasiums_up_to_the_last_bit_of_cos_and_sin():
    """Same equations as gymnasium's CartPoleEnv; only cos/sin may differ, by at most one ulp."""
    from gymnasium.envs.classic_control.cartpole import CartPoleEnv

    ours = make_env(EnvConfig())
    theirs = CartPoleEnv()
    theirs.theta_threshold_radians = ours.theta_threshold_radians
    actions = np.random.default_rng(1).integers(0, 2, 400)
    ours.reset(seed=3)
    theirs.reset(seed=3)
    for action in actions.tolist():
        _, _, done_a, _, _ = ours.step(action)
        _, _, done_b, _, _ = theirs.step(action)
        np.testing.assert_allclose(ours.state, theirs.state, rtol=1e-12, atol=1e-14)
        assert done_a == done_b
        if done_a:
            ours.reset()
            theirs.reset()
        theirs.state = ours.state.copy()  # compare one step at a time, not accumulated drift


def test_a_steps_reward_is_the_same_bytes_as_the_vectorised_one_on_every_angle():
    """Squares are products, not ``** 2`` (libm's pow differs across CPUs in the last bit for about 1
    angle in 1,000): step-by-step and vectorised rewards agree bit for bit."""
    rewards = Rewards(RewardsConfig())
    theta = np.random.default_rng(3).uniform(-0.9, 0.9, 20_000)
    one_by_one = np.array([rewards.rl(t, False) for t in theta.tolist()], dtype=np.float64)
    assert one_by_one.tobytes() == np.asarray(rewards.rl(theta, np.zeros(len(theta), bool))).tobytes()


def test_rewards_are_the_same_bytes_with_and_without_fma():
    import os
    import subprocess
    import sys

    script = ("import hashlib, numpy as np; from aqil.config import RewardsConfig; from aqil.rewards import Rewards; "
              "r = Rewards(RewardsConfig()); t = np.random.default_rng(4).uniform(-0.9, 0.9, 20_000).tolist(); "
              "v = [r.rl(x, False) for x in t] + [r.il(x, 1, 0, False) for x in t[:2000]]; "
              "print(hashlib.sha256(np.array(v, dtype=np.float64).tobytes()).hexdigest())")
    masked = {"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX512F,-AVX2,-FMA,-AVX", "NPY_ENABLE_CPU_FEATURES": "X86_V2"}
    outputs = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                              env=os.environ | env).stdout for env in ({}, masked)}
    assert len(outputs) == 1
