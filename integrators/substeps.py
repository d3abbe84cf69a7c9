r"""The named sub-steps every integrator is assembled from (Leimkuhler & Matthews' letters).

A splitting method for Langevin dynamics dθ = (p/M) dt, dp = −∇L dt − γp dt + √(2γMT) dW
composes three exactly solvable pieces:

.. math::
    \text{B (kick)}:\; p \leftarrow p - h\,\nabla L(\theta), \qquad
    \text{A (drift)}:\; \theta \leftarrow \theta + h\,p/M, \qquad
    \text{O (thermostat)}:\; p \leftarrow e^{-\gamma h} p + \sqrt{(1 - e^{-2\gamma h})MT}\;\xi.

In optimizer units the same pieces read: drift θ ← θ − η·d (d the step direction), the
friction kick m ← βm + g of heavy ball, the overdamped diffusion θ ← θ + √(2ηT)·ξ of
Euler–Maruyama, and the fluctuation–dissipation noise added to the gradient. SGD is
drift + diffuse, heavy ball is thermostat-on-gradient + friction kick + drift, and BAOAB is
B A O A B with a second force evaluation.

Every function is elementwise over a pytree; hyperparameters are numbers, arrays or
schedules `count -> value`, cast to each leaf's dtype (`value_at`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..landscape.types import PRNGKey, PyTree, ScalarOrSchedule
from ._base import is_zero, value_at
from .random import normal_like

_map = jax.tree_util.tree_map


def drift(params: PyTree, direction: PyTree, lr: ScalarOrSchedule, count) -> PyTree:
    """A (drift) in optimizer units: θ ← θ − η·direction, with η in each leaf's dtype."""
    return _map(lambda p, d: p - value_at(lr, count, p) * d, params, direction)


def diffuse(params: PyTree, lr, temperature, count, key: PRNGKey) -> PyTree:
    """O, overdamped (Euler–Maruyama): θ ← θ + √(2ηT)·ξ with ξ ~ N(0, I).

    An exact zero temperature (a Python 0) draws no random numbers at all.
    """
    if is_zero(temperature):
        return params
    noise = normal_like(key, params)
    return _map(
        lambda p, xi: (
            p + jnp.sqrt(2 * value_at(lr, count, p) * value_at(temperature, count, p)) * xi
        ),
        params,
        noise,
    )


def friction_kick(momentum: PyTree, grads: PyTree, beta, count) -> PyTree:
    """B with friction, in optimizer units (heavy ball): m ← β·m + ∇L."""
    return _map(lambda m, g: value_at(beta, count, m) * m + g, momentum, grads)


def gradient_thermostat(grads, lr, beta, temperature, count, key):
    """O folded into the gradient (heavy ball): g + √(2T(1−β)/η)·ξ, the noise that
    fluctuation–dissipation demands of friction 1−β per step."""
    if is_zero(temperature):
        return grads
    noise = normal_like(key, grads)

    def add(g, xi):
        eta = value_at(lr, count, g)
        var = 2 * value_at(temperature, count, g) * (1 - value_at(beta, count, g))
        sigma = jnp.sqrt(jnp.where(eta > 0, var / jnp.where(eta > 0, eta, 1), 0))
        return g + sigma * xi

    return _map(add, grads, noise)


def kick(momentum: PyTree, grads: PyTree, h, count) -> PyTree:
    """B in physical units: p ← p − h·∇L (h a time step, e.g. dt/2)."""
    return _map(lambda p, g: p - value_at(h, count, p) * g, momentum, grads)


def position_drift(params: PyTree, momentum: PyTree, h, mass, count) -> PyTree:
    """A in physical units: θ ← θ + h·p/M."""
    return _map(
        lambda q, p: q + (value_at(h, count, q) / value_at(mass, count, q)) * p, params, momentum
    )


def ou_thermostat(momentum: PyTree, h, friction, mass, temperature, count, key) -> PyTree:
    """O in physical units, the exact Ornstein–Uhlenbeck flow over time h:

    p ← c·p + √((1 − c²)·M·T)·ξ,  c = exp(−γh).

    Friction alone (no noise) at an exact zero temperature.
    """

    def damp(p):
        return jnp.exp(-value_at(friction, count, p) * value_at(h, count, p)) * p

    if is_zero(temperature):
        return _map(damp, momentum)
    noise = normal_like(key, momentum)

    def flow(p, xi):
        c = jnp.exp(-value_at(friction, count, p) * value_at(h, count, p))
        var = (1 - c * c) * value_at(mass, count, p) * value_at(temperature, count, p)
        return c * p + jnp.sqrt(var) * xi

    return _map(flow, momentum, noise)
