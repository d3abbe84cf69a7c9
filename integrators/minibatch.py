r"""Mini-batch sampling: the true gradient noise of SGD on a finite-sum landscape.

A batch of B of the N samples gives the gradient (1/B) Σ_{i∈batch} ∇ℓ(x, s_i). Its mean is
∇U(x); its covariance is C(x)/B, times the finite-population correction (N − B)/(N − 1) when
the batch is drawn without replacement, with C(x) the covariance (1/N normalised) of the
per-sample gradients at x. By the argument in `landscape.noise`, SGD then runs at the
temperature T(x) = η tr C(x) (N − B) / (2 B dim (N − 1)) per degree of freedom: a heat bath
whose temperature depends on where the particle is.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ..landscape._base import Landscape
from ..landscape.finite_sum import FiniteSum
from ..landscape.types import PRNGKey, PyTree, ScalarOrSchedule
from ..landscape.validate import check_int
from ._engine.prng import threefry2x32
from .noise import _schedule_or_value


class MinibatchState(NamedTuple):
    """Where each particle is in its pass over the data (sampling without replacement)."""

    keys: jax.Array  # uint32 (n_particles, 2): each particle's shuffling key
    batch: jax.Array  # int32 scalar: index of the next batch within the epoch, 0 .. N//B - 1
    epoch: jax.Array  # int32 scalar: number of completed epochs


FEISTEL_ROUNDS = 6
"""Rounds of the Feistel network that shuffles the samples (4 already make a pseudo-random
permutation from a pseudo-random round function: Luby & Rackoff 1988)."""


ROUND_MIXING = 8
"""Threefry rounds in each Feistel round function (8 rounds: full avalanche of 32 bits)."""
WALKS_UNROLLED = 1
"""Cycle-walking steps evaluated unconditionally before the loop that finishes the rest."""


def _feistel(keys, epoch, j, half_bits: int):
    """A keyed permutation of [0, 4^half_bits): a balanced Feistel network whose round
    function is Threefry-2x32-20 of (right half, epoch·8 + round) under the particle's key."""
    mask = jnp.uint32((1 << half_bits) - 1)
    left, right = j >> jnp.uint32(half_bits), j & mask
    tweak = epoch.astype(jnp.uint32) << jnp.uint32(3)
    k0, k1 = keys[..., 0:1], keys[..., 1:2]
    for r in range(FEISTEL_ROUNDS):
        f, _ = threefry2x32(
            k0, k1, right, jnp.broadcast_to(tweak + jnp.uint32(r), right.shape), ROUND_MIXING
        )
        left, right = right, left ^ (f & mask)
    return (left << jnp.uint32(half_bits)) | right


