"""Finite-sum landscapes U(x) = (1/N) Σᵢ ℓ(x, sampleᵢ): a training loss over a data set."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable

import jax
import jax.numpy as jnp
import numpy as np

from ._base import BoundEnergy, Landscape, Point
from ._dtype import float_dtype
from ._points import point
from .custom import from_function
from .types import PyTree
from .validate import check_int, check_nonnegative


def cast_data(data: PyTree, dtype) -> PyTree:
    """Floating leaves of `data` in `dtype` (the parameters' dtype); integer leaves unchanged."""

    def cast(d):
        return d.astype(dtype) if jnp.issubdtype(d.dtype, jnp.floating) else d

    return jax.tree.map(cast, data)


def _params_dtype(x: PyTree):
    return float_dtype(jnp.result_type(*jax.tree.leaves(x)))


@dataclasses.dataclass(frozen=True)
class FiniteSumEnergy:
    """U(x) = (1/N) Σᵢ ℓ(x, sᵢ) as `fn(data, x)`, the `BoundEnergy` function of a `FiniteSum`.

    Equal (so one compilation) for equal ℓ and `batch_loss`, whatever the data.

    Attributes:
      per_sample_energy: ℓ(x, sample) -> scalar.
      batch_loss: optional, the mean of ℓ over a batch in one call (see `finite_sum`).
    """

    per_sample_energy: Callable[[PyTree, PyTree], jax.Array]
    batch_loss: Callable[[PyTree, PyTree], jax.Array] | None = None

    def __call__(self, data: PyTree, x: PyTree) -> jax.Array:
        xs = cast_data(data, _params_dtype(x))
        if self.batch_loss is not None:
            return self.batch_loss(x, xs)
        return jnp.mean(jax.vmap(self.per_sample_energy, in_axes=(None, 0))(x, xs))


@dataclasses.dataclass(frozen=True, eq=False, kw_only=True)
class FiniteSum(Landscape):
    r"""A landscape that is a mean over samples, as every training loss is.

    .. math::
        U(x) = \frac1N \sum_{i=1}^{N} \ell(x, s_i)

    Attributes (besides those of `Landscape`):
      per_sample_energy: ℓ, a pure function `per_sample_energy(x, sample) -> scalar`.
      n_samples: N.
      batch_loss: optional `batch_loss(x, batch) -> (1/B) Σ_{i∈batch} ℓ(x, s_i)` evaluated on
        a whole batch (set by `landscape.mlp.from_loss`); None evaluates ℓ per sample.
      data: pytree of arrays whose leaves share a leading sample axis of length N: the
        parameters of the energy (a `BoundEnergy` of `FiniteSumEnergy`), so the pytree
        leaves of the landscape, not constants of a compiled program.
    """

    per_sample_energy: Callable[[PyTree, PyTree], jax.Array]
    n_samples: int
    batch_loss: Callable[[PyTree, PyTree], jax.Array] | None = None

    @property
    def data(self) -> PyTree:
        """The data set (the energy's parameters)."""
        return self.energy.params

    def batch_energy(self, x: PyTree, idx: jax.Array) -> jax.Array:
        """The mean of ℓ(x, s_i) over the samples i in `idx` (int array of shape (B,)).

        With a `batch_loss` (a loss that is already the mean over its batch, as a network's)
        it is `batch_loss(x, batch)` on the whole batch at once, so the layers run as matrix
        products over the batch; else the mean of the vmapped `per_sample_energy`.
        """
        data = cast_data(self.data, _params_dtype(x))
        batch = jax.tree.map(lambda d: d[idx], data)
        if self.batch_loss is not None:
            return self.batch_loss(x, batch)
        return jnp.mean(jax.vmap(self.per_sample_energy, in_axes=(None, 0))(x, batch))

    def per_sample_grads(self, x: PyTree) -> PyTree:
        """∇ℓ(x, s_i) for every sample, stacked along a new leading axis of length N."""
        data = cast_data(self.data, _params_dtype(x))
        return jax.vmap(jax.grad(self.per_sample_energy), in_axes=(None, 0))(x, data)


def finite_sum(
    per_sample_energy: Callable[[PyTree, PyTree], jax.Array],
    data: PyTree,
    name: str = "finite_sum",
    dim: int | None = None,
    bounds: Iterable = (),
    minima: Iterable[Point] = (),
    saddles: Iterable[Point] = (),
    description: str = "",
    batch_loss: Callable[[PyTree, PyTree], jax.Array] | None = None,
) -> FiniteSum:
    r"""A landscape U(x) = (1/N) Σᵢ ℓ(x, sᵢ) from a per-sample loss and a data set.

    The energy evaluates every sample (vmapped); `minibatch` samples batches of them, which is
    the gradient noise of SGD. Floating data are cast to the dtype of x on use, so the energy's
    dtype follows x.

    Args:
      per_sample_energy: ℓ(x, sample) -> scalar, pure JAX; `sample` is one slice of `data`.
      data: pytree of arrays with a common leading sample axis of length N >= 1.
      name, dim, bounds, minima, saddles, description: as in `from_function`.
      batch_loss: optional, the same loss on a whole batch (the mean of ℓ over the batch's
        leading axis); then the energy and mini-batch gradients use it (faster for networks).

    Returns:
      A `FiniteSum` (a `Landscape`).
    """
    if not callable(per_sample_energy):
        raise ValueError(
            f"per_sample_energy={per_sample_energy!r} is not allowed: it must be a callable "
            "per_sample_energy(x, sample)."
        )
    data = jax.tree.map(jnp.asarray, data)
    sizes = {d.shape[0] if d.ndim else None for d in jax.tree.leaves(data)}
    if len(sizes) != 1 or None in sizes or 0 in sizes:
        raise ValueError(
            f"data has leading axes {sorted(sizes, key=str)}: every leaf needs the same sample "
            "axis of length N >= 1."
        )
    n_samples = sizes.pop()

    energy = BoundEnergy(FiniteSumEnergy(per_sample_energy, batch_loss), data)
    base = from_function(energy, name, dim, bounds, minima, saddles, description)
    return FiniteSum(
        **{f.name: getattr(base, f.name) for f in dataclasses.fields(Landscape)},
        per_sample_energy=per_sample_energy,
        n_samples=n_samples,
        batch_loss=batch_loss,
    )


def _squared_error(w: jax.Array, sample: dict) -> jax.Array:
    return 0.5 * (sample["inputs"] @ w - sample["targets"]) ** 2


def least_squares(
    n_samples: int = 256, dim: int = 2, noise: float = 0.1, seed: int = 0
) -> FiniteSum:
    r"""Linear regression as a finite sum: the simplest model of SGD noise.

    .. math::
        U(w) = \frac1N \sum_{i=1}^{N} \tfrac12 (a_i \cdot w - y_i)^2, \qquad
        y_i = a_i \cdot w_{\rm true} + \sigma \varepsilon_i

    with a_i, w_true, ε_i standard normal (NumPy, `seed`). The exact minimiser
    w* = (AᵀA)⁻¹Aᵀy (normal equations) is listed as the global minimum when AᵀA is
    invertible. `data` is {"inputs": A (N, dim), "targets": y (N,)}.

    Args:
      n_samples: N >= 1.
      dim: dimension of w, >= 1.
      noise: σ >= 0, label noise; σ = 0 makes every per-sample gradient vanish at w*.
      seed: NumPy seed >= 0.

    Returns:
      A `FiniteSum` named "least_squares".
    """
    n_samples = check_int("n_samples", n_samples)
    dim = check_int("dim", dim)
    check_nonnegative("noise", noise)
    seed = check_int("seed", seed, minimum=0)
    rng = np.random.default_rng(seed)
    inputs = rng.standard_normal((n_samples, dim))
    w_true = rng.standard_normal(dim)
    targets = inputs @ w_true + float(noise) * rng.standard_normal(n_samples)

    gram = inputs.T @ inputs
    minima, center = (), w_true
    if np.linalg.matrix_rank(gram) == dim:
        center = np.linalg.solve(gram, inputs.T @ targets)
        residual = inputs @ center - targets
        minima = (point(center, 0.5 * np.mean(residual**2), "global"),)
    return finite_sum(
        _squared_error,
        {"inputs": inputs, "targets": targets},
        name="least_squares",
        dim=dim,
        bounds=tuple((float(c) - 2.5, float(c) + 2.5) for c in center),
        minima=minima,
        description=f"least squares, N = {n_samples}, {dim}-D, label noise {float(noise):g}",
    )
