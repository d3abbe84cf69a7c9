"""The double well: two minima and a barrier, the landscape of Kramers' escape problem."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from ._base import BoundEnergy, Landscape
from ._dtype import like
from ._points import point
from .validate import check_int, check_positive


def double_well_energy(params: dict, x: jax.Array) -> jax.Array:
    """ΔU (x₀² − 1)² + ½ k Σ_{i≥1} x_i² for params {"barrier": ΔU, "stiffness": k}."""
    barrier, stiffness = like(params["barrier"], x), like(params["stiffness"], x)
    return barrier * (x[0] ** 2 - 1.0) ** 2 + 0.5 * stiffness * jnp.sum(x[1:] ** 2)


def double_well(dim: int = 1, barrier: float = 1.0, stiffness: float = 1.0) -> Landscape:
    r"""A symmetric double well along x₀, harmonic in every other coordinate.

    .. math::
        U(x) = \Delta U\,(x_0^2 - 1)^2 + \tfrac12 k \sum_{i \ge 1} x_i^2

    with ΔU the `barrier` and k the `stiffness`. The minima are at ±e₀ with U = 0 and
    curvature 8ΔU along x₀; the barrier top is at 0 with U = ΔU and curvature −4ΔU along x₀.
    In one dimension the barrier top is a maximum (listed among `saddles` with kind
    "maximum"); for dim >= 2 it is a saddle. Kramers' rate of escape over the barrier at
    temperature T ≪ ΔU, for overdamped motion dx = −∇U dt + √(2T) dW, is
    r = (√(U''(min)·|U''(top)|)/2π)·exp(−ΔU/T) = (√32·ΔU/2π)·exp(−ΔU/T) (the transverse
    curvatures are equal at the minimum and the saddle and cancel).

    Args:
      dim: dimension >= 1.
      barrier: barrier height ΔU > 0.
      stiffness: curvature k > 0 of the transverse harmonic directions.

    Returns:
      A `Landscape` named "double_well".

    References:
      H. A. Kramers, "Brownian motion in a field of force and the diffusion model of
      chemical reactions", Physica 7 (1940) 284-304.
    """
    dim = check_int("dim", dim)
    check_positive("barrier", barrier)
    check_positive("stiffness", stiffness)
    barrier, stiffness = float(barrier), float(stiffness)

    e0 = np.eye(dim)[0]
    top_kind = "maximum" if dim == 1 else "saddle"
    transverse = 2.0 * math.sqrt(barrier / stiffness)  # where ½ k y² = 2ΔU
    return Landscape(
        # arrays: a new barrier or stiffness is traced, not compiled again
        energy=BoundEnergy(
            double_well_energy, {"barrier": np.asarray(barrier), "stiffness": np.asarray(stiffness)}
        ),
        name="double_well",
        dim=dim,
        bounds=((-1.75, 1.75),) + ((-transverse, transverse),) * (dim - 1),
        minima=(point(-e0, 0.0, "global"), point(e0, 0.0, "global")),
        saddles=(point(np.zeros(dim), barrier, top_kind),),
        description=f"double well, barrier {barrier:g}, {dim}-D",
    )