def sample_order(keys, epoch, positions, n_samples: int) -> jax.Array:
    r"""The samples at `positions` of each particle's shuffled order in epoch `epoch`.

    .. math::
        \text{order}_{p,e}(j) = \pi_{k_p, e}(j), \qquad j \in [0, N)

    with π a keyed pseudo-random permutation of [0, N): a Feistel network on [0, 4^h) ⊇ [0, N),
    restricted to [0, N) by cycle walking (a value that falls outside is permuted again until
    it lands inside; Black & Rogaway 2002). No permutation is stored and nothing is sorted:
    every batch is computed from the particle's key, the epoch and the batch's positions,
    so the state stays O(1) per particle and an epoch boundary costs nothing extra.

    Args:
      keys: uint32 (n_particles, 2).
      epoch: int32 scalar.
      positions: int (B,) positions j within the epoch's order.
      n_samples: N.

    Returns:
      int32 (n_particles, B) sample indices; for each particle and epoch, positions 0..N-1
      give every sample exactly once.
    """
    half_bits = max(1, (max(n_samples - 1, 1).bit_length() + 1) // 2)
    j = jnp.broadcast_to(positions.astype(jnp.uint32), (keys.shape[0],) + positions.shape)
    y = _feistel(keys, epoch, j, half_bits)
    n = jnp.uint32(n_samples)
    for _ in range(WALKS_UNROLLED):  # P(outside) <= 3/4 per walk (1/2 on average): unrolled,
        y = jnp.where(y >= n, _feistel(keys, epoch, y, half_bits), y)  # one fused loop
    y = jax.lax.while_loop(  # the rare rest
        lambda y: jnp.any(y >= n),
        lambda y: jnp.where(y >= n, _feistel(keys, epoch, y, half_bits), y),
        y,
    )
    return y.astype(jnp.int32)


def _per_particle(fn, x, idx):
    """vmap(fn)(x, idx) over the particle axis; for one particle fn itself (no batch axis),
    so that the matrix products of a network stay plain GEMMs instead of batched ones."""
    if jax.tree.leaves(x)[0].shape[0] == 1:
        out = fn(jax.tree.map(lambda a: a[0], x), idx[0])
        return jax.tree.map(lambda a: a[None], out)
    return jax.vmap(fn)(x, idx)


@functools.partial(
    jax.tree_util.register_dataclass, data_fields=[], meta_fields=["batch_size", "replace"]
)
@dataclasses.dataclass(frozen=True, eq=False)
class Minibatch:
    """Mini-batch gradients of a `FiniteSum` (built by `minibatch`).

    A pytree without leaves: `batch_size` and `replace` are static (they set shapes and
    control flow), so two models with equal ones share a compilation.

    Attributes:
      batch_size: B.
      replace: False: epochs of shuffled, disjoint batches (N // B per epoch, the remainder
        dropped); True: B indices drawn i.i.d. uniformly at every step.
    """

    batch_size: int
    replace: bool = False

    def _check(self, landscape: Landscape) -> FiniteSum:
        if not isinstance(landscape, FiniteSum):
            raise ValueError(
                f"landscape={getattr(landscape, 'name', landscape)!r} is not allowed: "
                "minibatch noise needs a finite sum (see `finite_sum`, `least_squares`)."
            )
        if not self.replace and self.batch_size > landscape.n_samples:
            raise ValueError(
                f"batch_size={self.batch_size} is not allowed: without replacement it must be "
                f"<= n_samples={landscape.n_samples}."
            )
        return landscape

    def init(self, landscape: Landscape, key: PRNGKey, n_particles: int):
        """Each particle's shuffling key (`()` when sampling with replacement)."""
        self._check(landscape)
        n_particles = check_int("n_particles", n_particles)
        if self.replace:
            return ()
        zero = jnp.zeros((), jnp.int32)
        keys = jax.random.bits(key, (n_particles, 2), jnp.uint32)
        return MinibatchState(keys, zero, zero)

    def gradient(self, landscape: Landscape, x: PyTree, state, key: PRNGKey):
        """The batch-mean gradient of every particle, and the state for the next step.

        Without replacement `key` is not used: the batches come from the particles' keys.
        """
        fs = self._check(landscape)
        n_particles, size = jax.tree.leaves(x)[0].shape[0], self.batch_size
        if self.replace:
            idx = jax.random.randint(key, (n_particles, size), 0, fs.n_samples, jnp.int32)
            new_state = state
        else:
            positions = state.batch * size + jnp.arange(size, dtype=jnp.int32)
            idx = sample_order(state.keys, state.epoch, positions, fs.n_samples)
            nxt = state.batch + 1
            done = nxt == fs.n_samples // size
            new_state = MinibatchState(
                state.keys, jnp.where(done, 0, nxt).astype(jnp.int32), state.epoch + done
            )
        grads = _per_particle(jax.grad(fs.batch_energy), x, idx)
        return grads, new_state

    def temperature(
        self, lr: ScalarOrSchedule, landscape: Landscape | None = None, x: PyTree = None
    ):
        r"""The temperature T(x) = η tr C(x) / (2 B dim) · (N − B)/(N − 1) at one point x.

        .. math::
            T(x) = \frac{\eta}{2 B d}\,\operatorname{tr} C(x)\;\frac{N - B}{N - 1},\quad
            C(x) = \frac1N \sum_i (g_i - \bar g)(g_i - \bar g)^\top,\ g_i = \nabla \ell(x, s_i)

        The finite-population factor (N − B)/(N − 1) applies without replacement (it is 1
        with replacement); it vanishes for full-batch gradient descent, B = N.

        Args:
          lr: η, a float or a schedule `step -> η` (then a schedule is returned).
          landscape: the `FiniteSum`.
          x: one point, shape (dim,) (or one pytree of parameters).

        Returns:
          T, a scalar array (or a schedule `step -> T` when `lr` is one).
        """
        if landscape is None or x is None:
            raise ValueError(
                "minibatch(...).temperature(lr, landscape, x) needs the finite-sum landscape "
                "and a point x: the temperature is η·tr C(x)/(2B·dim), C the per-sample "
                "gradient covariance at x."
            )
        fs = self._check(landscape)
        leaves = jax.tree.leaves(fs.per_sample_grads(x))
        g = jnp.concatenate([leaf.reshape(fs.n_samples, -1) for leaf in leaves], axis=1)
        trace = jnp.sum(jnp.mean((g - jnp.mean(g, axis=0)) ** 2, axis=0))
        n, size = fs.n_samples, self.batch_size
        fpc = 1.0 if self.replace else ((n - size) / (n - 1) if n > 1 else 0.0)
        return _schedule_or_value(lambda eta: eta * trace * fpc / (2 * size * g.shape[1]), lr)


def minibatch(batch_size: int, replace: bool = False) -> Minibatch:
    """Mini-batch gradient noise on a `FiniteSum` landscape (see the module docstring).

    Without replacement each particle walks, epoch after epoch, through its own pseudo-random
    permutation of the N samples (`sample_order`: a keyed Feistel network, new every epoch)
    in N // B consecutive batches of size B (the last incomplete batch is dropped); with
    replacement each step draws B i.i.d. indices per particle. The gradient of a particle is
    the mean of its batch's per-sample gradients.

    Args:
      batch_size: B >= 1 (<= N without replacement, checked against the landscape).
      replace: sample with replacement.

    Returns:
      A `Minibatch` noise model.
    """
    batch_size = check_int("batch_size", batch_size)
    if not isinstance(replace, bool):
        raise ValueError(f"replace={replace!r} is not allowed: it must be True or False.")
    return Minibatch(batch_size, replace)
