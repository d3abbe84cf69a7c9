"""The plan: how a simulation is laid out and fused, chosen per backend from measurements.

Every tuning constant lives here, beside the measurement that justified it. Nothing in a
plan changes what is computed (the same keys give the same trajectory up to rounding), only
how fast: the layout of the ensemble inside the loop, how many steps are fused into one loop
iteration, how often divergence is checked, and the compiler's vector width.
"""

from __future__ import annotations

import functools
import weakref
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ...landscape._base import Landscape
from ...landscape.validate import check_int
from .._inputs import split_hyperparams
from ..noise import Exact
from .columns import column_gradient


class Tuning(NamedTuple):
    """The constants of one backend (steps per fused block, chunk length, tables, vectors)."""

    fuse: int  # GD-like steps (one-leaf state) on columns, ensemble
    fuse_one: int  # the same for a single trajectory (loop overhead dominates)
    fuse_random: int  # random steps (Langevin) on columns, ensemble
    fuse_random_one: int  # random steps on columns, one trajectory (normals from tables)
    fuse_multi: int  # states of three leaves or more (Adam), (n, dim) layout
    fuse_noise: int  # one network (pytree landscape) with a gradient-noise model
    chunk_blocks: int  # fused blocks between two divergence checks
    table_size: int  # systems of at most this many numbers read normals from tables
    vector_width: int | None  # XLA CPU vector width in bits (None: XLA's default)


CPU = Tuning(
    # measured on 2-D Rosenbrock (benchmarks/), float32, N = 10⁵ and 1, 2-core AMD EPYC:
    # one-leaf states (GD) gain from several steps per loop on columns; a single GD
    # trajectory from 16 (the loop overhead dominates)
    fuse=4,
    fuse_one=16,
    # Langevin (counter-mode noise fused in) from four on an ensemble, and one trajectory
    # (normals read from a per-chunk table) from two
    fuse_random=4,
    fuse_random_one=2,
    # Adam (three leaves, (n, dim) layout) from two; momentum, RMSprop, underdamped
    # Langevin ran 6x slower with two (XLA evaluates the generator once per use), so they
    # run one step per loop iteration, checked per chunk
    fuse_multi=2,
    # one network with a gradient-noise model: +5 to +20% for SGD, momentum and Adam with
    # two; for 16 networks and on analytic landscapes one step per iteration is faster
    fuse_noise=2,
    # a chunk in which a particle diverged is replayed step by step: 128 blocks amortise
    # the check and keep the replay short
    chunk_blocks=128,
    # at most 64 numbers per step (all particles): reading normals from a per-chunk table
    # beat running Threefry in the step (one Langevin trajectory 8.8e6 -> 3.7e7 steps/s)
    table_size=64,
    # 512-bit vectors on AVX-512 CPUs: GD +22%, Langevin +18%, Adam +6% (2-D Rosenbrock)
    vector_width=512,
)

ACCELERATOR = Tuning(
    # GPU and TPU: not measured by this project yet. Each step is one kernel launch either
    # way and the particles of an ensemble fill the device, so nothing is unrolled; the
    # divergence check still runs once per chunk, and tables are not used.
    fuse=1,
    fuse_one=1,
    fuse_random=1,
    fuse_random_one=1,
    fuse_multi=1,
    fuse_noise=1,
    chunk_blocks=128,
    table_size=0,
    vector_width=None,
)


def tuning(backend: str) -> Tuning:
    """The tuning of a backend ("cpu", "gpu", "cuda", "rocm", "tpu", ...)."""
    return CPU if backend == "cpu" else ACCELERATOR


class Plan(NamedTuple):
    """How one simulation runs: a static (hashable) argument of the jitted runner."""

    columns: bool  # hold the (n, dim) ensemble as dim arrays inside the loop
    fuse: int  # steps per fused block; 0 checks divergence after every step
    chunk_blocks: int  # fused blocks per divergence check
    table_size: int  # see `Tuning.table_size`


