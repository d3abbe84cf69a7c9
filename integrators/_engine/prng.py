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

A *stream key* (`stream_key(key, s)`, implementation `THREEFRY_STREAM`) puts a number s in
the second counter word: its draws are blocks (i, s). The simulator gives step t the stream
t of one key, so it derives no key per step (a hash per step cost 10x a step of one particle
on CPU) and every (step, draw) pair still has its own counter.

Float32 normals (`normal`, `normal_pair`, `tree_normal`) use Box–Muller with polynomial
sine and cosine: `normal_pair` turns each block into two independent normals, which
`tree_normal` uses for neighbouring leaves of one shape (the coordinates of an ensemble
held as columns). Float64 normals (`box_muller_pair64`) take 53-bit uniforms from two blocks
per pair. A single trajectory draws so few numbers per step that the loop around
the step dominates; `stream_normals` computes the normals of many streams in one
vectorised call and `table_key` hands one stream's numbers to a step inside its key
(`table_impl`), so the step only reads them.

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
    """Whether `key` is a key of the counter-mode generator (two words, no stream)."""
    return _is_impl(key, THREEFRY_COUNTER)


def is_stream_key(key) -> bool:
    """Whether `key` is a stream key (`stream_key`)."""
    return _is_impl(key, THREEFRY_STREAM)


def _table_blocks(key) -> int:
    """The tabulated blocks of a `table_key` key, 0 for any other key."""
    if not jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return 0
    return _TABLES.get(jax.random.key_impl(key), 0)


