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

from .boxmuller import box_muller, box_muller_pair, box_muller_pair64
from .keys import (
    THREEFRY_COUNTER,
    THREEFRY_STREAM,
    counter_key,
    is_counter_key,
    is_stream_key,
    key,
    stream_key,
    threefry2x32,
)
from .normals import SMALL_DRAW, normal, normal_pair, tree_normal
from .tables import stream_normals, table_impl, table_key

__all__ = [
    "THREEFRY_COUNTER",
    "THREEFRY_STREAM",
    "counter_key",
    "is_counter_key",
    "is_stream_key",
    "key",
    "stream_key",
    "threefry2x32",
    "box_muller",
    "box_muller_pair",
    "box_muller_pair64",
    "stream_normals",
    "table_impl",
    "table_key",
    "SMALL_DRAW",
    "normal",
    "normal_pair",
    "tree_normal",
]
