"""Overdamped integrators: gradient descent, SGD and Langevin dynamics (SGLD).

SGD is the Euler–Maruyama discretisation of overdamped Langevin dynamics with time step η.
"""

from __future__ import annotations

from typing import NamedTuple

import jax

from ..landscape.types import PyTree, ScalarOrSchedule
from ..landscape.validate import check_nonnegative
from ._base import Integrator, increment, integrator_factory, step_count
from .substeps import diffuse, drift


class SGDState(NamedTuple):
    """State of `sgd` / `langevin`."""

    params: PyTree  # position θ, any pytree (a leading ensemble axis is allowed)
    count: jax.Array  # int32 scalar: steps taken k


@integrator_factory
def sgd(lr: ScalarOrSchedule, temperature: ScalarOrSchedule = 0.0) -> Integrator:
    r"""Gradient descent, and at T > 0 overdamped Langevin dynamics (SGLD).

    Discretises the overdamped Langevin equation with the Euler–Maruyama step dt = η:

    .. math::
        d\theta = -\nabla L(\theta)\,dt + \sqrt{2T}\,dW
        \quad\Longrightarrow\quad
        \theta_{k+1} = \theta_k - \eta_k \nabla L(\theta_k) + \sqrt{2\eta_k T_k}\,\xi_k,
        \qquad \xi_k \sim \mathcal N(0, I).

    η is `lr`, T is `temperature` (in units of the loss); both may be schedules. At T = 0 it
    is plain gradient descent, and with a noisy gradient (mini-batches) it is SGD, whose noise
    acts as a temperature T ≈ η·tr(C)/(2B·d). On U = ½λθ² it is stable iff ηλ < 2, and its
    stationary variance is exactly (T/λ)/(1 − ηλ/2), the continuum T/λ plus an O(η) bias.

    Args:
      lr: learning rate η >= 0 (the time step), or a schedule `step -> η`.
      temperature: temperature T >= 0, or a schedule (simulated annealing).

    Returns:
      An `Integrator` with state `SGDState(params, count)`.

    References:
      Welling & Teh, "Bayesian learning via stochastic gradient Langevin dynamics", ICML 2011.
    """
    check_nonnegative("lr", lr)
    check_nonnegative("temperature", temperature)

    def init(params):
        return SGDState(params=params, count=step_count())

    def step(state, grads, key):
        params = drift(state.params, grads, lr, state.count)
        params = diffuse(params, lr, temperature, state.count, key)
        return SGDState(params=params, count=increment(state.count))

    return Integrator(init, step, elementwise=True)


@integrator_factory
def langevin(lr: ScalarOrSchedule, temperature: ScalarOrSchedule = 1.0) -> Integrator:
    r"""Overdamped Langevin dynamics at temperature T: `sgd(lr, temperature)` by its physics name.

    .. math::
        \theta_{k+1} = \theta_k - \eta \nabla L(\theta_k) + \sqrt{2\eta T}\,\xi_k

    Its stationary density tends to the Boltzmann density exp(−L/T)/Z as η → 0.

    Args:
      lr: time step η >= 0, or a schedule.
      temperature: temperature T >= 0, or a schedule.
    """
    return sgd(lr, temperature)._replace(name="langevin")