def _is_impl(key, impl) -> bool:
    return jnp.issubdtype(key.dtype, jax.dtypes.prng_key) and jax.random.key_impl(key) == _spec(
        impl
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
    r, a = _radius_angle(w0, w1)
    return _flip(r * _polynomial(_COS_TAYLOR, a * a), w1 & np.uint32(1))


def _radius_angle(w0, w1):
    """r = √(−2 ln u) from w0, and a ∈ [0, π/2) from the top 23 bits of w1 (float32)."""
    u = (w0.astype(jnp.float32) + np.float32(0.5)) * np.float32(2.0**-32)
    u = jnp.minimum(u, np.float32(1))
    r = jnp.sqrt(np.float32(-2) * jnp.log(u))
    v = lax.bitcast_convert_type((w1 >> np.uint32(9)) | np.uint32(0x3F800000), jnp.float32)
    return r, (v - np.float32(1)) * np.float32(np.pi / 2)


_SIN_TAYLOR = tuple((-1) ** k / math.factorial(2 * k + 1) for k in range(7))
"""sin(a) = a Σ (−1)^k a^{2k}/(2k+1)!, to a^13: error < 7e-10 on [0, π/2)."""


def _polynomial(coefficients, b):
    """Σ c_k b^k by Horner's rule, the coefficients in the dtype of b."""
    dtype = jnp.result_type(b)
    out = np.asarray(coefficients[-1], dtype)
    for c in coefficients[-2::-1]:
        out = np.asarray(c, dtype) + b * out
    return out


def _flip(z, bit):
    """z with its sign flipped where `bit` (a uint32 of 0 or 1) is 1."""
    sign = bit << np.uint32(31)
    return lax.bitcast_convert_type(lax.bitcast_convert_type(z, jnp.uint32) ^ sign, jnp.float32)


def box_muller_pair(w0, w1):
    r"""Two independent standard normals from two uint32 words: both Box–Muller outputs.

    .. math::
        (z_0, z_1) = \sqrt{-2\ln u}\,(s_0 \cos a,\ s_1 \sin a),

    with u, a and the sign s0 (lowest bit of w1) as in `box_muller`, so z0 is
    `box_muller(w0, w1)`, and s1 from the second-lowest bit of w1. By the symmetry of the
    uniform angle θ under reflections, (|cos θ|, |sin θ|) has the law of (cos a, sin a) for
    a uniform on [0, π/2), with independent signs: (z0, z1) has the law of
    r (cos θ, sin θ), two independent N(0, 1) (Box & Muller 1958). One Threefry block gives
    two normals, half the generator's work per normal of `box_muller`.
    """
    r, a = _radius_angle(w0, w1)
    b = a * a
    z0 = _flip(r * _polynomial(_COS_TAYLOR, b), w1 & np.uint32(1))
    z1 = _flip(r * (a * _polynomial(_SIN_TAYLOR, b)), (w1 >> np.uint32(1)) & np.uint32(1))
    return z0, z1


def _counter_blocks(key, shape, offset: int, stride: int = 1):
    """Threefry blocks (offset + i·stride, s) of a counter-mode key (s = 0) or a stream key,
    for the flat index i of `shape`."""
    data = jax.random.key_data(key)
    word = np.uint32(0) if is_counter_key(key) else data[..., 2]
    return _blocks(data[..., 0], data[..., 1], word, shape, offset, stride)


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


_COS_TAYLOR64 = tuple((-1) ** k / math.factorial(2 * k) for k in range(12))
_SIN_TAYLOR64 = tuple((-1) ** k / math.factorial(2 * k + 1) for k in range(12))
"""Taylor series of cos and sin to a^22 and a^23: error < 1e-17 on [0, π/2)."""


def box_muller_pair64(radius, angle):
    r"""Two independent float64 standard normals from two Threefry blocks (four words).

    .. math::
        (z_0, z_1) = \sqrt{-2\ln u}\,(\cos 2\pi v, \sin 2\pi v),

    u = (m + ½)·2⁻⁵³ ∈ (0, 1) and v = m'·2⁻⁵³ ∈ [0, 1) from the top 53 bits m, m' of the
    64-bit numbers w0·2³² + w1 of the `radius` and `angle` blocks (Box & Muller 1958).
    2πv = (π/2)(q + a') with the quadrant q = ⌊4v⌋: cos and sin of (π/2)a' ∈ [0, π/2) are
    polynomials, rotated by q quarter turns (within 1e-15 of `jnp.cos`/`jnp.sin`, which
    cost 6x more on CPU). Needs x64 (`jax_enable_x64`), as float64 itself does.
    """

    def mantissa(words):  # the top 53 bits of w0·2³² + w1, exactly, without 64-bit integers
        hi = words[0].astype(jnp.float64)
        return hi * 2.0**21 + (words[1] >> np.uint32(11)).astype(jnp.float64)

    u = (mantissa(radius) + 0.5) * 2.0**-53
    r = jnp.sqrt(-2 * jnp.log(u))
    quarter = mantissa(angle) * 2.0**-51  # 4v ∈ [0, 4)
    q = jnp.floor(quarter)
    a = (quarter - q) * (np.pi / 2)
    b = a * a
    c, s = _polynomial(_COS_TAYLOR64, b), a * _polynomial(_SIN_TAYLOR64, b)
    odd = (q == 1) | (q == 3)  # (cos, sin) of θ + π/2 = (−sin θ, cos θ)
    x, y = jnp.where(odd, -s, c), jnp.where(odd, c, s)
    flip = q >= 2  # θ + π: both change sign
    return r * jnp.where(flip, -x, x), r * jnp.where(flip, -y, y)


def _draw_pair(key, shape, dtype, offset: int, stride: int):
    """(z0, z1) of element i from block offset + i·stride (float64: blocks offset + i·stride
    and offset + i·stride + 1, so a float64 draw needs stride >= 2)."""
    if dtype.itemsize > 4:
        radius = _counter_blocks(key, shape, offset, stride)
        return box_muller_pair64(radius, _counter_blocks(key, shape, offset + 1, stride))
    table = _tabulated(key, shape, offset, stride)
    if table is None:
        table = box_muller_pair(*_counter_blocks(key, shape, offset, stride))
    return table[0].astype(dtype), table[1].astype(dtype)


def _width(dtype) -> int:
    """Threefry blocks per number or pair: 1 in float32 (or narrower), 2 in float64 (53-bit
    radius and angle)."""
    return 2 if dtype.itemsize > 4 else 1


def _fast(key, dtype) -> bool:
    counter = is_counter_key(key) or is_stream_key(key) or _table_blocks(key) > 0
    return counter and jnp.issubdtype(dtype, jnp.floating) and dtype.itemsize <= 8


def _dtype(dtype):
    return jnp.dtype(jnp.result_type(float) if dtype is None else dtype)


def normal(key, shape=(), dtype=None, offset: int = 0, stride: int | None = None) -> jax.Array:
    """Standard normals like `jax.random.normal(key, shape, dtype)`, faster on counter keys.

    For a counter-mode or stream key and a dtype of at most 32 bits, element i is
    `box_muller` of the two words of Threefry-2x32-20 block (offset + i·stride, s) (s = 0, or
    the key's stream; stride 1 by default): elementwise, so XLA fuses the generator, the
    transform and the step that uses the numbers into one loop; draws at disjoint counters
    of one key are independent, so several arrays need no new keys (`tree_normal`).
    float64: z0 of `box_muller_pair64` of blocks offset + i·stride and offset + i·stride + 1
    (stride 2 by default). Other keys use `jax.random.normal` (offset ignored: give them
    distinct keys).
    """
    dtype, shape = _dtype(dtype), tuple(shape)
    if not _fast(key, dtype):
        return jax.random.normal(key, shape, dtype)
    stride = _width(dtype) if stride is None else int(stride)
    return _draw_pair(key, shape, dtype, offset, stride)[0]  # XLA drops the unused z1


def normal_pair(
    key, shape=(), dtype=None, offset: int = 0, stride: int | None = None
) -> tuple[jax.Array, jax.Array]:
    """Two independent arrays of standard normals from one set of counters.

    Counter-mode and stream keys: element i of both arrays comes from block offset + i·stride
    (`box_muller_pair`, one Threefry block per pair; float64: `box_muller_pair64` of blocks
    offset + i·stride and offset + i·stride + 1). Other keys: two `jax.random.normal` draws
    from `fold_in(key, 0)` and `fold_in(key, 1)`.
    """
    dtype, shape = _dtype(dtype), tuple(shape)
    if not _fast(key, dtype):
        keys = (jax.random.fold_in(key, 0), jax.random.fold_in(key, 1))
        return tuple(jax.random.normal(k, shape, dtype) for k in keys)
    stride = _width(dtype) if stride is None else int(stride)
    return _draw_pair(key, shape, dtype, offset, stride)


SMALL_DRAW = 4096
"""At most this many normals in a `tree_normal` call on a (two-word) counter key: the leaves
share the key at disjoint counters."""


def _slots(shapes, dtypes):
    """Leaves grouped into draws: (leaf indices, shape, dtype), a pair of neighbouring leaves
    of one shape and dtype sharing their blocks (`normal_pair`), else one leaf."""
    slots, k = [], 0
    while k < len(shapes):
        if k + 1 < len(shapes) and (shapes[k], dtypes[k]) == (shapes[k + 1], dtypes[k + 1]):
            slots.append(((k, k + 1), shapes[k], dtypes[k]))
            k += 2
        else:
            slots.append(((k,), shapes[k], dtypes[k]))
            k += 1
    return slots


def _slot_counters(slots) -> list[tuple[int, int]] | None:
    """(offset, stride) of every slot, such that element i of a leaf uses the same counters
    whatever the size of the leaves (a padded ensemble draws the numbers of the unpadded
    one), or None if the counters would pass 2**32.

    Slots of one size are interleaved: element i of slot k uses block (i·K + k)·w (w blocks
    per number, K slots): a run of consecutive counters for all the draws of a particle.
    Otherwise slot k starts at k·2^(32−b) (b bits for the slot number).
    """
    widths = [_width(d) for _, _, d in slots]
    sizes = [int(np.prod(shape, dtype=np.int64)) for _, shape, _ in slots]
    n_slots, w = len(slots), max(widths)
    if len(set(sizes)) == 1:
        if sizes[0] * n_slots * w > 2**32:
            return None
        return [(k * w, n_slots * w) for k in range(n_slots)]
    bits = max(n_slots - 1, 0).bit_length()
    span = 2 ** (32 - bits)
    if any(size * width > span for size, width in zip(sizes, widths, strict=True)):
        return None
    return [(k * span, width) for k, width in enumerate(widths)]


def tree_normal(key, tree):
    """Standard normals shaped like every leaf of `tree`.

    On a stream key, and on a counter-mode key for at most `SMALL_DRAW` numbers in all, the
    leaves share the key at disjoint counters (`_slot_counters`): no key is derived, which
    is what a step of a single particle costs most on CPU (measured: 10x), and two
    neighbouring leaves of one shape and dtype share their blocks through `normal_pair` (the
    columns of a 2-D ensemble: half the Threefry work). Element i of a leaf uses counters
    that do not depend on the leaf's size, so a padded ensemble draws the numbers of the
    unpadded one. Otherwise leaf k uses `fold_in(key, k)` (one leaf: `key` itself). Either
    way the numbers are independent standard normals.
    """
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    dtypes = [jnp.dtype(jnp.result_type(x)) for x in leaves]
    shapes = [tuple(jnp.shape(x)) for x in leaves]
    sizes = [int(np.prod(s, dtype=np.int64)) for s in shapes]
    streams = is_stream_key(key) or _table_blocks(key) > 0
    counters = streams or (is_counter_key(key) and sum(sizes) <= SMALL_DRAW)
    slots = _slots(shapes, dtypes)
    layout = _slot_counters(slots) if counters else None
    if layout is not None and all(_fast(key, d) for d in dtypes):
        out = [None] * len(leaves)
        for (members, shape, dtype), (offset, stride) in zip(slots, layout, strict=True):
            if len(members) == 2:
                pair = normal_pair(key, shape, dtype, offset, stride)
                out[members[0]], out[members[1]] = pair
            else:
                out[members[0]] = normal(key, shape, dtype, offset, stride)
    elif len(leaves) == 1:
        out = [normal(key, shapes[0], dtypes[0])]
    else:
        out = [
            normal(jax.random.fold_in(key, k), s, d)
            for k, (s, d) in enumerate(zip(shapes, dtypes, strict=True))
        ]
    return jax.tree_util.tree_unflatten(treedef, out)
