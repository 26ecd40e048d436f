"""The Q-network, its Keras-style initialisation, and the DQN update.

Network: 4 -> 128 -> 256 -> 256 -> 2, ReLU, linear output (paper Fig. 1 / reference model).
Update: SGD with momentum on the Bellman error, target y = r + gamma * max_a' Q(s', a') from the
current network (no target network), y = r on a terminal transition.

Keras' ``mse`` averages the squared error over the two outputs while the label of the untaken
action equals the prediction, so one sample's loss is (y - Q(s, a))^2 / 2 and its gradient with
respect to Q(s, a) is Q(s, a) - y. Two update modes:

* ``sequential`` (default) -- the reference: the 20 sampled transitions are fitted one after
  another (20 SGD steps per environment step), each target computed with the network as it is then;
* ``batched`` -- an ablation, not the reference's rule: one SGD step with the sum of the 20
  per-sample gradients, all targets from the network before the step. It is *not* first-order
  equal to the 20 fits: there the momentum buffer decays 20 times per environment step (0.95^20),
  here once, so the two weigh past gradients differently at any learning rate.

Two implementations of the same update:

* ``fused`` (default on the CPU) -- ``aqil.kernel``: the greedy action and the sequential update,
  one compiled call each, with a fixed arithmetic order: the same bytes on any x86-64 CPU;
* ``torch`` -- the backward pass written out with torch matrix products (three per layer): the
  path for CUDA, for the ``batched`` ablation's update, and the reference the kernel is tested
  against. Its roundings depend on the BLAS kernels torch picks for the CPU.
``tests/test_qnet.py`` checks both against autograd with ``torch.optim.SGD`` and against each other.
"""

from __future__ import annotations

import io
import itertools
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from aqil import kernel
from aqil.artifacts import ArtifactError, atomic_path, missing_file
from aqil.config import ConfigError, DQNConfig, n_weights

N_OBS = 4
N_ACTIONS = 2
# Keras' truncated normal (cut at 2 std) divides the scale by this so the kept samples have the
# requested standard deviation: std of a standard normal truncated to [-2, 2].
_TRUNCATED_STD = 0.87962566103423978


class QNetwork(nn.Module):
    def __init__(self, hidden: Sequence[int], n_obs: int = N_OBS, n_actions: int = N_ACTIONS) -> None:
        super().__init__()
        sizes = [n_obs, *hidden, n_actions]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers[:-1]:
            x = torch.relu(layer(x))
        return self.layers[-1](x)