def choose(
    backend: str,
    integrator,
    landscape: Landscape,
    x0,
    noise,
    fuse: int | None,
    record_every: int | None,
    streams: bool = False,
) -> Plan:
    """The plan for this run on `backend`.

    The column layout is used for an `elementwise` integrator with a one-leaf state on an
    (n, dim) ensemble with exact gradients of an energy that `column_gradient` can evaluate
    (or with streaming accumulators); there XLA fuses several steps into one loop. fuse = 0
    checks divergence every step; fuse = k >= 1 runs k steps per loop iteration and checks
    once per chunk of `chunk_blocks` iterations, replaying a chunk exactly if a particle
    diverged in it. Streaming accumulators add outputs that XLA would recompute the fused
    steps for, so with them one step per iteration (still checked per chunk) is fastest.
    """
    t = tuning(backend)
    stochastic, leaves = _profile(integrator, x0)
    by_columns = (
        landscape.dim is not None
        and isinstance(x0, jax.Array)
        and x0.ndim == 2
        and _has_column_gradient(landscape.energy, x0.shape[-1], x0.dtype)
    )
    exact = isinstance(noise, Exact)
    columns = by_columns and exact and integrator.elementwise and (leaves <= 1 or streams)

    def plan(k):
        return Plan(columns, k, t.chunk_blocks, t.table_size)

    if fuse is not None:
        return plan(check_int("fuse", fuse, minimum=0))
    if record_every is not None and record_every < 2 * t.fuse:
        return plan(0)
    one = x0.shape[0] == 1 and not integrator.sweep_size if by_columns else False
    if not exact and not streams:
        single = jax.tree_util.tree_leaves(x0)[0].shape[0] == 1 and not integrator.sweep_size
        return plan(t.fuse_noise if landscape.dim is None and single else 1)
    if streams:
        return plan(1)
    if not columns:
        return plan(t.fuse_multi if leaves >= 3 else 1)
    if stochastic:
        return plan(t.fuse_random_one if one else t.fuse_random)
    return plan(t.fuse_one if one else t.fuse)


_COLUMNS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _has_column_gradient(energy, dim: int, dtype) -> bool:
    """Whether `column_gradient` evaluates this energy, cached per energy object."""
    key = (dim, jnp.dtype(dtype))
    try:
        known = _COLUMNS.setdefault(energy, {})
    except TypeError:  # not weakly referenceable: asked every time
        known = {}
    if key not in known:
        known[key] = column_gradient(energy, dim, dtype) is not None
    return known[key]


_PROFILES: dict = {}


def _profile(integrator, x0) -> tuple[bool, int]:
    """Whether `integrator.step` uses its key, and how many state leaves are shaped like x.

    Cached per factory and static hyperparameters (numbers are traced, an exact zero
    temperature is static), else per integrator object.
    """
    leaves, treedef = jax.tree_util.tree_flatten(x0)
    shapes = tuple((jnp.shape(a), jnp.result_type(a)) for a in leaves)
    if integrator.factory is not None:
        _, static = split_hyperparams(integrator)
        key = (integrator.factory, static, integrator.sweep_size, treedef, shapes)
    else:
        key = (integrator.init, integrator.step, treedef, shapes)
    if not _hashable(key):
        return _traced_profile(integrator, x0)
    if key not in _PROFILES:
        if len(_PROFILES) > 256:
            _PROFILES.clear()
        _PROFILES[key] = _traced_profile(integrator, x0)
    return _PROFILES[key]


def _hashable(value) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _traced_profile(integrator, x0) -> tuple[bool, int]:
    """Trace one step abstractly (no compute) and prune it to what its outputs need."""
    sweep = (integrator.sweep_size,) if integrator.sweep_size else ()
    x = jax.tree_util.tree_map(
        lambda a: jax.ShapeDtypeStruct(sweep + jnp.shape(a), jnp.result_type(a)), x0
    )
    key = jax.random.key(0)
    state = jax.eval_shape(integrator.init, x)
    if integrator.needs_grad_fn:
        step = functools.partial(_step_with_identity_grad_fn, integrator.step)
    else:
        step = integrator.step
    jaxpr = jax.make_jaxpr(step)(state, x, key).jaxpr
    live = {id(v) for v in jaxpr.outvars}
    for eqn in reversed(jaxpr.eqns):  # dead-code elimination: keep what the outputs need
        if any(id(v) in live for v in eqn.outvars):
            live.update(id(v) for v in eqn.invars)
    key_vars = jaxpr.invars[-len(jax.tree_util.tree_leaves(key)) :]
    used = any(id(v) in live for v in key_vars)
    shapes = [a.shape for a in jax.tree_util.tree_leaves(x)]
    matching = sum(1 for a in jax.tree_util.tree_leaves(state) if a.shape in shapes)
    return used, matching // max(len(shapes), 1)


def _step_with_identity_grad_fn(step, state, grads, key):
    return step(state, grads, key, lambda p: p)
