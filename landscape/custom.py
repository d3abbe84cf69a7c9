"""Wrapping any user energy function as a `Landscape`."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import jax
import jax.numpy as jnp
import numpy as np

from ._base import Landscape, Point
from ._points import point
from .validate import check_choice, check_energy, check_int, check_real

MINIMUM_KINDS = ("global", "local")
SADDLE_KINDS = ("saddle", "monkey", "maximum")


def _points(arg: str, values: Iterable, kinds: tuple[str, ...], dim: int | None):
    out = []
    for i, p in enumerate(values):
        try:
            x, value, kind = p
        except (TypeError, ValueError):
            raise ValueError(
                f"{arg}[{i}]={p!r} is not allowed: it must be a Point(x, value, kind)."
            ) from None
        check_choice(f"{arg}[{i}].kind", kind, kinds)
        check_real(f"{arg}[{i}].x", x)
        check_real(f"{arg}[{i}].value", value)
        if dim is not None and np.size(x) != dim:
            raise ValueError(f"{arg}[{i}].x={x!r} has {np.size(x)} coordinates, not dim={dim}.")
        out.append(point(x, value, kind))
    return tuple(out)


def _bounds(bounds: Iterable, dim: int | None) -> tuple[tuple[float, float], ...]:
    out = []
    for i, pair in enumerate(bounds):
        check_real(f"bounds[{i}]", pair)
        if np.shape(pair) != (2,) or not pair[0] < pair[1]:
            raise ValueError(f"bounds[{i}]={pair!r} is not allowed: it must be (low, high).")
        out.append((float(pair[0]), float(pair[1])))
    if out and dim is not None and len(out) != dim:
        raise ValueError(f"bounds has {len(out)} (low, high) pairs: it needs dim={dim}.")
    return tuple(out)


def from_function(
    energy: Callable,
    name: str = "custom",
    dim: int | None = None,
    bounds: Iterable = (),
    minima: Iterable[Point] = (),
    saddles: Iterable[Point] = (),
    description: str = "",
) -> Landscape:
    """Wrap a user's energy (loss) function as a `Landscape`.

    Args:
      energy: a pure JAX function returning a scalar. With `dim` set it takes x of shape
        (dim,); with `dim=None` it may take any pytree of parameters.
      name: short identifier.
      dim: the dimension of x, or None for a pytree or any dimension.
      bounds: plotting box, one (low, high) pair per coordinate.
      minima: known minima as `Point`s or (x, value, kind) triples, kind "global"/"local".
      saddles: known saddles as `Point`s, kind "saddle", "monkey" or "maximum".
      description: one line for listings and figure titles.

    Returns:
      The `Landscape`. With `dim` set, `energy` is traced once with `jax.eval_shape` (no
      compute) and must take one argument x of shape (dim,) and return a real scalar; the
      listed points are not checked (the tests of this package check those of the built-in
      landscapes). With `dim=None`, `simulate` makes the same check on x0.
    """
    if not callable(energy):
        raise ValueError(f"energy={energy!r} is not allowed: it must be a callable energy(x).")
    if not isinstance(name, str) or not name:
        raise ValueError(f"name={name!r} is not allowed: it must be a non-empty string.")
    if dim is not None:
        dim = check_int("dim", dim)
        check_energy("energy", energy, jax.ShapeDtypeStruct((dim,), jnp.float32))
    return Landscape(
        energy=energy,
        name=name,
        dim=dim,
        bounds=_bounds(bounds, dim),
        minima=_points("minima", minima, MINIMUM_KINDS, dim),
        saddles=_points("saddles", saddles, SADDLE_KINDS, dim),
        description=str(description),
    )
