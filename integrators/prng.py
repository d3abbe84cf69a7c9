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

import functools
import math

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
        if jax.random.key_impl(key) != _spec("threefry2x32"):
            return key
        data = jax.random.key_data(key)
    elif key.dtype == jnp.uint32 and key.shape[-1:] == (2,):
        data = key
    else:
        return key
    return jax.random.wrap_key_data(data, impl=THREEFRY_COUNTER)


# ----------------------------------------------------------------------------- normals

_COS_TAYLOR = tuple((-1) ** k / math.factorial(2 * k) for k in range(7))
"""cos(a) = Σ (−1)^k a^{2k}/(2k)!, to a^12: error < 7e-9 on [0, π/2)."""


def is_counter_key(key) -> bool:
    """Whether `key` is a key of the counter-mode generator."""
    return jnp.issubdtype(key.dtype, jax.dtypes.prng_key) and jax.random.key_impl(key) == _spec(
        THREEFRY_COUNTER
    )


@functools.cache
def _spec(impl):
    """`jax.random.key_impl` of a key of `impl` (computed once)."""
    return jax.random.key_impl(jax.random.key(0, impl=impl))


def box_muller(w0, w1):
    r"""One standard normal from two uint32 words: Box–Muller with a polynomial cosine.

    .. math::
        z = s\,\sqrt{-2\ln u}\,\cos a, \qquad u = (w_0 + \tfrac12)\,2^{-32} \in (0, 1],
        \quad a = \tfrac{\pi}{2}\,v,\ v \in [0, 1) \text{ from the top 23 bits of } w_1,
        \quad s = \pm 1 \text{ from the lowest bit of } w_1.

    With θ uniform on [0, 2π), r cos θ is N(0, 1) (Box & Muller 1958); |cos θ| has the law
    of cos a for a uniform on [0, π/2), and the independent sign s restores the symmetry,
    so only a cosine on [0, π/2) is needed, as a polynomial (no range reduction): the
    transform is all multiply–adds, one log and one square root, which XLA fuses into the
    step. The tail is cut at |z| = √(2 ln 2^33) ≈ 6.8 (probability 1e-10); float32 result.
    """
    u = (w0.astype(jnp.float32) + np.float32(0.5)) * np.float32(2.0**-32)
    u = jnp.minimum(u, np.float32(1))
    r = jnp.sqrt(np.float32(-2) * jnp.log(u))
    v = lax.bitcast_convert_type((w1 >> np.uint32(9)) | np.uint32(0x3F800000), jnp.float32)
    a = (v - np.float32(1)) * np.float32(np.pi / 2)
    b = a * a
    cos = np.float32(_COS_TAYLOR[-1])
    for c in _COS_TAYLOR[-2::-1]:
        cos = np.float32(c) + b * cos
    z = r * cos
    sign = (w1 & np.uint32(1)) << np.uint32(31)
    return lax.bitcast_convert_type(lax.bitcast_convert_type(z, jnp.uint32) ^ sign, jnp.float32)


def normal(key, shape=(), dtype=None, offset: int = 0) -> jax.Array:
    """Standard normals like `jax.random.normal(key, shape, dtype)`, faster on counter keys.

    For a counter-mode key and a dtype of at most 32 bits, draw i is `box_muller` of the
    two words of Threefry-2x32-20 block (offset + i, 0): elementwise, so XLA fuses the
    generator, the transform and the step that uses the numbers into one loop; draws at
    disjoint counter ranges of one key are independent, so several arrays need no new keys
    (`tree_normal`). Other keys and float64 use `jax.random.normal` (offset ignored: give
    them distinct keys).
    """
    dtype = jnp.dtype(jnp.result_type(float) if dtype is None else dtype)
    shape = tuple(shape)
    if not is_counter_key(key) or dtype.itemsize > 4 or not jnp.issubdtype(dtype, jnp.floating):
        return jax.random.normal(key, shape, dtype)
    size = int(np.prod(shape, dtype=np.int64))
    if size + offset >= 2**32:
        raise ValueError(f"{size} random draws at offset {offset}: at most 2**32 in all.")
    data = jax.random.key_data(key)
    counter = (lax.iota(jnp.uint32, size) + np.uint32(offset)).reshape(shape)
    w0, w1 = threefry2x32(data[..., 0], data[..., 1], counter, jnp.zeros_like(counter))
    return box_muller(w0, w1).astype(dtype)


SMALL_DRAW = 4096
"""At most this many normals in a `tree_normal` call: leaves share one counter-mode key."""


def tree_normal(key, tree):
    """Standard normals shaped like every leaf of `tree`, one call per leaf.

    Leaf k uses `fold_in(key, k)` (one leaf: `key` itself). For a counter key, float32 (or
    narrower) leaves and at most `SMALL_DRAW` numbers in all, leaf k instead takes the
    counters after those of leaves 0..k-1 of `key` itself: no key is derived, which is what
    a step of a single particle costs most on CPU (measured: 10x). Larger draws keep the
    derived keys, which XLA fuses better into the steps of an ensemble. Either way the
    numbers are independent standard normals.
    """
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    dtypes = [jnp.dtype(jnp.result_type(x)) for x in leaves]
    sizes = [int(np.prod(jnp.shape(x), dtype=np.int64)) for x in leaves]
    small = sum(sizes) <= SMALL_DRAW and is_counter_key(key)
    if small and len(leaves) > 1 and all(d.itemsize <= 4 for d in dtypes):
        offsets = np.cumsum([0] + sizes[:-1])
        keys = [key] * len(leaves)
    else:
        offsets = [0] * len(leaves)
        keys = (
            [key] if len(leaves) == 1 else [jax.random.fold_in(key, i) for i in range(len(leaves))]
        )
    out = [
        normal(k, jnp.shape(x), d, int(o))
        for k, x, d, o in zip(keys, leaves, dtypes, offsets, strict=True)
    ]
    return jax.tree_util.tree_unflatten(treedef, out)
