"""optdyn integrators: optimizers as physical time-stepping schemes, on any pytree.

    from optdyn import integrators as itg, landscape as ls
    opt = itg.momentum(lr=1e-3, momentum=0.9)
    traj = itg.simulate(opt, ls.rosenbrock(), x0, steps=2000, key=jax.random.key(0))

How a particle moves: the integrators, the heat bath (gradient-noise models), schedules,
`simulate`, streaming statistics, sharding and training. Built on `optdyn.landscape`.
"""

from ..landscape._version import __version__ as __version__
from . import checkpoint, schedules
from ._base import Integrator, integrator_factory
from .adaptive import (
    AdaGradState,
    AdamState,
    RMSpropState,
    adagrad,
    adam,
    adamw,
    rmsprop,
)
from .clipping import clip, clip_by_global_norm
from .minibatch import Minibatch, MinibatchState, minibatch
from .noise import Exact, Gaussian, NoiseModel, exact, exact_gradient, gaussian
from .observables import grad_norm, kinetic_energy, kinetic_temperature, potential_energy
from .optax_bridge import as_optax, from_optax
from .overdamped import SGDState, langevin, sgd
from .progress import set_progress_default
from .random import normal_like
from .registry import get, names
from .simulate import simulate
from .splitting import BAOABState, baoab
from .stated_temperature import noisy_sgd_temperature, stated_temperature
from .stopping import EarlyStopping, StopState, early_stopping
from .thermometer import (
    Reading,
    configurational_temperature,
    configurational_thermometer,
    kinetic_thermometer,
    laplacian,
)
from .training import TrainResult, train, training_landscape
from .trajectory import ResumeState, Trajectory
from .underdamped import (
    MomentumState,
    momentum,
    nesterov,
    to_optimizer,
    to_physical,
    underdamped_langevin,
)

__all__ = [
    "Reading",
    "configurational_temperature",
    "configurational_thermometer",
    "kinetic_thermometer",
    "laplacian",
    "noisy_sgd_temperature",
    "stated_temperature",
    "normal_like",
    "checkpoint",
    "EarlyStopping",
    "ResumeState",
    "StopState",
    "early_stopping",
    "set_progress_default",
    "BAOABState",
    "baoab",
    "clip",
    "clip_by_global_norm",
    "Exact",
    "Gaussian",
    "Minibatch",
    "MinibatchState",
    "NoiseModel",
    "exact",
    "exact_gradient",
    "gaussian",
    "minibatch",
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
