"""Landscapes by name: `get("rosenbrock", dim=3)`, `names()`."""

from __future__ import annotations

import inspect
from collections.abc import Callable

from landscape._base import Landscape
from landscape._validate import check_choice
from landscape.classic import beale, himmelblau, rosenbrock, six_hump_camel
from landscape.double_well import double_well
from landscape.finite_sum import least_squares
from landscape.muller_brown import muller_brown
from landscape.multimodal import rastrigin, styblinski_tang
from landscape.quadratic import quadratic, valley
from landscape.saddles import monkey_saddle, saddle

_FACTORIES: dict[str, Callable[..., Landscape]] = {
    f.__name__: f
    for f in (
        quadratic,
        valley,
        saddle,
        monkey_saddle,
        double_well,
        rosenbrock,
        beale,
        himmelblau,
        rastrigin,
        six_hump_camel,
        muller_brown,
        styblinski_tang,
        least_squares,
    )
}


def names() -> tuple[str, ...]:
    """The names `get` knows, sorted."""
    return tuple(sorted(_FACTORIES))


def get(name: str, **kwargs) -> Landscape:
    """Build the landscape called `name` with the factory's keyword arguments.

    Args:
      name: one of `names()`; a misspelling raises ValueError suggesting the closest name.
      **kwargs: arguments of that factory (e.g. `dim=3`); an unknown one raises ValueError
        suggesting the closest argument, so typos are never swallowed.

    Returns:
      The `Landscape`.
    """
    factory = _FACTORIES[check_choice("name", name, _FACTORIES)]
    params = inspect.signature(factory).parameters
    for key in kwargs:
        check_choice(f"{name} argument", key, params)
    return factory(**kwargs)
