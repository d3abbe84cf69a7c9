"""Standard normals on counter-mode, stream and table keys: `normal`, `normal_pair` and
`tree_normal` (leaves share one key at disjoint counters)."""

from __future__ import annotations

import jax
import jax.extend.random
import jax.numpy as jnp
import numpy as np

from .boxmuller import box_muller_pair, box_muller_pair64
from .keys import _counter_blocks, is_counter_key, is_stream_key
from .tables import _table_blocks, _tabulated


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
