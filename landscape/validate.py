"""Argument checks that fail early, naming the argument, the value and what is allowed.

Every public factory calls these on concrete (Python or NumPy) values. Traced values, as seen
when a factory is rebuilt inside `jit`/`vmap` for a hyperparameter sweep, and schedules
(callables) are passed through unchecked: they were checked once, on the concrete values.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

import jax
import numpy as np


def _is_concrete(value) -> bool:
    return not isinstance(value, jax.core.Tracer) and not callable(value)


def closest_name(value: str, choices: Iterable[str]) -> str | None:
    """The choice closest to a misspelt `value`, or None when nothing is close."""
    matches = difflib.get_close_matches(str(value), list(choices), n=1, cutoff=0.5)
    return matches[0] if matches else None


def check_choice(arg: str, value: str, choices: Iterable[str]) -> str:
    """Raise ValueError unless `value` is one of `choices`, suggesting the closest one."""
    choices = sorted(choices)
    if value in choices:
        return value
    hint = closest_name(value, choices)
    did_you_mean = f" Did you mean {hint!r}?" if hint else ""
    raise ValueError(
        f"{arg}={value!r} is not known.{did_you_mean} Allowed: {', '.join(map(repr, choices))}."
    )


def _values(value) -> np.ndarray:
    return np.asarray(value, dtype=float).ravel()


def check_real(arg: str, value, *, low=None, high=None, low_open=False, high_open=False):
    """Raise ValueError unless every element of `value` is finite and inside the interval.

    The interval is [low, high] with `low_open`/`high_open` making either end open;
    None means unbounded on that side. Tracers and schedules are returned unchecked.
    """
    if not _is_concrete(value):
        return value
    try:
        vals = _values(value)
    except (TypeError, ValueError):
        raise ValueError(f"{arg}={value!r} is not a number.") from None
    lo_br = "(" if (low is None or low_open) else "["
    hi_br = ")" if (high is None or high_open) else "]"
    allowed = f"{lo_br}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi_br}"
    for v in vals:
        bad = not np.isfinite(v)
        if low is not None:
            bad |= v <= low if low_open else v < low
        if high is not None:
            bad |= v >= high if high_open else v > high
        if bad:
            shown = value if np.ndim(value) == 0 else f"{value!r} (element {v!r})"
            raise ValueError(f"{arg}={shown} is not allowed: it must be finite and in {allowed}.")
    return value


def check_nonnegative(arg: str, value):
    """Finite and >= 0 (learning rates, temperatures, friction, weight decay)."""
    return check_real(arg, value, low=0.0)


def check_positive(arg: str, value):
    """Finite and > 0 (eps, mass, time step)."""
    return check_real(arg, value, low=0.0, low_open=True)


def check_unit_interval(arg: str, value):
    """In [0, 1): momentum, b1, b2, decay rates."""
    return check_real(arg, value, low=0.0, high=1.0, high_open=True)


def check_int(arg: str, value, *, minimum: int = 1) -> int:
    """An integer >= minimum (steps, batch sizes, dimensions)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{arg}={value!r} is not allowed: it must be an integer >= {minimum}.")
    return int(value)
