r"""Thermometers: the temperature a run actually has, read off its configurations or velocities.

Two estimators of the temperature T of a Boltzmann density exp(−U/T), usable on any run
(an optdyn integrator, an optax transformation through `from_optax`, any noise model):

.. math::
    T_\mathrm{conf} = \frac{\langle |\nabla U|^2 \rangle}{\langle \nabla^2 U \rangle}
    \qquad\text{(configurational, Rugh 1997)},\qquad
    T_\mathrm{kin} = \frac{M \langle |v|^2 \rangle}{d}
    \qquad\text{(kinetic, equipartition)}.

The configurational identity follows from integrating ∇·(∇U e^{−U/T}) by parts; it needs
positions only, so it reads overdamped runs (SGD, Adam) as well as underdamped ones. The
Laplacian ∇²U is the exact trace of the Hessian in small dimension and Hutchinson's
estimator E[zᵀ∇²U z] (Rademacher z) in large dimension. The kinetic thermometer needs a
velocity; the streaming one takes it from the displacement, v = (θ_k − θ_{k−1})/dt, which
for heavy ball and `underdamped_langevin` is exactly the integrator's `velocity`.

At a finite step both read the discretisation's own temperature, not the continuum one: on
U = ½kθ², Euler–Maruyama (SGD) reads T_conf = T/(1 − ηk/2), heavy ball
T_conf = T/(1 − ηk/(2(1+β))) and T_kin = 2T/(1 + β − ηk/2), BAOAB T_conf = T exactly.

References:
  H. H. Rugh, "Dynamical approach to temperature", Phys. Rev. Lett. 78 (1997) 772.
  O. G. Jepps, G. Ayton, D. J. Evans, "Microscopic expressions for the thermodynamic
  temperature", Phys. Rev. E 62 (2000) 4757. M. F. Hutchinson, "A stochastic estimator of
  the trace of the influence matrix", Commun. Stat. Simul. Comput. 18 (1989) 1059.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ..landscape.types import PRNGKey
from ..landscape.validate import check_int, check_positive
from .streaming import Accumulator

EXACT_MAX_DIM = 64
"""Up to this dimension the Laplacian is the exact Hessian trace (d Hessian-vector
products); above it, Hutchinson's estimator with `HUTCHINSON_PROBES` probes."""
HUTCHINSON_PROBES = 4


class Reading(NamedTuple):
    """A thermometer's reading: T = numerator / denominator, pooled over particles (and steps).

    Attributes:
      temperature: the estimate, shape (*sweep,) (a scalar for one ensemble).
      stderr: its standard error from the spread between independent particles (the delta
        method for a ratio of means), same shape.
      numerator: ⟨|∇U|²⟩ (configurational) or ⟨M|v|²⟩/d (kinetic), same shape.
      denominator: ⟨∇²U⟩ (configurational) or 1 (kinetic), same shape.
      count: samples per particle (steps included; 1 for a snapshot), an int32 scalar.
    """

    temperature: jax.Array
    stderr: jax.Array
    numerator: jax.Array
    denominator: jax.Array
    count: jax.Array


def _probes(probes: int | None, dim: int) -> int:
    if probes is None:
        return 0 if dim <= EXACT_MAX_DIM else HUTCHINSON_PROBES
    return check_int("probes", probes, minimum=0)


