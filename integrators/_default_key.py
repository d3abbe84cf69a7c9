"""The key a run uses when the caller gives none, and the one warning that says so."""

from __future__ import annotations

import functools
import warnings

import jax
import numpy as np

from ._base import Integrator
from .noise import Exact

_warned = False  # warn once per process: a loop over seeds shows it at its first call


def _is_hot(temperature) -> bool:
    """Whether a temperature hyperparameter can draw noise (a schedule or a nonzero value)."""
    if callable(temperature):
        return True
    try:
        return bool(np.any(np.asarray(temperature, dtype=float) != 0.0))
    except (TypeError, ValueError):  # a tracer: assume it may be hot
        return True


def is_noisy(integrator: Integrator, noise) -> bool:
    """Whether a run draws random numbers: thermal noise (T ≠ 0) or a gradient-noise model."""
    temperature = (integrator.hyperparams or {}).get("temperature", 0.0)
    return not isinstance(noise, Exact) or _is_hot(temperature)


def default_key(key, integrator: Integrator, noise, where: str = "simulate"):
    """`key`, or `jax.random.key(0)` when it is None.

    A noisy run without a key warns once per process (`UserWarning`): every such call draws
    the same noise, so a loop over "seeds" that forgets `key=` repeats one run.
    """
    global _warned
    if key is not None:
        return key
    if not _warned and is_noisy(integrator, noise):
        _warned = True
        warnings.warn(
            f"{where}: key=None with a noisy run (thermal or gradient noise) uses "
            "jax.random.key(0), so every such call draws the same noise; pass key= "
            "(e.g. jax.random.key(seed)) for independent runs. This warning is shown once.",
            UserWarning,
            stacklevel=3,
        )
    return _key_zero()


@functools.cache
def _key_zero():
    """`jax.random.key(0)`, made once: keys are immutable, and making one is an eager op.
    Made at compile time even when first asked for inside a jit (a cached tracer would leak)."""
    with jax.ensure_compile_time_eval():
        return jax.random.key(0)
