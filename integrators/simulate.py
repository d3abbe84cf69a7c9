r"""The simulator: whole trajectories of an ensemble in one jitted `lax.scan`.

    traj = simulate(momentum(lr=1e-3), landscape.rosenbrock(), x0, steps=2000, key=key)

This module is the driver: it checks the arguments (`_inputs`), asks the private engine for
a plan for the backend (`_engine.plan`), calls the jitted runner once and assembles the
`Trajectory`. Numeric hyperparameters, the numbers of a landscape (a valley's Hessian, a data
set) and of a noise model (a covariance) are traced data, so a new learning rate, condition
number or σ² does not recompile, and `simulate` runs under `jax.jit`, `jax.vmap` and
`jax.grad`. The integrator
steps the whole ensemble array at once (one step count, one bias correction); how the
steps are fused, laid out and keyed is the engine's business (`_engine.loop`), and never
changes what is computed.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..landscape.types import PRNGKey, PyTree
from ..landscape.validate import check_int, check_positive
from . import _inputs
from ._base import Integrator
from ._default_key import default_key
from ._engine import compile as engine_compile
from ._engine import plan as engine_plan
from ._engine.loop import Carry, Loop
from ._engine.prng import counter_key
from ._engine.step_keys import StepKeys
from .noise import Exact, Gaussian
from .trajectory import Trajectory

_map = jax.tree_util.tree_map


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
      key: random key for thermal and gradient noise. None uses `jax.random.key(0)`; a
        noisy run (temperature ≠ 0 or a `noise` model) without a key warns once per
        process, since every such call then draws the same noise.
      noise: a gradient-noise model, the gradient estimator the step calls (`gaussian`,
        `minibatch`, ... of `optdyn.integrators`); default exact gradients.
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
        Otherwise divergence is checked once per chunk of fused blocks (`_engine.plan`), and
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
    integrator = _inputs.as_integrator(optimizer)
    landscape = _inputs.as_landscape(landscape)
    steps = check_int("steps", steps)
    if not record:
        record_every = None
    if record_every is not None:
        record_every = check_int("record_every", record_every)
    check_positive("bound", bound)
    x0, is_ensemble = _inputs.prepare_x0(x0, landscape, ensemble)
    if prng_impl not in ("counter", None):
        raise ValueError(
            f"prng_impl={prng_impl!r} is not allowed: use 'counter' (Threefry-2x32 in counter "
            "mode, fused into the step) or None (the key's own generator)."
        )
    noise = _inputs.default_noise() if noise is None else noise
    key = default_key(key, integrator, noise)
    if (
        integrator.needs_grad_fn
        and integrator.sweep_size
        and not isinstance(noise, Exact | Gaussian)
    ):
        raise ValueError(
            f"a swept {integrator.name} evaluates the force twice per step, which needs a "
            f"stateless gradient estimator; noise={noise!r} keeps per-particle state. Run one "
            "simulate call per hyperparameter value, or use exact or Gaussian gradients."
        )
    stream = _inputs.check_stream(stream)
    plan = engine_plan.choose(
        jax.default_backend(), integrator, landscape, x0, noise, fuse, record_every, bool(stream)
    )
    if integrator.factory is not None:
        dynamic, static = _inputs.split_hyperparams(integrator)
        builder = integrator.factory
    else:
        dynamic, static, builder = {}, (), integrator

    # landscapes and noise models are pytrees: their numbers are traced too
    traced_landscape, traced_noise = _inputs.traced_arg(landscape), _inputs.traced_arg(noise)
    args = (dynamic, x0, key, traced_landscape, traced_noise)
    traj = _runner(args)(
        *args,
        builder=builder,
        static=static,
        steps=steps,
        record_every=record_every,
        bound=float(bound),
        record_positions=record_positions,
        sweep=integrator.sweep_size,
        observe=tuple(sorted((observe or {}).items())),
        stream=stream,
        plan=plan,
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
            final_state=_map(_one_particle(axis), traj.final_state),
        )
    return traj


def _one_particle(axis: int):
    """Drop the particle axis (of size 1) from a state leaf that has one; others as they are
    (a step count shared by the ensemble, say)."""

    def squeeze(a):
        if jnp.ndim(a) > axis and jnp.shape(a)[axis] == 1:
            return jnp.squeeze(a, axis)
        return a

    return squeeze


def _run_impl(
    dynamic,
    x0,
    key,
    landscape,
    noise,
    *,
    builder,
    static,
    steps,
    record_every,
    bound,
    record_positions,
    sweep,
    observe,
    stream,
    plan,
    counter,
):
    """The jitted body: build the integrator from traced hyperparameters, then scan the
    engine's loop between records."""
    if counter:  # re-read inside the jit: no eager key operation per call
        key = counter_key(key)
    if isinstance(builder, Integrator):
        integrator = builder
    else:
        integrator = builder(**dynamic, **dict(static))
    n = jax.tree_util.tree_leaves(x0)[0].shape[0]
    if sweep:
        x0 = _map(lambda a: jnp.broadcast_to(a, (sweep,) + a.shape), x0)
    batch = (sweep, n) if sweep else (n,)
    bnd = len(batch)

    key_noise, key_run = jax.random.split(key)
    key_grad, key_step = jax.random.split(key_run)
    size = sum(int(np.prod(jnp.shape(a))) for a in jax.tree_util.tree_leaves(x0))
    keys = StepKeys.build(key_grad, key_step, size, plan.table_size)
    loop = Loop(
        integrator, landscape, noise, plan, keys, x0=x0, batch=batch, bound=bound, stream=stream
    )

    state = integrator.init(x0)
    noise_state = noise.init(landscape, key_noise, loop.n_flat)
    acc = {name: accumulator.init(x0) for name, accumulator in stream}
    carry = Carry(state, noise_state, jnp.ones(batch, bool), jnp.full(batch, -1, jnp.int32), acc)

    energy = jax.vmap(landscape.energy)
    grad = jax.vmap(jax.grad(landscape.energy))

    def record(state):
        x = loop.flat(state.params)
        gnorm = jnp.sqrt(
            sum(
                jnp.sum(jnp.square(a).reshape(loop.n_flat, -1), axis=1)
                for a in jax.tree_util.tree_leaves(grad(x))
            )
        )
        out = {
            "loss": energy(x).reshape(batch),
            "grad_norm": gnorm.reshape(batch),
            "positions": state.params if record_positions else None,
            "kinetic_energy": None,
            "observed": {name: loop.unflat(jax.vmap(fn)(x)) for name, fn in observe},
        }
        if integrator.velocity is not None:
            v = integrator.velocity(state)
            ke = sum(
                jnp.sum(jnp.square(a).reshape(batch + (-1,)), axis=-1)
                for a in jax.tree_util.tree_leaves(v)
            )
            out["kinetic_energy"] = 0.5 * integrator.mass * ke
        return out

    if record_every is None:  # nothing recorded: only the final state and the streams
        carry = loop.advance(carry, jnp.int32(0), steps)
        records = dict.fromkeys(("loss", "grad_norm", "positions", "kinetic_energy"))
        records["observed"] = {}
    else:
        first = record(state)
        n_chunks, rem = divmod(steps, record_every)

        def chunk(carry, t0, length):
            carry = loop.advance(carry, t0, length)
            return carry, record(carry.state)

        carry, recs = jax.lax.scan(
            lambda c, t0: chunk(c, t0, record_every),
            carry,
            jnp.arange(n_chunks, dtype=jnp.int32) * record_every,
        )
        records = _map(lambda a, b: jnp.concatenate([a[None], b]), first, recs)
        if rem:
            carry, last = chunk(carry, jnp.int32(n_chunks * record_every), rem)
            records = _map(lambda a, b: jnp.concatenate([a, b[None]]), records, last)
        records = _map(lambda a: jnp.moveaxis(a, 0, bnd), records)  # (T, *batch) -> (*batch, T)
    return Trajectory(
        positions=records["positions"],
        loss=records["loss"],
        grad_norm=records["grad_norm"],
        kinetic_energy=records["kinetic_energy"],
        steps=None,
        diverged_step=carry.diverged_step,
        final_state=carry.state,
        observed=records["observed"],
        stream={name: accumulator.finalize(carry.acc[name]) for name, accumulator in stream},
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
    "plan",
    "counter",
)


def _runner(args=()):
    """The jitted simulator for the default backend (`_engine.compile.runner`)."""
    return engine_compile.runner(_run_impl, _STATIC, args)
