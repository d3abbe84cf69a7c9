"""Separable multimodal test functions: Rastrigin and Styblinski–Tang."""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp

from ._base import BoundEnergy, Landscape
from ._dtype import like
from ._points import point
from .validate import check_int, check_positive


def rastrigin_energy(amplitude, x: jax.Array) -> jax.Array:
    """A d + Σ (x_i² − A cos 2πx_i) for the amplitude A."""
    amp = like(amplitude, x)
    return amp * x.shape[-1] + jnp.sum(x**2 - amp * jnp.cos(2.0 * math.pi * x))


def rastrigin(dim: int = 2, A: float = 10.0) -> Landscape:
    r"""Rastrigin's function: a bowl covered in a regular egg-crate of local minima.

    .. math::
        U(x) = A d + \sum_{i=0}^{d-1} \left(x_i^2 - A \cos(2\pi x_i)\right)

    Global minimum 0 at x = 0. The ~11^d local minima near the integer lattice are not
    listed. Annealing the temperature lets a particle hop between them.

    Args:
      dim: dimension d >= 1.
      A: amplitude of the cosine corrugation, > 0.

    Returns:
      A `Landscape` named "rastrigin".

    References:
      L. A. Rastrigin, "Systems of extremal control", Nauka, Moscow (1974).
    """
    dim = check_int("dim", dim)
    check_positive("A", A)
    amp = float(A)

    return Landscape(
        energy=BoundEnergy(rastrigin_energy, amp),
        name="rastrigin",
        dim=dim,
        bounds=((-5.12, 5.12),) * dim,
        minima=(point((0.0,) * dim, 0.0, "global"),),
        description=f"Rastrigin's function, A = {amp:g}, {dim}-D",
    )


# Roots of 4x³ − 32x + 5 (stationary points of the 1-D Styblinski–Tang term), Newton-refined
# in float64, with the value of ½(x⁴ − 16x² + 5x) there.
_ST_MIN = (-2.903534027771177, -39.16616570377141)  # global minimum
_ST_MAX = (0.1567312567803401, 0.19561235905535804)  # maximum
_ST_LOCAL = (2.746802770990837, -25.02944665528394)  # local minimum
_ST_LIST_ALL_UP_TO = 3  # all 3^d stationary points are listed for d <= 3


def styblinski_tang_energy(params: None, x: jax.Array) -> jax.Array:
    """½ Σ (x_i⁴ − 16 x_i² + 5 x_i) (no parameters: `params` is None)."""
    return 0.5 * jnp.sum(x**4 - 16.0 * x**2 + 5.0 * x)


def styblinski_tang(dim: int = 2) -> Landscape:
    r"""The Styblinski–Tang function: separable, with 2^d minima of unequal depth.

    .. math::
        U(x) = \tfrac12 \sum_{i=0}^{d-1} \left(x_i^4 - 16 x_i^2 + 5 x_i\right)

    Each coordinate has two minima, x = −2.903534 (deeper) and x = 2.746803, and a maximum
    at x = 0.156731, so the stationary points are the 3^d combinations. The global minimum
    is x_i = −2.903534 with U ≈ −39.16617·d. For d <= 3 every stationary point is listed
    (minima with kind "global"/"local", saddles, and the maximum among `saddles`); for
    larger d only the global minimum.

    Args:
      dim: dimension d >= 1.

    Returns:
      A `Landscape` named "styblinski_tang".

    References:
      M. A. Styblinski, T.-S. Tang, "Experiments in nonconvex optimization: stochastic
      approximation with function smoothing and simulated annealing", Neural Networks 3
      (1990) 467-483.
    """
    dim = check_int("dim", dim)

    combos = [(_ST_MIN,) * dim]
    if dim <= _ST_LIST_ALL_UP_TO:
        combos = list(itertools.product((_ST_MIN, _ST_LOCAL, _ST_MAX), repeat=dim))
    minima, saddles = [], []
    for combo in combos:
        x = tuple(c[0] for c in combo)
        value = sum(c[1] for c in combo)
        n_max = sum(c is _ST_MAX for c in combo)
        if n_max == 0:
            kind = "global" if all(c is _ST_MIN for c in combo) else "local"
            minima.append(point(x, value, kind))
        else:
            saddles.append(point(x, value, "maximum" if n_max == dim else "saddle"))
    minima.sort(key=lambda p: p.value)
    saddles.sort(key=lambda p: p.value)
    return Landscape(
        energy=BoundEnergy(styblinski_tang_energy, None),
        name="styblinski_tang",
        dim=dim,
        bounds=((-5.0, 5.0),) * dim,
        minima=tuple(minima),
        saddles=tuple(saddles),
        description=f"Styblinski–Tang function, {dim}-D",
    )
