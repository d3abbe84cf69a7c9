"""How an ensemble is held inside the loop: the column (structure-of-arrays) layout, and
the per-particle checks of divergence on either layout."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from .columns import interleave

_map = jax.tree_util.tree_map


@jax.tree_util.register_pytree_node_class
class Columns(tuple):
    """Coordinate i of every particle as one array: the structure-of-arrays layout."""

    def tree_flatten(self):
        return tuple(self), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(children)


def to_columns(tree, batch: tuple, dim: int):
    """Every leaf of shape `batch + (dim,)` split into `Columns` of `dim` arrays `batch`."""

    def split(a):
        if jnp.shape(a) == batch + (dim,):
            return Columns(a[..., i] for i in range(dim))
        return a

    return _map(split, tree)


def from_columns(tree):
    """The inverse of `to_columns`: every `Columns` interleaved back to `batch + (dim,)`."""

    def is_columns(t):
        return isinstance(t, Columns)

    return _map(lambda t: interleave(t) if is_columns(t) else t, tree, is_leaf=is_columns)


def per_particle_all(tree, batch_ndim: int, predicate):
    """Reduce predicate(leaf) over all non-batch axes and all leaves: shape (*batch,)."""
    parts = [
        jnp.all(predicate(a).reshape(a.shape[:batch_ndim] + (-1,)), axis=-1)
        for a in jax.tree_util.tree_leaves(tree)
    ]
    return functools.reduce(jnp.logical_and, parts)


def within(a, bound):
    """|a| <= bound elementwise: False for NaN and ±inf (for any bound, even inf)."""
    if not jnp.issubdtype(a.dtype, jnp.inexact):
        return jnp.ones(a.shape, bool)
    limit = min(bound, float(jnp.finfo(a.dtype).max))
    return jnp.abs(a) <= jnp.asarray(limit, a.dtype)


def finite(a):
    if not jnp.issubdtype(a.dtype, jnp.inexact):
        return jnp.ones(a.shape, bool)
    return jnp.isfinite(a)


def poison(a, bound):
    """a where |a| <= bound, else NaN: NaN then sticks to the position (θ + Δθ stays NaN)."""
    return jnp.where(within(a, bound), a, jnp.asarray(jnp.nan, a.dtype))
