"""The `Landscape`: a potential energy with the metadata needed to plot and check it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp


class Point(NamedTuple):
    """A stationary point of a landscape.

    Attributes:
      x: coordinates, a tuple of floats of length `dim`.
      value: the energy at `x`.
      kind: "global" or "local" for a minimum; "saddle" (or "monkey" for a degenerate
        saddle whose Hessian vanishes) for a saddle point; "maximum" for a maximum.
    """

    x: tuple[float, ...]
    value: float
    kind: str


@dataclasses.dataclass(frozen=True, eq=False)
class Landscape:
    """A potential energy surface U(x) for one particle x of shape (dim,).

    The force is -∇U, taken with `jax.grad`; the Hessian with `jax.hessian`. Landscapes
    hash by identity, so a jitted simulation compiles once per landscape object.

    Attributes:
      energy: pure JAX function `energy(x) -> scalar` for x of shape (dim,) (or, for a
        user function on a pytree, whatever structure the user's parameters have).
      name: short identifier, e.g. "rosenbrock".
      dim: the dimension of x, or None when any dimension (or a pytree) is accepted.
      bounds: plotting box, one (low, high) pair per coordinate; empty when unknown.
      minima: known minima as `Point`s (global ones first).
      saddles: known saddle points (and maxima) as `Point`s.
      description: one line for listings and figure titles.
    """

    energy: Callable[[jax.Array], jax.Array]
    name: str
    dim: int | None
    bounds: tuple[tuple[float, float], ...] = ()
    minima: tuple[Point, ...] = ()
    saddles: tuple[Point, ...] = ()
    description: str = ""

    def __call__(self, x):
        return self.energy(x)

    def grad(self, x):
        """∇U(x), the negative force."""
        return jax.grad(self.energy)(x)

    def hessian(self, x):
        """The Hessian matrix ∇²U(x) for x of shape (dim,)."""
        return jax.hessian(self.energy)(x)

    def force(self, x):
        """F(x) = -∇U(x)."""
        return jax.tree_util.tree_map(jnp.negative, self.grad(x))

    @property
    def global_minimum(self) -> Point | None:
        """The lowest known minimum, or None when none is known."""
        return min(self.minima, key=lambda p: p.value) if self.minima else None