def _truncated_normal(rng: np.random.Generator, std: float, shape: tuple[int, ...]) -> np.ndarray:
    """Normal(0, std) redrawn outside 2 std, as TensorFlow's truncated_normal."""
    z = rng.standard_normal(shape)
    outside = np.abs(z) > 2.0
    while outside.any():
        z[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(z) > 2.0
    return z * std


@torch.no_grad()
def keras_init_(net: QNetwork, rng: np.random.Generator) -> None:
    """he_normal (truncated) for hidden layers, glorot_uniform for the output, zero biases.

    Drawn with numpy in float64 and rounded to float32, so the bytes do not depend on which
    vectorized kernels torch picks for this CPU.
    """
    for layer in net.layers[:-1]:
        std = math.sqrt(2.0 / layer.in_features) / _TRUNCATED_STD
        w = _truncated_normal(rng, std, (layer.in_features, layer.out_features))  # Keras' (in, out)
        layer.weight.copy_(torch.from_numpy(w.T.astype(np.float32)))
        nn.init.zeros_(layer.bias)
    out = net.layers[-1]
    limit = math.sqrt(6.0 / (out.in_features + out.out_features))
    w = rng.uniform(-limit, limit, (out.in_features, out.out_features))
    out.weight.copy_(torch.from_numpy(w.T.astype(np.float32)))
    nn.init.zeros_(out.bias)


Backend = Literal["fused", "torch"]


def default_backend(device: torch.device) -> Backend:
    """The fused kernel on the CPU (forward passes, and the sequential update); torch on CUDA."""
    return "fused" if device.type == "cpu" else "torch"


class DQNLearner:
    """A QNetwork bound to one flat parameter buffer, updated by hand-written SGD with momentum.

    Weights are stored transposed, (in, out), each layer's weights followed by its biases; the
    network's ``nn.Linear`` parameters are views into the same buffer, so ``net(x)`` and
    ``state_dict()`` always see the current values, and on the CPU the fused kernel works on the
    same memory through numpy views. The momentum step is
    ``torch.optim.SGD(momentum=m, dampening=0)``'s: v <- m*v + g, p <- p - lr*v.
    """

    def __init__(
        self, cfg: DQNConfig, net: QNetwork, device: torch.device, backend: Backend | None = None
    ) -> None:
        self.gamma = cfg.gamma
        self.lr = cfg.learning_rate
        self.momentum = cfg.momentum
        self.sequential = cfg.update == "sequential"
        self.backend = backend or default_backend(device)
        if self.backend == "fused" and device.type != "cpu":
            raise ConfigError("the fused kernel runs on the CPU only; use dqn.device: cpu")
        self.device = device
        self.net = net.to(device)
        total = sum(p.numel() for p in net.parameters())
        self.params = torch.empty(total, device=device)
        self.velocity = torch.zeros(total, device=device)
        self.weights_t: list[torch.Tensor] = []  # (in, out) views of params
        self.weights: list[torch.Tensor] = []  # (out, in) views of the same memory
        self.biases: list[torch.Tensor] = []
        self.weight_t_velocity: list[torch.Tensor] = []  # matching views of velocity
        self.bias_velocity: list[torch.Tensor] = []
        self._ones = torch.ones(cfg.batch_size, device=device)
        offset = 0
        for layer in net.layers:
            n_out, n_in = layer.weight.shape
            n = n_in * n_out
            w_t = self.params[offset : offset + n].view(n_in, n_out)
            w_t.copy_(layer.weight.data.t())
            layer.weight.data = w_t.t()
            self.weights_t.append(w_t)
            self.weights.append(w_t.t())
            self.weight_t_velocity.append(self.velocity[offset : offset + n].view(n_in, n_out))
            offset += n
            b = self.params[offset : offset + n_out]
            b.copy_(layer.bias.data)
            layer.bias.data = b
            self.biases.append(b)
            self.bias_velocity.append(self.velocity[offset : offset + n_out])
            offset += n_out
        sizes = [net.layers[0].in_features, *(layer.out_features for layer in net.layers)]
        self.sizes = np.array(sizes, dtype=np.int64)
        if device.type == "cpu":  # numpy views of the same memory, for the kernel
            self._params_np = self.params.numpy()
            self._velocity_np = self.velocity.numpy()
        # decays owed by weight rows of inactive units (fused kernel only; see aqil/kernel.py)
        self._owed = np.zeros(int(self.sizes.sum()), dtype=np.int64)

    def _kernel_state(self) -> tuple:
        return (self._params_np, self._velocity_np, self._owed, self.sizes, self.lr, self.momentum)

    def sync(self) -> None:
        """Bring ``params`` and ``velocity`` up to date (the fused kernel defers dead rows' decays)."""
        if self.backend == "fused":
            kernel.settle_all(*self._kernel_state())

    def non_finite_parameters(self) -> int:
        """How many weights and biases are NaN or infinite (0 for a healthy network)."""
        return int((~torch.isfinite(self.params)).sum())

    # -- forward passes ----------------------------------------------------------------------
    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Q-values and the inputs of every layer (post-ReLU activations) for the backward pass."""
        inputs = [x]
        h = x
        last = len(self.weights_t) - 1
        for i, (w_t, b) in enumerate(zip(self.weights_t, self.biases, strict=True)):
            h = torch.addmm(b, h, w_t)
            if i < last:
                h = h.relu_()
                inputs.append(h)
        return h, inputs

    @torch.no_grad()
    def q_values(self, obs: np.ndarray) -> np.ndarray:
        """Q-values of a batch of float32 observations, one row each."""
        if self.backend == "fused":
            return kernel.q_values(*self._kernel_state(), np.ascontiguousarray(obs, dtype=np.float32))
        return self._forward(torch.from_numpy(np.asarray(obs, dtype=np.float32)).to(self.device))[0].cpu().numpy()

    @torch.no_grad()
    def greedy_action(self, obs: np.ndarray) -> int:
        if self.backend == "fused":
            return kernel.greedy_action(*self._kernel_state(), obs)
        q = self._forward(torch.from_numpy(obs).to(self.device).view(1, -1))[0]
        return int(q.argmax())

    # -- the update --------------------------------------------------------------------------
    def _accumulate_gradient(self, dq: torch.Tensor, inputs: list[torch.Tensor]) -> None:
        """velocity += d(loss)/d(params), given d(loss)/d(Q) (one row per sample).

        Backpropagation through this MLP: for layer i with input h_i and output error delta,
        dW_i^T = h_i^T delta, db_i = sum over rows of delta, and the error of the layer below is
        (delta W_i) masked where the ReLU was inactive. The gradient is added straight into the
        momentum buffer, which saves a pass over the parameters.
        """
        delta = dq
        for i in range(len(self.weights_t) - 1, -1, -1):
            self.weight_t_velocity[i].addmm_(inputs[i].t(), delta)
            self.bias_velocity[i].addmv_(delta.t(), self._ones[: delta.shape[0]])
            if i > 0:
                delta = torch.ops.aten.threshold_backward(torch.mm(delta, self.weights[i]), inputs[i], 0.0)

    def _fit(
        self, obs: torch.Tensor, action: torch.Tensor, reward: torch.Tensor, next_obs: torch.Tensor,
        done: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One SGD step on the summed per-sample gradients.

        Returns the summed squared error and the largest |Q(s, a)| before the step.

        The target is formed as the reference's numpy did: float64 reward + gamma * max Q in
        float64, then rounded into the float32 label.
        """
        n = obs.shape[0]
        q, inputs = self._forward(torch.cat((obs, next_obs)))
        q_next_max = q[n:].amax(dim=1).double()
        target = torch.where(done, reward, reward + self.gamma * q_next_max).float()
        column = action.view(-1, 1)
        # d(loss_i)/dQ(s_i, a_i) for loss_i = (y_i - Q(s_i, a_i))^2 / 2; zero for the other action
        error = q[:n].gather(1, column).view(-1) - target
        dq = torch.zeros(n, N_ACTIONS, device=self.device).scatter_(1, column, error.view(-1, 1))
        self.velocity.mul_(self.momentum)  # v <- m*v + g, p <- p - lr*v
        self._accumulate_gradient(dq, [h[:n] for h in inputs])
        self.params.add_(self.velocity, alpha=-self.lr)
        return torch.dot(error, error), q[:n].abs().max()

    @torch.no_grad()
    def update(
        self, obs: np.ndarray, action: np.ndarray, reward: np.ndarray, next_obs: np.ndarray, done: np.ndarray
    ) -> tuple[float, float]:
        """Fit one sampled minibatch (batched or sequential).

        Returns the mean Keras mse loss and the largest |Q(s, a)| the fits saw. ``obs`` and
        ``next_obs`` are float32, ``reward`` float64 (as the reference's rewards).
        """
        n = obs.shape[0]
        if self.backend == "fused" and self.sequential:
            return kernel.fit_sequential(*self._kernel_state(), self.gamma, obs, action, reward, next_obs, done)
        tensors = [torch.from_numpy(np.asarray(x)).to(self.device) for x in (obs, action, reward, next_obs, done)]
        if not self.sequential:
            squared, largest = self._fit(*tensors)
            return float(squared) / (2 * n), float(largest)
        rows = zip(*(t.split(1) for t in tensors), strict=True)
        squared, largest = zip(*(self._fit(*row) for row in rows), strict=True)
        return float(torch.stack(squared).sum()) / (2 * n), float(torch.stack(largest).max())

    def fit_fused(self, loss_kernel: Callable[..., tuple[float, float]], what: str, *inputs) -> tuple[float, float]:
        """Fit another loss with a fused kernel of the same calling convention as ``kernel.fit_sequential``
        (the network's buffers first, then ``inputs``): how the baselines (aqil/kernel_losses.py)
        train this network. Returns the kernel's mean loss and largest |output|.
        """
        if self.backend != "fused":
            raise ConfigError(f"dqn.device: {what} runs on the fused CPU kernel only; accepted: cpu")
        loss, largest = loss_kernel(*self._kernel_state(), *inputs)
        return float(loss), float(largest)

    # -- persistence -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        self.sync()
        state = {k: v.detach().cpu().clone() for k, v in self.net.state_dict().items()}
        state["optimizer.velocity"] = self.velocity.detach().cpu().clone()
        return state

    def save(self, path: str | Path) -> None:
        # Serialise in memory: torch names the archive after the file, which would change the bytes.
        buffer = io.BytesIO()
        torch.save(self.state_dict(), buffer)
        with atomic_path(path) as tmp:
            tmp.write_bytes(buffer.getvalue())

    def load(self, path: str | Path, keep_optimizer_state: bool = True, diverged: bool = False) -> None:
        """Load weights (and momentum) saved by ``save``.

        NaN or infinite values are refused unless ``diverged`` says the run that wrote the file
        recorded its divergence (``dqn.on_divergence: record``): otherwise they mean damage.
        """
        path = Path(path)
        state = read_state(path)
        check_architecture(path, state, {k: tuple(v.shape) for k, v in self.state_dict().items()})
        bad = sum(int((~torch.isfinite(v)).sum()) for v in state.values())
        if bad and not diverged:
            raise ArtifactError(
                f"{path}: {bad:,} NaN or infinite values, but its run's metrics.json records no divergence; "
                "the file is damaged (rerun its stage with dvc repro -f)"
            )
        velocity = state.pop("optimizer.velocity")
        with torch.no_grad():
            self.net.load_state_dict(state)
            self.velocity.copy_(velocity if keep_optimizer_state else torch.zeros_like(velocity))
        self._owed[:] = 0


def read_state(path: Path) -> dict[str, torch.Tensor]:
    """A saved model's tensors, loaded with ``weights_only=True``: a foreign file never runs code."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise missing_file(path) from None
    except Exception as exc:  # torch raises many types for damaged or foreign files
        raise ArtifactError(f"{path}: not a readable model file ({type(exc).__name__})") from None
    if not isinstance(state, dict):
        raise ArtifactError(f"{path}: not a model saved by this pipeline")
    return state


def expected_shapes(hidden: Sequence[int]) -> dict[str, tuple[int, ...]]:
    """Names and shapes of the tensors ``DQNLearner.save`` writes for this architecture."""
    sizes = [N_OBS, *hidden, N_ACTIONS]
    shapes: dict[str, tuple[int, ...]] = {}
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        shapes[f"layers.{i}.weight"] = (n_out, n_in)
        shapes[f"layers.{i}.bias"] = (n_out,)
    shapes["optimizer.velocity"] = (n_weights(list(hidden), N_OBS, N_ACTIONS),)
    return shapes


def check_architecture(path: Path, state: dict, expected: dict[str, tuple[int, ...]]) -> None:
    """Refuse a model whose tensors are not exactly ``expected`` (names and shapes), saying what differs,
    or not dense float32: ``load_state_dict`` would silently convert int64 or bool tensors of the
    right shapes, and a foreign file would be evaluated and fine-tuned as if it were a trained network."""
    found = {k: tuple(v.shape) for k, v in state.items() if isinstance(v, torch.Tensor)}
    if len(found) != len(state):
        raise ArtifactError(f"{path}: holds values that are not tensors; not a model saved by this pipeline")
    if found != expected:
        _explain_mismatch(path, found, expected)
    for name, tensor in state.items():
        if tensor.dtype != torch.float32 or tensor.layout != torch.strided:
            kind = str(tensor.dtype).removeprefix("torch.")
            layout = "" if tensor.layout == torch.strided else f" ({str(tensor.layout).removeprefix('torch.')})"
            raise ArtifactError(f"{path}: {name} holds {kind}{layout} values; expected dense float32 tensors "
                                "(not a model saved by this pipeline)")


def _explain_mismatch(path: Path, found: dict, expected: dict[str, tuple[int, ...]]) -> None:
    layers = {k: v for k, v in expected.items() if k != "optimizer.velocity"}
    if {k: v for k, v in found.items() if k != "optimizer.velocity"} == layers:
        raise ArtifactError(
            f"{path}: the layers match but the optimizer's momentum buffer (optimizer.velocity) is missing "
            "or has the wrong size; not a model saved by this pipeline"
        )
    raise ArtifactError(
        f"{path}: model does not match this network (expected layers "
        f"{describe_shapes(expected)}, found {describe_shapes(found)}); check dqn.hidden"
    )


def describe_shapes(shapes: dict[str, tuple[int, ...]]) -> str:
    weights = [s for k, s in shapes.items() if k.endswith(".weight")]
    if not weights:
        return "none"
    return " -> ".join([str(weights[0][1]), *(str(s[0]) for s in weights)])


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("dqn.device: got 'cuda' but no CUDA device is available; accepted: cpu | auto")
    return torch.device(name)