def laplacian(
    energy: Callable, x: jax.Array, key: PRNGKey | None = None, probes: int | None = None
) -> jax.Array:
    r"""∇²U(x) = tr ∇²U(x) for one particle x of shape (dim,).

    Exact (d Hessian-vector products) when `probes` is 0, or by default when
    dim <= `EXACT_MAX_DIM`; otherwise Hutchinson's unbiased estimator
    (1/P) Σ_p z_pᵀ ∇²U z_p with P = `probes` Rademacher vectors drawn from `key`.

    Args:
      energy: U, a scalar function of one particle.
      x: the position, shape (dim,).
      key: random key for the probes (needed only for Hutchinson).
      probes: the number of Hutchinson probes P; 0 for the exact trace; None chooses.

    Returns:
      A scalar in the dtype of x.
    """
    dim = x.shape[-1]
    grad = jax.grad(energy)

    def quad(z):
        return jnp.vdot(z, jax.jvp(grad, (x,), (z,))[1])

    n = _probes(probes, dim)
    if n == 0:
        return jnp.sum(jax.vmap(quad)(jnp.eye(dim, dtype=x.dtype)))
    if key is None:
        raise ValueError(
            f"key=None: Hutchinson's estimator with probes={n} needs a random key; pass key= "
            "or probes=0 for the exact trace."
        )
    z = jax.random.rademacher(key, (n, dim), x.dtype)
    return jnp.mean(jax.vmap(quad)(z))


def _per_particle(fn: Callable, x: jax.Array, *extra) -> jax.Array:
    """fn(one particle, *extra of that particle) over every batch axis of x (*batch, dim)."""
    for _ in range(x.ndim - 1):
        fn = jax.vmap(fn)
    return fn(x, *extra)


def _terms(energy: Callable, x: jax.Array, key: PRNGKey | None, probes: int | None):
    """(|∇U|², ∇²U) for every particle of x (*batch, dim), one Hutchinson key per particle."""
    dim = x.shape[-1]
    if _probes(probes, dim) == 0:
        return _per_particle(
            lambda p: (jnp.sum(jnp.square(jax.grad(energy)(p))), laplacian(energy, p, None, 0)), x
        )
    if key is None:
        raise ValueError("key=None: Hutchinson's estimator needs a random key (or probes=0).")
    keys = jax.random.split(key, x.shape[:-1])
    return _per_particle(
        lambda p, k: (jnp.sum(jnp.square(jax.grad(energy)(p))), laplacian(energy, p, k, probes)),
        x,
        keys,
    )


def _ratio(num_p: jax.Array, den_p: jax.Array, count) -> Reading:
    """T = mean(num)/mean(den) over the particle axis (the last), and its standard error from
    the residuals num_p − T·den_p of independent particles (delta method)."""
    n = num_p.shape[-1]
    num, den = jnp.mean(num_p, axis=-1), jnp.mean(den_p, axis=-1)
    temperature = num / den
    residual = num_p - temperature[..., None] * den_p
    spread = jnp.std(residual, axis=-1, ddof=1) if n > 1 else jnp.full_like(num, jnp.inf)
    stderr = spread / jnp.sqrt(jnp.asarray(n, num.dtype)) / jnp.abs(den)
    return Reading(temperature, stderr, num, den, jnp.asarray(count, jnp.int32))


def configurational_temperature(
    energy: Callable, x: jax.Array, key: PRNGKey | None = None, probes: int | None = None
) -> Reading:
    r"""T_conf = ⟨|∇U|²⟩ / ⟨∇²U⟩ over an ensemble snapshot x of shape (*sweep, n, dim).

    Each of the n particles is one sample (pass several snapshots stacked on the particle
    axis to pool them; the standard error assumes the particles are independent).

    Args:
      energy: U of one particle (e.g. `landscape.energy`).
      x: positions (*sweep, n, dim); n >= 2 for a finite standard error.
      key: random key for Hutchinson's probes (large dim only).
      probes: Hutchinson probes per particle; 0 forces the exact Laplacian.

    Returns:
      A `Reading` of shape (*sweep,).
    """
    x = jnp.asarray(x)
    if x.ndim < 2:
        raise ValueError(
            f"x has shape {x.shape}: give an ensemble (n, dim) (or (*sweep, n, dim)); one "
            "configuration does not have a temperature."
        )
    g2, lap = jax.jit(lambda x, key: _terms(energy, x, key, probes))(x, key)
    return _ratio(g2, lap, 1)


def _running_mean(mean, value, k_new):
    return mean + (value - mean) / jnp.maximum(k_new, 1).astype(value.dtype)


def _take(step, start: int, every: int):
    return (step > start) & ((step - start) % every == 0)


