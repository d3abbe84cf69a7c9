"""optax, both ways: run any optax `GradientTransformation` as an integrator, and hand any
optdyn integrator to code that expects a `GradientTransformation`."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from ..landscape.types import PRNGKey, PyTree
from ._base import Integrator, increment, integrator_factory, step_count


class OptaxState(NamedTuple):
    """State of an optax transformation run as an integrator."""

    params: PyTree  # position θ
    opt_state: Any  # the transformation's own state
    count: jax.Array  # int32 scalar: steps taken k


@integrator_factory
def from_optax(transformation: optax.GradientTransformation) -> Integrator:
    """Wrap an optax `GradientTransformation` as a zero-temperature integrator.

    θ_{k+1} = θ_k + u_k with (u_k, s_{k+1}) = transformation.update(∇L(θ_k), s_k, θ_k),
    one optax state s per particle: `init` and `step` take the ensemble (a leading particle
    axis on every leaf, as `simulate` passes it) and vmap the transformation over that axis.
    So an ensemble member follows the same path as that particle run alone, whatever the
    chain: `optax.clip_by_global_norm` clips each particle by its own gradient norm.
    A random key in the optax state (`optax.add_noise`, `noisy_sgd`) is folded with the
    particle's index, so the particles draw independent noise (particle i's stream is
    `fold_in(key, i)`).
    """
    per_particle_init = jax.vmap(transformation.init)
    per_particle_update = jax.vmap(transformation.update)

    def init(params):
        opt_state = per_particle_init(params)
        return OptaxState(params, jax.tree_util.tree_map(_own_stream, opt_state), step_count())

    def step(state, grads, key):
        del key
        updates, opt_state = per_particle_update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        return OptaxState(params, opt_state, increment(state.count))

    return Integrator(init, step, name="optax")


def _own_stream(leaf):
    """A (particles,) array of equal typed keys -> one independent key per particle."""
    if isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        return jax.vmap(jax.random.fold_in)(leaf, jnp.arange(leaf.shape[0], dtype=jnp.uint32))
    return leaf


class AsOptaxState(NamedTuple):
    """State of an optdyn integrator seen as an optax transformation."""

    inner: Any  # the integrator's state, with params=None (optax passes params in)
    key: PRNGKey  # random key for the thermal noise, split every step


def as_optax(integrator: Integrator, key: PRNGKey | None = None) -> optax.GradientTransformation:
    """An optax `GradientTransformation` that performs `integrator`'s steps.

    `update(grads, state, params)` returns the displacement θ_{k+1} − θ_k, so
    `optax.apply_updates(params, updates)` lands on the integrator's next position (up to
    rounding). `params` is required. `key` seeds the thermal noise (default key 0).
    """
    if key is None:
        key = jax.random.key(0)

    def init_fn(params):
        return AsOptaxState(integrator.init(params)._replace(params=None), key)

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError(
                f"params=None: the optdyn integrator {integrator.name!r} needs the current "
                "parameters; call update(grads, state, params)."
            )
        next_key, step_key = jax.random.split(state.key)
        new = integrator.step(state.inner._replace(params=params), updates, step_key)
        displacement = jax.tree_util.tree_map(lambda a, b: a - b, new.params, params)
        return displacement, AsOptaxState(new._replace(params=None), next_key)

    return optax.GradientTransformation(init_fn, update_fn)
