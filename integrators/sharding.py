"""Ensembles and sweeps across every device JAX sees: one call on 1 CPU, 8 GPUs or a TPU slice.

    traj = simulate_sharded(itg.langevin(1e-3, 0.1), U, x0, steps=10**4, key=key)

The particle axis of the ensemble is split over a one-dimensional `jax.sharding.Mesh` of
all devices (`NamedSharding(mesh, PartitionSpec("particles"))`); `simulate` is jitted, so
XLA's SPMD partitioner runs each device's particles where they live. Particles do not
interact: the only communication is the divergence check (one boolean all-reduce per chunk
of steps) and the reductions of streaming statistics. Random numbers come from JAX's
partitionable threefry, so the result is the same, bit for bit in float64, whatever the
number of devices. A sweep of a single particle is split over its sweep axis instead.

Several hosts (processes): start every process with

    jax.distributed.initialize()   # coordinator address, process count and id from the
                                   # cluster environment (SLURM, TPU pods) or as arguments

(or let `python -m optdyn.integrators.launch` start them, see `integrators/launch.py`);
then `jax.devices()` lists the devices of all hosts and `particle_mesh()` spans them. Every
process calls `simulate_sharded` with the same arguments, either with the whole `x0`, or
with its own slice of any size and `process_local=True`: the slices are gathered (in process
order; starting points only, never trajectories), padded to a multiple of the device count
and the padding cut, as on one process, so the numbers equal those of one process run on the
concatenated slices. `gather(traj)` brings the global arrays to every process as NumPy
(`jax.experimental.multihost_utils.process_allgather`, a collective: every process calls it).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from ._inputs import as_integrator, check_mesh
from .simulate import simulate
from .trajectory import Trajectory

AXIS = "particles"
"""The name of the mesh axis the ensemble is split over."""


def particle_mesh(devices=None) -> Mesh:
    """A one-dimensional mesh named "particles" over `devices` (default: all of them)."""
    devices = jax.devices() if devices is None else list(devices)
    return Mesh(np.asarray(devices), (AXIS,))


def particle_sharding(mesh: Mesh, ndim: int, axis: int = 0) -> NamedSharding:
    """Split axis `axis` of an array of rank `ndim` over the mesh; replicate the others."""
    spec = [None] * ndim
    spec[axis] = AXIS
    return NamedSharding(mesh, P(*spec))


def shard(x, mesh: Mesh | None = None, *, axis: int = 0, global_shape=None):
    """Place an ensemble (array or pytree, particles along `axis`) split over the mesh.

    Args:
      x: the ensemble, every leaf with its particle axis at `axis`. On several hosts, each
        process's local slice (then give `global_shape`).
      mesh: the mesh (default `particle_mesh()`).
      axis: the particle axis.
      global_shape: the shape of the whole ensemble when `x` is this process's slice.

    Returns:
      The same pytree of global `jax.Array`s, sharded.
    """
    mesh = particle_mesh() if mesh is None else mesh

    def place(a):
        a = jnp.asarray(a) if global_shape is None else np.asarray(a)
        sharding = particle_sharding(mesh, a.ndim, axis)
        if global_shape is not None:
            n_dev = mesh.devices.size
            if global_shape[axis] % n_dev:
                raise ValueError(
                    f"global_shape={tuple(global_shape)}: the particle axis must be a "
                    f"multiple of the {n_dev} devices; for slices of any size call "
                    "simulate_sharded(..., process_local=True) instead"
                )
            return jax.make_array_from_process_local_data(sharding, a, global_shape)
        return jax.device_put(a, sharding)

    return jax.tree_util.tree_map(place, x)


def gather_slices(x_local):
    """The concatenation, in process order, of every process's slice (any sizes) of a pytree.

    A collective: every process calls it. One process: `x_local` itself (as NumPy).
    """
    leaves = jax.tree_util.tree_leaves(x_local)
    if jax.process_count() == 1:
        return jax.tree_util.tree_map(np.asarray, x_local)
    n = int(np.shape(leaves[0])[0])
    sizes = np.asarray(multihost_utils.process_allgather(np.int32(n))).reshape(-1)
    width = int(sizes.max())

    def gather(a):
        a = np.asarray(a)
        padded = np.concatenate([a, np.zeros((width - n, *a.shape[1:]), a.dtype)])
        every = np.asarray(multihost_utils.process_allgather(padded))  # (processes, width, ...)
        return np.concatenate([every[p, : sizes[p]] for p in range(len(sizes))])

    return jax.tree_util.tree_map(gather, x_local)


def gather(tree):
    """Every array of `tree` (a `Trajectory`, ...) as a NumPy array on every process.

    On several processes a collective (`multihost_utils.process_allgather`, tiled): every
    process calls it; on one process a plain device-to-host copy.
    """
    if jax.process_count() == 1:
        return jax.tree_util.tree_map(np.asarray, tree)
    return multihost_utils.process_allgather(tree, tiled=True)


def simulate_sharded(
    optimizer,
    landscape,
    x0,
    steps: int,
    key=None,
    *,
    mesh=None,
    process_local: bool = False,
    **kwargs,
):
    """`simulate` with the ensemble (or the sweep) split over all devices.

    Same arguments and same `Trajectory` as `simulate` (which it calls), with the particle
    axis of `x0` split over `mesh`. An ensemble whose size is not a multiple of the number
    of devices is padded with copies of its first particle, and the padding is cut from
    every output; streaming statistics pool over particles, so with `stream=` the size must
    be a multiple. A single particle with a hyperparameter sweep is split over the sweep.

    Args:
      optimizer, landscape, x0, steps, key: as `simulate`.
      mesh: a mesh with one axis named "particles" (default `particle_mesh()`).
      process_local: on several processes, `x0` is this process's slice of the ensemble
        (any size); the slices are gathered in process order (`gather_slices`) and the
        result is that of the whole ensemble.
      **kwargs: any other `simulate` argument (noise, record_every, bound, stream, ...).

    Returns:
      The `Trajectory`, its arrays sharded over the devices along the particle axis.
    """
    mesh = particle_mesh() if mesh is None else check_mesh(mesh, AXIS)
    n_dev = mesh.devices.size
    if process_local:
        x0 = gather_slices(x0)
    integrator = as_integrator(optimizer)
    leaves = jax.tree_util.tree_leaves(x0)
    is_ensemble = kwargs.get("ensemble")
    if is_ensemble is None:
        is_ensemble = getattr(landscape, "dim", None) is not None and jnp.ndim(leaves[0]) == 2
    if n_dev == 1:
        return simulate(optimizer, landscape, x0, steps, key, **kwargs)
    if not is_ensemble:
        if integrator.sweep_size and integrator.sweep_size % n_dev == 0:
            return _sweep_sharded(integrator, landscape, x0, steps, key, mesh, kwargs)
        return simulate(optimizer, landscape, x0, steps, key, **kwargs)
    n = jnp.shape(leaves[0])[0]
    pad = (-n) % n_dev
    if pad and kwargs.get("stream"):
        raise ValueError(
            f"stream= pools over particles: the ensemble size {n} must be a multiple of the "
            f"{n_dev} devices (pad it yourself, or drop {n % n_dev} particles)."
        )
    if pad:
        x0 = jax.tree_util.tree_map(
            lambda a: jnp.concatenate([a, jnp.repeat(a[:1], pad, axis=0)]), x0
        )
    traj = simulate(optimizer, landscape, shard(x0, mesh), steps, key, **kwargs)
    return _cut(traj, n, integrator.sweep_size) if pad else traj


def _sweep_sharded(integrator, landscape, x0, steps, key, mesh, kwargs) -> Trajectory:
    """Split the swept hyperparameters (the leading axis of every output) over the mesh."""
    values = {
        k: jax.device_put(jnp.asarray(np.asarray(v, float)), particle_sharding(mesh, 1))
        for k, v in (integrator.hyperparams or {}).items()
        if isinstance(v, list | tuple | np.ndarray | jax.Array) and np.ndim(v) == 1
    }
    return simulate(integrator.with_hyperparams(**values), landscape, x0, steps, key, **kwargs)


def _cut(traj: Trajectory, n: int, sweep) -> Trajectory:
    """Drop the padding particles (beyond n) from every per-particle output."""
    axis = 1 if sweep else 0

    def cut(a):
        if a is None or not hasattr(a, "shape") or a.ndim <= axis:
            return a
        return jax.lax.slice_in_dim(a, 0, n, axis=axis)

    def cut_tree(tree):
        return None if tree is None else jax.tree_util.tree_map(cut, tree)

    final = jax.tree_util.tree_map(
        lambda a: cut(a) if a.ndim > axis and a.shape[axis] >= n else a, traj.final_state
    )
    return traj._replace(
        positions=cut_tree(traj.positions),
        loss=cut(traj.loss),
        grad_norm=cut(traj.grad_norm),
        kinetic_energy=cut(traj.kinetic_energy),
        diverged_step=cut(traj.diverged_step),
        final_state=final,
        observed=cut_tree(traj.observed),
    )
