r"""Underdamped integrators: heavy-ball and Nesterov momentum as a damped oscillator.

Heavy-ball momentum in optimizer units (optax's `trace` convention),

.. math::
    m_{k+1} = \beta m_k + \nabla L(\theta_k), \qquad \theta_{k+1} = \theta_k - \eta\, m_{k+1},

is, with the physical velocity v = −(dt/M)·m, the symplectic-Euler step of the damped
oscillator M·dv = −∇L dt − γ·M·v dt (+ thermal noise), dθ = v dt:

.. math::
    v_{k+1} = (1 - \gamma\,dt)\,v_k - \frac{dt}{M}\nabla L(\theta_k), \qquad
    \theta_{k+1} = \theta_k + dt\, v_{k+1}.

The exact conversion between the two sets of units (M is `mass`, γ is `friction`):

.. math::
    \eta = dt^2 / M, \quad \beta = 1 - \gamma\,dt
    \qquad\Longleftrightarrow\qquad
    dt = \sqrt{\eta M}, \quad \gamma = (1 - \beta)/\sqrt{\eta M}.

Thermal noise obeying fluctuation–dissipation enters the kick as a gradient noise of
variance 2T(1−β)/η per coordinate (the velocity noise √(2γT·dt/M)·ξ), so the stationary
density is Boltzmann at temperature T up to O(dt), and ⟨½Mv²⟩ = T/2 per degree of freedom.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from ..landscape.types import PyTree, ScalarOrSchedule
from ..landscape.validate import check_nonnegative, check_positive, check_real, check_unit_interval
from ._base import (
    Integrator,
    increment,
    integrator_factory,
    step_count,
    value_at,
    zeros_like,
)
from .substeps import drift, friction_kick, gradient_thermostat


class MomentumState(NamedTuple):
    """State of `momentum` / `nesterov` / `underdamped_langevin`."""

    params: PyTree  # position θ
    momentum: PyTree  # trace m of past gradients, shaped like params; v = −(dt/M)·m
    count: jax.Array  # int32 scalar: steps taken k


@integrator_factory
def momentum(
    lr: ScalarOrSchedule,
    momentum: float = 0.9,
    temperature: ScalarOrSchedule = 0.0,
    nesterov: bool = False,
) -> Integrator:
    r"""Heavy-ball (Polyak) momentum, a damped oscillator; Nesterov's variant on request.

    .. math::
        m_{k+1} = \beta m_k + \nabla L(\theta_k) + \sigma\xi_k, \qquad
        \theta_{k+1} = \theta_k - \eta\,m_{k+1}
        \;\;(\text{Nesterov: } \theta_{k+1} = \theta_k - \eta\,(\nabla L(\theta_k)
        + \sigma\xi_k + \beta m_{k+1})),

    with σ² = 2T(1−β)/η. η is `lr`, β is `momentum`, T is `temperature`. In physical units
    dt = √η, friction γ = (1−β)/√η at unit mass (see the module docstring). On U = ½λθ² it is
    stable iff ηλ < 2(1+β); Polyak's η* = 4/(√L+√μ)², β* = ((√κ−1)/(√κ+1))² contract at the
    rate (√κ−1)/(√κ+1). With gradient noise of variance σ² the stationary variance is
    ησ²(1+β)/(λ(1−β)(2(1+β)−ηλ)).

    Args:
      lr: learning rate η >= 0, or a schedule.
      momentum: β in [0, 1), the fraction of velocity kept per step (1 − γ·dt).
      temperature: temperature T >= 0 (or a schedule) of the fluctuation–dissipation noise.
      nesterov: use Nesterov's look-ahead form (as optax's `sgd(nesterov=True)`).

    Returns:
      An `Integrator` with state `MomentumState(params, momentum, count)` and a `velocity`.

    References:
      Polyak, "Some methods of speeding up the convergence of iteration methods", 1964.
      Sutskever et al., "On the importance of initialization and momentum", ICML 2013.
    """
    check_nonnegative("lr", lr)
    check_unit_interval("momentum", momentum)
    check_nonnegative("temperature", temperature)
    beta = momentum

    def init(params):
        return MomentumState(params=params, momentum=zeros_like(params), count=step_count())

    def step(state, grads, key):
        k = state.count
        grads = gradient_thermostat(grads, lr, beta, temperature, k, key)
        m = friction_kick(state.momentum, grads, beta, k)
        direction = (
            jax.tree_util.tree_map(lambda g, mi: g + value_at(beta, k, mi) * mi, grads, m)
            if nesterov
            else m
        )
        return MomentumState(drift(state.params, direction, lr, k), m, increment(k))

    def velocity(state):
        # v = Δθ/dt = −η·m/dt with dt = √(η·M); here M = 1 (underdamped_langevin rescales).
        k = jnp.maximum(state.count - 1, 0)
        return jax.tree_util.tree_map(lambda m: -jnp.sqrt(value_at(lr, k, m)) * m, state.momentum)

    name = "nesterov" if nesterov else "momentum"
    return Integrator(init, step, velocity, name=name, elementwise=True)


_heavy_ball = momentum  # the factory, under a name its own `momentum` argument does not shadow


@integrator_factory
def nesterov(
    lr: ScalarOrSchedule, momentum: float = 0.9, temperature: ScalarOrSchedule = 0.0
) -> Integrator:
    r"""Nesterov momentum: `momentum(lr, momentum, temperature, nesterov=True)`.

    .. math::
        m_{k+1} = \beta m_k + g_k, \qquad \theta_{k+1} = \theta_k - \eta\,(g_k + \beta m_{k+1})

    Args:
      lr: learning rate η >= 0, or a schedule.
      momentum: β in [0, 1).
      temperature: temperature T >= 0 of the fluctuation–dissipation noise.
    """
    return _heavy_ball(lr, momentum, temperature, nesterov=True)


def to_physical(lr: float, momentum: float, mass: float = 1.0) -> dict:
    """Optimizer units (η, β) to physical units: dt = √(ηM), γ = (1−β)/dt, M = `mass`."""
    check_positive("lr", lr)
    check_unit_interval("momentum", momentum)
    check_positive("mass", mass)
    dt = (lr * mass) ** 0.5
    return {"dt": dt, "friction": (1 - momentum) / dt, "mass": mass}


def to_optimizer(dt: float, friction: float, mass: float = 1.0) -> dict:
    """Physical units (dt, γ, M) to optimizer units: η = dt²/M, β = 1 − γ·dt."""
    check_positive("dt", dt)
    check_nonnegative("friction", friction)
    check_positive("mass", mass)
    return {"lr": dt**2 / mass, "momentum": 1 - friction * dt}


@integrator_factory
def underdamped_langevin(
    dt: float,
    friction: float,
    mass: float = 1.0,
    temperature: ScalarOrSchedule = 0.0,
    nesterov: bool = False,
) -> Integrator:
    r"""Underdamped Langevin dynamics in physical units: heavy ball with η = dt²/M, β = 1 − γdt.

    .. math::
        dθ = v\,dt, \qquad M\,dv = -\nabla L\,dt - \gamma M v\,dt + \sqrt{2\gamma M T}\,dW

    discretised as v ← (1−γdt)v − (dt/M)∇L + √(2γT·dt/M)·ξ, θ ← θ + dt·v. The stationary
    density is Boltzmann, exp(−(L + ½M|v|²)/T), up to O(dt).

    Args:
      dt: time step > 0.
      friction: γ >= 0 with γ·dt in (0, 1] (γ·dt = 1 is the overdamped limit β = 0).
      mass: particle mass M > 0.
      temperature: T >= 0, or a schedule.
      nesterov: use the Nesterov form of the kick.
    """
    check_positive("dt", dt)
    check_positive("mass", mass)
    check_nonnegative("friction", friction)
    if not isinstance(friction * dt, jax.core.Tracer):
        check_real("friction*dt", friction * dt, low=0.0, high=1.0, low_open=True)
    units = to_optimizer(dt, friction, mass)
    base = _heavy_ball(units["lr"], units["momentum"], temperature, nesterov)

    def velocity(state):  # v = −(dt/M)·m
        return jax.tree_util.tree_map(lambda m: -(dt / mass) * m, state.momentum)

    return base._replace(velocity=velocity, mass=mass, name="underdamped_langevin")
