r"""2-D slices of the loss in filter-normalised random directions (Li et al. 2018).

.. math::
    f(a, b) = L(\theta^* + a\,\delta_1 + b\,\delta_2), \qquad
    \delta_{k,i} \leftarrow \frac{\delta_{k,i}}{\lVert \delta_{k,i} \rVert}\,
    \lVert \theta^*_i \rVert

where i runs over the filters of every weight array: a filter is everything that feeds one
output unit, i.e. one slice along `filter_axis` (the last axis in the JAX layout, so the
column W[:, j] of a dense kernel of shape (n_in, n_out) holds neuron j's incoming weights,
and kernel[..., j] is the j-th filter of a convolution). Filter normalisation makes slices of
networks with different weight scales comparable: a direction moves every neuron by as much
as that neuron's own weights, so scale-invariant rescalings of a layer no longer change the
picture.

Biases and other 1-D (or scalar) parameters are, by default, not perturbed: their component
of δ is zero, as in Li et al.'s code with `ignore='biasbn'` (the setting the paper's figures
use). `biases="copy"` instead sets δ = θ* on them (their code's other branch).

References:
  Li, Xu, Taylor, Studer & Goldstein (2018), "Visualizing the loss landscape of neural
  nets", NeurIPS, Sec. 4 and github.com/tomgoldstein/loss-landscape (`net_plotter.py`).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from ._affine import LossFn, loss_on_subspace
from .types import Array, PRNGKey, PyTree
from .validate import check_choice, check_chunk, check_energy, check_int, check_key, check_positive


class Slice(NamedTuple):
    """The loss on a grid of the plane θ* + a δ₁ + b δ₂ (`plane_loss`, `random_slice`, …)."""

    a: Array  # (n_a,) coefficients along δ₁
    b: Array  # (n_b,) coefficients along δ₂
    loss: Array  # (n_b, n_a): L(θ* + a[i] δ₁ + b[j] δ₂) at [j, i] (meshgrid 'xy' layout)
    directions: tuple  # (δ₁, δ₂), pytrees shaped like θ*


def _normalize_leaf(d: Array, w: Array, filter_axis: int, biases: str) -> Array:
    if w.ndim <= 1:
        return jnp.zeros_like(w) if biases == "zero" else w
    axis = filter_axis % w.ndim
    others = tuple(i for i in range(w.ndim) if i != axis)
    w_norm = jnp.sqrt(jnp.sum(jnp.square(w), axis=others, keepdims=True))
    d_norm = jnp.sqrt(jnp.sum(jnp.square(d), axis=others, keepdims=True))
    return d * jnp.where(d_norm > 0, w_norm / jnp.where(d_norm > 0, d_norm, 1), 0)


def filter_normalize(
    direction: PyTree, params: PyTree, *, filter_axis: int = -1, biases: str = "zero"
) -> PyTree:
    r"""Rescale every filter of `direction` to the norm of the same filter of `params`.

    Args:
      direction: δ, a pytree shaped like `params`.
      params: θ*, the point the slice is centred on.
      filter_axis: the axis of a weight array that indexes its filters (output units);
        -1 for JAX/Flax kernels (n_in, n_out), 0 for the PyTorch layout (n_out, n_in).
      biases: "zero" (default, Li et al.'s `ignore='biasbn'`) sets δ to 0 on 1-D and scalar
        leaves; "copy" sets δ = θ* there.

    Returns:
      The filter-normalised direction: ‖δ_i‖ = ‖θ*_i‖ for every filter i of every array of
      two or more dimensions.
    """
    check_choice("biases", biases, ("zero", "copy"))
    return jax.tree.map(lambda d, w: _normalize_leaf(d, w, filter_axis, biases), direction, params)


def filter_normalized_direction(
    key: PRNGKey, params: PyTree, *, filter_axis: int = -1, biases: str = "zero"
) -> PyTree:
    """A Gaussian random direction, filter-normalised to `params` (see `filter_normalize`)."""
    check_choice("biases", biases, ("zero", "copy"))
    return _random_direction(key, params, filter_axis, biases)


@partial(jax.jit, static_argnames=("filter_axis", "biases"))
def _random_direction(key, params, filter_axis, biases):
    flat, unravel = ravel_pytree(params)  # one draw for all leaves: one threefry to compile
    direction = unravel(jax.random.normal(key, flat.shape, flat.dtype))
    return filter_normalize(direction, params, filter_axis=filter_axis, biases=biases)


def plane_loss(
    loss_fn: LossFn,
    center: PyTree,
    directions: tuple[PyTree, PyTree],
    a: Array,
    b: Array,
    *,
    chunk: int | None = None,
) -> Slice:
    r"""The loss on the grid L(θ₀ + a_i δ₁ + b_j δ₂), every point in one jitted vmap.

    Args:
      loss_fn: `loss_fn(params) -> scalar`.
      center: θ₀.
      directions: (δ₁, δ₂), pytrees shaped like θ₀ (need not be orthogonal or normalised).
      a: (n_a,) coefficients along δ₁.
      b: (n_b,) coefficients along δ₂.
      chunk: evaluate this many grid points at a time (less memory).

    Returns:
      A `Slice` with `loss` of shape (n_b, n_a).
    """
    a, b = jnp.ravel(jnp.asarray(a)), jnp.ravel(jnp.asarray(b))
    A, B = jnp.meshgrid(a, b)
    coords = jnp.stack([A.ravel(), B.ravel()], axis=1)
    values = loss_on_subspace(loss_fn, center, tuple(directions), coords, chunk=chunk)
    return Slice(a, b, values.reshape(B.shape), tuple(directions))


def random_slice(
    loss_fn: LossFn,
    params: PyTree,
    key: PRNGKey,
    *,
    span: float = 1.0,
    n: int = 41,
    filter_axis: int = -1,
    biases: str = "zero",
    chunk: int | None = None,
) -> Slice:
    r"""Li et al.'s 2-D view: two filter-normalised random directions through θ*.

    The two directions are drawn independently (not orthogonalised, as in the paper: in many
    dimensions they are nearly orthogonal anyway); a = b = ±1 moves every filter by its own
    norm, so `span` = 1 is the paper's window.

    Args:
      loss_fn: `loss_fn(params) -> scalar`.
      params: θ*, the centre (usually a trained minimum).
      key: random key for the two directions.
      span: the grid covers a, b ∈ [−span, span].
      n: grid points per axis (odd puts θ* itself on the grid).
      filter_axis, biases: see `filter_normalize`.
      chunk: evaluate this many grid points at a time (less memory).

    Returns:
      A `Slice` with `loss` of shape (n, n).
    """
    check_positive("span", span)
    n = check_int("n", n, minimum=2)
    check_key("key", key)
    check_energy("loss_fn", loss_fn, params)
    chunk = check_chunk(chunk)
    k1, k2 = jax.random.split(key)
    directions = tuple(
        filter_normalized_direction(k, params, filter_axis=filter_axis, biases=biases)
        for k in (k1, k2)
    )
    dtype = jnp.result_type(*jax.tree.leaves(params))
    grid = jnp.linspace(-span, span, n, dtype=dtype)
    return plane_loss(loss_fn, params, directions, grid, grid, chunk=chunk)
