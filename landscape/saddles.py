"""Saddle points: where gradient descent stalls and noise helps it escape."""

from __future__ import annotations

import jax

from ._base import Landscape
from ._points import point
from .validate import check_positive


def saddle(a: float = 1.0, b: float = 1.0) -> Landscape:
    r"""The hyperbolic saddle U(x, y) = a x² − b y².

    .. math::
        U(x, y) = a x^2 - b y^2, \qquad \nabla^2 U = \operatorname{diag}(2a, -2b)

    Gradient descent started on the x axis converges to the saddle at 0; any perturbation
    in y grows like (1 + 2ηb)^t, so noise (temperature) lets the particle escape.

    Args:
      a: curvature (halved) of the stable direction x, > 0.
      b: curvature (halved) of the unstable direction y, > 0.

    Returns:
      A 2-D `Landscape` named "saddle" with its saddle point at 0 and no minima.
    """
    check_positive("a", a)
    check_positive("b", b)
    a, b = float(a), float(b)

    def energy(x: jax.Array) -> jax.Array:
        return a * x[0] ** 2 - b * x[1] ** 2

    return Landscape(
        energy=energy,
        name="saddle",
        dim=2,
        bounds=((-2.0, 2.0), (-2.0, 2.0)),
        saddles=(point((0.0, 0.0), 0.0, "saddle"),),
        description="saddle " + _term(a, "x²") + " − " + _term(b, "y²"),
    )


def monkey_saddle() -> Landscape:
    r"""The monkey saddle U(x, y) = x³ − 3xy², a degenerate saddle with three valleys.

    .. math::
        U(x, y) = x^3 - 3 x y^2 = \operatorname{Re}\,(x + iy)^3, \qquad \nabla^2 U(0) = 0

    Both the gradient and the Hessian vanish at 0, so the escape is polynomial, not
    exponential, in time: a second-order method sees nothing there either.

    Returns:
      A 2-D `Landscape` named "monkey_saddle" with a "monkey" saddle at 0.
    """

    def energy(x: jax.Array) -> jax.Array:
        return x[0] ** 3 - 3.0 * x[0] * x[1] ** 2

    return Landscape(
        energy=energy,
        name="monkey_saddle",
        dim=2,
        bounds=((-1.5, 1.5), (-1.5, 1.5)),
        saddles=(point((0.0, 0.0), 0.0, "monkey"),),
        description="monkey saddle x³ − 3xy²",
    )


def _term(coefficient: float, monomial: str) -> str:
    """'x²' for a unit coefficient, else e.g. '2x²'."""
    return monomial if coefficient == 1 else f"{coefficient:g}{monomial}"
