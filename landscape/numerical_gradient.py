r"""Numerical gradients by finite differences, and a check of `jax.grad` against them.

    g = numerical_gradient(U, x)               # central differences, h from the dtype
    check_gradient(U, x).relative_error        # ~1e-10 in float64 for a correct gradient

The force −∇U measured the way an experimentalist would: displace the particle by h along
one coordinate and read the change of the energy. Two errors compete. Truncation (Taylor):

.. math::
    \frac{U(x+h e_i) - U(x)}{h} = \partial_i U + \tfrac{h}{2}\,\partial_i^2 U + O(h^2),
    \qquad
    \frac{U(x+h e_i) - U(x-h e_i)}{2h} = \partial_i U + \tfrac{h^2}{6}\,\partial_i^3 U + O(h^4),

and round-off: each U is known to ε|U| (ε the machine epsilon of the dtype), so the
difference quotient carries an error ~ε|U|/h. Minimising a·h^p + b/h gives the optimal step
h* = (b/(p·a))^{1/(p+1)} ∝ ε^{1/2} (forward, p = 1) or ε^{1/3} (central, p = 2), where the
relative error is ~ε^{1/2} or ~ε^{2/3}: ~3e-4 and ~5e-6 in float32, ~1e-8 and ~4e-11 in
float64. The default h is that optimum for |U| ~ |∂³U| ~ 1, scaled by max(1, |x_i|) so that
x_i + h differs from x_i in the same number of digits at every scale, and the step actually
taken is the representable one, (x_i + h) − x_i.

References:
  Press et al., Numerical Recipes, 3rd ed., §5.7 "Numerical derivatives".
  Nocedal & Wright, Numerical Optimization, 2nd ed., §8.1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from .types import PyTree
from .validate import check_choice, check_positive

SCHEMES = {"forward": 0.5, "central": 1.0 / 3.0}
"""Finite-difference schemes and the exponent k of their default step h = ε^k·max(1, |x_i|)."""


def default_step(dtype, scheme: str = "central") -> float:
    """The default relative step ε^{1/2} (forward) or ε^{1/3} (central) of a float dtype."""
    check_choice("scheme", scheme, SCHEMES)
    return float(jnp.finfo(dtype).eps) ** SCHEMES[scheme]


def numerical_gradient(
    f: Callable[[PyTree], jax.Array],
    x: PyTree,
    h: float | None = None,
    scheme: str = "central",
    *,
    coordinates: jax.Array | None = None,
) -> PyTree:
    r"""∇f(x) by forward or central differences, on any pytree `x`.

    .. math::
        g_i = \frac{f(x + h_i e_i) - f(x)}{h_i}\ \text{(forward)}, \qquad
        g_i = \frac{f(x + h_i e_i) - f(x - h_i e_i)}{2h_i}\ \text{(central)}

    over every coordinate of `x` flattened (`jax.flatten_util.ravel_pytree`); one (forward)
    or two (central) evaluations of f per coordinate, run one after the other with
    `jax.lax.map` (memory of one evaluation).

    Args:
      f: a scalar function of the pytree `x` (an energy, or `lambda p: loss(p, batch)`); a
        `Landscape` works too.
      x: the point, any pytree of floating arrays; f is evaluated in its dtype.
      h: the step, > 0; default (None) `default_step(dtype, scheme)·max(1, |x_i|)`. A given
        h is used as it is on every coordinate.
      scheme: "central" (error O(h²)) or "forward" (O(h)).
      coordinates: flat indices of the coordinates to difference (a gradient check on a
        sample of a large network's parameters); default all.

    Returns:
      The gradient, a pytree like `x`; with `coordinates`, a 1-D array of those partials.
    """
    check_choice("scheme", scheme, SCHEMES)
    flat, unravel = ravel_pytree(x)
    if not jnp.issubdtype(flat.dtype, jnp.floating):
        raise TypeError(f"x has dtype {flat.dtype}: numerical_gradient needs floating arrays.")
    if h is None:
        steps = default_step(flat.dtype, scheme) * jnp.maximum(1.0, jnp.abs(flat))
    else:
        check_positive("h", h)
        steps = jnp.full_like(flat, h)

    def value(z):
        return jnp.asarray(f(unravel(z)), flat.dtype)

    index = jnp.arange(flat.size) if coordinates is None else jnp.asarray(coordinates)
    f0 = value(flat) if scheme == "forward" else None

    def partial(args):
        i, hi = args
        up = flat[i] + hi  # the representable displacement: (x + h) − x
        if scheme == "forward":
            return (value(flat.at[i].set(up)) - f0) / (up - flat[i])
        down = flat[i] - hi
        return (value(flat.at[i].set(up)) - value(flat.at[i].set(down))) / (up - down)

    partials = jax.lax.map(partial, (index, steps[index]))
    return partials if coordinates is not None else unravel(partials)


class ErrorModel(NamedTuple):
    """The two parts of the predicted error of a finite-difference gradient, relative to ‖∇f‖."""

    truncation: jax.Array  # ‖(h/2)·∂²_i f‖ (forward) or ‖(h²/6)·∂³_i f‖ (central), / ‖∇f‖
    roundoff: jax.Array  # ε|f|·√(n/2)/h (central) or ε|f|·√(2n)/h (forward), / ‖∇f‖

    @property
    def total(self) -> jax.Array:
        return self.truncation + self.roundoff


def finite_difference_error(
    f: Callable[[PyTree], jax.Array],
    x: PyTree,
    h,
    scheme: str = "central",
    *,
    coordinates: jax.Array | None = None,
    dtype=None,
) -> ErrorModel:
    r"""The predicted relative error of `numerical_gradient(f, x, h, scheme)`.

    Truncation from the leading Taylor term of every coordinate, ‖(h/2)∂²_i f‖ (forward) or
    ‖(h²/6)∂³_i f‖ (central), the derivatives along e_i taken exactly by nested `jax.jvp`;
    round-off from the two values of f each rounded to ε|f| (independent errors):
    √2·ε|f|/h per forward partial, ε|f|/(√2·h) per central one, times √n over n partials.
    Both are divided by ‖∇f‖. Minimising their sum over h gives the optimal step.

    Args:
      f, x, scheme, coordinates: as `numerical_gradient` (the norms over `coordinates`).
      h: the step, a number or an array of steps (the result then has its shape).
      dtype: the dtype whose ε sets the round-off (default x's); evaluate the derivatives in
        float64 and pass `dtype=jnp.float32` to predict a float32 difference quotient without
        the float32 error of the prediction itself.
    """
    check_choice("scheme", scheme, SCHEMES)
    flat, unravel = ravel_pytree(x)
    index = jnp.arange(flat.size) if coordinates is None else jnp.asarray(coordinates)
    order = 2 if scheme == "forward" else 3

    def along(i):  # (∂_i f, ∂_i^order f) at x, by nested forward-mode derivatives
        e = jnp.zeros_like(flat).at[i].set(1.0)
        line = lambda t: f(unravel(flat + t * e))  # noqa: E731
        derivs = [line]
        for _ in range(order):
            prev = derivs[-1]
            derivs.append(lambda t, prev=prev: jax.jvp(prev, (t,), (jnp.ones_like(t),))[1])
        t0 = jnp.zeros((), flat.dtype)
        return derivs[1](t0), derivs[order](t0)

    first, high = jax.lax.map(along, index)
    gnorm = jnp.linalg.norm(first)
    eps = jnp.finfo(flat.dtype if dtype is None else dtype).eps
    h = jnp.asarray(h, flat.dtype)
    size = jnp.sqrt(jnp.asarray(index.size, flat.dtype))
    fx = jnp.abs(jnp.asarray(f(x), flat.dtype))
    if scheme == "forward":
        trunc, round_ = h / 2 * jnp.linalg.norm(high), jnp.sqrt(2.0) * eps * fx * size / h
    else:
        trunc, round_ = h**2 / 6 * jnp.linalg.norm(high), eps * fx * size / (jnp.sqrt(2.0) * h)
    return ErrorModel(trunc / gnorm, round_ / gnorm)


class GradientCheck(NamedTuple):
    """The report of `check_gradient`."""

    relative_error: jax.Array  # ‖g − g_num‖ / max(‖g‖, ‖g_num‖), scalar
    max_abs_error: jax.Array  # max_i |g_i − g_num,i|, scalar
    gradient: PyTree  # g, the gradient checked (jax.grad by default)
    numerical: PyTree  # g_num, the finite-difference gradient


def check_gradient(
    f: Callable[[PyTree], jax.Array],
    x: PyTree,
    h: float | None = None,
    scheme: str = "central",
    *,
    grad: Callable[[PyTree], PyTree] | None = None,
) -> GradientCheck:
    r"""Compare a gradient (backprop, `jax.grad(f)` by default) with finite differences.

    .. math::
        r = \frac{\|g - g_{\mathrm{num}}\|}{\max(\|g\|, \|g_{\mathrm{num}}\|)}

    A correct gradient gives r at the finite-difference error: ~ε^{2/3} central, ~ε^{1/2}
    forward, times the ratio of the Taylor constants to ‖g‖ (module docstring); a wrong one
    gives r of order 1.

    Args:
      f: scalar function of the pytree `x`.
      x: the point.
      h, scheme: as `numerical_gradient`.
      grad: the gradient function to check, `grad(x) -> pytree like x` (e.g. a hand-written
        backward pass); default `jax.grad(f)`.

    Returns:
      A `GradientCheck(relative_error, max_abs_error, gradient, numerical)`.
    """
    if grad is not None and not callable(grad):
        raise TypeError(f"grad={grad!r} is not allowed: give a function grad(x) -> pytree.")
    g = (jax.grad(f) if grad is None else grad)(x)
    g_num = numerical_gradient(f, x, h, scheme)
    a, b = ravel_pytree(g)[0], ravel_pytree(g_num)[0]
    if a.shape != b.shape:
        raise ValueError(f"grad(x) has {a.size} coordinates but x has {b.size}.")
    diff = jnp.linalg.norm(a - b)
    scale = jnp.maximum(jnp.linalg.norm(a), jnp.linalg.norm(b))
    scale = jnp.maximum(scale, jnp.finfo(b.dtype).tiny)
    return GradientCheck(diff / scale, jnp.max(jnp.abs(a - b)), g, g_num)
