r"""The simulator: whole trajectories of an ensemble in one jitted `lax.scan`.

    traj = simulate(momentum(lr=1e-3), landscape.rosenbrock(), x0, steps=2000, key=key)

One call compiles once per (integrator factory, landscape family, kind of noise model,
shapes, steps): numeric hyperparameters, the numbers of a landscape (a valley's Hessian, a
data set) and of a noise model (a covariance) are traced, so a new learning rate, condition
number or σ² does not recompile. The
integrator steps the whole ensemble array at once (one step count, one bias correction);
the gradient noise and thermal noise for the ensemble are drawn in one call per step.

Speed (see `_plan`): a deterministic ensemble on an analytic landscape is held one array per
coordinate inside the scan, so that the gradient is elementwise and XLA fuses several steps
into one loop over the particles; divergence is then checked once per chunk of steps (a
position leaving [-bound, bound] is poisoned with NaN, which sticks), and a chunk in which
a particle diverged is replayed step by step, so the reported step stays exact. Random
numbers come from Threefry-2x32 in counter mode (`integrators.prng`; float32 normals by
Box–Muller, two per block), which XLA fuses into the step; step t draws from stream t of
the run's key (the step number is the second counter word: no key is derived per step),
and a single trajectory reads its normals from a table computed once per chunk. Other
(n, dim) ensembles on analytic landscapes get their gradient by columns too
(`landscape.exact_gradient`), one elementwise expression fused into the step. On a CPU
with AVX-512 the scan is compiled for 512-bit vectors.
`record=False` stores nothing per step; `stream=` accumulates statistics inside the scan
(`integrators.streaming`).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import landscape as ls
from ..landscape._base import Landscape
from ..landscape.types import PRNGKey, PyTree
from ..landscape.validate import check_int, check_positive
from ._base import Integrator, _is_number, _is_sweep_value
from ._engine.columns import column_gradient, interleave
from ._engine.prng import counter_key, is_counter_key, stream_key, stream_normals, table_key
from .noise import Exact
from .optax_bridge import from_optax

_map = jax.tree_util.tree_map


class Trajectory(NamedTuple):
    """A recorded trajectory (or ensemble / sweep of trajectories).

    Leading axes are the batch axes `(sweep, particle)`, present only when the integrator
    sweeps hyperparameters and when `x0` is an ensemble; then comes the record axis.

    Attributes:
      positions: the parameters at each record, shape `(*batch, n_records, *x_shape)` on
        every leaf (None when `record_positions=False`). A diverged particle stays frozen at
        its last finite position, so no record holds NaN.
      loss: the exact potential U(θ) at each record, `(*batch, n_records)`.
      grad_norm: |∇U(θ)| (exact gradient) at each record, `(*batch, n_records)`.
      kinetic_energy: ½M|v|² at each record for underdamped integrators, else None.
      steps: the step index of each record, a NumPy array `(n_records,)`.
      diverged_step: int32 `(*batch,)`: the step whose result was non-finite or outside
        `bound` (the particle is frozen from the step before), or -1 if it never diverged.
      final_state: the integrator state after the last step (with batch axes).
      observed: `{name: values}` for the `observe` functions, each `(*batch, n_records, ...)`.
      stream: `{name: result}` of the streaming accumulators (`simulate(stream=...)`), each
        the accumulator's `finalize` of statistics gathered at every step inside the scan.
    """

    positions: PyTree | None
    loss: jax.Array
    grad_norm: jax.Array
    kinetic_energy: jax.Array | None
    steps: np.ndarray
    diverged_step: jax.Array
    final_state: Any
    observed: dict | None = None
    stream: dict | None = None

    @property
    def diverged(self) -> jax.Array:
        """Boolean `(*batch,)`: which trajectories diverged."""
        return self.diverged_step >= 0


@functools.cache
def _exact():
    """The default noise model, `landscape.noise.Exact()`: one instance for every run without
    a noise model."""
    return Exact()


def _as_integrator(optimizer) -> Integrator:
    if isinstance(optimizer, Integrator):
        return optimizer
    if hasattr(optimizer, "init") and hasattr(optimizer, "update"):
        return from_optax(optimizer)
    raise ValueError(
        f"optimizer={optimizer!r} is not an optdyn Integrator or an optax "
        "GradientTransformation; build one with e.g. integrators.momentum(lr=1e-3)."
    )


def _as_landscape(landscape) -> Landscape:
    if isinstance(landscape, Landscape):
        return landscape
    if isinstance(landscape, str):
        return ls.get(landscape)
    if callable(landscape):
        return ls.from_function(landscape)
    raise ValueError(
        f"landscape={landscape!r} is not a Landscape, a landscape name or an energy function."
    )


def _prepare_x0(x0, landscape: Landscape, ensemble: bool | None):
    """Return (x0 with a leading particle axis, whether the input was an ensemble)."""
    leaves = jax.tree_util.tree_leaves(x0)
    if not leaves:
        raise ValueError("x0 is empty: give the starting position(s) as an array or pytree.")

    def to_float(a):
        if isinstance(a, jax.Array) and jnp.issubdtype(a.dtype, jnp.inexact):
            return a  # no eager op: a simulate call costs ~0.15 ms of Python and dispatch
        a = jnp.asarray(a)
        return a if jnp.issubdtype(a.dtype, jnp.inexact) else a.astype(jnp.result_type(float))

    x0 = _map(to_float, x0)
    dim = landscape.dim
    if dim is not None:
        if not isinstance(x0, jax.Array) or x0.ndim not in (1, 2) or x0.shape[-1] != dim:
            shape = getattr(x0, "shape", type(x0).__name__)
            raise ValueError(
                f"x0 has shape {shape}, but landscape {landscape.name!r} has dimension {dim}: "
                f"give shape ({dim},) for one particle or (n, {dim}) for an ensemble of n."
            )
        is_ensemble = x0.ndim == 2 if ensemble is None else ensemble
        if ensemble is not None and ensemble != (x0.ndim == 2):
            raise ValueError(f"ensemble={ensemble} does not fit x0 of shape {x0.shape}.")
    else:
        is_ensemble = bool(ensemble)
    if is_ensemble:
        sizes = {jnp.shape(a)[0] if jnp.ndim(a) else None for a in leaves}
        if len(sizes) != 1 or None in sizes:
            raise ValueError(
                "ensemble x0 needs the same leading particle axis on every leaf; got sizes "
                f"{sizes}."
            )
        return x0, True
    return _map(lambda a: a[None], x0), False


def _split_hyperparams(integrator: Integrator):
    """Numbers (non-zero) and sweeps are traced; everything else (and exact zeros) is static."""
    dynamic, static = {}, {}
    for name, value in (integrator.hyperparams or {}).items():
        if isinstance(value, jax.Array) and value.ndim == 1:  # keeps its sharding
            dynamic[name] = value.astype(jnp.result_type(float))
        elif _is_sweep_value(value):
            dynamic[name] = jnp.asarray(np.asarray(value, dtype=float))
        elif _is_number(value) and value != 0:
            dynamic[name] = value  # traced by jit as is (a Python number: weakly typed)
        else:
            static[name] = value
    return dynamic, tuple(sorted(static.items(), key=lambda kv: kv[0]))


def simulate(
    optimizer,
    landscape,
    x0: PyTree,
    steps: int,
    key: PRNGKey | None = None,
    *,
    noise=None,
    record_every: int | None = 1,
    bound: float = 1e8,
    record_positions: bool = True,
    ensemble: bool | None = None,
    observe: dict | None = None,
    stream: dict | None = None,
    record: bool = True,
    fuse: int | None = None,
    prng_impl: str | None = "counter",
) -> Trajectory:
    r"""Run `optimizer` on `landscape` from `x0` for `steps` steps in one jitted scan.

    Each step computes the gradient the optimizer sees (exact, or from the `noise` model:
    the heat bath), then one integrator step. A particle whose new position is non-finite
    or has a coordinate with |θ_i| > `bound` is frozen at its previous position and the step
    is reported in `diverged_step`, so downstream plots never receive NaN. The same key gives
    the same trajectory.

    Args:
      optimizer: an `Integrator` (e.g. `momentum(lr=1e-3)`) or any optax
        `GradientTransformation`. Hyperparameters given as a list/1-D array are swept in the
        same call (a leading sweep axis on every output).
      landscape: a `Landscape`, a landscape name such as "rosenbrock", or an energy function.
      x0: starting position: shape (dim,) for one particle or (n, dim) for an ensemble of n;
        for landscapes of any dimension (user functions) any pytree, with `ensemble=True` when
        every leaf carries a leading particle axis.
      steps: number of steps >= 1.
      key: random key for thermal and gradient noise (default `jax.random.key(0)`).
      noise: a gradient-noise model from `landscape` (`gaussian`, `minibatch`, ...); default
        exact gradients.
      record_every: record every k-th step (and always the first and last); None records
        nothing (as `record=False`).
      bound: a particle with a coordinate beyond ±bound counts as diverged.
      record_positions: set False to record only the scalar observables (saves memory).
      ensemble: override the ensemble detection (see `x0`).
      observe: extra observables recorded with the others, `{name: fn}` with `fn(params)`
        taking one particle's parameters (e.g. test accuracy of a network); results in
        `Trajectory.observed[name]`.
      stream: streaming observables accumulated inside the scan at every step, `{name:
        accumulator}` with accumulators from `integrators.streaming` (`moments`, `histogram`,
        `first_passage`, `trace`, ...) or any `Accumulator(init, update, finalize)`;
        results in `Trajectory.stream[name]`. Accumulators see the positions with the batch
        axes, `(*batch, dim)` (n = 1 for one particle); a diverged particle contributes its
        frozen position.
      record: False stores no trajectory at all (`positions`, `loss`, `grad_norm`,
        `kinetic_energy` are None): memory stays that of the ensemble and the streams,
        whatever the number of steps.
      fuse: steps fused into one loop over the particles (one scan iteration); default
        (None) picks it from measurements (4 for GD and Langevin on an analytic landscape,
        16 and 2 for one such trajectory, 2 for Adam and one network, else 1); 0 checks
        divergence after every step. Larger values are not always faster: with random
        draws on an (n, dim) ensemble (underdamped Langevin, a gradient-noise model) two
        fused steps ran 6-14x slower on CPU, XLA evaluating the generator once per use.
        Otherwise divergence is checked once per chunk of `CHUNK_BLOCKS` fused blocks, and
        a chunk in which a particle diverged is run again step by step, so `diverged_step`
        is exact either way; the trajectory is the same up to rounding (same keys).
      prng_impl: "counter" (default) draws the noise from Threefry-2x32 in counter mode
        (`integrators.prng`), the same block function as JAX's default generator, fused into
        the step (a default `jax.random.key` is re-read with it; keys of other
        implementations are used as they are); None uses the key's own generator.

    Returns:
      A `Trajectory`; for one particle `positions` has shape (n_records, dim) and `loss`
      (n_records,), with n_records = steps + 1 when `record_every` = 1.
    """
    integrator = _as_integrator(optimizer)
    landscape = _as_landscape(landscape)
    steps = check_int("steps", steps)
    if not record:
        record_every = None
    if record_every is not None:
        record_every = check_int("record_every", record_every)
    check_positive("bound", bound)
    x0, is_ensemble = _prepare_x0(x0, landscape, ensemble)
    if key is None:
        key = jax.random.key(0)
    if prng_impl not in ("counter", None):
        raise ValueError(
            f"prng_impl={prng_impl!r} is not allowed: use 'counter' (Threefry-2x32 in counter "
            "mode, fused into the step) or None (the key's own generator)."
        )
    noise = _exact() if noise is None else noise
    stream = _check_stream(stream)
    columns, fuse = _plan(integrator, landscape, x0, noise, fuse, record_every, bool(stream))

    if integrator.factory is not None:
        dynamic, static = _split_hyperparams(integrator)
        builder = integrator.factory
    else:
        dynamic, static, builder = {}, (), integrator

    traced_landscape, traced_noise = _traced_arg(landscape), _traced_arg(noise)
    traj = _runner(dynamic, x0, key, traced_landscape, traced_noise)(
        dynamic,
        x0,
        key,
        builder=builder,
        static=static,
        landscape=traced_landscape,
        noise=traced_noise,
        steps=steps,
        record_every=record_every,
        bound=float(bound),
        record_positions=record_positions,
        sweep=integrator.sweep_size,
        observe=tuple(sorted((observe or {}).items())),
        stream=stream,
        columns=columns,
        fuse=fuse,
        counter=prng_impl == "counter",
    )
    if record_every is None:
        record_steps = np.zeros(0, dtype=int)
    else:
        record_steps = np.unique(np.r_[np.arange(0, steps + 1, record_every), steps])
    traj = traj._replace(steps=record_steps)
    if not is_ensemble:
        axis = 1 if integrator.sweep_size else 0
        squeeze = lambda a: None if a is None else jnp.squeeze(a, axis)  # noqa: E731
        traj = traj._replace(
            positions=None if traj.positions is None else _map(squeeze, traj.positions),
            loss=squeeze(traj.loss),
            grad_norm=squeeze(traj.grad_norm),
            kinetic_energy=squeeze(traj.kinetic_energy),
            diverged_step=squeeze(traj.diverged_step),
            observed={k: squeeze(v) for k, v in traj.observed.items()},
        )
    return traj


class _ById:
    """An object compared and hashed by identity (the aux data of `_Opaque`)."""

    __slots__ = ("obj",)

    def __init__(self, obj):
        self.obj = obj

    def __eq__(self, other):
        return isinstance(other, _ById) and other.obj is self.obj

    def __hash__(self):
        return id(self.obj)


@jax.tree_util.register_pytree_node_class
class _Opaque:
    """A pytree without leaves around an object that is not one (a user's noise model): jit
    compiles once per object, and inside the trace unflattening gives the object itself."""

    def __init__(self, obj):
        self.obj = obj

    def tree_flatten(self):
        return (), _ById(self.obj)

    @classmethod
    def tree_unflatten(cls, aux, children):
        return aux.obj


def _traced_arg(obj):
    """`obj` as a dynamic argument of the jitted runner: a pytree of numbers (a built-in
    noise model, a landscape's `compute_view`) as it is, its numbers traced; any other object
    (one that is not a pytree, or has leaves that are not numbers) wrapped in `_Opaque`."""
    numbers = (jax.Array, np.ndarray, np.generic, float, int, complex)
    if not all(isinstance(a, numbers) for a in jax.tree_util.tree_leaves(obj)):
        return _Opaque(obj)
    return obj.compute_view() if isinstance(obj, Landscape) else obj


def _check_stream(stream) -> tuple:
    """`{name: accumulator}` as a sorted tuple of pairs (hashable: a static jit argument)."""
    if stream is None:
        return ()
    if not isinstance(stream, dict):
        raise ValueError(f"stream={stream!r} must be a dict {{name: accumulator}}.")
    for name, acc in stream.items():
        if not all(callable(getattr(acc, f, None)) for f in ("init", "update", "finalize")):
            raise ValueError(
                f"stream[{name!r}]={acc!r} is not an accumulator: it needs init(x), "
                "update(acc, x, step) and finalize(acc), as integrators.streaming.Accumulator."
            )
    return tuple(sorted(stream.items(), key=lambda kv: kv[0]))


FUSE = 4
"""Steps fused into one loop over the particles by default (column layout, one state leaf)."""
FUSE_ONE = 16
"""Steps fused by default for a single trajectory (the loop overhead dominates there)."""
FUSE_NOISE = 2
"""Steps per loop iteration by default with a gradient-noise model for one particle on a
pytree landscape (one network: +5 to +20% for SGD, momentum and Adam; for 16 networks and
on analytic landscapes one step per iteration is faster)."""
FUSE_MULTI = 2
"""Steps per loop iteration by default for states of three leaves or more (Adam)."""
FUSE_RANDOM = 4
"""Random steps fused by default on an ensemble (column layout, one state leaf)."""
FUSE_RANDOM_ONE = 2
"""Random steps fused by default for a single trajectory (column layout, one state leaf):
its normals are read from a per-chunk table (`TABLE_SIZE`)."""
CHUNK_BLOCKS = 128
"""Fused blocks between two divergence checks (a chunk that diverged is run again exactly)."""
TABLE_SIZE = 64
"""Systems of at most this many numbers (all particles) read the normals of each step from
a table computed per chunk (`prng.stream_normals`) instead of running Threefry in the step."""


_PROFILES: dict = {}


def _profile(integrator: Integrator, x0) -> tuple[bool, int]:
    """Whether `integrator.step` uses its key, and how many state leaves are shaped like x.

    Cached like the jitted simulator: per factory and static hyperparameters (numbers are
    traced, and an exact zero temperature is static), else per integrator object.
    """
    leaves, treedef = jax.tree_util.tree_flatten(x0)
    shapes = tuple((jnp.shape(a), jnp.result_type(a)) for a in leaves)
    if integrator.factory is not None:
        _, static = _split_hyperparams(integrator)
        key = (integrator.factory, static, integrator.sweep_size, treedef, shapes)
    else:
        key = (integrator.init, integrator.step, treedef, shapes)
    try:
        return _PROFILES[key]
    except KeyError:
        pass
    except TypeError:  # unhashable static hyperparameters
        return _traced_profile(integrator, x0)
    if len(_PROFILES) > 256:
        _PROFILES.clear()
    _PROFILES[key] = result = _traced_profile(integrator, x0)
    return result


def _traced_profile(integrator: Integrator, x0) -> tuple[bool, int]:
    sweep = (integrator.sweep_size,) if integrator.sweep_size else ()
    x = _map(lambda a: jax.ShapeDtypeStruct(sweep + jnp.shape(a), jnp.result_type(a)), x0)
    key = jax.random.key(0)
    try:
        state = jax.eval_shape(integrator.init, x)
        closed = jax.make_jaxpr(integrator.step)(state, x, key)
    except Exception:  # noqa: BLE001 - anything unusual: assume the general case
        return True, 2
    jaxpr = closed.jaxpr
    live = {id(v) for v in jaxpr.outvars}
    for eqn in reversed(jaxpr.eqns):  # dead-code elimination: keep what the outputs need
        if any(id(v) in live for v in eqn.outvars):
            live.update(id(v) for v in eqn.invars)
    key_vars = jaxpr.invars[-len(jax.tree_util.tree_leaves(key)) :]
    used = any(id(v) in live for v in key_vars)
    shapes = [a.shape for a in jax.tree_util.tree_leaves(x)]
    matching = sum(1 for a in jax.tree_util.tree_leaves(state) if a.shape in shapes)
    return used, matching // max(len(shapes), 1)


def _plan(
    integrator: Integrator, landscape: Landscape, x0, noise, fuse, record_every, streams=False
):
    """(columns, fuse): the layout of the ensemble in the scan and the steps per fused block.

    The column (structure-of-arrays) layout is used for deterministic steps of a one-leaf
    state on an (n, dim) ensemble with exact gradients of an energy `column_gradient` can
    evaluate; there XLA fuses several steps into one loop. fuse = 0 checks divergence every
    step; fuse = k >= 1 runs k steps per loop iteration and checks once per chunk of
    `CHUNK_BLOCKS` iterations, replaying a chunk exactly if a particle diverged in it.
    Streaming accumulators add outputs that XLA would recompute the fused steps for, so
    with them one step per iteration (still checked per chunk) is fastest.
    """
    stochastic, leaves = _profile(integrator, x0)
    by_columns = (
        landscape.dim is not None
        and isinstance(x0, jax.Array)
        and x0.ndim == 2
        and column_gradient(landscape.energy, x0.shape[-1], x0.dtype) is not None
    )
    # measured on 2-D Rosenbrock (benchmarks/), float32, N = 10⁵ and 1: one-leaf states
    # (GD) gain from several steps per loop on columns, Langevin (counter-mode noise fused
    # in) from four, one Langevin trajectory (noise read from a per-chunk table) from two;
    # states of three leaves or more (Adam) from two steps per loop in the (n, dim)
    # layout, and so does one network with a gradient noise model; other states
    # (momentum, RMSprop, underdamped Langevin: two steps ran 6x slower on N = 10⁵) run one
    # step per loop iteration, checked per chunk
    exact_gradient = isinstance(noise, Exact)
    columns = by_columns and exact_gradient and (leaves <= 1 or streams)
    if fuse is not None:
        return columns, check_int("fuse", fuse, minimum=0)
    if record_every is not None and record_every < 2 * FUSE:
        return columns, 0
    one = x0.shape[0] == 1 and not integrator.sweep_size if by_columns else False
    if not exact_gradient and not streams:  # one network (a pytree) gains from two steps
        single = jax.tree_util.tree_leaves(x0)[0].shape[0] == 1 and not integrator.sweep_size
        return columns, FUSE_NOISE if landscape.dim is None and single else 1
    if streams:
        return columns, 1
    if not columns:
        return columns, FUSE_MULTI if leaves >= 3 else 1
    if stochastic:
        return columns, FUSE_RANDOM_ONE if one else FUSE_RANDOM
    return columns, FUSE_ONE if one else FUSE


def _batch_ndim(sweep) -> int:
    return 2 if sweep else 1


def _per_particle_all(tree, batch_ndim, predicate):
    """Reduce predicate(leaf) over all non-batch axes and all leaves: shape (*batch,)."""
    parts = [
        jnp.all(predicate(a).reshape(a.shape[:batch_ndim] + (-1,)), axis=-1)
        for a in jax.tree_util.tree_leaves(tree)
    ]
    return functools.reduce(jnp.logical_and, parts)


def _within(a, bound):
    """|a| <= bound elementwise: False for NaN and ±inf (for any bound, even inf)."""
    if not jnp.issubdtype(a.dtype, jnp.inexact):
        return jnp.ones(a.shape, bool)
    limit = min(bound, float(jnp.finfo(a.dtype).max))
    return jnp.abs(a) <= jnp.asarray(limit, a.dtype)


def _finite(a):
    if not jnp.issubdtype(a.dtype, jnp.inexact):
        return jnp.ones(a.shape, bool)
    return jnp.isfinite(a)


def _poison(a, bound):
    """a where |a| <= bound, else NaN: NaN then sticks to the position (θ + Δθ stays NaN)."""
    return jnp.where(_within(a, bound), a, jnp.asarray(jnp.nan, a.dtype))


@jax.tree_util.register_pytree_node_class
class _Columns(tuple):
    """Coordinate i of every particle as one array: the structure-of-arrays layout."""

    def tree_flatten(self):
        return tuple(self), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(children)


def _run_impl(
    dynamic,
    x0,
    key,
    *,
    builder,
    static,
    landscape,
    noise,
    steps,
    record_every,
    bound,
    record_positions,
    sweep,
    observe,
    stream=(),
    columns=False,
    fuse=1,
    counter=False,
):
    if counter:  # re-read inside the jit: no eager key operation per call
        key = counter_key(key)
    integrator = (
        builder(**dynamic, **dict(static))
        if callable(builder) and not isinstance(builder, Integrator)
        else builder
    )
    n = jax.tree_util.tree_leaves(x0)[0].shape[0]
    if sweep:
        x0 = _map(lambda a: jnp.broadcast_to(a, (sweep,) + a.shape), x0)
    bnd = _batch_ndim(sweep)
    batch = (sweep, n) if sweep else (n,)
    n_flat = int(np.prod(batch))

    def flat(tree):  # (*batch, ...) -> (n_flat, ...)
        return _map(lambda a: a.reshape((n_flat,) + a.shape[bnd:]), tree)

    def unflat(tree):
        return _map(lambda a: a.reshape(batch + a.shape[1:]), tree)

    energy = jax.vmap(landscape.energy)
    grad = jax.vmap(jax.grad(landscape.energy))
    key_noise, key_run = jax.random.split(key)
    state = integrator.init(x0)
    noise_state = noise.init(landscape, key_noise, n_flat)

    key_grad, key_step = jax.random.split(key_run)

    streams = is_counter_key(key_grad)
    size = sum(int(np.prod(jnp.shape(a))) for a in jax.tree_util.tree_leaves(x0))
    tables = streams and size <= TABLE_SIZE

    def key_table(t0, length):
        """The keys of steps t0 .. t0 + length - 1.

        Counter-mode keys: step t draws from stream t of each key (`prng.stream_key`), built
        from t without hashing, so the table is just t0; for a small system
        (`TABLE_SIZE`) the first normals of every stream of the chunk are computed here in
        one vectorised call (`prng.stream_normals`), and the steps read them. Other keys:
        fold_in of the step index, in one vectorised call per chunk: a key derivation per
        step costs ~1 µs on CPU, 10x a step of one particle, and XLA would repeat it per
        particle if fused into the step.
        """
        ts = t0 + jnp.arange(length, dtype=jnp.int32)
        if tables:  # computed outside the loop over the chunk's steps
            return t0, stream_normals(key_grad, ts, size), stream_normals(key_step, ts, size)
        if streams:
            return t0
        fold = jax.vmap(jax.random.fold_in, in_axes=(None, 0))
        # materialised: fused into the step, XLA would recompute the table for each particle
        return jax.lax.optimization_barrier((fold(key_grad, ts), fold(key_step, ts)))

    def keys_at(table, i):
        if tables:
            t0, (g0, g1), (s0, s1) = table
            t = t0 + i
            return table_key(key_grad, t, g0[i], g1[i]), table_key(key_step, t, s0[i], s1[i])
        if streams:
            return stream_key(key_grad, table + i), stream_key(key_step, table + i)
        return table[0][i], table[1][i]

    # With `columns`, the integrator steps an (*batch, d) ensemble held as d arrays of shape
    # batch (structure of arrays): the gradient is elementwise, and XLA fuses `fuse` steps
    # into one loop over the particles. Between blocks the state keeps the (*batch, d) layout.
    if columns:
        dim = x0.shape[-1]
        column_grad = column_gradient(landscape.energy, dim, x0.dtype)

        def to_columns(tree):
            def split(a):
                if jnp.shape(a) == batch + (dim,):
                    return _Columns(a[..., i] for i in range(dim))
                return a

            return _map(split, tree)

        def from_columns(tree):
            def is_cols(t):
                return isinstance(t, _Columns)

            return _map(lambda t: interleave(t) if is_cols(t) else t, tree, is_leaf=is_cols)

        def column_step(cols, noise_state, keys):
            k_grad, k_step = keys
            grads = _Columns(column_grad(cols.params))
            return integrator.step(cols, grads, k_step), noise_state

        def full_step(state, noise_state, keys):
            new, noise_state = column_step(to_columns(state), noise_state, keys)
            return from_columns(new), noise_state

    else:

        def full_step(state, noise_state, keys):
            k_grad, k_step = keys
            grads, noise_state = noise.gradient(landscape, flat(state.params), noise_state, k_grad)
            return integrator.step(state, unflat(grads), k_step), noise_state

    def freeze(new, old, alive):
        def pick(a, b):
            if jnp.ndim(a) >= bnd and jnp.shape(a)[:bnd] == batch:
                return jnp.where(alive.reshape(batch + (1,) * (a.ndim - bnd)), a, b)
            return a

        return _map(pick, new, old)

    def particle_ok(params):
        return _per_particle_all(params, bnd, lambda a: _within(a, bound))

    def update_streams(acc, x, t):
        return {name: accumulator.update(acc[name], x, t) for name, accumulator in stream}

    def one_step(carry, t, keys):
        """One exact step: divergence checked and frozen per particle."""
        state, noise_state, alive, diverged_step, acc = carry
        new, noise_state = full_step(state, noise_state, keys)
        ok = particle_ok(new.params)
        diverged_step = jnp.where(alive & ~ok, t + 1, diverged_step)
        alive = alive & ok
        state = freeze(new, state, alive)
        acc = update_streams(acc, state.params, t + 1)
        return (state, noise_state, alive, diverged_step, acc)

    def exact_steps(carry, t0, length):
        table = key_table(t0, length)
        return jax.lax.fori_loop(
            0, length, lambda i, c: one_step(c, t0 + i, keys_at(table, i)), carry
        )

    if columns:
        layout_in, layout_out, block_step, block_positions = (
            to_columns,
            from_columns,
            column_step,
            interleave,
        )
    else:
        layout_in = layout_out = block_positions = lambda tree: tree  # noqa: E731
        block_step = full_step

    def fused_block(carry, t0, length, table, i0):
        """`length` steps unrolled into one loop iteration (one fused loop on columns);
        their keys are entries i0, i0 + 1, ... of the chunk's key `table`.

        A coordinate that leaves [-bound, bound] (or is not finite) is set to NaN, which
        every later update θ + Δθ keeps, so `checked` finds it at the end of the chunk.
        """
        state0, noise_state, alive, diverged_step, acc = carry
        inner = layout_in(state0)
        for i in range(length):
            t = t0 + i
            new, noise_state = block_step(inner, noise_state, keys_at(table, i0 + i))
            new = new._replace(params=_map(lambda a: _poison(a, bound), new.params))
            if stream:  # the accumulators see frozen particles where they froze
                new = freeze(new, inner, alive)
                acc = update_streams(acc, block_positions(new.params), t + 1)
            inner = new  # else frozen particles run on, and are reset after the chunk
        return (layout_out(inner), noise_state, alive, diverged_step, acc)

    def checked(carry, t0, length):
        """`length` steps in fused blocks, then one divergence check for all of them.

        If a live particle ends the chunk with a non-finite value in its state (its
        position left [-bound, bound] at some step), the chunk is run again from its start
        with `exact_steps`, so `diverged_step` and the frozen positions are exactly those of
        the step-by-step check.
        """
        n_blocks, rem = divmod(length, fuse)
        table = key_table(t0, length)
        fast = carry
        if n_blocks:
            fast = jax.lax.fori_loop(
                0,
                n_blocks,
                lambda b, c: fused_block(c, t0 + b * fuse, fuse, table, b * fuse),
                fast,
            )
        if rem:
            fast = fused_block(fast, t0 + n_blocks * fuse, rem, table, n_blocks * fuse)
        alive = carry[2]
        state = freeze(fast[0], carry[0], alive)
        fast = (state,) + fast[1:]
        per_particle = [a for a in jax.tree_util.tree_leaves(state) if a.shape[:bnd] == batch]
        ok = particle_ok(state.params) & _per_particle_all(per_particle, bnd, _finite)
        bad = jnp.any(alive & ~ok)
        return jax.lax.cond(bad, lambda: exact_steps(carry, t0, length), lambda: fast)

    def advance(carry, t0, length):
        """`length` steps from step t0: exactly step by step, or in checked chunks."""
        if fuse < 1:
            return exact_steps(carry, t0, length)
        chunk = fuse * CHUNK_BLOCKS
        n_chunks, rem = divmod(length, chunk)
        if n_chunks:
            carry = jax.lax.fori_loop(
                0, n_chunks, lambda c, cr: checked(cr, t0 + c * chunk, chunk), carry
            )
        if rem:
            carry = checked(carry, t0 + n_chunks * chunk, rem)
        return carry

    def record(state):
        x = flat(state.params)
        g = grad(x)
        gnorm = jnp.sqrt(
            sum(
                jnp.sum(jnp.square(a).reshape(n_flat, -1), axis=1)
                for a in jax.tree_util.tree_leaves(g)
            )
        )
        out = {
            "loss": energy(x).reshape(batch),
            "grad_norm": gnorm.reshape(batch),
            "positions": state.params if record_positions else None,
            "kinetic_energy": None,
            "observed": {
                name: _map(lambda a: a.reshape(batch + a.shape[1:]), jax.vmap(fn)(x))
                for name, fn in observe
            },
        }
        if integrator.velocity is not None:
            v = integrator.velocity(state)
            ke = sum(
                jnp.sum(jnp.square(a).reshape(batch + (-1,)), axis=-1)
                for a in jax.tree_util.tree_leaves(v)
            )
            out["kinetic_energy"] = 0.5 * integrator.mass * ke
        return out

    alive = jnp.ones(batch, bool)
    acc = {name: accumulator.init(x0) for name, accumulator in stream}
    carry = (state, noise_state, alive, jnp.full(batch, -1, jnp.int32), acc)
    if record_every is None:  # nothing recorded: only the final state and the streams
        carry = advance(carry, jnp.int32(0), steps)
        records = dict.fromkeys(("loss", "grad_norm", "positions", "kinetic_energy"))
        records["observed"] = {}
    else:
        first = record(state)
        n_chunks, rem = divmod(steps, record_every)

        def chunk(carry, t0, length):
            carry = advance(carry, t0, length)
            return carry, record(carry[0])

        carry, recs = jax.lax.scan(
            lambda c, t0: chunk(c, t0, record_every),
            carry,
            jnp.arange(n_chunks, dtype=jnp.int32) * record_every,
        )
        records = _map(lambda a, b: jnp.concatenate([a[None], b]), first, recs)
        if rem:
            carry, last = chunk(carry, jnp.int32(n_chunks * record_every), rem)
            records = _map(lambda a, b: jnp.concatenate([a, b[None]]), records, last)
        # time-major (T, *batch, ...) -> (*batch, T, ...)
        records = _map(lambda a: jnp.moveaxis(a, 0, bnd), records)
    return Trajectory(
        positions=records["positions"],
        loss=records["loss"],
        grad_norm=records["grad_norm"],
        kinetic_energy=records["kinetic_energy"],
        steps=None,
        diverged_step=carry[3],
        final_state=carry[0],
        observed=records["observed"],
        stream={name: accumulator.finalize(carry[4][name]) for name, accumulator in stream},
    )


_STATIC = (
    "builder",
    "static",
    "steps",
    "record_every",
    "bound",
    "record_positions",
    "sweep",
    "observe",
    "stream",
    "columns",
    "fuse",
    "counter",
)


def _has_avx512() -> bool:
    """Whether this x86 CPU has AVX-512 (Linux /proc/cpuinfo; False where unreadable)."""
    try:
        with open("/proc/cpuinfo") as f:
            return any(line.startswith("flags") and " avx512f" in line for line in f)
    except OSError:
        return False


@functools.cache
def _runner_for(backend: str):
    """The jitted simulator for a backend. On a CPU with AVX-512, XLA is asked to vectorise
    with 512-bit registers (its default is 256): measured on 2-D Rosenbrock, GD +22%,
    Langevin +18%, Adam +6% (`benchmarks/`)."""
    wide = backend == "cpu" and _has_avx512()
    options = {"xla_cpu_prefer_vector_width": 512} if wide else None
    return jax.jit(_run_impl, static_argnames=_STATIC, compiler_options=options)


def _runner(*args):
    """The jitted simulator for the default backend (decided at the first call, not at
    import, so that XLA_FLAGS and platform settings made after the import still apply).

    Inside a user's `jit` (traced arguments) compiler options are not allowed: then the
    plain jitted simulator, compiled with the caller's computation.
    """
    traced = any(isinstance(a, jax.core.Tracer) for a in jax.tree_util.tree_leaves(args))
    return _runner_for("traced" if traced else jax.default_backend())
