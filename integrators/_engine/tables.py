"""Normal tables for small systems: the first normal pairs of many streams computed in one
vectorised call, carried inside the key of each step (`table_impl`), so a step only reads them."""

from __future__ import annotations

import functools

import jax
import jax.extend.random
import jax.numpy as jnp
import numpy as np
from jax import lax

from .boxmuller import box_muller_pair
from .keys import (
    _spec,
    _stream_fold_in,
    _stream_random_bits,
    _stream_seed,
    _stream_split,
    stream_key,
    threefry2x32,
)


def _stream_normals(data, blocks: int):
    """`box_muller_pair` of blocks (0, s) .. (blocks − 1, s) of stream key data (k0, k1, s)
    of any batch shape: (z0, z1), each of shape batch + (blocks,)."""
    k0, k1, s = (data[..., i, None] for i in range(3))
    counter = lax.broadcasted_iota(jnp.uint32, data.shape[:-1] + (blocks,), data.ndim - 1)
    w0, w1 = threefry2x32(k0, k1, counter, jnp.broadcast_to(s, counter.shape))
    return box_muller_pair(w0, w1)


def _table_data(data, z0, z1):
    """Table key data: stream key data followed by the float32 bits of z0 and of z1."""
    bits = [lax.bitcast_convert_type(z, jnp.uint32) for z in (z0, z1)]
    return jnp.concatenate([data[..., :3], *bits], axis=-1)


def _tabulate(data, blocks: int):
    return _table_data(data, *_stream_normals(data, blocks))


_TABLES: dict = {}


"""The key spec of every table implementation made so far -> its number of blocks."""


@functools.cache
def table_impl(blocks: int):
    """The PRNG implementation of stream keys that carry their first `blocks` normal pairs.

    Key data: (k0, k1, s, z0[0..blocks), z1[0..blocks)) with (z0[i], z1[i]) =
    `box_muller_pair` of block (i, s) as float32 bits: the numbers `normal` and
    `normal_pair` compute on the stream key (k0, k1, s) (up to the last bit, which depends
    on how XLA compiled the transform), so a draw of at most `blocks` numbers is a read.
    `split`, `fold_in` and `random_bits` are those of the stream key; derived keys are
    tabulated again.
    """

    def seed(seed):
        return _tabulate(_stream_seed(seed), blocks)

    def split(data, shape):
        return _tabulate(_stream_split(data[:3], shape), blocks)

    def fold_in(data, value):
        return _tabulate(_stream_fold_in(data[:3], value), blocks)

    def random_bits(data, bit_width, shape):
        return _stream_random_bits(data[:3], bit_width, shape)

    impl = jax.extend.random.define_prng_impl(
        key_shape=(3 + 2 * blocks,),
        seed=seed,
        split=split,
        random_bits=random_bits,
        fold_in=fold_in,
        name=f"threefry2x32_table{blocks}",
        tag=f"tft{blocks}",
    )
    _TABLES[_spec(impl)] = blocks
    return impl


def stream_normals(key: jax.Array, streams, blocks: int) -> tuple[jax.Array, jax.Array]:
    """The first `blocks` normal pairs of streams `streams` of a counter-mode key, computed
    in one vectorised call: (z0, z1), each of shape streams.shape + (blocks,).

    `table_key(key, s, z0[j], z1[j])` then makes the key of stream s = streams[j] whose
    draws read these numbers.
    """
    return _stream_normals(jax.random.key_data(stream_key(key, streams)), int(blocks))


def table_key(key: jax.Array, stream, z0: jax.Array, z1: jax.Array) -> jax.Array:
    """Stream `stream` of a counter-mode key carrying its first normal pairs (z0, z1), the
    rows of `stream_normals` for that stream: a step of one particle that draws from such a
    key reads its normals instead of running Threefry, so XLA can fuse several of those
    steps into one loop iteration. The numbers are those of `stream_key(key, stream)`, up
    to float32 rounding.
    """
    impl = table_impl(int(z0.shape[-1]))
    data = jax.random.key_data(stream_key(key, stream))
    return jax.random.wrap_key_data(_table_data(data, z0, z1), impl=impl)


def _table_blocks(key) -> int:
    """The tabulated blocks of a `table_key` key, 0 for any other key."""
    if not jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return 0
    return _TABLES.get(jax.random.key_impl(key), 0)


def _tabulated(key, shape, offset: int, stride: int = 1):
    """The (z0, z1) pairs of blocks offset + i·stride read from a table key, or None if the
    key holds no table or the blocks are not all in it."""
    blocks = _table_blocks(key)
    size = int(np.prod(shape, dtype=np.int64))
    last = offset + max(size - 1, 0) * stride
    if not blocks or last >= blocks or key.shape != ():
        return None
    data = jax.random.key_data(key)
    z = [
        lax.bitcast_convert_type(data[start + offset : start + last + 1 : stride], jnp.float32)
        for start in (3, 3 + blocks)
    ]
    return tuple(a.reshape(shape) for a in z)
