"""optdyn integrators: optimizers as physical time-stepping schemes, on any pytree.

import integrators as itg
opt = itg.momentum(lr=1e-3, momentum=0.9)
traj = itg.simulate(opt, landscape.rosenbrock(), x0, steps=2000, key=jax.random.key(0))
"""

from integrators import schedules
from integrators._base import Integrator, integrator_factory
from integrators.adaptive import (
    AdaGradState,
    AdamState,
    RMSpropState,
    adagrad,
    adam,
    adamw,
    rmsprop,
)
from integrators.observables import grad_norm, kinetic_energy, kinetic_temperature, potential_energy
from integrators.optax_bridge import as_optax, from_optax
from integrators.overdamped import SGDState, langevin, sgd
from integrators.registry import get, names
from integrators.simulate import Trajectory, simulate
from integrators.training import TrainResult, train, training_landscape
from integrators.underdamped import (
    MomentumState,
    momentum,
    nesterov,
    to_optimizer,
    to_physical,
    underdamped_langevin,
)

__all__ = [
    "AdaGradState",
    "AdamState",
    "Integrator",
    "MomentumState",
    "RMSpropState",
    "SGDState",
    "TrainResult",
    "Trajectory",
    "adagrad",
    "adam",
    "adamw",
    "as_optax",
    "from_optax",
    "get",
    "grad_norm",
    "integrator_factory",
    "kinetic_energy",
    "kinetic_temperature",
    "langevin",
    "momentum",
    "names",
    "nesterov",
    "potential_energy",
    "rmsprop",
    "schedules",
    "sgd",
    "simulate",
    "to_optimizer",
    "to_physical",
    "train",
    "training_landscape",
    "underdamped_langevin",
]
