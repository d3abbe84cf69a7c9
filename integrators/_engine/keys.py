"""Threefry-2x32 counter-mode keys: the block function, the counter and stream PRNG
implementations and the key helpers (see `prng` for the whole picture)."""

from __future__ import annotations

import functools

import jax
import jax.extend.random
import jax.numpy as jnp
import numpy as np
from jax import lax

_ROTATIONS = (13, 15, 26, 6, 17, 29, 16, 24)


_PARITY = 0x1BD11BDA


def _rotl(x, r: int):
    return (x << np.uint32(r)) | (x >> np.uint32(32 - r))


@functools.partial(jax.jit, static_argnames="rounds")
def threefry2x32(k0, k1, x0, x1, rounds: int = 20):
    """The Threefry-2x32 block function (Random123 rotation constants, key injection every
    four rounds) on uint32 arrays; returns the two output words.

    Jitted: a program that evaluates it at many call sites of one shape (the Feistel rounds
    of the mini-batch sampler in every step copy) traces and lowers it once; XLA inlines
    the calls, so the compiled program is the same."""
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


def _blocks(k0, k1, word, shape, offset: int = 0, stride: int = 1):
    """Threefry-2x32-20 blocks (offset + i·stride, word) under the key (k0, k1), for the flat
    index i of `shape`: the two output words, each of that shape."""
    size = int(np.prod(shape, dtype=np.int64))
    if offset + max(size - 1, 0) * stride >= 2**32:
        raise ValueError(
            f"{size} random draws at offset {offset}, stride {stride}: the counters pass 2**32."
        )
    counter = lax.iota(jnp.uint32, size) * np.uint32(stride) + np.uint32(offset)
    return threefry2x32(k0, k1, counter.reshape(shape), jnp.broadcast_to(word, shape))


def _random_bits(data, bit_width: int, shape, stream=0):
    """Bits of blocks (i, stream) for i = 0 .. size − 1."""
    w0, w1 = _blocks(data[0], data[1], jnp.uint32(stream), tuple(shape))
    if bit_width == 64:
        return (w0.astype(jnp.uint64) << np.uint64(32)) | w1.astype(jnp.uint64)
    if bit_width == 32:
        return w0
    return w0.astype(jnp.dtype(f"uint{bit_width}"))


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


def _stream_seed(seed):
    return jnp.concatenate([_seed(seed), jnp.zeros((1,), jnp.uint32)])


def _stream_base(data):
    """A two-word threefry key that stands for the stream: the stream word folded in."""
    return _fold_in(data[:2], data[2])


def _stream_split(data, shape):
    keys = _split(_stream_base(data), shape)
    return jnp.concatenate([keys, jnp.zeros(keys.shape[:-1] + (1,), jnp.uint32)], axis=-1)


def _stream_fold_in(data, value):
    derived = _fold_in(_stream_base(data), value)
    return jnp.concatenate([derived, jnp.zeros((1,), jnp.uint32)])


def _stream_random_bits(data, bit_width: int, shape):
    return _random_bits(data, bit_width, shape, stream=data[2])


THREEFRY_STREAM = jax.extend.random.define_prng_impl(
    key_shape=(3,),
    seed=_stream_seed,
    split=_stream_split,
    random_bits=_stream_random_bits,
    fold_in=_stream_fold_in,
    name="threefry2x32_stream",
    tag="tfs",
)


"""Counter mode on stream s of a key: key data (k0, k1, s), draw i is block (i, s).
`split` and `fold_in` hash (k0, k1, s) into a new key of stream 0."""


def stream_key(key: jax.Array, stream) -> jax.Array:
    r"""Stream `stream` of a counter-mode key, derived without hashing.

    .. math::
        \text{draw}_i = \text{Threefry-2x32-20}_{(k_0, k_1)}(i, s)

    Streams s ≠ s' of one key use disjoint counters, so their numbers are independent;
    stream 0 draws the same blocks as `key` itself. `stream` is a uint32 (or int32) array,
    traced or not, broadcast against the key's shape.
    """
    if not is_counter_key(key):
        raise ValueError(
            f"key={key!r} is not allowed: stream_key needs a counter-mode key (prng.key(seed) "
            "or prng.counter_key(jax.random.key(seed)))."
        )
    data = jax.random.key_data(key)
    s = jnp.asarray(stream).astype(jnp.uint32)
    shape = jnp.broadcast_shapes(data.shape[:-1], s.shape)
    data = jnp.broadcast_to(data, shape + (2,))
    s = jnp.broadcast_to(s, shape)[..., None]
    return jax.random.wrap_key_data(jnp.concatenate([data, s], axis=-1), impl=THREEFRY_STREAM)


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


def is_counter_key(key) -> bool:
    """Whether `key` is a key of the counter-mode generator (two words, no stream)."""
    return _is_impl(key, THREEFRY_COUNTER)


def is_stream_key(key) -> bool:
    """Whether `key` is a stream key (`stream_key`)."""
    return _is_impl(key, THREEFRY_STREAM)


def _is_impl(key, impl) -> bool:
    return jnp.issubdtype(key.dtype, jax.dtypes.prng_key) and jax.random.key_impl(key) == _spec(
        impl
    )


@functools.cache
def _spec(impl):
    """`jax.random.key_impl` of a key of `impl` (computed once)."""
    return jax.random.key_impl(jax.random.key(0, impl=impl))


def _counter_blocks(key, shape, offset: int, stride: int = 1):
    """Threefry blocks (offset + i·stride, s) of a counter-mode key (s = 0) or a stream key,
    for the flat index i of `shape`."""
    data = jax.random.key_data(key)
    word = np.uint32(0) if is_counter_key(key) else data[..., 2]
    return _blocks(data[..., 0], data[..., 1], word, shape, offset, stride)
