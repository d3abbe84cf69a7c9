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
from ..landscape.validate import check_int, check_key, check_positive
from . import _inputs
from . import progress as progress_bar
from . import stopping as stop_rule
from ._base import Integrator
from ._default_key import default_key
from ._engine import compile as engine_compile
from ._engine import plan as engine_plan
from ._engine.loop import Carry, Loop
from ._engine.prng import counter_key
from ._engine.step_keys import StepKeys
from .noise import Exact, Gaussian
from .stopping import EarlyStopping
from .trajectory import ResumeState, Trajectory

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
    resume: Trajectory | None = None,
    stop: EarlyStopping | None = None,
    progress: bool | None = None,
) -> Trajectory:
    r"""Run `optimizer` on `landscape` from `x0` for `steps` steps in one jitted scan.

    Each step computes the gradient the optimizer sees (exact, or from the `noise` model:
    the heat bath), then one integrator step. A particle whose new position is non-finite
    or has a coordinate with |θ_i| > `bound` is frozen at its previous position and the step
    is reported in `diverged_step`, so downstream plots never receive NaN; a recorded loss,
    grad_norm, kinetic energy or observable that is not finite (it overflowed) holds the
    particle's last finite value. The same key gives the same trajectory.

    Every argument is checked before anything is compiled (`_inputs`): x0 finite and within
    ±`bound`, one key, schedules over the run's steps, the energy on one particle (by
    `jax.eval_shape`), and the memory of the records, at most half the device's memory or
    the environment variable OPTDYN_MEMORY_LIMIT (bytes).

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
      resume: a previous `Trajectory` of the same optimizer, landscape and noise model:
        continue it for `steps` more steps from its final state and step (`x0` is then
        ignored and may be None; `key` defaults to the previous run's key). The step keys
        depend on the key and the absolute step, so runs of k and n − k steps give the
        n-step run bit for bit, noise included, when k is a multiple of `record_every`
        (the second run's records are the n-step run's records after step k).
      stop: an `EarlyStopping` rule checked at every record: a member that stops improving
        is frozen (as a diverged particle is) while the others go on; the rule's state
        (best score, best parameters, stopping step) is `resume_state.stop`. With a rule,
        a member whose recorded loss is not finite is frozen and reported as diverged at
        that record's step.
      progress: show a tqdm bar updated from inside the scan (about 100 updates per call);
        None uses `set_progress_default` (False unless set, or OPTDYN_PROGRESS=1).

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
    show = progress_bar.resolve(progress)
    start, carried = 0, None
    if resume is not None:
        carried = _check_resume(resume, integrator.sweep_size, stop)
        start = carried.step
        key = carried.run_key() if key is None else key
        x0 = carried.state.params  # with its particle axis, even for one particle
        if integrator.sweep_size:  # the start position without the sweep axis (shapes only)
            x0 = _map(lambda a: a[0], x0)
        ensemble = True
    # a resumed run starts where the last one ended: frozen particles may sit beyond `bound`
    x0, is_ensemble = _inputs.prepare_x0(
        x0, landscape, ensemble, np.inf if carried is not None else bound
    )
    if carried is not None:
        is_ensemble = carried.ensemble
    if stop is not None:
        _check_stop(stop, observe, record_every)
    key = None if key is None else check_key("key", key)  # None: `default_key` below
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
    observe = _inputs.check_observe(observe)
    dtype = jnp.result_type(*jax.tree_util.tree_leaves(x0))
    _inputs.check_hyperparams(integrator, steps, dtype)
    n_records = 0 if record_every is None else -(-steps // record_every) + 1
    n = jax.tree_util.tree_leaves(x0)[0].shape[0]
    _inputs.check_memory(x0, n_records, n * (integrator.sweep_size or 1), record_positions, observe)
    # landscapes and noise models are pytrees: their numbers are traced too
    traced_landscape, traced_noise = _inputs.traced_arg(landscape), _inputs.traced_arg(noise)
    _inputs.check_landscape_energy(traced_landscape, x0)
    plan = engine_plan.choose(
        jax.default_backend(), integrator, landscape, x0, noise, fuse, record_every, bool(stream)
    )
    if integrator.factory is not None:
        dynamic, static = _inputs.split_hyperparams(integrator)
        builder = integrator.factory
    else:
        dynamic, static, builder = {}, (), integrator

    resumed = None
    if carried is not None:
        resumed = (
            Carry(
                carried.state,
                carried.noise_state,
                carried.alive,
                carried.diverged_step,
                carried.acc,
            ),
            carried.stop,
        )
    args = (dynamic, x0, key, traced_landscape, traced_noise, resumed, np.int32(start))
    with progress_bar.Bar(show, steps, start, f"{integrator.name} on {landscape.name}") as bar:
        traj = _runner(args)(
            *args,
            builder=builder,
            static=static,
            steps=steps,
            record_every=record_every,
            bound=float(bound),
            record_positions=record_positions,
            sweep=integrator.sweep_size,
            observe=observe,
            stream=stream,
            plan=plan,
            counter=prng_impl == "counter",
            stop=stop,
            progress=progress_bar.stride(steps) if show else 0,
            one_particle=None if is_ensemble else (1 if integrator.sweep_size else 0),
        )
        bar.wait(traj)
    if record_every is None:
        record_steps = np.zeros(0, dtype=int)
    else:
        record_steps = np.unique(np.r_[np.arange(0, steps + 1, record_every), steps])
        if carried is not None:  # the previous run recorded the starting point
            record_steps = record_steps[1:]
    typed = jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
    ends = traj.resume_state._replace(
        step=start + steps,
        key_impl=str(jax.random.key_impl(key)) if typed else "",
        ensemble=is_ensemble,
    )
    return traj._replace(steps=record_steps + start, resume_state=ends)


def _check_resume(resume, sweep: int, stop) -> ResumeState:
    """The `ResumeState` of a previous trajectory, or a ValueError saying what does not fit."""
    carried = getattr(resume, "resume_state", None)
    if not isinstance(resume, Trajectory) or carried is None:
        raise ValueError(
            f"resume={type(resume).__name__} is not allowed: give the Trajectory returned by "
            "a previous simulate call."
        )
    batch = jnp.shape(carried.alive)
    if (len(batch) == 2) != bool(sweep) or (sweep and batch[0] != sweep):
        raise ValueError(
            f"resume: the previous run has batch axes {batch}, which do not fit an optimizer "
            f"sweeping {sweep or 'no'} values; resume with the same optimizer."
        )
    if (carried.stop is None) != (stop is None):
        raise ValueError(
            "resume: give the same stop rule as the previous run (both None or both rules)."
        )
    return carried


def _check_stop(stop, observe, record_every) -> None:
    if not isinstance(stop, EarlyStopping):
        raise TypeError(
            f"stop={stop!r} is not allowed: give an EarlyStopping rule "
            "(integrators.early_stopping(...))."
        )
    names = ("loss", "grad_norm", *sorted(observe or {}))
    if stop.metric not in names:
        raise ValueError(
            f"stop.metric={stop.metric!r} is not recorded. Allowed: {', '.join(names)}."
        )
    if record_every is None:
        raise ValueError("stop needs records: record_every=None records nothing to watch.")


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
    resumed,
    start,
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
    stop,
    progress,
    one_particle,
):
    """The jitted body: build the integrator from traced hyperparameters, then scan the
    engine's loop between records (from step `start`, continuing `resumed` if given).
    `one_particle`: the particle axis to drop from the outputs for a single trajectory
    (None for an ensemble); the resume state keeps it."""
    key_data = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
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
    tick = None
    if progress:
        tick = lambda t0, length: progress_bar.tick(t0, length, progress)  # noqa: E731
    loop = Loop(
        integrator,
        landscape,
        noise,
        plan,
        keys,
        x0=x0,
        batch=batch,
        bound=bound,
        stream=stream,
        tick=tick,
    )

    if resumed is None:
        state = integrator.init(x0)
        noise_state = noise.init(landscape, key_noise, loop.n_flat)
        acc = {name: accumulator.init(x0) for name, accumulator in stream}
        alive, diverged_step = jnp.ones(batch, bool), jnp.full(batch, -1, jnp.int32)
        carry = Carry(state, noise_state, alive, diverged_step, acc)
    else:
        carry, watch = resumed

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

    def watched(rec):
        return rec["observed"][stop.metric] if stop.metric in rec["observed"] else rec[stop.metric]

    def freeze_nonfinite(carry, rec, t):
        """A member whose loss is not finite at the record of step t is frozen and reported
        as diverged at t."""
        bad = carry.alive & ~jnp.isfinite(rec["loss"])
        diverged_step = jnp.where(bad, t, carry.diverged_step)
        return carry._replace(alive=carry.alive & ~bad, diverged_step=diverged_step)

    def check(carry, watch, rec, t):
        """The stopping rule at the record of step t: freeze who stops."""
        params = carry.state.params
        watch, halt = stop_rule.update(stop, watch, watched(rec), params, t, carry.alive)
        return freeze_nonfinite(carry._replace(alive=carry.alive & ~halt), rec, t), watch

    if record_every is None:  # nothing recorded: only the final state and the streams
        carry = loop.advance(carry, start, steps)
        records = dict.fromkeys(("loss", "grad_norm", "positions", "kinetic_energy"))
        records["observed"] = {}
        watch = None
    else:
        n_chunks, rem = divmod(steps, record_every)

        def chunk(carry_watch, t0, length):
            carry, watch = carry_watch
            carry = loop.advance(carry, t0, length)
            rec = record(carry.state)
            if stop is not None:
                carry, watch = check(carry, watch, rec, t0 + length)
            return (carry, watch), rec

        if resumed is None:
            first = record(carry.state)
            watch = None
            if stop is not None:
                watch = stop_rule.init(stop, watched(first), carry.state.params, start)
                carry = freeze_nonfinite(carry, first, start)
        (carry, watch), recs = jax.lax.scan(
            lambda c, t0: chunk(c, t0, record_every),
            (carry, watch),
            start + jnp.arange(n_chunks, dtype=jnp.int32) * record_every,
        )
        records = recs
        if resumed is None:
            records = _map(lambda a, b: jnp.concatenate([a[None], b]), first, recs)
        if rem:
            (carry, watch), last = chunk((carry, watch), start + n_chunks * record_every, rem)
            records = _map(lambda a, b: jnp.concatenate([a, b[None]]), records, last)
        records = _map(lambda a: jnp.moveaxis(a, 0, bnd), records)  # (T, *batch) -> (*batch, T)
        records = {  # a loss or gradient that overflows at a frozen position: its last finite
            k: v if k == "positions" else _map(lambda a: last_finite(a, bnd), v)
            for k, v in records.items()
        }
    ends = ResumeState(  # step and shape facts are filled in outside the jit
        None,
        key_data,
        None,
        None,
        carry.noise_state,
        carry.alive,
        carry.diverged_step,
        carry.acc,
        watch,
        carry.state,
    )
    traj = Trajectory(
        positions=records["positions"],
        loss=records["loss"],
        grad_norm=records["grad_norm"],
        kinetic_energy=records["kinetic_energy"],
        steps=None,
        diverged_step=carry.diverged_step,
        final_state=carry.state,
        observed=records["observed"],
        stream={name: accumulator.finalize(carry.acc[name]) for name, accumulator in stream},
        resume_state=ends,
    )
    if one_particle is None:
        return traj
    squeeze = lambda a: None if a is None else jnp.squeeze(a, one_particle)  # noqa: E731
    return traj._replace(
        positions=None if traj.positions is None else _map(squeeze, traj.positions),
        loss=squeeze(traj.loss),
        grad_norm=squeeze(traj.grad_norm),
        kinetic_energy=squeeze(traj.kinetic_energy),
        diverged_step=squeeze(traj.diverged_step),
        observed={k: squeeze(v) for k, v in traj.observed.items()},
        final_state=_map(_one_particle(one_particle), traj.final_state),
    )


def last_finite(a: jax.Array, axis: int) -> jax.Array:
    """Each non-finite entry of `a` replaced by the last finite one before it along `axis`
    (the record axis); entries before the first finite one are kept."""
    if not jnp.issubdtype(a.dtype, jnp.inexact):
        return a
    shape = [1] * a.ndim
    shape[axis] = a.shape[axis]
    index = jnp.arange(a.shape[axis], dtype=jnp.int32).reshape(shape)
    last = jax.lax.cummax(jnp.where(jnp.isfinite(a), index, -1), axis=axis)
    return jnp.take_along_axis(a, jnp.maximum(last, 0), axis=axis)


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
    "stop",
    "progress",
    "one_particle",
)


def _runner(args=()):
    """The jitted simulator for the default backend (`_engine.compile.runner`)."""
    return engine_compile.runner(_run_impl, _STATIC, args)
