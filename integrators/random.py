"""Random draws for integrator and noise-model authors: the one helper to know.

    xi = normal_like(key, params)      # standard normals shaped like every leaf

`jax.random.normal` is always correct in a step; `normal_like` is the fast path. On the keys
`simulate` hands to a step (Threefry-2x32 in counter mode, one stream per step) it draws
float32 normals by Box–Muller on counter blocks, elementwise, so XLA fuses the generator into
the step (measured 2.4x faster than `jax.random.normal` on N = 1e5 particles and 4-7x on one
particle), and it keeps the leaves independent when the engine splits an ensemble into one
array per coordinate. On any other key it falls back to `jax.random` per leaf.
"""

from __future__ import annotations

from ..landscape.types import PRNGKey, PyTree
from ._engine import prng


def normal_like(key: PRNGKey, tree: PyTree) -> PyTree:
    """Independent standard normals N(0, 1) shaped and typed like every leaf of `tree`.

    Args:
      key: a JAX random key (the step's `key`).
      tree: any pytree of floating arrays (parameters, momenta, gradients).

    Returns:
      A pytree like `tree`; leaves are independent of each other and of other steps' draws.
    """
    return prng.tree_normal(key, tree)
