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
from typing import NamedTuple

import jax
import jax.numpy as jnp

from integrators._types import PRNGKey, PyTree, ScalarOrSchedule
from landscape._base import Landscape
from landscape._validate import check_int
from landscape.finite_sum import FiniteSum
from landscape.noise import _schedule_or_value


class MinibatchState(NamedTuple):
    """Where each particle is in its pass over the data (sampling without replacement)."""

    perm: jax.Array  # int32 (n_particles, N): each particle's shuffled sample order this epoch
    batch: jax.Array  # int32 scalar: index of the next batch within the epoch, 0 .. N//B - 1
    epoch: jax.Array  # int32 scalar: number of completed epochs


def _shuffle(key: PRNGKey, n_particles: int, n_samples: int) -> jax.Array:
    """An independent random permutation of range(N) per particle, in one random call."""
    order = jnp.broadcast_to(jnp.arange(n_samples, dtype=jnp.int32), (n_particles, n_samples))
    return jax.random.permutation(key, order, axis=1, independent=True)


def _per_particle(fn, x, idx):
    """vmap(fn)(x, idx) over the particle axis; for one particle fn itself (no batch axis),
    so that the matrix products of a network stay plain GEMMs instead of batched ones."""
    if jax.tree.leaves(x)[0].shape[0] == 1:
        out = fn(jax.tree.map(lambda a: a[0], x), idx[0])
        return jax.tree.map(lambda a: a[None], out)
    return jax.vmap(fn)(x, idx)


@dataclasses.dataclass(frozen=True, eq=False)
class Minibatch:
    """Mini-batch gradients of a `FiniteSum` (built by `minibatch`).

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
        """Shuffled sample orders for the first epoch (`()` when sampling with replacement)."""
        fs = self._check(landscape)
        n_particles = check_int("n_particles", n_particles)
        if self.replace:
            return ()
        zero = jnp.zeros((), jnp.int32)
        return MinibatchState(_shuffle(key, n_particles, fs.n_samples), zero, zero)

    def gradient(self, landscape: Landscape, x: PyTree, state, key: PRNGKey):
        """The batch-mean gradient of every particle, and the state for the next step.

        Without replacement, `key` is used only at the end of an epoch, to reshuffle.
        """
        fs = self._check(landscape)
        n_particles, size = jax.tree.leaves(x)[0].shape[0], self.batch_size
        if self.replace:
            idx = jax.random.randint(key, (n_particles, size), 0, fs.n_samples, jnp.int32)
            new_state = state
        else:
            idx = jax.lax.dynamic_slice_in_dim(state.perm, state.batch * size, size, axis=1)
            nxt = state.batch + 1
            done = nxt == fs.n_samples // size
            perm = jax.lax.cond(
                done, lambda: _shuffle(key, n_particles, fs.n_samples), lambda: state.perm
            )
            new_state = MinibatchState(
                perm, jnp.where(done, 0, nxt).astype(jnp.int32), state.epoch + done
            )
        grads = _per_particle(jax.grad(fs.batch_energy), x, idx)
        return grads, new_state

    def temperature(self, lr: ScalarOrSchedule, landscape: Landscape, x: PyTree):
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
        fs = self._check(landscape)
        leaves = jax.tree.leaves(fs.per_sample_grads(x))
        g = jnp.concatenate([leaf.reshape(fs.n_samples, -1) for leaf in leaves], axis=1)
        trace = jnp.sum(jnp.mean((g - jnp.mean(g, axis=0)) ** 2, axis=0))
        n, size = fs.n_samples, self.batch_size
        fpc = 1.0 if self.replace else ((n - size) / (n - 1) if n > 1 else 0.0)
        return _schedule_or_value(lambda eta: eta * trace * fpc / (2 * size * g.shape[1]), lr)


def minibatch(batch_size: int, replace: bool = False) -> Minibatch:
    """Mini-batch gradient noise on a `FiniteSum` landscape (see the module docstring).

    Without replacement each particle walks, epoch after epoch, through its own random
    permutation of the N samples in N // B consecutive batches of size B (the last incomplete
    batch is dropped) and is reshuffled at the start of every epoch; with replacement each
    step draws B i.i.d. indices per particle. The gradient of a particle is the mean of its
    batch's per-sample gradients. All permutations (or indices) of the ensemble come from one
    random call.

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
