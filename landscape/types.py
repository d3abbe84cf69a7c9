"""Type aliases shared by every module of optdyn (one place, as in diffrax's `_custom_types`), and
`Static`, the aux-data wrapper of its pytrees."""

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


class Static:
    """A static part of a pytree's aux data (a landscape's function and metadata, a user's
    noise model): compared by equality where it is hashable, else (a callable object holding
    arrays, say) by identity, so that jit compiles once per equal value."""

    __slots__ = ("value", "hashed", "by_id")

    def __init__(self, value):
        self.value = value
        try:
            self.hashed, self.by_id = hash(value), False
        except TypeError:
            self.hashed, self.by_id = id(value), True

    def __hash__(self):
        return self.hashed

    def __repr__(self):
        return repr(self.value)

    def __eq__(self, other):
        if not isinstance(other, Static):
            return NotImplemented
        if self.value is other.value:
            return True
        if self.by_id or other.by_id:
            return False
        try:
            return bool(self.value == other.value)
        except Exception:  # noqa: BLE001 - an equality that is not a bool: not equal
            return False
