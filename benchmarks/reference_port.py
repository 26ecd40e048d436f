"""An independent port of the reference's RL loop (github.com/veda-s4dhak/AQIL, src/cartpole.py), in numpy only.

It shares no training code with aqil/: its own environment, network, optimizer, replay memory, exploration and
seeding, written from the reference's description, so that a bug in aqil's training path would show up as a
different divergence rate. What it reproduces, step by step (the reference's Keras 2.2.5 model and loop):

* environment: Sutton's cart-pole with the reference's constants (gravity 9.8, masses 1.0 and 0.1, half
  length 0.5, force +-10 N, tau 0.02, Euler), episodes ending at |theta| > 50 degrees or |x| > 2.4, start
  state uniform in [-0.05, 0.05]^4, float64 state; reward exp(-theta^2 / (2 sigma^2)) with sigma = 10 degrees
  (in radians) from the float64 angle, -1 on the terminating step; no time limit but a 15,000-step safety cap;
* network: 4-128-256-256-2 float32, ReLU, linear output; Keras' he_normal (truncated normal, stddev
  sqrt(2 / fan_in) / 0.8796) for the hidden layers and glorot_uniform for the output (``init="glorot"``:
  glorot_uniform for every layer, Keras' default), zero biases;
* update: once the memory holds 20 transitions, every environment step samples 20 (Python's random.sample)
  and fits them one at a time: label = the prediction with Q(s, a) replaced by r + 0.95 max_a' Q(s', a')
  (computed in float64, stored in float32; r alone on a terminal step), Keras' mse (the mean over the two
  outputs), plain SGD with Keras' momentum rule v <- 0.95 v - lr g, w <- w + v; then epsilon *= 0.995
  (floor 0.01), starting at 0.3;
* exploration: a uniform random action with probability epsilon, else the argmax of Q (the first action
  when Q is NaN).

Subnormal momentum values are flushed to zero once per step (TensorFlow runs with flush-to-zero; numpy does
not, and subnormal arithmetic is slow). The step loss is the mean of its 20 fits' losses (before each fit's
update), as the reference logs it.

    python benchmarks/reference_port.py --seeds 0 40 --updates 10000   # first NaN update of each seed
"""

from __future__ import annotations

import argparse
import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

TRUNCATED_STD = 0.87962566103423978  # std of a standard normal truncated to [-2, 2] (Keras' correction)
FLUSH_BELOW = 1e-30  # momentum values smaller than this are set to zero after every step
PORT_TAG = 0x504F5254  # "PORT": this port's seed streams differ from anything aqil draws


@dataclass(frozen=True)
class PortConfig:
    learning_rate: float = 1e-5
    momentum: float = 0.95
    gamma: float = 0.95
    batch_size: int = 20
    memory_size: int = 1_000_000
    epsilon_start: float = 0.3
    epsilon_decay: float = 0.995
    epsilon_min: float = 0.01
    episodes: int = 500
    max_episode_steps: int = 15_000
    theta_limit_deg: float = 50.0
    x_limit: float = 2.4
    sigma_deg: float = 10.0
    terminal_reward: float = -1.0
    hidden: Sequence[int] = (128, 256, 256)
    init: str = "keras"  # "keras": he_normal hidden layers + glorot_uniform output; "glorot": glorot_uniform


