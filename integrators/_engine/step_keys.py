"""The random keys of each step, derived per chunk of steps without a hash per step."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from .prng import is_counter_key, stream_key, stream_normals, table_key


class StepKeys(NamedTuple):
    """The keys of the gradient noise and of the integrator's thermal noise at step t.

    Counter-mode keys: step t draws from stream t of each key (`prng.stream_key`), built
    from t without hashing, so a chunk's table is just its first step t0; for a small
    system (`tables`) the first normals of every stream of the chunk are computed in one
    vectorised call (`prng.stream_normals`), and the steps read them. Other keys: fold_in
    of the step index, in one vectorised call per chunk, materialised: a key derivation per
    step costs ~1 µs on CPU, 10x a step of one particle, and XLA would repeat it per
    particle if it were fused into the step.
    """

    grad: jax.Array  # key of the gradient estimator
    step: jax.Array  # key of the integrator step
    table_blocks: int  # normals tabulated per step (0: none)

    @classmethod
    def build(cls, key_grad, key_step, size: int, table_size: int) -> StepKeys:
        tables = is_counter_key(key_grad) and size <= table_size
        return cls(key_grad, key_step, size if tables else 0)

    def table(self, t0, length: int):
        """What the steps t0 .. t0 + length − 1 of a chunk read their keys from."""
        ts = t0 + jnp.arange(length, dtype=jnp.int32)
        if self.table_blocks:  # computed outside the loop over the chunk's steps
            return (
                t0,
                stream_normals(self.grad, ts, self.table_blocks),
                stream_normals(self.step, ts, self.table_blocks),
            )
        if is_counter_key(self.grad):
            return t0
        fold = jax.vmap(jax.random.fold_in, in_axes=(None, 0))
        return jax.lax.optimization_barrier((fold(self.grad, ts), fold(self.step, ts)))

    def at(self, table, i):
        """(gradient key, step key) of entry i of a chunk's `table`."""
        if self.table_blocks:
            t0, (g0, g1), (s0, s1) = table
            t = t0 + i
            return table_key(self.grad, t, g0[i], g1[i]), table_key(self.step, t, s0[i], s1[i])
        if is_counter_key(self.grad):
            return stream_key(self.grad, table + i), stream_key(self.step, table + i)
        return table[0][i], table[1][i]
