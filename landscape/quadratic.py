"""Quadratic potentials: the harmonic well every optimizer is first analysed on."""

from __future__ import annotations

import math

import jax
import numpy as np

from ._base import BoundEnergy, Landscape
from ._dtype import like
from ._points import point, signature_kind
from .validate import check_int, check_real


def _matrix(arg: str, value) -> np.ndarray:
    """A finite, square, symmetric matrix as float64 NumPy, or ValueError naming `arg`."""
    check_real(arg, value)
    h = np.asarray(value, dtype=np.float64)
    if h.ndim != 2 or h.shape[0] != h.shape[1] or h.shape[0] == 0:
        raise ValueError(f"{arg} has shape {h.shape}: it must be a square (dim, dim) matrix.")
    if not np.allclose(h, h.T, rtol=1e-10, atol=1e-12 * max(1.0, np.abs(h).max())):
        raise ValueError(f"{arg}={value!r} is not symmetric: a Hessian must equal its transpose.")
    return 0.5 * (h + h.T)


def quadratic_energy(params: dict, x: jax.Array) -> jax.Array:
    """½ xᵀHx + bᵀx + c for params {"hessian": H, "b": b, "c": c} (the energy of `quadratic`)."""
    h, b, c = params["hessian"], params["b"], params["c"]
    return 0.5 * x @ (like(h, x) @ x) + like(b, x) @ x + like(c, x)


def valley_energy(hessian, x: jax.Array) -> jax.Array:
    """½ xᵀHx (the energy of `valley`, H its Hessian)."""
    return 0.5 * x @ (like(hessian, x) @ x)


def quadratic(hessian, b=None, c: float = 0.0) -> Landscape:
    r"""The quadratic form U(x) = ½ xᵀHx + bᵀx + c.

    .. math::
        U(x) = \tfrac12 x^\top H x + b^\top x + c, \qquad
        \nabla U = Hx + b, \qquad x^\star = -H^{-1} b, \qquad
        U(x^\star) = c - \tfrac12 b^\top H^{-1} b

    The stationary point x* is listed as the global minimum when H is positive definite, as a
    saddle when H is indefinite and as a maximum (among `saddles`) when H is negative
    definite; nothing is listed when H is singular.

    Args:
      hessian: H, a symmetric (dim, dim) matrix.
      b: the linear term, shape (dim,); zeros when None.
      c: the constant offset.

    Returns:
      A `Landscape` named "quadratic" of dimension dim.
    """
    h = _matrix("hessian", hessian)
    dim = h.shape[0]
    if b is None:
        lin = np.zeros(dim)
    else:
        check_real("b", b)
        lin = np.asarray(b, dtype=np.float64)
        if lin.shape != (dim,):
            raise ValueError(f"b has shape {lin.shape}: it must have shape ({dim},) to match H.")
    check_real("c", c)
    c = float(c)

    eig = np.linalg.eigvalsh(h)
    scale = np.abs(eig).min()
    minima, saddles, center, half = (), (), np.zeros(dim), 2.0
    if scale > 1e-12 * max(1.0, np.abs(eig).max()):  # non-singular: one stationary point
        center = -np.linalg.solve(h, lin)
        p = point(center, c + 0.5 * lin @ center, signature_kind(eig))
        minima, saddles = ((p,), ()) if p.kind == "global" else ((), (p,))
        half = 2.0 / math.sqrt(scale)  # the level set U - U(x*) = 2 along the flattest axis
    bounds = tuple((float(m - half), float(m + half)) for m in center)
    return Landscape(
        energy=BoundEnergy(quadratic_energy, {"hessian": h, "b": lin, "c": c}),
        name="quadratic",
        dim=dim,
        bounds=bounds,
        minima=minima,
        saddles=saddles,
        description=f"quadratic form ½xᵀHx + bᵀx + c in {dim} dimensions",
    )


def valley_hessian(condition_number: float = 100.0, dim: int = 2, angle: float = 0.0):
    """The Hessian of `valley` as a float64 NumPy array (see `valley`)."""
    lam = np.logspace(-math.log10(condition_number), 0.0, dim)
    rot = np.eye(dim)
    cos, sin = math.cos(angle), math.sin(angle)
    rot[:2, :2] = [[cos, -sin], [sin, cos]]
    return (rot * lam) @ rot.T


def valley(condition_number: float = 100.0, dim: int = 2, angle: float = 0.0) -> Landscape:
    r"""An ill-conditioned quadratic valley: the long, narrow ravine where descent zig-zags.

    .. math::
        U(x) = \tfrac12 x^\top R\,\Lambda R^\top x, \qquad
        \Lambda = \operatorname{diag}(\lambda_0, \dots, \lambda_{d-1}),\quad
        \lambda_i = \kappa^{-(1 - i/(d-1))}

    so the curvature runs from λ₀ = 1/κ along the valley floor (x₀) to λ_{d-1} = 1 across it,
    log-spaced in between; R rotates the (x₀, x₁) plane by `angle`. The minimum is at 0.
    Gradient descent is stable for η < 2/λ_max = 2 and converges on the floor at rate
    1 - η/κ, the textbook motivation for momentum.

    The plotting box holds the ellipse U = ½ with a margin of 1.25, i.e. half-widths √κ along
    the floor and 1 across it before rotation: a start at (-0.9 a, 0.5 b) of the box
    [-a, a] × [-b, b] shows the zig-zag.

    Args:
      condition_number: κ = λ_max / λ_min >= 1.
      dim: the dimension d >= 2.
      angle: rotation of the valley in the (x₀, x₁) plane, radians.

    Returns:
      A `Landscape` named "valley".
    """
    check_real("condition_number", condition_number, low=1.0)
    dim = check_int("dim", dim, minimum=2)
    check_real("angle", angle)
    kappa, angle = float(condition_number), float(angle)
    h = valley_hessian(kappa, dim, angle)

    # Half-width of the box along coordinate i: the extent of the ellipse xᵀHx = 1.
    half = 1.25 * np.sqrt(np.diag(np.linalg.inv(h)))
    return Landscape(
        energy=BoundEnergy(valley_energy, h),
        name="valley",
        dim=dim,
        bounds=tuple((-float(w), float(w)) for w in half),
        minima=(point(np.zeros(dim), 0.0, "global"),),
        description=f"ill-conditioned quadratic valley, κ = {kappa:g}, {dim}-D",
    )
