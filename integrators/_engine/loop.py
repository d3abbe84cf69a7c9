"""The stepping loop: fused blocks of steps, checked chunks, exact replay on divergence.

A chunk of `fuse · chunk_blocks` steps runs `fuse` steps per loop iteration with no
per-step check: a coordinate that leaves [−bound, bound] (or is not finite) is set to NaN,
which every later update θ + Δθ keeps, so one check at the end of the chunk finds it. If a
live particle ends the chunk non-finite, the chunk is run again from its start step by step
(`exact_steps`), so `diverged_step` and the frozen positions are exactly those of a check
after every step. With the column layout the integrator steps an (*batch, dim) ensemble
held as dim arrays of shape batch (`layout.Columns`): the gradient is elementwise, and XLA
fuses the block's steps into one loop over the particles.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from . import layout
from .columns import column_gradient, interleave
from .plan import Plan
from .step_keys import StepKeys

_map = jax.tree_util.tree_map


class Carry(NamedTuple):
    """What the loop carries from step to step."""

    state: Any  # the integrator state, (*batch, ...) layout
    noise_state: Any  # the gradient estimator's state
    alive: jax.Array  # bool (*batch,): not diverged
    diverged_step: jax.Array  # int32 (*batch,): step of divergence, or −1
    acc: dict  # streaming accumulators


class Loop:
    """The step, the fused block, the checked chunk and `advance` for one simulation."""

    def __init__(
        self,
        integrator,
        landscape,
        noise,
        plan: Plan,
        keys: StepKeys,
        *,
        x0,
        batch,
        bound: float,
        stream: tuple,
        tick=None,
    ):
        self.integrator, self.landscape, self.noise = integrator, landscape, noise
        self.plan, self.keys, self.bound, self.stream = plan, keys, bound, stream
        self.tick = tick  # tick(t0, length) after each chunk of steps t0 -> t0 + length (bars)
        self.x0, self.batch, self.bnd = x0, batch, len(batch)
        self.n_flat = math.prod(batch)
        if plan.columns:
            self.dim = x0.shape[-1]
            self.column_grad = column_gradient(landscape.energy, self.dim, x0.dtype)

    # ------------------------------------------------------------------ one step

    def flat(self, tree):  # (*batch, ...) -> (n_flat, ...)
        return _map(lambda a: a.reshape((self.n_flat,) + a.shape[self.bnd :]), tree)

    def unflat(self, tree):
        return _map(lambda a: a.reshape(self.batch + a.shape[1:]), tree)

    def _call(self, state, grads, key, grad_fn):
        if self.integrator.needs_grad_fn:
            return self.integrator.step(state, grads, key, grad_fn)
        return self.integrator.step(state, grads, key)

    def column_step(self, cols, noise_state, keys):
        """One step on the column layout (exact gradients only, see `plan.choose`)."""
        grad_fn = lambda p: layout.Columns(self.column_grad(p))  # noqa: E731
        return self._call(cols, grad_fn(cols.params), keys[1], grad_fn), noise_state

    def full_step(self, state, noise_state, keys):
        """One step on the (*batch, ...) layout, the gradient from the noise model."""
        k_grad, k_step = keys
        x = self.flat(state.params)
        grads, new_noise_state = self.noise.gradient(self.landscape, x, noise_state, k_grad)

        def grad_fn(params):
            """The same estimator (same mini-batch, same noise draw) at `params`; any leading
            axes (one sweep member's ensemble under the sweep's vmap)."""
            bnd = self.bnd
            x = _map(lambda a, t: a.reshape((-1,) + t.shape[bnd:]), params, self.x0)
            g = self.noise.gradient(self.landscape, x, noise_state, k_grad)[0]
            return _map(lambda a, p: a.reshape(p.shape), g, params)

        return self._call(state, self.unflat(grads), k_step, grad_fn), new_noise_state

    def layout_in(self, state):
        return layout.to_columns(state, self.batch, self.dim) if self.plan.columns else state

    def layout_out(self, state):
        return layout.from_columns(state) if self.plan.columns else state

    def block_step(self, inner, noise_state, keys):
        if self.plan.columns:
            return self.column_step(inner, noise_state, keys)
        return self.full_step(inner, noise_state, keys)

    def positions(self, params):
        return interleave(params) if self.plan.columns else params

    # ------------------------------------------------------------------ divergence

    def freeze(self, new, old, alive):
        """Particles that are not alive keep `old`; leaves without the batch axes: `new`."""
        bnd, batch = self.bnd, self.batch

        def pick(a, b):
            if jnp.ndim(a) >= bnd and jnp.shape(a)[:bnd] == batch:
                return jnp.where(alive.reshape(batch + (1,) * (a.ndim - bnd)), a, b)
            return a

        return _map(pick, new, old)

    def particle_ok(self, params):
        return layout.per_particle_all(params, self.bnd, lambda a: layout.within(a, self.bound))

    def update_streams(self, acc, x, t):
        return {name: accumulator.update(acc[name], x, t) for name, accumulator in self.stream}

    # ------------------------------------------------------------------ loops

    def one_step(self, carry: Carry, t, keys) -> Carry:
        """One exact step: divergence checked and frozen per particle (in the plan's layout,
        so that its random draws are those of the fused blocks)."""
        new, noise_state = self.block_step(self.layout_in(carry.state), carry.noise_state, keys)
        new = self.layout_out(new)
        ok = self.particle_ok(new.params)
        diverged_step = jnp.where(carry.alive & ~ok, t + 1, carry.diverged_step)
        alive = carry.alive & ok
        state = self.freeze(new, carry.state, alive)
        acc = self.update_streams(carry.acc, state.params, t + 1)
        return Carry(state, noise_state, alive, diverged_step, acc)

    def exact_steps(self, carry: Carry, t0, length: int) -> Carry:
        table = self.keys.table(t0, length)
        return jax.lax.fori_loop(
            0, length, lambda i, c: self.one_step(c, t0 + i, self.keys.at(table, i)), carry
        )

    def fused_block(self, carry: Carry, t0, length: int, table, i0) -> Carry:
        """`length` steps unrolled into one loop iteration; their keys are entries i0,
        i0 + 1, ... of the chunk's key `table`. Frozen particles run on (poisoned with NaN)
        and are reset after the chunk, unless accumulators must see them frozen."""
        inner, noise_state, acc = self.layout_in(carry.state), carry.noise_state, carry.acc
        for i in range(length):
            new, noise_state = self.block_step(inner, noise_state, self.keys.at(table, i0 + i))
            new = new._replace(params=_map(lambda a: layout.poison(a, self.bound), new.params))
            if self.stream:
                new = self.freeze(new, inner, carry.alive)
                acc = self.update_streams(acc, self.positions(new.params), t0 + i + 1)
            inner = new
        return carry._replace(state=self.layout_out(inner), noise_state=noise_state, acc=acc)

    def checked(self, carry: Carry, t0, length: int) -> Carry:
        """`length` steps in fused blocks, then one divergence check for all of them; the
        chunk is replayed step by step if a live particle diverged in it."""
        fuse = self.plan.fuse
        n_blocks, rem = divmod(length, fuse)
        table = self.keys.table(t0, length)
        fast = carry
        if n_blocks:
            fast = jax.lax.fori_loop(
                0,
                n_blocks,
                lambda b, c: self.fused_block(c, t0 + b * fuse, fuse, table, b * fuse),
                fast,
            )
        if rem:
            fast = self.fused_block(fast, t0 + n_blocks * fuse, rem, table, n_blocks * fuse)
        state = self.freeze(fast.state, carry.state, carry.alive)
        fast = fast._replace(state=state)
        leaves = [a for a in jax.tree_util.tree_leaves(state) if a.shape[: self.bnd] == self.batch]
        ok = self.particle_ok(state.params) & layout.per_particle_all(
            leaves, self.bnd, layout.finite
        )
        bad = jnp.any(carry.alive & ~ok)
        return jax.lax.cond(bad, lambda: self.exact_steps(carry, t0, length), lambda: fast)

    def ticked(self, run, carry: Carry, t0, length: int) -> Carry:
        carry = run(carry, t0, length)
        if self.tick is not None:
            self.tick(t0, length)
        return carry

    def advance(self, carry: Carry, t0, length: int) -> Carry:
        """`length` steps from step t0: exactly step by step, or in checked chunks."""
        if self.plan.fuse < 1:
            return self.ticked(self.exact_steps, carry, t0, length)
        chunk = self.plan.fuse * self.plan.chunk_blocks
        n_chunks, rem = divmod(length, chunk)
        if n_chunks:
            carry = jax.lax.fori_loop(
                0,
                n_chunks,
                lambda c, cr: self.ticked(self.checked, cr, t0 + c * chunk, chunk),
                carry,
            )
        if rem:
            carry = self.ticked(self.checked, carry, t0 + n_chunks * chunk, rem)
        return carry
