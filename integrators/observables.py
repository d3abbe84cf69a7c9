r"""Observables of a particle (or an ensemble): potential and kinetic energy, gradient norm,
kinetic temperature.

For an ensemble pass `batch_ndim=1` (or 2 for a sweep of ensembles): sums run over the
remaining axes of every leaf and the result has the batch shape.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..landscape.types import PyTree
from ._base import Integrator


def _sum_squares(tree: PyTree, batch_ndim: int) -> jax.Array:
    return sum(
        jnp.sum(jnp.square(a).reshape(jnp.shape(a)[:batch_ndim] + (-1,)), axis=-1)
        for a in jax.tree_util.tree_leaves(tree)
    )


def _n_dof(tree: PyTree, batch_ndim: int) -> int:
    return sum(
        int(jnp.size(a)) // max(1, int(jnp.prod(jnp.array(jnp.shape(a)[:batch_ndim]))))
        for a in jax.tree_util.tree_leaves(tree)
    )


def potential_energy(energy, params: PyTree, batch_ndim: int = 0) -> jax.Array:
    """U(θ), vmapped over `batch_ndim` leading axes."""
    fn = energy
    for _ in range(batch_ndim):
        fn = jax.vmap(fn)
    return fn(params)


def grad_norm(energy, params: PyTree, batch_ndim: int = 0) -> jax.Array:
    """|∇U(θ)|, the magnitude of the force."""
    fn = jax.grad(energy)
    for _ in range(batch_ndim):
        fn = jax.vmap(fn)
    return jnp.sqrt(_sum_squares(fn(params), batch_ndim))


def kinetic_energy(integrator: Integrator, state, batch_ndim: int = 0) -> jax.Array:
    r"""K = ½·M·|v|² with v the physical velocity of an underdamped integrator.

    For heavy ball in optimizer units (M = 1, dt = √η) this is ½·η·|m|², m the momentum
    buffer. Raises ValueError for integrators without a velocity (overdamped, adaptive).
    """
    if integrator.velocity is None:
        raise ValueError(
            f"integrator={integrator.name!r} has no velocity (it is overdamped or adaptive); "
            "kinetic energy is defined for momentum, nesterov and underdamped_langevin."
        )
    return 0.5 * integrator.mass * _sum_squares(integrator.velocity(state), batch_ndim)


def kinetic_temperature(integrator: Integrator, state, batch_ndim: int = 0) -> jax.Array:
    r"""T_kin = 2K/d (equipartition: ⟨½Mv_i²⟩ = T/2 for each of the d degrees of freedom)."""
    ke = kinetic_energy(integrator, state, batch_ndim)
    return 2 * ke / _n_dof(state.params, batch_ndim)
