r"""First-passage times of an ensemble, streamed: a jitted scan that stops tracking the crossed.

`integrators.simulate` records positions every k-th step; the first step at which each of
10⁴ particles crosses a point, over 10⁵–10⁶ steps, would need the whole record. This scan
keeps one int per particle instead:

    fp = first_passage(itg.langevin(lr=1e-3, temperature=0.25), ls.double_well(),
                       state, key, target=lambda x: x[:, 0] >= 1.0, max_steps=10**6)

Each step is one `integrator.step` on the whole (active) ensemble with the exact gradients,
as in the simulator. A particle that has reached the target is frozen, and between chunks
of steps the ensemble is compacted to the particles still running (padded to a power of
two, so a run compiles at most log₂ N times), so the cost is ≈ N·⟨τ⟩ particle-steps
rather than N·max τ.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..integrators import Integrator

_PADDING = -2  # `first` of a padding row: never stepped, never reported
_ACTIVE = -1  # `first` of a particle that has not reached the target yet


class FirstPassage(NamedTuple):
    """First-passage steps of an ensemble.

    Attributes:
      steps: int64 `(n,)`: the first step k (time k·dt) after which the particle satisfied
        the target, or -1 if it had not by `max_steps` (censored).
      max_steps: the step budget.
    """

    steps: np.ndarray
    max_steps: int

    @property
    def crossed(self) -> np.ndarray:
        """Boolean `(n,)`: which particles reached the target within the budget."""
        return self.steps >= 0

    def survival(self, grid: np.ndarray) -> np.ndarray:
        """S(k) = P(first passage > k) on the step grid (censored particles count as > k)."""
        done = np.sort(self.steps[self.crossed])
        return 1.0 - np.searchsorted(done, grid, side="right") / len(self.steps)


def _split(integrator: Integrator):
    """Numeric non-zero hyperparameters are traced (no recompilation); the rest is static."""
    dynamic, static = {}, {}
    for name, value in (integrator.hyperparams or {}).items():
        number = isinstance(value, int | float | np.number) and not isinstance(value, bool)
        if number and value != 0:
            dynamic[name] = jnp.asarray(value)
        else:
            static[name] = value
    return dynamic, tuple(sorted(static.items()))


def _freeze(new, old, active):
    """Keep the old value of every per-particle leaf where the particle is not active."""
    n = active.shape[0]

    def pick(a, b):
        if jnp.ndim(a) >= 1 and jnp.shape(a)[0] == n:
            return jnp.where(active.reshape((n,) + (1,) * (a.ndim - 1)), a, b)
        return a

    return jax.tree_util.tree_map(pick, new, old)


def _chunk_impl(dynamic, state, first, t0, key, *, factory, static, landscape, target, length):
    integrator = factory(**dynamic, **dict(static))
    grad = jax.vmap(jax.grad(landscape.energy))

    def body(i, carry):
        state, first = carry
        t = t0 + i
        new = integrator.step(state, grad(state.params), jax.random.fold_in(key, t))
        active = first == _ACTIVE
        new = _freeze(new, state, active)
        first = jnp.where(active & target(new.params), t + 1, first)
        return new, first

    return jax.lax.fori_loop(0, length, body, (state, first))


_chunk = jax.jit(
    _chunk_impl, static_argnames=("factory", "static", "landscape", "target", "length")
)


def _take(tree, index: np.ndarray, n: int):
    """Rows `index` of every leaf with a leading particle axis of size n."""
    return jax.tree_util.tree_map(
        lambda a: (
            jnp.asarray(np.asarray(a)[index]) if np.ndim(a) >= 1 and np.shape(a)[0] == n else a
        ),
        tree,
    )


def first_passage(
    integrator: Integrator,
    landscape,
    state,
    key: jax.Array,
    target: Callable[[jax.Array], jax.Array],
    max_steps: int,
    *,
    chunk: int = 2000,
    min_size: int = 64,
) -> FirstPassage:
    r"""The first step at which each particle of an ensemble reaches a target set.

    For a particle started in `state`, the first-passage step is
    k* = min{k >= 1 : target(θ_k)}, so the first-passage time is k*·dt (dt = η for the
    overdamped integrators, `dt` for `underdamped_langevin`). The target is checked after
    every step (discrete monitoring: an excursion into the target between two steps is
    missed, an O(√dt) delay).

    Args:
      integrator: an integrator built by a factory (e.g. `itg.langevin(lr, temperature)`);
        its numeric hyperparameters are traced, so a new temperature does not recompile.
      landscape: the `Landscape` whose exact gradient drives the particles.
      state: the initial ensemble state, `integrator.init(x0)` with x0 of shape (n, dim),
        possibly edited (e.g. thermal initial velocities).
      key: random key of the thermal noise.
      target: `target(x) -> bool (n,)` for positions x of shape (n, dim); a module-level
        function (it is a static argument of the jitted scan).
      max_steps: the step budget; particles not at the target by then are censored (-1).
      chunk: steps per jitted call; the ensemble is compacted between calls.
      min_size: smallest padded ensemble size kept after compaction.

    Returns:
      A `FirstPassage` with the step of every particle, in the order of `state`.
    """
    if integrator.factory is None:
        raise ValueError("first_passage needs an integrator built by an optdyn factory.")
    dynamic, static = _split(integrator)
    n = int(jax.tree_util.tree_leaves(state.params)[0].shape[0])
    result = np.full(n, -1, dtype=np.int64)
    rows = np.arange(n)  # rows[j] = original index of the j-th row (-1 for padding)
    first = np.full(n, _ACTIVE, np.int32)
    size, t = n, 0
    while t < max_steps:
        state, first = _chunk(
            dynamic,
            state,
            jnp.asarray(first, jnp.int32),
            np.int32(t),
            key,
            factory=integrator.factory,
            static=static,
            landscape=landscape,
            target=target,
            length=chunk,
        )
        t += chunk
        f = np.asarray(first)
        done = (f >= 0) & (rows >= 0)
        result[rows[done]] = f[done]
        alive = np.flatnonzero(f == _ACTIVE)
        if alive.size == 0:
            break
        new_size = max(min_size, 1 << int(np.ceil(np.log2(alive.size))))
        if new_size < size:
            index = np.concatenate([alive, np.full(new_size - alive.size, alive[0])])
            state = _take(state, index, size)
            first = np.r_[np.full(alive.size, _ACTIVE), np.full(new_size - alive.size, _PADDING)]
            rows = np.r_[rows[alive], np.full(new_size - alive.size, -1)]
            size = new_size
        else:
            # Rows that have finished are reported; mark them so they are not reported again.
            first = np.where(f >= 0, _PADDING, f)
            rows = np.where(f >= 0, -1, rows)
    result[(result > max_steps)] = -1
    return FirstPassage(steps=result, max_steps=int(max_steps))
