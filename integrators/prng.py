r"""Threefry-2x32 in counter mode: the simulator's random numbers, fused into each step.

JAX's default generator is the Threefry-2x32 block function with 20 rounds (Salmon et al.
2011). `jax.random.normal` on it evaluates the block function through a path that XLA does
not fuse well with the arithmetic around it on CPU. This module registers the same block
function, 20 rounds, as a JAX PRNG implementation whose bits are computed elementwise:

.. math::
    \text{bits}_i = \text{Threefry-2x32-20}_k(i, 0)_0

for the flat index i of each draw (both output words for 64-bit draws). Key derivation
(`split`, `fold_in`, `seed`) is JAX's threefry itself, on the same two-word key data. Every
draw depends only on its key and its index, so the numbers do not depend on how an ensemble
is split over devices. `jax.random.normal`, `uniform`, ... accept these keys unchanged.

    key = prng.key(0)                       # or prng.counter_key(jax.random.key(0))
    jax.random.normal(key, (3,))

References:
  J. K. Salmon, M. A. Moraes, R. O. Dror, D. E. Shaw, "Parallel random numbers: as easy as
  1, 2, 3", SC '11 (2011).
"""

from __future__ import annotations

import jax
import jax.extend.random
import jax.numpy as jnp
import numpy as np
from jax import lax

_ROTATIONS = (13, 15, 26, 6, 17, 29, 16, 24)
_PARITY = 0x1BD11BDA


def _rotl(x, r: int):
    return (x << np.uint32(r)) | (x >> np.uint32(32 - r))


def threefry2x32(k0, k1, x0, x1, rounds: int = 20):
    """The Threefry-2x32 block function (Random123 rotation constants, key injection every
    four rounds) on uint32 arrays; returns the two output words."""
    ks = (k0, k1, k0 ^ k1 ^ np.uint32(_PARITY))
    x0, x1 = x0 + ks[0], x1 + ks[1]
    for r in range(rounds):
        x0 = x0 + x1
        x1 = _rotl(x1, _ROTATIONS[r % 8]) ^ x0
        if r % 4 == 3:
            i = r // 4 + 1
            x0 = x0 + ks[i % 3]
            x1 = x1 + ks[(i + 1) % 3] + np.uint32(i)
    return x0, x1


def _threefry(data):
    return jax.random.wrap_key_data(data, impl="threefry2x32")


def _seed(seed):
    return jax.random.key_data(jax.random.key(seed, impl="threefry2x32"))


def _split(data, shape):
    return jax.random.key_data(jax.random.split(_threefry(data), shape))


def _fold_in(data, value):
    return jax.random.key_data(jax.random.fold_in(_threefry(data), value))


def _random_bits(data, bit_width: int, shape):
    size = int(np.prod(shape, dtype=np.int64))
    if size >= 2**32:
        raise ValueError(f"{size} random draws in one call: at most 2**32 are supported.")
    counter = lax.iota(jnp.uint32, size)
    k0, k1 = data[0], data[1]
    w0, w1 = threefry2x32(k0, k1, counter, jnp.zeros_like(counter))
    if bit_width == 64:
        bits = (w0.astype(jnp.uint64) << np.uint64(32)) | w1.astype(jnp.uint64)
    elif bit_width == 32:
        bits = w0
    else:
        bits = w0.astype(jnp.dtype(f"uint{bit_width}"))
    return bits.reshape(shape)


THREEFRY_COUNTER = jax.extend.random.define_prng_impl(
    key_shape=(2,),
    seed=_seed,
    split=_split,
    random_bits=_random_bits,
    fold_in=_fold_in,
    name="threefry2x32_counter",
    tag="tfc",
)
"""The PRNG implementation: pass it as `impl=` to `jax.random.key`."""


def key(seed: int) -> jax.Array:
    """A key of the counter-mode generator (same key data as `jax.random.key(seed)`)."""
    return jax.random.key(seed, impl=THREEFRY_COUNTER)


def counter_key(key: jax.Array) -> jax.Array:
    """A default (threefry) key re-read as a counter-mode key; other keys are returned as is.

    Raw uint32[2] keys (`jax.random.PRNGKey`) and new-style threefry keys are converted.
    """
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if jax.random.key_impl(key) != jax.random.key_impl(jax.random.key(0)):
            return key
        data = jax.random.key_data(key)
    elif key.dtype == jnp.uint32 and key.shape[-1:] == (2,):
        data = key
    else:
        return key
    return jax.random.wrap_key_data(data, impl=THREEFRY_COUNTER)