class CartPole:
    """The reference's cart-pole dynamics (src/cartpole_env.py), float64 state."""

    gravity, masscart, masspole, length, force_mag, tau = 9.8, 1.0, 0.1, 0.5, 10.0, 0.02

    def __init__(self, cfg: PortConfig, rng: np.random.Generator) -> None:
        self.total_mass = self.masspole + self.masscart
        self.polemass_length = self.masspole * self.length
        self.theta_limit = cfg.theta_limit_deg * math.pi / 180
        self.x_limit = cfg.x_limit
        self.sigma = math.radians(cfg.sigma_deg)
        self.terminal_reward = cfg.terminal_reward
        self.rng = rng
        self.state = (0.0, 0.0, 0.0, 0.0)

    def reset(self) -> np.ndarray:
        self.state = tuple(float(v) for v in self.rng.uniform(-0.05, 0.05, 4))
        return np.array(self.state, dtype=np.float32)

    def step(self, action: int) -> tuple[np.ndarray, float, bool]:
        x, x_dot, theta, theta_dot = self.state
        force = self.force_mag if action == 1 else -self.force_mag
        cos, sin = math.cos(theta), math.sin(theta)
        temp = (force + self.polemass_length * theta_dot * theta_dot * sin) / self.total_mass
        theta_acc = (self.gravity * sin - cos * temp) / (
            self.length * (4.0 / 3.0 - self.masspole * cos * cos / self.total_mass))
        x_acc = temp - self.polemass_length * theta_acc * cos / self.total_mass
        x, x_dot = x + self.tau * x_dot, x_dot + self.tau * x_acc
        theta, theta_dot = theta + self.tau * theta_dot, theta_dot + self.tau * theta_acc
        self.state = (x, x_dot, theta, theta_dot)
        done = abs(x) > self.x_limit or abs(theta) > self.theta_limit
        reward = self.terminal_reward if done else math.exp(-0.5 * (theta / self.sigma) ** 2)
        return np.array(self.state, dtype=np.float32), reward, done


class Network:
    """A float32 MLP in one flat buffer (weights (in, out) then biases, per layer), with Keras-style SGD."""

    def __init__(self, sizes: Sequence[int], rng: np.random.Generator, init: str) -> None:
        shapes = list(itertools.pairwise(sizes))
        total = sum(i * o + o for i, o in shapes)
        self.params = np.zeros(total, dtype=np.float32)
        self.velocity = np.zeros(total, dtype=np.float32)
        self.grad = np.zeros(total, dtype=np.float32)
        self.w, self.b, self.gw, self.gb = [], [], [], []
        offset = 0
        for n_in, n_out in shapes:
            for store, grads, shape in ((self.w, self.gw, (n_in, n_out)), (self.b, self.gb, (n_out,))):
                size = math.prod(shape)
                store.append(self.params[offset:offset + size].reshape(shape))
                grads.append(self.grad[offset:offset + size].reshape(shape))
                offset += size
        for layer, (n_in, n_out) in enumerate(shapes):
            if init == "keras" and layer < len(shapes) - 1:
                std = math.sqrt(2.0 / n_in) / TRUNCATED_STD
                z = rng.standard_normal((n_in, n_out))
                while (out := np.abs(z) > 2.0).any():
                    z[out] = rng.standard_normal(int(out.sum()))
                self.w[layer][...] = z * std
            elif init in ("keras", "glorot"):
                limit = math.sqrt(6.0 / (n_in + n_out))
                self.w[layer][...] = rng.uniform(-limit, limit, (n_in, n_out))
            else:
                raise ValueError(f"init: {init!r}; expected 'keras' or 'glorot'")

    def forward(self, x: np.ndarray) -> list[np.ndarray]:
        """Every layer's input, then the output (rows of ``x``: float32 states)."""
        acts = [x]
        last = len(self.w) - 1
        for i, (w, b) in enumerate(zip(self.w, self.b, strict=True)):
            z = acts[-1] @ w + b
            acts.append(np.maximum(z, 0.0) if i < last else z)
        return acts

    def q(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x.reshape(1, -1))[-1][0]

    def fit_one(self, state: np.ndarray, action: int, reward: float, next_state: np.ndarray, done: bool,
                gamma: float, lr: np.float32, momentum: np.float32) -> float:
        """One Keras ``fit`` on one transition; returns its loss before the update."""
        acts = self.forward(np.stack((state, next_state)))
        q = acts[-1]
        target = reward if done else reward + gamma * float(np.max(q[1]))
        error = q[0, action] - np.float32(target)
        delta = np.zeros(q.shape[1], dtype=np.float32)
        delta[action] = error  # d/dQ of mean((label - Q)^2) over the two outputs; the other label = its Q
        for i in range(len(self.w) - 1, -1, -1):
            h = acts[i][0]
            np.outer(h, delta, out=self.gw[i])
            self.gb[i][...] = delta
            if i > 0:
                delta = (self.w[i] @ delta) * (h > 0)
        self.grad *= lr  # Keras SGD: v <- m v - lr g; w <- w + v
        self.velocity *= momentum
        self.velocity -= self.grad
        self.params += self.velocity
        return float(error) * float(error) / 2.0

    def flush_subnormal(self) -> None:
        np.putmask(self.velocity, np.abs(self.velocity) < FLUSH_BELOW, 0.0)

    def finite(self) -> bool:
        return bool(np.isfinite(self.params).all())


