"""dtype helpers: constants of an energy take the dtype of its argument (never a hard cast)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def float_dtype(x) -> jnp.dtype:
    """The floating dtype of `x`, or JAX's default float when `x` holds integers."""
    dtype = jnp.result_type(x)
    return dtype if jnp.issubdtype(dtype, jnp.floating) else jnp.result_type(float)


def like(value, x) -> jax.Array:
    """`value` (a constant array) as an array of the floating dtype of `x`.

    Python floats are weakly typed and need no cast; NumPy float64 arrays do, or a float32
    `x` would be promoted to float64 when x64 is enabled.
    """
    return jnp.asarray(value, dtype=float_dtype(x))
