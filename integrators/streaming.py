r"""Streaming observables: statistics accumulated inside the simulator's scan, step by step.

    traj = simulate(opt, U, x0, steps=10**5, key=key, record=False,
                    stream={"x": moments(), "escape": escape_time(lambda x: x[0] > 0)})
    traj.stream["x"].mean, traj.stream["escape"]

With `record=False` nothing grows with the number of steps: memory is that of the ensemble
and of the accumulators, so 10⁶ particles run for 10⁵ steps in a bounded footprint.

An accumulator is a triple of pure functions, as an integrator is a pair:

    init(x) -> acc               x: the starting ensemble, shape (*batch, dim)
    update(acc, x, step) -> acc  x after `step` steps (step = 1, 2, ..., steps)
    finalize(acc) -> result      once, after the last step

`batch` is `(n,)` for n particles (n = 1 for one particle) or `(sweep, n)` for a
hyperparameter sweep; the particle axis is the last batch axis. Statistics are pooled over
particles (and steps) and keep the sweep axis. A diverged particle contributes its frozen
position.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..landscape.validate import check_int
from ._engine.columns import column_energy


class Accumulator(NamedTuple):
    """A streaming statistic: `init(x) -> acc`, `update(acc, x, step) -> acc`, `finalize`."""

    init: Callable[[jax.Array], Any]
    update: Callable[[Any, jax.Array, jax.Array], Any]
    finalize: Callable[[Any], Any]


class Moments(NamedTuple):
    """Result of `moments`: statistics of a value pooled over particles and steps.

    Attributes:
      mean: the mean, shape (*sweep, *value_shape).
      var: the variance (ddof = 1) of all the pooled samples, same shape.
      count: the number of steps included (per particle), an int32 scalar.
      particle_mean: each particle's time average, (*batch, *value_shape). Particles are
        independent, so `particle_mean.std(axis=-1 - len(value_shape)) / sqrt(n)` is the
        standard error of `mean` (successive steps of one particle are correlated).
    """

    mean: jax.Array
    var: jax.Array
    count: jax.Array
    particle_mean: jax.Array


class Histogram(NamedTuple):
    """Result of `histogram`: counts of a scalar value in fixed bins, pooled.

    Attributes:
      edges: the bin edges, (n_bins + 1,).
      counts: samples per bin, (*sweep, n_bins), as floats (the running counts are two
        32-bit words per bin, so they do not overflow at 10⁶ particles × 10⁵ steps).
      underflow: samples below edges[0], (*sweep,).
      overflow: samples at or above edges[-1], or NaN, (*sweep,).
      density: counts / (all samples × bin width), so that it integrates to the fraction of
        samples inside the edges: compare it with a normalised density such as exp(−U/T)/Z.
    """

    edges: jax.Array
    counts: jax.Array
    underflow: jax.Array
    overflow: jax.Array
    density: jax.Array


class Trace(NamedTuple):
    """Result of `trace`: the mean (and variance) over particles of a value every k steps.

    Attributes:
      steps: the recorded steps 0, k, 2k, ... <= steps, a NumPy array (n_records,).
      mean: the mean over particles, (*sweep, n_records, *value_shape).
      var: the variance over particles (ddof = 0), same shape.
    """

    steps: np.ndarray
    mean: jax.Array
    var: jax.Array


def _per_particle(fn: Callable | None, x: jax.Array) -> jax.Array:
    """fn applied to every particle of x (*batch, dim); x itself when fn is None.

    A scalar-valued fn of a few coordinates is evaluated coordinate by coordinate
    (`integrators._columns`), which is elementwise over the particles (no reduction over
    the coordinate axis at every step); anything else is vmapped.
    """
    if fn is None:
        return x
    if x.ndim >= 2:
        by_columns = column_energy(fn, x.shape[-1], x.dtype)
        if by_columns is not None:
            return by_columns([x[..., i] for i in range(x.shape[-1])])
    f = fn
    for _ in range(x.ndim - 1):
        f = jax.vmap(f)
    return f(x)


def _take(step, start: int, every: int):
    return (step > start) & ((step - start) % every == 0)


def moments(fn: Callable | None = None, *, start: int = 0, every: int = 1) -> Accumulator:
    r"""Running mean and variance, per coordinate (or of `fn`), pooled over particles and steps.

    Welford's update for each particle, in the dtype of the value,

    .. math::
        \bar v_k = \bar v_{k-1} + (v_k - \bar v_{k-1})/k, \qquad
        M_k = M_{k-1} + (v_k - \bar v_{k-1})(v_k - \bar v_k),

    combined over the P particles at the end (Chan et al.): with k samples each,
    v̄ = mean_p v̄_p, M = Σ_p M_p + k Σ_p (v̄_p − v̄)², var = M / (kP − 1).

    Args:
      fn: a function of one particle's position (dim,) returning a scalar or an array (e.g.
        the energy `U.energy`); default the position itself (moments per coordinate).
      start: include only steps > start (burn-in); the starting position is never included.
      every: include every k-th step after `start` (thinning).

    Returns:
      An `Accumulator` whose result is a `Moments`.

    References:
      B. P. Welford, Technometrics 4 (1962) 419-420. T. F. Chan, G. H. Golub, R. J. LeVeque,
      "Updating formulae and a pairwise algorithm for computing sample variances" (1979).
    """
    start = check_int("start", start, minimum=0)
    every = check_int("every", every)
    axis = {}

    def init(x):
        axis["particle"] = x.ndim - 2
        v = _per_particle(fn, x)
        return (jnp.zeros_like(v), jnp.zeros_like(v), jnp.zeros((), jnp.int32))

    def update(acc, x, step):
        mean, m2, k = acc
        take = _take(step, start, every)
        v = _per_particle(fn, x)
        k_new = k + take.astype(jnp.int32)
        delta = v - mean
        inverse = 1 / jnp.maximum(k_new, 1).astype(v.dtype)  # one scalar division per step
        mean_new = mean + delta * inverse
        m2_new = m2 + delta * (v - mean_new)
        return (jnp.where(take, mean_new, mean), jnp.where(take, m2_new, m2), k_new)

    def finalize(acc):
        mean_p, m2_p, k = acc
        ax = axis["particle"]
        n = mean_p.shape[ax]
        mean = jnp.mean(mean_p, axis=ax)
        spread = jnp.sum(jnp.square(mean_p - jnp.expand_dims(mean, ax)), axis=ax)
        m2 = jnp.sum(m2_p, axis=ax) + k.astype(mean.dtype) * spread
        samples = (k * n).astype(mean.dtype)
        return Moments(mean, m2 / jnp.maximum(samples - 1, 1), k, mean_p)

    return Accumulator(init, update, finalize)


def _add_wide(lo, hi, counts):
    """(hi, lo) += counts with uint32 words: a 64-bit counter without 64-bit types."""
    new_lo = lo + counts
    return new_lo, hi + (new_lo < lo).astype(hi.dtype)


def _wide_value(lo, hi, dtype):
    return hi.astype(dtype) * 4294967296.0 + lo.astype(dtype)


def histogram(
    edges,
    fn: Callable | None = None,
    *,
    coordinate: int = 0,
    start: int = 0,
    every: int = 1,
) -> Accumulator:
    """Counts of one scalar per particle in fixed bins, pooled over particles and steps.

    Each included step adds, for every particle, one count to the bin of
    v = fn(x) (default v = x[coordinate]); values outside the edges go to `underflow` and
    `overflow`. The counts are a scatter-add per included step: for large ensembles use
    `every` to thin (successive steps are strongly correlated anyway).

    Args:
      edges: increasing bin edges, a 1-D array of length n_bins + 1.
      fn: a scalar function of one particle's position (dim,).
      coordinate: the coordinate histogrammed when `fn` is None.
      start: include only steps > start (burn-in).
      every: include every k-th step after `start`.

    Returns:
      An `Accumulator` whose result is a `Histogram`.
    """
    edges = np.asarray(edges, dtype=float)
    if edges.ndim != 1 or edges.size < 2 or not np.all(np.diff(edges) > 0):
        raise ValueError(
            f"edges={edges!r} is not allowed: give at least two strictly increasing bin edges."
        )
    start = check_int("start", start, minimum=0)
    every = check_int("every", every)
    n_bins = edges.size - 1
    axis = {}

    def value(x):
        return _per_particle(fn, x) if fn is not None else x[..., coordinate]

    def init(x):
        axis["particle"] = x.ndim - 2
        sweep = x.shape[: x.ndim - 2]
        zeros = jnp.zeros(sweep + (n_bins + 2,), jnp.uint32)
        return (zeros, zeros)

    def add(acc, x):
        lo, hi = acc
        v = value(x)
        e = jnp.asarray(edges, v.dtype)
        # bin 0: underflow, 1..n_bins: the bins, n_bins + 1: overflow (and NaN)
        index = jnp.searchsorted(e, v, side="right")
        index = jnp.where(jnp.isnan(v), n_bins + 1, index)
        one_hot_axis = index.ndim - 1
        sweep_shape = index.shape[:one_hot_axis]
        flat_sweep = int(np.prod(sweep_shape, dtype=int))
        offsets = (jnp.arange(flat_sweep) * (n_bins + 2)).reshape(sweep_shape + (1,))
        flat = (index + offsets).reshape(-1)
        counts = jnp.zeros(flat_sweep * (n_bins + 2), jnp.uint32).at[flat].add(1)
        return _add_wide(lo, hi, counts.reshape(lo.shape))

    def update(acc, x, step):
        return jax.lax.cond(_take(step, start, every), add, lambda acc, x: acc, acc, x)

    def finalize(acc):
        lo, hi = acc
        dtype = jnp.result_type(float)
        all_counts = _wide_value(lo, hi, dtype)
        counts = all_counts[..., 1:-1]
        total = jnp.sum(all_counts, axis=-1, keepdims=True)
        width = jnp.asarray(np.diff(edges), dtype)
        density = counts / jnp.maximum(total, 1) / width
        return Histogram(
            jnp.asarray(edges, dtype), counts, all_counts[..., 0], all_counts[..., -1], density
        )

    return Accumulator(init, update, finalize)


def first_passage(region: Callable) -> Accumulator:
    """The first step at which each particle is inside `region`; -1 if not yet.

    A particle that starts inside has first-passage step 0. The result has shape (*batch,),
    int32. For a mean first-passage time, average the steps of the particles that arrived
    and report the fraction that did.

    Args:
      region: `region(x) -> bool` for one particle's position x (dim,), e.g.
        `lambda x: x[0] > 0` (crossed the barrier of a double well at x = 0).

    Returns:
      An `Accumulator` whose result is the int32 array of first-passage steps.
    """

    def init(x):
        inside = _per_particle(region, x)
        return jnp.where(inside, 0, -1).astype(jnp.int32)

    def update(acc, x, step):
        inside = _per_particle(region, x)
        return jnp.where((acc < 0) & inside, step, acc).astype(jnp.int32)

    return Accumulator(init, update, lambda acc: acc)


def escape_time(region: Callable) -> Accumulator:
    """The first step at which each particle is outside `region`; -1 if it never left.

    `first_passage` of the complement: `escape_time(lambda x: jnp.abs(x[0]) < 1)` is the
    first step with |x₀| >= 1.
    """
    return first_passage(lambda x: jnp.logical_not(region(x)))


def trace(fn: Callable, every: int, steps: int) -> Accumulator:
    """The mean and variance over particles of `fn(x)` at steps 0, every, 2·every, ... <= steps.

    The value is computed only at the recorded steps (a `lax.cond` inside the scan), so a
    trace costs one evaluation of `fn` on the ensemble per record.

    Args:
      fn: a function of one particle's position (dim,), scalar or array valued (e.g. the
        energy: see `energy_trace`).
      every: the recording interval k >= 1.
      steps: the number of steps of the simulation (fixes the length of the trace).

    Returns:
      An `Accumulator` whose result is a `Trace`.
    """
    every = check_int("every", every)
    steps = check_int("steps", steps)
    record_steps = np.arange(0, steps + 1, every)
    n_records = record_steps.size
    axis = {}

    def stats(x):
        v = _per_particle(fn, x)
        ax = x.ndim - 2
        return jnp.mean(v, axis=ax), jnp.var(v, axis=ax)

    def init(x):
        axis["particle"] = x.ndim - 2
        mean, var = stats(x)
        buf_mean = jnp.zeros((n_records,) + mean.shape, mean.dtype).at[0].set(mean)
        buf_var = jnp.zeros((n_records,) + var.shape, var.dtype).at[0].set(var)
        return (buf_mean, buf_var)

    def write(acc, x, step):
        mean, var = stats(x)
        i = step // every
        return (acc[0].at[i].set(mean), acc[1].at[i].set(var))

    def update(acc, x, step):
        record = (step % every == 0) & (step <= steps)
        return jax.lax.cond(record, write, lambda acc, x, step: acc, acc, x, step)

    def finalize(acc):
        ax = axis["particle"]  # records first: move them after the sweep axes
        return Trace(record_steps, jnp.moveaxis(acc[0], 0, ax), jnp.moveaxis(acc[1], 0, ax))

    return Accumulator(init, update, finalize)


def energy_trace(landscape, every: int, steps: int) -> Accumulator:
    """The ensemble mean (and variance) of the potential energy U every `every` steps."""
    return trace(landscape.energy, every, steps)
