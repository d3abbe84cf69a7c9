"""Argument checks that fail early, naming the argument, the value and what is allowed.

Every public factory calls these on concrete (Python or NumPy) values. Traced values, as seen
when a factory is rebuilt inside `jit`/`vmap` for a hyperparameter sweep, and schedules
(callables) are passed through unchecked: they were checked once, on the concrete values.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

import jax
import jax.numpy as jnp
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
    for v in vals:
        bad = not np.isfinite(v)
        if low is not None:
            bad |= v <= low if low_open else v < low
        if high is not None:
            bad |= v >= high if high_open else v > high
        if bad:
            lo_br = "(" if (low is None or low_open) else "["
            hi_br = ")" if (high is None or high_open) else "]"
            lo, hi = "-inf" if low is None else low, "inf" if high is None else high
            allowed = f"{lo_br}{lo}, {hi}{hi_br}"
            shown = value if np.ndim(value) == 0 else f"{value!r} (element {v!r})"
            raise ValueError(f"{arg}={shown} is not allowed: it must be finite and in {allowed}.")
    return value


def check_nonnegative(arg: str, value):
    """Finite and >= 0 (learning rates, temperatures, friction, weight decay)."""
    return check_real(arg, value, low=0.0)


def check_positive(arg: str, value):
    """Finite and > 0 (eps, mass, time step)."""
    return check_real(arg, value, low=0.0, low_open=True)


def check_unit_interval(arg: str, value, dtype=None):
    """In [0, 1): momentum, b1, b2, decay rates; and below 1 in the working `dtype`.

    A value such as 1 − 1e-9 is below 1 but rounds to 1.0 in float32, where a decay of 1
    never forgets (Adam's bias correction divides by zero). `dtype` None means float32
    unless JAX runs with x64 enabled, the widest dtype the computation can then have.
    """
    check_real(arg, value, low=0.0, high=1.0, high_open=True)
    if not _is_concrete(value):
        return value
    if dtype is None:
        dtype = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
    dtype = np.dtype(dtype)
    rounded = _values(value).astype(dtype)
    if np.any(rounded >= 1):
        v = float(_values(value)[np.argmax(rounded >= 1)])
        top = float(np.nextafter(dtype.type(1), dtype.type(0)))
        raise ValueError(
            f"{arg}={v!r} is not allowed: it rounds to 1.0 in {dtype.name}, the working dtype; "
            f"it must be below 1 there (at most {top:.10g})."
        )
    return value


def check_float_dtype(arg: str, dtype):
    """A floating dtype (float16, bfloat16, float32, float64), returned as a NumPy dtype."""
    try:
        out = jnp.dtype(dtype)
    except TypeError:
        out = None
    if out is None or not jnp.issubdtype(out, jnp.floating):
        raise TypeError(
            f"{arg}={dtype!r} is not allowed: it must be a floating dtype such as "
            "jnp.float32, jnp.float64, jnp.bfloat16 or jnp.float16."
        )
    return out


def check_sweep_shape(arg: str, value):
    """A hyperparameter is a number, a schedule, or a non-empty 1-D list of numbers (a sweep)."""
    if type(value) in (list, tuple):  # a NamedTuple (an optax transformation) is not a sweep
        if len(value) == 0:
            raise ValueError(
                f"{arg}={value!r} is not allowed: a swept hyperparameter needs at least one "
                "value (a non-empty 1-D list)."
            )
        if any(isinstance(v, list | tuple) or np.ndim(v) for v in value):
            raise ValueError(
                f"{arg}={value!r} is not allowed: a sweep is a 1-D list of numbers, not a "
                "nested (2-D) one."
            )
        if not all(isinstance(v, int | float | np.number | np.ndarray | jax.Array) for v in value):
            raise TypeError(f"{arg}={value!r} is not allowed: a sweep is a 1-D list of numbers.")
    elif isinstance(value, np.ndarray | jax.Array):
        if value.ndim > 1 or value.size == 0:
            raise ValueError(
                f"{arg} has shape {value.shape}: it must be a scalar or a non-empty 1-D array "
                "(a sweep)."
            )
    return value


def check_energy_output(arg: str, out, args: str) -> None:
    """`out` (a `jax.eval_shape` result of an energy on one particle) must be a real scalar."""
    shape = getattr(out, "shape", None)
    dtype = getattr(out, "dtype", None)
    if shape != () or dtype is None or not jnp.issubdtype(dtype, jnp.floating):
        got = f"shape {shape}, dtype {dtype}" if shape is not None else type(out).__name__
        raise ValueError(
            f"{arg} must return a real scalar (the energy of one particle) for {args}; it "
            f"returns {got}. Sum or average a vector output, e.g. jnp.sum(...)."
        )


def check_energy(arg: str, energy, x) -> None:
    """Trace `energy(x)` with `jax.eval_shape` (no compute): one argument, a real scalar out."""
    try:
        out = jax.eval_shape(energy, x)
    except Exception as err:  # noqa: BLE001 - any failure of the user's function, named
        kind = TypeError if isinstance(err, TypeError) else ValueError
        raise kind(
            f"{arg}={energy!r} cannot be evaluated as energy(x) on x of shape "
            f"{jax.tree.map(jnp.shape, x)}: {type(err).__name__}: {err}"
        ) from err
    check_energy_output(arg, out, f"x of shape {jax.tree.map(jnp.shape, x)}")


def check_int(arg: str, value, *, minimum: int = 1) -> int:
    """An integer >= minimum (steps, batch sizes, dimensions)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{arg}={value!r} is not allowed: it must be an integer >= {minimum}.")
    return int(value)


def check_key(arg: str, key):
    """One JAX random key: `jax.random.key(seed)` (shape ()) or a legacy uint32 key (2,)."""
    if not isinstance(key, jax.Array | np.ndarray):
        hint = f"jax.random.key({key!r})" if isinstance(key, int) else "jax.random.key(0)"
        raise TypeError(f"{arg}={key!r} is not a JAX random key: pass {arg}={hint}.")
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape != ():
            raise ValueError(
                f"{arg} has shape {key.shape}: one key of shape () is needed; for several "
                "runs use an ensemble, or jax.vmap over the call."
            )
        return key
    if key.dtype == np.uint32 and key.shape == (2,):
        return key  # a legacy jax.random.PRNGKey
    raise ValueError(
        f"{arg} has dtype {key.dtype} and shape {key.shape}: it must be one key, "
        "jax.random.key(seed) (or a legacy uint32 key of shape (2,))."
    )


def check_chunk(chunk):
    """None (everything at once) or a number of points >= 1."""
    return None if chunk is None else check_int("chunk", chunk)
