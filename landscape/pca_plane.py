r"""The plane of the first two principal components of a trajectory, and what it hides.

The iterates θ_0 … θ_{T−1} are flattened, taken relative to a centre θ_c (the final
iterate by default) and decomposed, M = [θ_t − θ_c]_t = U Σ Vᵀ (thin SVD); the plane is
spanned by the first two right singular vectors u₁, u₂ through θ_c. Each iterate has plane
coordinates c_tk = (θ_t − θ_c)·u_k and a distance from the plane

.. math::
    d_t = \Big\lVert \theta_t - \theta_c - \sum_{k=1}^{2} c_{tk} u_k \Big\rVert,
    \qquad \sum_t d_t^2 = \Big(1 - \rho_1 - \rho_2\Big) \sum_t \lVert\theta_t-\theta_c\rVert^2,
    \quad \rho_k = \sigma_k^2 \Big/ \sum_j \sigma_j^2 ,

ρ_k being the explained variance of PC k. The contour map of the loss on this plane is what
Li et al. (2018) draw under the projected path; `honest_view` puts beside it the loss the
path actually had, L(θ_t), and the loss the map shows under it, L(θ_c + c_t1 u₁ + c_t2 u₂):
where they differ, or d_t is not small against |θ_t − θ_c|, the map misrepresents the path.

The SVD is of the displacements from θ_c itself (not re-centred on their mean, as the
sklearn PCA in Li et al.'s code does), so the plane is the best one through θ_c in the
least-squares sense, and ρ₁ + ρ₂ is exactly the fraction of Σ_t |θ_t − θ_c|² it captures.

References:
  Li, Xu, Taylor, Studer & Goldstein (2018), "Visualizing the loss landscape of neural
  nets", NeurIPS, Sec. 7.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from ._affine import LossFn, flatten_stack, loss_along, loss_on_subspace
from .slices import Slice, plane_loss
from .types import Array, PyTree
from .validate import check_chunk, check_energy, check_int, check_nonnegative


class PCAPlane(NamedTuple):
    """The principal-component plane of a trajectory (built by `pca_plane`)."""

    center: PyTree  # θ_c, the plane's origin (the final iterate by default)
    directions: tuple  # (u₁, u₂): orthonormal PC directions, pytrees shaped like θ
    explained_variance: Array  # (2,) ρ₁, ρ₂: fraction of Σ_t |θ_t − θ_c|² along u₁, u₂
    coords: Array  # (T, 2) plane coordinates c_tk = (θ_t − θ_c)·u_k of every iterate
    distance: Array  # (T,) d_t: distance of θ_t from the plane
    displacement: Array  # (T,) |θ_t − θ_c|, the scale d_t is to be read against


class HonestView(NamedTuple):
    """The true loss along a path next to what the PCA-plane map shows (`honest_view`)."""

    true_loss: Array  # (T,) L(θ_t)
    plane_loss: Array  # (T,) L(θ_c + c_t1 u₁ + c_t2 u₂): the map's loss under the path
    distance: Array  # (T,) d_t, distance of θ_t from the plane
    displacement: Array  # (T,) |θ_t − θ_c|


def pca_plane(positions: PyTree, center: PyTree | None = None) -> PCAPlane:
    r"""The first two principal components of the iterates, through θ_c.

    Signs are fixed so that the first iterate has non-negative coordinates (a PC is only
    defined up to sign).

    Args:
      positions: the iterates: a pytree whose leaves have a leading axis T >= 2 (e.g.
        `Trajectory.positions` of one particle). Several trajectories may be concatenated
        along T to share one plane.
      center: θ_c, a pytree shaped like one iterate; default the last iterate.

    Returns:
      A `PCAPlane`.
    """
    n_iterates = {jnp.shape(a)[0] if jnp.ndim(a) else 0 for a in jax.tree.leaves(positions)}
    if len(n_iterates) != 1 or min(n_iterates) < 2:
        raise ValueError(
            f"positions has leading axes {sorted(n_iterates)}: a plane needs one common "
            "axis of T >= 2 iterates on every leaf."
        )
    if center is None:
        center = jax.tree.map(lambda a: a[-1], positions)
    if jax.tree.map(jnp.shape, center) != jax.tree.map(lambda a: jnp.shape(a)[1:], positions):
        raise ValueError("center must be shaped like one iterate of positions.")
    return _pca_plane(positions, center)


@jax.jit
def _pca_plane(positions, center):
    stacked = flatten_stack(positions)  # (T, D)
    flat_c, unravel = ravel_pytree(center)
    m = stacked - flat_c
    _, sigma, vt = jnp.linalg.svd(m, full_matrices=False)
    basis = vt[:2]
    if basis.shape[0] < 2:  # D = 1: the "plane" is a line; pad with a zero direction
        basis = jnp.concatenate([basis, jnp.zeros_like(basis)])
    sign = jnp.where(m[0] @ basis.T < 0, -1, 1).astype(basis.dtype)
    basis = basis * sign[:, None]
    coords = m @ basis.T
    residual = m - coords @ basis
    power = sigma**2
    total = jnp.sum(power)
    ratio = jnp.where(total > 0, power[:2] / jnp.where(total > 0, total, 1), 0)
    ratio = jnp.pad(ratio, (0, 2 - ratio.shape[0]))
    return PCAPlane(
        center=center,
        directions=(unravel(basis[0]), unravel(basis[1])),
        explained_variance=ratio,
        coords=coords,
        distance=jnp.linalg.norm(residual, axis=1),
        displacement=jnp.linalg.norm(m, axis=1),
    )


def honest_view(
    loss_fn: LossFn, positions: PyTree, plane: PCAPlane, *, chunk: int | None = None
) -> HonestView:
    """The true loss L(θ_t) along the path beside the plane's loss at its projection.

    Args:
      loss_fn: `loss_fn(params) -> scalar`.
      positions: the iterates the plane was built from (leading axis T).
      plane: the `PCAPlane` of `positions`.
      chunk: evaluate this many points at a time (less memory).

    Returns:
      A `HonestView`.
    """
    check_energy("loss_fn", loss_fn, plane.center)
    chunk = check_chunk(chunk)
    return HonestView(
        true_loss=loss_along(loss_fn, positions, chunk=chunk),
        plane_loss=loss_on_subspace(
            loss_fn, plane.center, plane.directions, plane.coords, chunk=chunk
        ),
        distance=plane.distance,
        displacement=plane.displacement,
    )


def pca_slice(
    loss_fn: LossFn,
    plane: PCAPlane,
    *,
    n: int = 41,
    margin: float = 0.25,
    chunk: int | None = None,
) -> Slice:
    """The loss on a grid of the PCA plane that covers the projected path.

    Args:
      loss_fn: `loss_fn(params) -> scalar`.
      plane: a `PCAPlane`.
      n: grid points per axis.
      margin: the grid extends the path's bounding box by this fraction of its size on
        every side.
      chunk: evaluate this many grid points at a time (less memory).

    Returns:
      A `Slice` whose `a`, `b` are the PC1, PC2 coordinates (same units as `coords`).
    """
    n = check_int("n", n, minimum=2)
    check_nonnegative("margin", margin)
    check_energy("loss_fn", loss_fn, plane.center)
    chunk = check_chunk(chunk)
    a, b = _window(plane.coords, margin, n)
    return plane_loss(loss_fn, plane.center, plane.directions, a, b, chunk=chunk)


@partial(jax.jit, static_argnames=("n",))
def _window(coords, margin, n):
    """Grid axes over the bounding box of `coords`, widened by `margin` on each side."""
    lo, hi = jnp.min(coords, axis=0), jnp.max(coords, axis=0)
    pad = margin * jnp.maximum(hi - lo, 1e-12 + 1e-3 * jnp.max(hi - lo))
    return jnp.linspace(lo[0] - pad[0], hi[0] + pad[0], n), jnp.linspace(
        lo[1] - pad[1], hi[1] + pad[1], n
    )
