r"""1-D linear interpolation of the loss between two parameter sets, and the barrier on it.

.. math::
    \theta(\alpha) = (1-\alpha)\,\theta_A + \alpha\,\theta_B, \qquad
    \Delta L^\ddagger = \max_{\alpha\in[0,1]} L(\theta(\alpha)) - \max(L(\theta_A), L(\theta_B))

From the initial to the final parameters it is the view of Goodfellow, Vinyals & Saxe (2015);
between the minima reached from two seeds, a barrier ΔL‡ > 0 says the minima are distinct
basins, while ΔL‡ ≈ 0 says they are linearly connected (the solution is not unique either
way: two different θ with the same training loss).

References:
  Goodfellow, Vinyals & Saxe (2015), "Qualitatively characterizing neural network
  optimization problems", ICLR.
  Draxler et al. (2018), "Essentially no barriers in neural network energy landscape", ICML.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ._affine import LossFn, flatten, loss_on_subspace
from .types import Array, PyTree
from .validate import check_chunk, check_energy, check_int


class Interpolation(NamedTuple):
    """The loss along the segment from θ_A to θ_B (built by `interpolate`)."""

    alpha: Array  # (n,) the interpolation coefficients α (may extend beyond [0, 1])
    loss: Array  # (n,) L((1 − α) θ_A + α θ_B)
    loss_a: Array  # scalar: L(θ_A), α = 0
    loss_b: Array  # scalar: L(θ_B), α = 1
    barrier: Array  # scalar ΔL‡ >= 0: highest grid loss on [0, 1] minus max(L_A, L_B)
    alpha_peak: Array  # scalar: the α in [0, 1] of that highest loss
    distance: Array  # scalar |θ_B − θ_A| (Euclidean, all leaves)


def interpolate(
    loss_fn: LossFn,
    params_a: PyTree,
    params_b: PyTree,
    alpha: Array | None = None,
    *,
    n: int = 51,
    chunk: int | None = None,
) -> Interpolation:
    r"""The loss on the line θ(α) = (1 − α) θ_A + α θ_B and the barrier between the ends.

    The barrier is a grid estimate: the highest loss at the grid points α ∈ [0, 1] (and the
    two ends, always evaluated) minus the higher end, so it is >= 0, a lower bound on the
    true barrier that tightens as the grid is refined.

    Args:
      loss_fn: `loss_fn(params) -> scalar` on the pytree of `params_a` (close over the data).
      params_a: θ_A, α = 0 (e.g. the initial parameters, or the minimum of seed 1).
      params_b: θ_B, α = 1, the same structure (the final parameters, or seed 2's minimum).
      alpha: the coefficients to evaluate; default `n` points evenly spaced on [0, 1].
      n: number of points of the default grid (>= 2; odd puts a point at α = ½).
      chunk: evaluate this many points at a time (less memory), see `loss_on_subspace`.

    Returns:
      An `Interpolation`.
    """
    shapes_a = jax.tree.map(jnp.shape, params_a)
    shapes_b = jax.tree.map(jnp.shape, params_b)
    if jax.tree.structure(params_a) != jax.tree.structure(params_b) or shapes_a != shapes_b:
        raise ValueError(
            "params_a and params_b must be pytrees of the same structure and shapes; got "
            f"{shapes_a} and {shapes_b}."
        )
    check_energy("loss_fn", loss_fn, params_a)
    chunk = check_chunk(chunk)
    dtype = jnp.result_type(*jax.tree.leaves(params_a))
    if alpha is None:
        alpha = jnp.linspace(0.0, 1.0, check_int("n", n, minimum=2), dtype=dtype)
    alpha = jnp.asarray(alpha, dtype=dtype).reshape(-1)
    return _interpolate(loss_fn, params_a, params_b, alpha, chunk)


@partial(jax.jit, static_argnames=("loss_fn", "chunk"))
def _interpolate(loss_fn, params_a, params_b, alpha, chunk):
    delta = jax.tree.map(lambda b, a: b - a, params_b, params_a)
    coords = jnp.concatenate([alpha, jnp.array([0.0, 1.0], alpha.dtype)])[:, None]
    values = loss_on_subspace(loss_fn, params_a, (delta,), coords, chunk=chunk)
    loss, loss_a, loss_b = values[:-2], values[-2], values[-1]
    inside = jnp.concatenate([(alpha >= 0) & (alpha <= 1), jnp.array([True, True])])
    masked = jnp.where(inside, values, -jnp.inf)
    peak = jnp.argmax(masked)
    return Interpolation(
        alpha=alpha,
        loss=loss,
        loss_a=loss_a,
        loss_b=loss_b,
        barrier=masked[peak] - jnp.maximum(loss_a, loss_b),
        alpha_peak=coords[peak, 0],
        distance=jnp.linalg.norm(flatten(params_b) - flatten(params_a)),
    )
