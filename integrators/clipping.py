r"""Gradient clipping as a speed limit on the force: wrappers of any integrator.

    opt = clip_by_global_norm(momentum(lr=1e-2, momentum=0.9), max_norm=1.0)

The wrapped integrator steps with the clipped force F̃ = −clip(∇L) in place of −∇L; every
other part of its step is untouched. In a gradient flow dθ/dt = −∇L the force *is* the
velocity, so clipping the global norm at c caps the drift speed |dθ/dt| ≤ c (a terminal
velocity, as drag caps a falling body's speed), while clipping by value caps each
coordinate's speed. Far from a minimum (|∇L| > c) the particle moves at constant speed
down the steepest direction; near it (|∇L| < c) the dynamics is the original one, so minima,
stability thresholds and the stationary density near a minimum are unchanged.

What is clipped is the gradient the integrator receives: the exact gradient, or the
gradient estimator's output (mini-batch or Gaussian gradient noise, `simulate(noise=...)`,
is part of the force and is clipped with it). The integrator's own thermal noise
(√(2ηT)·ξ of Langevin dynamics, the O step of BAOAB) is added after and is *not* clipped: the
heat bath is not a force. A splitting that evaluates the force again inside the step
(`needs_grad_fn`, e.g. BAOAB's second kick) gets the same clipping on every evaluation.

Per particle: in `simulate` every leaf carries a leading particle axis (one particle is an
ensemble of one), and each particle is clipped by its own norm, so an ensemble member moves
exactly as the same particle alone. optax's `clip_by_global_norm` chained into
`from_optax` instead takes one norm over the whole ensemble.

The names follow optax: `clip_by_global_norm(integrator, max_norm)` is
`optax.chain(optax.clip_by_global_norm(max_norm), tx)` and `clip(integrator, max_delta)` is
`optax.chain(optax.clip(max_delta), tx)` for one particle.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp

from ..landscape.types import PyTree, ScalarOrSchedule
from ..landscape.validate import check_positive
from ._base import Integrator, _is_sweep_value, value_at

_map = jax.tree_util.tree_map

_LIMIT = {"global_norm": "max_norm", "value": "max_delta"}


def clip_by_global_norm(
    integrator: Integrator, max_norm: ScalarOrSchedule, *, per_particle: bool = True
) -> Integrator:
    r"""`integrator` with its force clipped to global norm at most `max_norm`, per particle.

    .. math::
        \tilde g = g\cdot\min\Big(1, \frac{c}{\|g\|}\Big), \qquad
        \|g\| = \Big(\sum_{\text{leaves}} \sum_i g_i^2\Big)^{1/2}, \qquad
        \theta_{k+1} = \Phi_\eta(\theta_k, \tilde g_k, \xi_k)

    with Φ the wrapped integrator's step; c is `max_norm`. For gradient descent the
    continuous limit is dθ/dt = −∇L·min(1, c/|∇L|): the speed never exceeds c, and within
    the ball |∇L| < c nothing changes. The direction of the force is kept, its size capped.

    Args:
      integrator: any optdyn `Integrator` (swept, stochastic or `needs_grad_fn` included).
      max_norm: c > 0, or a schedule `step -> c`.
      per_particle: True (default, as `simulate` gives the step its arrays): the leading
        axis of every leaf indexes particles, each clipped by its own norm. False: the
        pytree is one particle (a step called by hand on parameters without that axis).

    Returns:
      An `Integrator` with the wrapped integrator's state, velocity and mass.
    """
    return _wrap_public("global_norm", integrator, max_norm, per_particle)


def clip(integrator: Integrator, max_delta: ScalarOrSchedule) -> Integrator:
    r"""`integrator` with each force coordinate clipped to [−`max_delta`, `max_delta`].

    .. math::
        \tilde g_i = \max(-c, \min(c, g_i)), \qquad
        \theta_{k+1} = \Phi_\eta(\theta_k, \tilde g_k, \xi_k)

    with c `max_delta`: a speed limit per coordinate (the direction of the force may turn
    towards the diagonal). Elementwise, so the same for one particle or an ensemble.

    Args:
      integrator: any optdyn `Integrator`.
      max_delta: c > 0, or a schedule `step -> c`.

    Returns:
      An `Integrator` with the wrapped integrator's state, velocity and mass.
    """
    return _wrap_public("value", integrator, max_delta, True)


def _wrap_public(kind: str, integrator, limit, per_particle: bool) -> Integrator:
    if not isinstance(integrator, Integrator):
        raise TypeError(
            f"integrator={integrator!r} is not allowed: give an optdyn Integrator such as "
            "integrators.sgd(lr=0.1) (wrap an optax transformation with from_optax first)."
        )
    if not isinstance(per_particle, bool):
        raise TypeError(f"per_particle={per_particle!r} is not allowed: use True or False.")
    name = _LIMIT[kind]
    hyperparams = integrator.hyperparams or {}
    for taken in (name, "per_particle"):
        if taken in hyperparams:
            raise ValueError(
                f"{integrator.name} already has a hyperparameter {taken!r}; a clipped "
                "integrator adds its own. Clip it once."
            )
    if integrator.factory is None:  # hand-built: wrap it as it is (its numbers are static)
        return _wrap(kind, integrator, limit, per_particle, None)
    factory = ClippedFactory(kind, integrator.factory)
    return factory(**hyperparams, **{name: limit}, per_particle=per_particle)


@dataclasses.dataclass(frozen=True)
class ClippedFactory:
    """Rebuilds a clipped integrator from the flat hyperparameters (the wrapped integrator's
    and the limit), so that `simulate` traces every number and `with_hyperparams` works;
    equal for equal (kind, wrapped factory), so a new limit does not recompile."""

    kind: str  # "global_norm" or "value"
    inner: Callable[..., Integrator]  # the wrapped integrator's factory

    def __call__(self, **hyperparams) -> Integrator:
        name = _LIMIT[self.kind]
        if name not in hyperparams:
            raise ValueError(f"a clipped integrator needs {name}=...; got {sorted(hyperparams)}.")
        limit = hyperparams.pop(name)
        per_particle = hyperparams.pop("per_particle", True)
        inner = self.inner(**hyperparams)
        integrator = _wrap(self.kind, inner, limit, per_particle, self)
        return integrator._replace(
            hyperparams={**inner.hyperparams, name: limit, "per_particle": per_particle}
        )


def _wrap(kind, inner: Integrator, limit, per_particle: bool, factory) -> Integrator:
    name = _LIMIT[kind]
    if _is_sweep_value(limit):
        raise ValueError(
            f"{name}={limit!r} is not allowed: give one number or a schedule. To sweep it, run "
            "one simulate call per value (the wrapped integrator's hyperparameters can be swept)."
        )
    check_positive(name, limit)
    # batch axes the step sees: the sweep axis of a swept integrator, then the particle axis
    n_batch = int(per_particle) + int(inner.sweep_size is not None)

    def clip_fn(grads, count):
        if kind == "value":
            return _map(lambda g: _clip_value(g, limit, count, n_batch), grads)
        return _clip_global_norm(grads, limit, count, n_batch)

    def step(state, grads, key, grad_fn=None):
        clipped = clip_fn(grads, state.count)
        if not inner.needs_grad_fn:
            return inner.step(state, clipped, key)
        return inner.step(state, clipped, key, lambda p: clip_fn(grad_fn(p), state.count))

    return Integrator(
        inner.init,
        step,
        inner.velocity,
        inner.mass,
        name=f"clip_{'by_global_norm' if kind == 'global_norm' else 'value'}({inner.name})",
        factory=factory,
        needs_grad_fn=inner.needs_grad_fn,
        elementwise=inner.elementwise and kind == "value",
    )


def _limit_at(limit, count, like: jax.Array, n_batch: int) -> jax.Array:
    """The limit at step `count` (one count, or one per sweep member), shaped to broadcast
    against the batch axes of `like` and then its trailing axes."""
    c = value_at(limit, count, like)
    c = jnp.reshape(c, jnp.shape(c) + (1,) * (n_batch - jnp.ndim(c)))
    return jnp.reshape(c, jnp.shape(c) + (1,) * (jnp.ndim(like) - n_batch))


def _clip_value(g: jax.Array, limit, count, n_batch: int) -> jax.Array:
    c = _limit_at(limit, count, g, n_batch)
    return jnp.clip(g, -c, c)


def _clip_global_norm(grads: PyTree, limit, count, n_batch: int) -> PyTree:
    """g·c/|g| where |g| > c, per batch member; as optax: (g / |g|)·c, else g unchanged."""
    leaves = jax.tree_util.tree_leaves(grads)
    sq = sum(jnp.sum(jnp.square(a), axis=tuple(range(n_batch, a.ndim))) for a in leaves)
    norm = jnp.sqrt(sq)  # shape: the batch axes

    def clip_leaf(g):
        n = jnp.reshape(norm, norm.shape + (1,) * (g.ndim - n_batch)).astype(g.dtype)
        c = _limit_at(limit, count, g, n_batch)
        below = n < c
        return jnp.where(below, g, (g / jnp.where(below, 1, n)) * c)  # no 0/0 at g = 0

    return _map(clip_leaf, grads)
