r"""Adaptive-step integrators: Adam, AdamW, RMSprop and AdaGrad.

Each is gradient flow with a per-coordinate time step (a diagonal preconditioner, or
position-dependent mass) estimated from a running memory of the squared gradient:

.. math::
    \theta_{k+1,i} = \theta_{k,i} - \Delta t_{k,i}\; \hat m_{k+1,i}, \qquad
    \Delta t_{k,i} = \frac{\eta}{\sqrt{\hat v_{k+1,i}} + \epsilon}.

An exponential moving average with decay β remembers about 1/(1−β) steps: β₂ = 0.999 →
1000 steps, β = 0.987 → 77 steps. AdaGrad's memory is the whole past, so its time step
only shrinks. All four match optax's trajectories at zero temperature.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from ..landscape.types import PyTree, ScalarOrSchedule
from ..landscape.validate import check_nonnegative, check_positive, check_unit_interval
from ._base import (
    Integrator,
    increment,
    integrator_factory,
    is_zero,
    step_count,
    zeros_like,
)
from .substeps import diffuse, drift

_map = jax.tree_util.tree_map


class AdamState(NamedTuple):
    """State of `adam` / `adamw`."""

    params: PyTree  # position θ
    mu: PyTree  # first-moment EMA m (a velocity-like memory of gradients), like params
    nu: PyTree  # second-moment EMA v (per-coordinate gradient scale squared), like params
    count: jax.Array  # int32 scalar: steps taken k


class RMSpropState(NamedTuple):
    """State of `rmsprop`."""

    params: PyTree  # position θ
    nu: PyTree  # second-moment EMA v, like params
    count: jax.Array  # int32 scalar: steps taken k


class AdaGradState(NamedTuple):
    """State of `adagrad`."""

    params: PyTree  # position θ
    sum_of_squares: PyTree  # G = G₀ + Σ g², like params
    count: jax.Array  # int32 scalar: steps taken k


def _as(value, like) -> jax.Array:
    """A hyperparameter in the dtype of `like` (dtype follows the parameters)."""
    return jnp.asarray(value, jnp.result_type(like))


def ema(moment: PyTree, value: PyTree, decay) -> PyTree:
    """Exponential moving average m ← β·m + (1−β)·value, memory ≈ 1/(1−β) steps."""
    return _map(lambda m, x: (1 - _as(decay, m)) * x + _as(decay, m) * m, moment, value)


def adam_direction(mu, nu, count, b1, b2, eps, eps_root):
    r"""m̂ / (√(v̂ + ε_root) + ε): the preconditioned velocity of Adam.

    With the bias corrections c₁ = 1 − β₁^k and c₂ = 1 − β₂^k (scalars) it is evaluated as

    .. math::
        \frac{\hat m}{\sqrt{\hat v + \epsilon_{root}} + \epsilon}
        = \frac{\sqrt{c_2}}{c_1}\,\frac{m}{\sqrt{v + c_2\,\epsilon_{root}} + \sqrt{c_2}\,\epsilon},

    the same number up to rounding, with one division per coordinate instead of three.
    """

    def direction(m, v):
        k = count.astype(m.dtype)
        c1, c2 = 1 - _as(b1, m) ** k, 1 - _as(b2, m) ** k
        root_c2 = jnp.sqrt(c2)
        if not is_zero(eps_root):
            v = v + c2 * _as(eps_root, v)
        return (root_c2 / c1) * m / (jnp.sqrt(v) + root_c2 * _as(eps, v))

    return _map(direction, mu, nu)


def _check_adam(lr, b1, b2, eps, eps_root, temperature):
    check_nonnegative("lr", lr)
    check_unit_interval("b1", b1)
    check_unit_interval("b2", b2)
    check_positive("eps", eps)
    check_nonnegative("eps_root", eps_root)
    check_nonnegative("temperature", temperature)


@integrator_factory
def adam(
    lr: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    temperature: ScalarOrSchedule = 0.0,
) -> Integrator:
    r"""Adam as an adaptive-step integrator.

    .. math::
        m_{k+1} = \beta_1 m_k + (1-\beta_1) g_k, \quad
        v_{k+1} = \beta_2 v_k + (1-\beta_2) g_k^2, \quad
        \theta_{k+1} = \theta_k - \eta\,\frac{m_{k+1}/(1-\beta_1^{k+1})}
        {\sqrt{v_{k+1}/(1-\beta_2^{k+1}) + \epsilon_{root}} + \epsilon}
        \;(+\sqrt{2\eta T}\,\xi_k).

    The effective per-coordinate time step is Δt_i = η/(√v̂_i + ε); the momentum memory is
    1/(1−β₁) steps and the step-size memory 1/(1−β₂). Because the step is normalised, a
    coordinate moves by about η per step whatever its gradient scale. η is `lr`, β₁ `b1`,
    β₂ `b2`, ε `eps`, T `temperature` (isotropic noise √(2ηT)ξ added to θ, as in SGLD).

    Args:
      lr: learning rate η >= 0, or a schedule.
      b1: β₁ in [0, 1).
      b2: β₂ in [0, 1).
      eps: ε > 0 added to the denominator.
      eps_root: ε added inside the square root (>= 0).
      temperature: T >= 0 (or a schedule) of additive position noise.

    References:
      Kingma & Ba, "Adam: a method for stochastic optimization", ICLR 2015.
    """
    _check_adam(lr, b1, b2, eps, eps_root, temperature)
    return _adam(lr, b1, b2, eps, eps_root, 0.0, temperature)


@integrator_factory
def adamw(
    lr: ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    weight_decay: float = 1e-4,
    temperature: ScalarOrSchedule = 0.0,
) -> Integrator:
    r"""AdamW: Adam with decoupled weight decay λ (optax's default λ = 1e-4).

    .. math::
        \theta_{k+1} = \theta_k - \eta\left(\frac{\hat m_{k+1}}{\sqrt{\hat v_{k+1}
        + \epsilon_{root}} + \epsilon} + \lambda\,\theta_k\right)

    The decay is a friction toward the origin, independent of the preconditioner.
    λ is `weight_decay`; other symbols as in `adam`.

    References:
      Loshchilov & Hutter, "Decoupled weight decay regularization", ICLR 2019.
    """
    _check_adam(lr, b1, b2, eps, eps_root, temperature)
    check_nonnegative("weight_decay", weight_decay)
    return _adam(lr, b1, b2, eps, eps_root, weight_decay, temperature)


def _adam(lr, b1, b2, eps, eps_root, weight_decay, temperature) -> Integrator:
    def init(params):
        return AdamState(params, zeros_like(params), zeros_like(params), step_count())

    def step(state, grads, key):
        count = increment(state.count)
        mu = ema(state.mu, grads, b1)
        nu = ema(state.nu, _map(jnp.square, grads), b2)
        direction = adam_direction(mu, nu, count, b1, b2, eps, eps_root)
        if not is_zero(weight_decay):
            direction = _map(lambda d, p: d + _as(weight_decay, p) * p, direction, state.params)
        params = drift(state.params, direction, lr, state.count)
        params = diffuse(params, lr, temperature, state.count, key)
        return AdamState(params, mu, nu, count)

    return Integrator(init, step, elementwise=True)


@integrator_factory
def rmsprop(
    lr: ScalarOrSchedule,
    decay: float = 0.9,
    eps: float = 1e-8,
    initial_scale: float = 0.0,
    temperature: ScalarOrSchedule = 0.0,
) -> Integrator:
    r"""RMSprop: gradient descent with time step η/√(v + ε), v an EMA of g².

    .. math::
        v_{k+1} = \rho v_k + (1-\rho) g_k^2, \qquad
        \theta_{k+1} = \theta_k - \frac{\eta}{\sqrt{v_{k+1} + \epsilon}}\, g_k

    Effective per-coordinate time step Δt_i = η/√(v_i + ε), memory 1/(1−ρ) steps; ρ is
    `decay`, ε `eps` (inside the root, as optax's default), v₀ `initial_scale`.

    References:
      Tieleman & Hinton, Lecture 6.5, COURSERA: Neural Networks for Machine Learning, 2012.
    """
    check_nonnegative("lr", lr)
    check_unit_interval("decay", decay)
    check_positive("eps", eps)
    check_nonnegative("initial_scale", initial_scale)
    check_nonnegative("temperature", temperature)

    def init(params):
        nu = _map(lambda p: jnp.full_like(p, _as(initial_scale, p)), params)
        return RMSpropState(params, nu, step_count())

    def step(state, grads, key):
        nu = ema(state.nu, _map(jnp.square, grads), decay)
        direction = _map(lambda g, v: g * jax.lax.rsqrt(v + _as(eps, v)), grads, nu)
        params = drift(state.params, direction, lr, state.count)
        params = diffuse(params, lr, temperature, state.count, key)
        return RMSpropState(params, nu, increment(state.count))

    return Integrator(init, step, elementwise=True)


@integrator_factory
def adagrad(
    lr: ScalarOrSchedule,
    initial_accumulator_value: float = 0.1,
    eps: float = 1e-7,
    temperature: ScalarOrSchedule = 0.0,
) -> Integrator:
    r"""AdaGrad: a time step that only shrinks, η/√(G₀ + Σ g²).

    .. math::
        G_{k+1} = G_k + g_k^2, \qquad
        \theta_{k+1} = \theta_k - \frac{\eta}{\sqrt{G_{k+1} + \epsilon}}\, g_k

    Its memory never fades: one large early gradient shrinks the time step for good.
    G₀ is `initial_accumulator_value`, ε `eps` (as optax).

    References:
      Duchi, Hazan & Singer, "Adaptive subgradient methods", JMLR 2011.
    """
    check_nonnegative("lr", lr)
    check_nonnegative("initial_accumulator_value", initial_accumulator_value)
    check_positive("eps", eps)
    check_nonnegative("temperature", temperature)

    def init(params):
        g0 = _map(lambda p: jnp.full_like(p, _as(initial_accumulator_value, p)), params)
        return AdaGradState(params, g0, step_count())

    def step(state, grads, key):
        sos = _map(lambda s, g: s + jnp.square(g), state.sum_of_squares, grads)
        direction = _map(
            lambda g, s: g * jnp.where(s > 0, jax.lax.rsqrt(s + _as(eps, s)), 0), grads, sos
        )
        params = drift(state.params, direction, lr, state.count)
        params = diffuse(params, lr, temperature, state.count, key)
        return AdaGradState(params, sos, increment(state.count))

    return Integrator(init, step, elementwise=True)
