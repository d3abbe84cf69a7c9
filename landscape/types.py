"""Type aliases shared by every module of optdyn (one place, as in diffrax's `_custom_types`)."""

from collections.abc import Callable
from typing import Any, TypeAlias

import jax

PyTree: TypeAlias = Any
"""A pytree of arrays: the parameters (positions) of one particle or of a whole ensemble."""

Array: TypeAlias = jax.Array
PRNGKey: TypeAlias = jax.Array
"""A JAX random key (new-style `jax.random.key` or legacy `jax.random.PRNGKey`)."""

Scalar: TypeAlias = float | jax.Array
Schedule: TypeAlias = Callable[[jax.Array], Scalar]
"""A map from the step count (an int32 scalar) to a value: learning rate or temperature."""

ScalarOrSchedule: TypeAlias = Scalar | Schedule
"""A constant, or a schedule `step -> value` (ours or any optax schedule)."""

EnergyFn: TypeAlias = Callable[[jax.Array], jax.Array]
"""A potential energy (loss) of one particle: `energy(x) -> scalar`."""
