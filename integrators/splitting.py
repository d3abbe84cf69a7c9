r"""BAOAB: the Langevin splitting whose configurations are exact on a harmonic well.

Leimkuhler & Matthews order the sub-steps of `substeps` symmetrically around the exact
Ornstein–Uhlenbeck thermostat, with the force evaluated again at the new position:

.. math::
    \text{B}\;p \leftarrow p - \tfrac h2\nabla L(\theta),\quad
    \text{A}\;\theta \leftarrow \theta + \tfrac h2 p/M,\quad
    \text{O}\;p \leftarrow c\,p + \sqrt{(1-c^2)MT}\,\xi,\quad
    \text{A},\quad
    \text{B at the new }\theta,
    \qquad c = e^{-\gamma h}.

On U = ½kθ² its stationary configurational variance is exactly T/k at every stable step
(h²k/M < 4), where Euler–Maruyama (SGD) gives (T/k)/(1 − ηk/2) and heavy ball an O(h)
bias too; its kinetic temperature ⟨p²⟩/M carries the known bias T(1 − h²k/(4M)).
"""

from __future__ import annotations

from typing import NamedTuple

import jax

from ..landscape.types import PyTree, ScalarOrSchedule
from ..landscape.validate import check_nonnegative, check_positive
from ._base import Integrator, increment, integrator_factory, step_count, zeros_like
from .substeps import kick, ou_thermostat, position_drift


class BAOABState(NamedTuple):
    """State of `baoab`."""

    params: PyTree  # position θ, any pytree (a leading ensemble axis is allowed)
    momentum: PyTree  # physical momentum p = M·v, shaped like params
    count: jax.Array  # int32 scalar: steps taken k


@integrator_factory
def baoab(
    dt: ScalarOrSchedule,
    friction: ScalarOrSchedule,
    mass: float = 1.0,
    temperature: ScalarOrSchedule = 1.0,
) -> Integrator:
    r"""BAOAB splitting of underdamped Langevin dynamics (Leimkuhler & Matthews 2013).

    .. math::
        d\theta = \frac pM\,dt, \qquad
        dp = -\nabla L(\theta)\,dt - \gamma p\,dt + \sqrt{2\gamma M T}\,dW

    discretised as

    .. math::
        p' = p_k - \tfrac h2 \nabla L(\theta_k), \quad
        \theta' = \theta_k + \tfrac h2 p'/M, \quad
        p'' = e^{-\gamma h} p' + \sqrt{(1 - e^{-2\gamma h}) M T}\,\xi_k,

        \theta_{k+1} = \theta' + \tfrac h2 p''/M, \quad
        p_{k+1} = p'' - \tfrac h2 \nabla L(\theta_{k+1}).

    h is `dt`, γ is `friction`, M is `mass`, T is `temperature`. The step evaluates the
    force at the new position, so it takes the gradient estimator: `simulate` hands it over;
    by hand call `step(state, grads, key, grad_fn)`. Each step costs two gradient
    evaluations. On U = ½kθ² the stationary ⟨θ²⟩ is exactly T/k for any h with h²k/M < 4,
    and ⟨p²⟩/M = T(1 − h²k/(4M)). With T = 0 and γ = 0 it is velocity Verlet.

    Args:
      dt: time step h > 0, or a schedule.
      friction: γ >= 0 (per unit time), or a schedule.
      mass: particle mass M > 0.
      temperature: T >= 0, or a schedule; an exact 0 draws no random numbers.

    Returns:
      An `Integrator` with state `BAOABState(params, momentum, count)`, a `velocity` p/M and
      `needs_grad_fn=True`.

    References:
      B. Leimkuhler and C. Matthews, "Rational construction of stochastic numerical methods
      for molecular sampling", Applied Mathematics Research eXpress 2013 (1), 34-56.
    """
    check_positive("dt", dt)
    check_nonnegative("friction", friction)
    check_positive("mass", mass)
    check_nonnegative("temperature", temperature)

    def half_dt(count):  # h/2, a schedule when h is one
        return 0.5 * (dt(count) if callable(dt) else dt)

    def init(params):
        return BAOABState(params=params, momentum=zeros_like(params), count=step_count())

    def step(state, grads, key, grad_fn=None):
        if grad_fn is None:
            raise ValueError(
                "baoab's step evaluates the force at the new position: call "
                "step(state, grads, key, grad_fn) with grad_fn(params) -> gradient."
            )
        k, h = state.count, half_dt
        p = kick(state.momentum, grads, h, k)  # B
        q = position_drift(state.params, p, h, mass, k)  # A
        p = ou_thermostat(p, dt, friction, mass, temperature, k, key)  # O
        q = position_drift(q, p, h, mass, k)  # A
        p = kick(p, grad_fn(q), h, k)  # B, at the new position
        return BAOABState(params=q, momentum=p, count=increment(k))

    def velocity(state):
        return jax.tree_util.tree_map(lambda p: p / mass, state.momentum)

    return Integrator(init, step, velocity, mass=mass, needs_grad_fn=True, elementwise=True)
