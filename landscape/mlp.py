r"""Multilayer perceptrons as loss landscapes: parameters are pytrees, the loss a finite sum.

An MLP with widths (n₀, n₁, …, n_L) maps x to

.. math::
    h_0 = x, \qquad h_{l} = \sigma(h_{l-1} W_l + b_l)\;\;(+\,h_{l-1}\ \text{if residual and }
    n_{l-1} = n_l), \qquad f(x) = h_{L-1} W_L + b_L,

with a linear output layer. Its parameters are a list of layers, each a dict
`{"w": (n_{l-1}, n_l), "b": (n_l,)}`, so any pytree tool (the integrators, `jax.grad`,
`ravel_pytree`) applies. The training loss is

.. math::
    L(\theta) = \frac1N \sum_{i=1}^N \ell(f_\theta(x_i), y_i) + \frac{\lambda}{2}\sum_l \|W_l\|^2

with ℓ a loss of `landscape.losses` (softmax cross-entropy −log softmax(f)_y by default; the
squared error ½‖f − y‖², absolute error, Huber, binary cross-entropy, hinge) or any
`loss(outputs, targets)`, and λ the L2 weight decay (weights only, not biases).

    model = mlp((64, 50, 10), activation="sigmoid")
    params = model.init(jax.random.key(0))
    U = from_loss(model.loss_fn, digits().train)      # a FiniteSum for integrators.simulate
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from .finite_sum import FiniteSum, finite_sum
from .losses import LOSSES, cross_entropy, mse  # noqa: F401  (re-exported, as before)
from .validate import check_choice, check_int, check_nonnegative, check_positive

PyTree = Any
Params = list  # [{"w": array, "b": array}, ...]

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "gelu": jax.nn.gelu,
}
"""Hidden-layer nonlinearities σ by name."""

squared_error = mse  # the name this module had for ½‖f − y‖² before `losses`

# Weight init gain: Var(W) = gain² / fan_in (LeCun for sigmoid/tanh, He for relu/gelu).
_GAIN = {"sigmoid": 1.0, "tanh": 1.0, "relu": 2.0**0.5, "gelu": 2.0**0.5}


def _check_sizes(sizes) -> tuple[int, ...]:
    try:
        sizes = tuple(sizes)
    except TypeError:
        raise ValueError(
            f"sizes={sizes!r} is not allowed: give widths (n_in, ..., n_out)."
        ) from None
    if len(sizes) < 2:
        raise ValueError(f"sizes={sizes!r} is not allowed: it needs at least (n_in, n_out).")
    return tuple(check_int(f"sizes[{i}]", s) for i, s in enumerate(sizes))


def init_mlp(
    key: jax.Array,
    sizes: Sequence[int],
    activation: str = "relu",
    dtype=jnp.float32,
    scale: float = 1.0,
) -> Params:
    r"""Random MLP parameters: W_l ~ N(0, (g·scale)²/n_{l−1}), b_l = 0.

    The gain g is 1 for sigmoid/tanh (LeCun) and √2 for relu/gelu (He), which keeps the
    pre-activation variance about constant through the layers at initialisation.

    Args:
      key: JAX random key.
      sizes: widths (n_in, hidden..., n_out), each >= 1.
      activation: one of `ACTIVATIONS` (sets the gain).
      dtype: floating dtype of every leaf (float32 by default).
      scale: extra factor on the weights' standard deviation (> 0).

    Returns:
      A list of `{"w": (n_{l-1}, n_l), "b": (n_l,)}` dicts, one per layer.
    """
    sizes = _check_sizes(sizes)
    check_choice("activation", activation, ACTIVATIONS)
    check_positive("scale", scale)
    keys = jax.random.split(key, len(sizes) - 1)
    params = []
    for k, n_in, n_out in zip(keys, sizes[:-1], sizes[1:], strict=True):
        std = _GAIN[activation] * scale / n_in**0.5
        params.append(
            {
                "w": std * jax.random.normal(k, (n_in, n_out), dtype),
                "b": jnp.zeros((n_out,), dtype),
            }
        )
    return params


def apply_mlp(
    params: Params, x: jax.Array, activation: str = "relu", residual: bool = False
) -> jax.Array:
    """The network's outputs f(x) (logits), shape (..., n_out); x is cast to the params dtype.

    With `residual=True` every hidden layer whose input and output widths agree adds its input
    (h ← h + σ(hW + b)); the first and the output layer are never residual.
    """
    act = ACTIVATIONS[check_choice("activation", activation, ACTIVATIONS)]
    h = jnp.asarray(x, dtype=jnp.result_type(params[0]["w"]))
    for i, layer in enumerate(params[:-1]):
        z = act(h @ layer["w"] + layer["b"])
        h = h + z if residual and i > 0 and z.shape == h.shape else z
    return h @ params[-1]["w"] + params[-1]["b"]


def hidden_activations(
    params: Params, x: jax.Array, activation: str = "relu", residual: bool = False
) -> list[jax.Array]:
    """The hidden representations h_1 … h_{L−1} (as in `apply_mlp`), for diagnostics."""
    act = ACTIVATIONS[check_choice("activation", activation, ACTIVATIONS)]
    h = jnp.asarray(x, dtype=jnp.result_type(params[0]["w"]))
    out = []
    for i, layer in enumerate(params[:-1]):
        z = act(h @ layer["w"] + layer["b"])
        h = h + z if residual and i > 0 and z.shape == h.shape else z
        out.append(h)
    return out


def l2_penalty(params: Params) -> jax.Array:
    """½ Σ_l ‖W_l‖² over the weight matrices (biases are not decayed)."""
    return 0.5 * sum(jnp.sum(jnp.square(layer["w"])) for layer in params)


@dataclasses.dataclass(frozen=True)
class MLP:
    """An MLP architecture and its loss (built by `mlp`); hashable, holds no parameters.

    Attributes:
      sizes: widths (n_in, hidden..., n_out).
      activation: hidden nonlinearity, a key of `ACTIVATIONS`.
      residual: skip connections on the hidden layers of equal width.
      loss: a name in `landscape.losses.LOSSES` ("cross_entropy", "mse", "mae", "smooth_l1",
        "binary_cross_entropy", "hinge") or a function `loss(outputs, targets) -> scalar`.
      weight_decay: λ >= 0 of the L2 penalty (λ/2)Σ‖W‖².
    """

    sizes: tuple[int, ...]
    activation: str = "relu"
    residual: bool = False
    loss: str | Callable[[jax.Array, jax.Array], jax.Array] = "cross_entropy"
    weight_decay: float = 0.0

    def init(self, key: jax.Array, dtype=jnp.float32, scale: float = 1.0) -> Params:
        """Random parameters (see `init_mlp`)."""
        return init_mlp(key, self.sizes, self.activation, dtype, scale)

    def apply(self, params: Params, x: jax.Array) -> jax.Array:
        """Outputs (logits) f(x), shape (..., n_out)."""
        return apply_mlp(params, x, self.activation, self.residual)

    def data_loss(self, params: Params, batch: dict) -> jax.Array:
        """The mean loss ℓ over `batch = {"x", "y"}`, without the weight decay."""
        loss = self.loss if callable(self.loss) else LOSSES[self.loss]
        return loss(self.apply(params, batch["x"]), batch["y"])

    def loss_fn(self, params: Params, batch: dict) -> jax.Array:
        """The training loss on `batch`: mean ℓ + (λ/2)Σ‖W‖² (a scalar, params' dtype)."""
        loss = self.data_loss(params, batch)
        if self.weight_decay:
            loss = loss + jnp.asarray(self.weight_decay, loss.dtype) * l2_penalty(params)
        return loss

    def accuracy(self, params: Params, batch: dict) -> jax.Array:
        """Fraction of `batch` whose largest output is the label (classification only)."""
        if not jnp.issubdtype(jnp.asarray(batch["y"]).dtype, jnp.integer):
            raise ValueError("accuracy needs integer class labels; this batch holds targets.")
        pred = jnp.argmax(self.apply(params, batch["x"]), axis=-1)
        return jnp.mean((pred == batch["y"]).astype(jnp.result_type(params[0]["w"])))

    @property
    def n_params(self) -> int:
        return sum(a * b + b for a, b in zip(self.sizes[:-1], self.sizes[1:], strict=True))


def mlp(
    sizes: Sequence[int],
    activation: str = "relu",
    residual: bool = False,
    loss: str | Callable[[jax.Array, jax.Array], jax.Array] = "cross_entropy",
    weight_decay: float = 0.0,
) -> MLP:
    """An `MLP` with checked arguments (a misspelt activation or loss names the closest one).

    Args:
      sizes: widths (n_in, hidden..., n_out), each >= 1.
      activation: "sigmoid", "tanh", "relu" or "gelu".
      residual: add skip connections h ← h + σ(hW + b) on hidden layers of equal width.
      loss: "cross_entropy", "mse", "mae", "smooth_l1" (Huber, δ = 1; another δ:
        `functools.partial(losses.smooth_l1, delta=δ)`), "binary_cross_entropy", "hinge"
        (see `landscape.losses`), or any function `loss(outputs, targets) -> scalar`.
      weight_decay: λ >= 0.
    """
    sizes = _check_sizes(sizes)
    check_choice("activation", activation, ACTIVATIONS)
    if not callable(loss):
        check_choice("loss", loss, LOSSES)
    if not isinstance(residual, bool):
        raise ValueError(f"residual={residual!r} is not allowed: it must be True or False.")
    check_nonnegative("weight_decay", weight_decay)
    return MLP(sizes, activation, residual, loss, float(weight_decay))


def from_loss(
    loss_fn: Callable[[PyTree, PyTree], jax.Array],
    data: PyTree,
    name: str = "network",
    description: str = "",
) -> FiniteSum:
    r"""Any batch loss `loss_fn(params, batch)` on a data set as a finite-sum `Landscape`.

    .. math::
        U(\theta) = \frac1N \sum_{i=1}^{N} \ell(\theta, s_i), \qquad
        \ell(\theta, s) = \texttt{loss\_fn}(\theta, s\text{ as a batch of one})

    `loss_fn` must return the *mean* loss over the leading axis of its batch (every JAX
    model's loss does: an MLP here, a Flax `apply` or an Equinox module closed over in a
    function); then U is the full-data loss, mini-batch noise (`landscape.minibatch(B)`)
    averages ℓ over B samples, and `integrators.simulate` trains `params` (any pytree).

    Args:
      loss_fn: pure JAX function `(params, batch) -> scalar`, batch a pytree of arrays with a
        leading sample axis.
      data: the training set, a pytree of arrays with a common leading axis of length N
        (e.g. `Dataset.train`). Floating leaves are cast to the parameters' dtype on use.
      name, description: labels for listings and figure titles.

    Returns:
      A `FiniteSum` with `dim=None` (the parameters are a pytree).
    """
    if not callable(loss_fn):
        raise ValueError(f"loss_fn={loss_fn!r} is not allowed: it must be loss_fn(params, batch).")

    per_sample = BatchOfOne(loss_fn)
    return finite_sum(per_sample, data, name=name, description=description, batch_loss=loss_fn)


@dataclasses.dataclass(frozen=True)
class BatchOfOne:
    """ℓ(θ, s) = `loss_fn`(θ, s as a batch of one): the per-sample loss of `from_loss`, equal
    for equal `loss_fn` (so landscapes of one loss on other data share a compilation)."""

    loss_fn: Callable[[PyTree, PyTree], jax.Array]

    def __call__(self, params: PyTree, sample: PyTree) -> jax.Array:
        return self.loss_fn(params, jax.tree.map(lambda a: a[None], sample))