def configurational_thermometer(
    landscape,
    *,
    start: int = 0,
    every: int = 1,
    probes: int | None = None,
    key: PRNGKey | None = None,
) -> Accumulator:
    r"""A streaming accumulator of T_conf = ⟨|∇U|²⟩/⟨∇²U⟩ for `simulate(..., stream=...)`.

    Each particle keeps the running means of |∇U|² and ∇²U over the included steps; the
    reading pools them over particles, with the standard error from the spread of the
    particles' time averages (`Reading`).

    Args:
      landscape: a `Landscape` (or an energy function of one particle).
      start: include only steps > start (burn-in).
      every: include every k-th step after `start`.
      probes: Hutchinson probes per particle and step; 0 forces the exact Laplacian
        (default: exact up to dim `EXACT_MAX_DIM`).
      key: random key of the probes (default key 0); step t uses `fold_in(key, t)`.

    Returns:
      An `Accumulator` whose result is a `Reading` of shape (*sweep,).
    """
    energy = getattr(landscape, "energy", landscape)
    if not callable(energy):
        raise ValueError(f"landscape={landscape!r} is not a Landscape or an energy function.")
    start = check_int("start", start, minimum=0)
    every = check_int("every", every)
    base_key = jax.random.key(0) if key is None else key

    def init(x):
        zeros = jnp.zeros(x.shape[:-1], x.dtype)
        return (zeros, zeros, jnp.zeros((), jnp.int32))

    def add(acc, x, step):
        g2_mean, lap_mean, k = acc
        g2, lap = _terms(energy, x, jax.random.fold_in(base_key, step), probes)
        k_new = k + 1
        return (_running_mean(g2_mean, g2, k_new), _running_mean(lap_mean, lap, k_new), k_new)

    def update(acc, x, step):  # the terms are evaluated only at included steps
        return jax.lax.cond(_take(step, start, every), add, lambda acc, x, step: acc, acc, x, step)

    def finalize(acc):
        g2_mean, lap_mean, k = acc
        return _ratio(g2_mean, lap_mean, k)

    return Accumulator(init, update, finalize)


def kinetic_thermometer(
    dt: float, mass: float = 1.0, *, start: int = 0, every: int = 1
) -> Accumulator:
    r"""A streaming accumulator of T_kin = M⟨|v|²⟩/d, v = (θ_k − θ_{k−1})/dt (equipartition).

    The velocity is the displacement over the time step, so the thermometer needs no access
    to the integrator's state: for heavy ball (dt = √(ηM), v = −(dt/M)·m, the `velocity` of
    `momentum`) and `underdamped_langevin` it is exactly the integrator's velocity. For
    BAOAB the displacement velocity averages the momenta before and after the thermostat;
    read BAOAB with `configurational_thermometer` or `kinetic_temperature` on its state.

    Args:
      dt: the time step (constant): √(ηM) for heavy ball with learning rate η.
      mass: the mass M.
      start: include only steps > start (burn-in); step 1 compares with the start.
      every: include every k-th step after `start`.

    Returns:
      An `Accumulator` whose result is a `Reading` of shape (*sweep,).
    """
    check_positive("dt", dt)
    check_positive("mass", mass)
    start = check_int("start", start, minimum=0)
    every = check_int("every", every)

    def init(x):
        return (x, jnp.zeros(x.shape[:-1], x.dtype), jnp.zeros((), jnp.int32))

    def update(acc, x, step):
        previous, mean, k = acc
        take = _take(step, start, every)
        v = (x - previous) / jnp.asarray(dt, x.dtype)
        value = jnp.asarray(mass, x.dtype) * jnp.mean(jnp.square(v), axis=-1)
        k_new = k + take.astype(jnp.int32)
        return (x, jnp.where(take, _running_mean(mean, value, k_new), mean), k_new)

    def finalize(acc):
        _, mean, k = acc
        return _ratio(mean, jnp.ones_like(mean), k)

    return Accumulator(init, update, finalize)
