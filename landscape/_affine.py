r"""The loss on an affine subspace of parameter space: the engine behind every landscape view.

A view picks a centre θ₀ and K directions δ_k (pytrees shaped like the parameters) and looks
at the loss on the points

.. math::
    \theta(c) = \theta_0 + \sum_{k=1}^{K} c_k\,\delta_k .

Every pytree is flattened with `jax.flatten_util.ravel_pytree`, the points of a grid are
evaluated in one jitted `vmap` (in chunks of `chunk` points with `lax.map` when memory is
short), and the result has the dtype of the loss, which follows the parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from .types import Array, PyTree

LossFn = Callable[[PyTree], Array]
"""A loss of one set of parameters: `loss_fn(params) -> scalar` (close over the data)."""


def flatten(tree: PyTree) -> Array:
    """The leaves of `tree` concatenated into one vector (`ravel_pytree`)."""
    return ravel_pytree(tree)[0]


def flatten_stack(trees: PyTree) -> Array:
    """A pytree whose leaves share a leading axis of length T, as a (T, D) matrix."""
    return jax.vmap(flatten)(trees)


def _map(fn, xs, chunk: int | None):
    return jax.vmap(fn)(xs) if chunk is None else jax.lax.map(fn, xs, batch_size=chunk)


@partial(jax.jit, static_argnames=("loss_fn", "chunk"))
def _subspace_loss(loss_fn, center, directions, coords, chunk):
    flat0, unravel = ravel_pytree(center)
    basis = jnp.stack([flatten(d).astype(flat0.dtype) for d in directions])  # (K, D)
    coords = coords.astype(flat0.dtype)
    return _map(lambda c: loss_fn(unravel(flat0 + c @ basis)), coords, chunk)


def loss_on_subspace(
    loss_fn: LossFn,
    center: PyTree,
    directions: Sequence[PyTree],
    coords: Array,
    *,
    chunk: int | None = None,
) -> Array:
    r"""The loss at θ₀ + Σ_k c_{ik} δ_k for every row i of `coords`, in one jitted call.

    Args:
      loss_fn: `loss_fn(params) -> scalar`, pure JAX; compiled once per function object.
      center: θ₀, any pytree of floating arrays.
      directions: the K directions δ_k, pytrees with the structure of `center`.
      coords: (n, K) coefficients c (cast to the parameters' dtype).
      chunk: evaluate `chunk` points at a time (`lax.map(batch_size=chunk)`) instead of all
        n in one `vmap`: the same numbers with less memory.

    Returns:
      The n losses, shape (n,).
    """
    coords = jnp.asarray(coords)
    if coords.ndim != 2 or coords.shape[1] != len(directions):
        raise ValueError(
            f"coords has shape {coords.shape}: it needs (n, {len(directions)}), one column "
            "per direction."
        )
    return _subspace_loss(loss_fn, center, tuple(directions), coords, chunk)


@partial(jax.jit, static_argnames=("loss_fn", "chunk"))
def _losses(loss_fn, stacked, chunk):
    return _map(loss_fn, stacked, chunk)


def loss_along(loss_fn: LossFn, stacked: PyTree, *, chunk: int | None = None) -> Array:
    """`loss_fn` at every point of a stacked pytree (leading axis T), e.g. a trajectory."""
    return _losses(loss_fn, stacked, chunk)


@partial(jax.jit, static_argnames=("loss_fn",))
def _restricted_quadratic(loss_fn, center, directions):
    flat0, unravel = ravel_pytree(center)
    basis = jnp.stack([flatten(d).astype(flat0.dtype) for d in directions])
    flat_loss = lambda x: loss_fn(unravel(x))  # noqa: E731
    value, grad = jax.value_and_grad(flat_loss)(flat0)
    hvp = lambda v: jax.jvp(jax.grad(flat_loss), (flat0,), (v,))[1]  # noqa: E731
    hessian = basis @ jax.vmap(hvp)(basis).T
    return value, basis @ grad, 0.5 * (hessian + hessian.T)


def restricted_quadratic(
    loss_fn: LossFn, center: PyTree, directions: Sequence[PyTree]
) -> tuple[Array, Array, Array]:
    r"""The second-order Taylor model of the loss on the subspace, from Hessian-vector products.

    .. math::
        L(\theta_0 + \textstyle\sum_k c_k \delta_k) \approx L_0 + g^\top c + \tfrac12 c^\top H c,
        \quad g_k = \delta_k^\top \nabla L(\theta_0),\quad
        H_{kl} = \delta_k^\top \nabla^2 L(\theta_0)\, \delta_l .

    The K×K matrix H costs K Hessian-vector products (forward-over-reverse); the full
    Hessian is never formed. This is the "theory line" of a view: where the measured loss
    leaves the quadratic model, the slice shows more than the local curvature.

    Args:
      loss_fn: `loss_fn(params) -> scalar`.
      center: θ₀.
      directions: the K directions δ_k.

    Returns:
      (L₀, g of shape (K,), H of shape (K, K), symmetrised).
    """
    return _restricted_quadratic(loss_fn, center, tuple(directions))


def quadratic_value(model: tuple[Array, Array, Array], coords: Array) -> Array:
    """The Taylor model (L₀, g, H) of `restricted_quadratic` at coefficients (n, K)."""
    value, grad, hessian = model
    coords = jnp.asarray(coords, dtype=jnp.result_type(grad))
    return value + coords @ grad + 0.5 * jnp.einsum("nk,kl,nl->n", coords, hessian, coords)
