"""What the potential is: energies, data, finite sums, networks, curvature and views.

    from optdyn import landscape as ls
    U = ls.rosenbrock()            # or ls.get("rosenbrock", dim=3)

The lowest layer of optdyn: it imports nothing from `optdyn.integrators` (how a particle
moves on the landscape, including the gradient-noise models of the heat bath).
"""

from . import views  # noqa: E402  (submodule: interpolation, slices, PCA plane)
from ._base import BoundEnergy, Landscape, Point
from ._version import __version__ as __version__
from .classic import beale, himmelblau, rosenbrock, six_hump_camel
from .curvature import (
    adam_preconditioned_sharpness,
    adam_preconditioner,
    hutchinson_trace,
    hvp,
    lanczos,
    power_iteration,
    preconditioned_sharpness,
    sharpness,
    top_eigenvalues,
)
from .custom import from_function
from .data import Dataset, digits, load_csv, load_npz, teacher_student
from .double_well import double_well
from .finite_sum import FiniteSum, finite_sum, least_squares
from .gradient_noise import GradientNoise, gradient_covariance, minibatch_temperature
from .mixed_precision import mixed_precision
from .mlp import MLP, apply_mlp, from_loss, init_mlp, mlp
from .muller_brown import muller_brown
from .multimodal import rastrigin, styblinski_tang
from .quadratic import quadratic, valley
from .registry import get, names
from .saddles import monkey_saddle, saddle

__all__ = [
    "views",
    "mixed_precision",
    "BoundEnergy",
    "Dataset",
    "FiniteSum",
    "GradientNoise",
    "Landscape",
    "MLP",
    "Point",
    "adam_preconditioned_sharpness",
    "adam_preconditioner",
    "apply_mlp",
    "beale",
    "digits",
    "double_well",
    "finite_sum",
    "from_function",
    "from_loss",
    "get",
    "gradient_covariance",
    "himmelblau",
    "hutchinson_trace",
    "hvp",
    "init_mlp",
    "lanczos",
    "least_squares",
    "load_csv",
    "load_npz",
    "minibatch_temperature",
    "mlp",
    "monkey_saddle",
    "muller_brown",
    "names",
    "power_iteration",
    "preconditioned_sharpness",
    "quadratic",
    "rastrigin",
    "rosenbrock",
    "saddle",
    "sharpness",
    "six_hump_camel",
    "styblinski_tang",
    "teacher_student",
    "top_eigenvalues",
    "valley",
]
