"""Landscapes by name: `get("rosenbrock", dim=3)`, `names()`."""

from __future__ import annotations

import inspect
from collections.abc import Callable

from ._base import Landscape
from .classic import beale, himmelblau, rosenbrock, six_hump_camel
from .double_well import double_well
from .finite_sum import least_squares
from .muller_brown import muller_brown
from .multimodal import rastrigin, styblinski_tang
from .quadratic import quadratic, valley
from .saddles import monkey_saddle, saddle
from .validate import check_choice

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