@dataclass
class PortResult:
    losses: list[float] = field(default_factory=list)  # mean loss of every update (step)
    episode_steps: list[int] = field(default_factory=list)
    first_nan: int | None = None
    weights_finite: bool = True

    @property
    def updates(self) -> int:
        return len(self.losses)


def run_port(cfg: PortConfig, seed: int, max_updates: int | None = None, stop_at_nan: bool = True) -> PortResult:
    """Train one seed; stop after ``max_updates`` updates or (``stop_at_nan``) at the first non-finite loss."""
    init_seq, explore_seq, replay_seq, env_seq = np.random.SeedSequence([seed, PORT_TAG]).spawn(4)
    net = Network([4, *cfg.hidden, 2], np.random.default_rng(init_seq), cfg.init)
    explore = np.random.default_rng(explore_seq)
    sampler = random.Random(int(replay_seq.generate_state(1)[0]))
    env = CartPole(cfg, np.random.default_rng(env_seq))
    memory: list[tuple] = []
    epsilon = cfg.epsilon_start
    lr, momentum = np.float32(cfg.learning_rate), np.float32(cfg.momentum)
    result = PortResult()
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(cfg.episodes):
            state, steps, done = env.reset(), 0, False
            while not done and steps < cfg.max_episode_steps:
                # explore with probability epsilon, else the greedy action (argmax gives 0 when Q is NaN)
                action = int(explore.integers(2)) if explore.random() < epsilon else int(np.argmax(net.q(state)))
                next_state, reward, done = env.step(action)
                memory.append((state, action, reward, next_state, done))
                if len(memory) > cfg.memory_size:
                    memory.pop(0)
                steps += 1
                state = next_state
                if len(memory) < cfg.batch_size:
                    continue
                batch = sampler.sample(memory, cfg.batch_size)
                loss = sum(net.fit_one(*t, cfg.gamma, lr, momentum) for t in batch) / cfg.batch_size
                net.flush_subnormal()
                epsilon = max(cfg.epsilon_min, epsilon * cfg.epsilon_decay)
                result.losses.append(loss)
                if result.first_nan is None and not math.isfinite(loss):
                    result.first_nan = len(result.losses) - 1
                if (stop_at_nan and result.first_nan is not None) or (
                        max_updates is not None and len(result.losses) >= max_updates):
                    result.episode_steps.append(steps)
                    result.weights_finite = net.finite()
                    return result
            result.episode_steps.append(steps)
    result.weights_finite = net.finite()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs=2, default=(0, 10), metavar=("FIRST", "STOP"))
    parser.add_argument("--updates", type=int, default=10_000)
    parser.add_argument("--lr", type=float, default=PortConfig.learning_rate)
    parser.add_argument("--epsilon-start", type=float, default=PortConfig.epsilon_start)
    parser.add_argument("--init", choices=("keras", "glorot"), default="keras")
    args = parser.parse_args()
    cfg = PortConfig(learning_rate=args.lr, epsilon_start=args.epsilon_start, init=args.init)
    seeds = range(*args.seeds)
    diverged = 0
    for seed in seeds:
        r = run_port(cfg, seed, args.updates)
        diverged += r.first_nan is not None
        what = f"NaN at update {r.first_nan}" if r.first_nan is not None else f"finite for {r.updates} updates"
        print(f"port seed {seed}: {what} (best episode {max(r.episode_steps, default=0)} steps)", flush=True)
    print(f"port: {diverged} of {len(seeds)} seeds diverged within {args.updates} updates")


if __name__ == "__main__":
    main()
