r"""The simulator: whole trajectories of an ensemble in one jitted `lax.scan`.

    traj = simulate(momentum(lr=1e-3), landscape.rosenbrock(), x0, steps=2000, key=key)

One call compiles once per (integrator factory, landscape, noise model, shapes, steps):
numeric hyperparameters are traced, so a new learning rate does not recompile. The
integrator steps the whole ensemble array at once (one step count, one bias correction);
the gradient noise and thermal noise for the ensemble are drawn in one call per step.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from integrators._base import Integrator, _is_number, _is_sweep_value
from integrators._types import PRNGKey, PyTree
from landscape._base import Landscape
from landscape._validate import check_int, check_positive

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
    """

    positions: PyTree | None
    loss: jax.Array
    grad_norm: jax.Array
    kinetic_energy: jax.Array | None
    steps: np.ndarray
    diverged_step: jax.Array
    final_state: Any
    observed: dict | None = None

    @property
    def diverged(self) -> jax.Array:
        """Boolean `(*batch,)`: which trajectories diverged."""
        return self.diverged_step >= 0


class _ExactGradient:
    """Fallback gradient model: ∇U of every particle of a flat ensemble."""

    def init(self, landscape, key, n_particles):
        return ()

    def gradient(self, landscape, x, state, key):
        return jax.vmap(jax.grad(landscape.energy))(x), state


_EXACT = _ExactGradient()


def _as_integrator(optimizer) -> Integrator:
    if isinstance(optimizer, Integrator):
        return optimizer
    if hasattr(optimizer, "init") and hasattr(optimizer, "update"):
        from integrators.optax_bridge import from_optax

        return from_optax(optimizer)
    raise ValueError(
        f"optimizer={optimizer!r} is not an optdyn Integrator or an optax "
        "GradientTransformation; build one with e.g. integrators.momentum(lr=1e-3)."
    )


def _as_landscape(landscape) -> Landscape:
    if isinstance(landscape, Landscape):
        return landscape
    import landscape as ls

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
        if _is_sweep_value(value):
            dynamic[name] = jnp.asarray(np.asarray(value, dtype=float))
        elif _is_number(value) and value != 0:
            dynamic[name] = jnp.asarray(value)
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
    record_every: int = 1,
    bound: float = 1e8,
    record_positions: bool = True,
    ensemble: bool | None = None,
    observe: dict | None = None,
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
      record_every: record every k-th step (and always the first and last).
      bound: a particle with a coordinate beyond ±bound counts as diverged.
      record_positions: set False to record only the scalar observables (saves memory).
      ensemble: override the ensemble detection (see `x0`).
      observe: extra observables recorded with the others, `{name: fn}` with `fn(params)`
        taking one particle's parameters (e.g. test accuracy of a network); results in
        `Trajectory.observed[name]`.

    Returns:
      A `Trajectory`; for one particle `positions` has shape (n_records, dim) and `loss`
      (n_records,), with n_records = steps + 1 when `record_every` = 1.
    """
    integrator = _as_integrator(optimizer)
    landscape = _as_landscape(landscape)
    steps = check_int("steps", steps)
    record_every = check_int("record_every", record_every)
    check_positive("bound", bound)
    x0, is_ensemble = _prepare_x0(x0, landscape, ensemble)
    if key is None:
        key = jax.random.key(0)
    noise = _EXACT if noise is None else noise

    if integrator.factory is not None:
        dynamic, static = _split_hyperparams(integrator)
        builder = integrator.factory
    else:
        dynamic, static, builder = {}, (), integrator

    traj = _run(
        dynamic,
        x0,
        key,
        builder=builder,
        static=static,
        landscape=landscape,
        noise=noise,
        steps=steps,
        record_every=record_every,
        bound=float(bound),
        record_positions=record_positions,
        sweep=integrator.sweep_size,
        observe=tuple(sorted((observe or {}).items())),
    )
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


def _batch_ndim(sweep) -> int:
    return 2 if sweep else 1


def _per_particle_all(tree, batch_ndim, predicate):
    """Reduce predicate(leaf) over all non-batch axes and all leaves: shape (*batch,)."""
    parts = [
        jnp.all(predicate(a).reshape(a.shape[:batch_ndim] + (-1,)), axis=-1)
        for a in jax.tree_util.tree_leaves(tree)
    ]
    return jnp.stack(parts).all(axis=0)


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
):
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

    def freeze(new, old, alive):
        def pick(a, b):
            if jnp.ndim(a) >= bnd and jnp.shape(a)[:bnd] == batch:
                return jnp.where(alive.reshape(batch + (1,) * (a.ndim - bnd)), a, b)
            return a

        return _map(pick, new, old)

    def one_step(carry, t):
        state, noise_state, alive, diverged_step = carry
        k_grad, k_step = jax.random.split(jax.random.fold_in(key_run, t))
        grads, noise_state = noise.gradient(landscape, flat(state.params), noise_state, k_grad)
        new = integrator.step(state, unflat(grads), k_step)
        ok = _per_particle_all(new.params, bnd, lambda a: jnp.isfinite(a) & (jnp.abs(a) <= bound))
        diverged_step = jnp.where(alive & ~ok, t + 1, diverged_step)
        alive = alive & ok
        return (freeze(new, state, alive), noise_state, alive, diverged_step)

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

    def chunk(carry, t0, length):
        def body(i, c):
            return one_step(c, t0 + i)

        carry = jax.lax.fori_loop(0, length, body, carry)
        return carry, record(carry[0])

    alive = jnp.ones(batch, bool)
    carry = (state, noise_state, alive, jnp.full(batch, -1, jnp.int32))
    first = record(state)
    n_chunks, rem = divmod(steps, record_every)
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
    )


_run = jax.jit(
    _run_impl,
    static_argnames=(
        "builder",
        "static",
        "landscape",
        "noise",
        "steps",
        "record_every",
        "bound",
        "record_positions",
        "sweep",
        "observe",
    ),
)
