"""What the potential is: energies, data, finite sums, networks, curvature and views.

    from optdyn import landscape as ls
    U = ls.rosenbrock()            # or ls.get("rosenbrock", dim=3)

The lowest layer of optdyn: it imports nothing from `optdyn.integrators` (how a particle
moves on the landscape, including the gradient-noise models of the heat bath).
"""

from . import (
    losses,  # noqa: E402  (submodule: mse, mae, smooth_l1, hinge, ...)
    views,  # noqa: E402  (submodule: interpolation, slices, PCA plane)
)
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
from .numerical_gradient import (
    ErrorModel,
    GradientCheck,
    check_gradient,
    finite_difference_error,
    numerical_gradient,
)
from .quadratic import quadratic, valley
from .registry import get, names
from .saddles import monkey_saddle, saddle
from .spectrum import SpectralDensity, hessian_density, smoothed_density, spectral_moment

__all__ = [
    "views",
    "losses",
    "mixed_precision",
    "BoundEnergy",
    "Dataset",
    "FiniteSum",
    "GradientNoise",
    "Landscape",
    "MLP",
    "Point",
    "SpectralDensity",
    "adam_preconditioned_sharpness",
    "adam_preconditioner",
    "apply_mlp",
    "beale",
    "check_gradient",
    "ErrorModel",
    "finite_difference_error",
    "GradientCheck",
    "numerical_gradient",
    "digits",
    "double_well",
    "finite_sum",
    "from_function",
    "from_loss",
    "get",
    "gradient_covariance",
    "himmelblau",
    "hessian_density",
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
    "smoothed_density",
    "spectral_moment",
    "styblinski_tang",
    "teacher_student",
    "top_eigenvalues",
    "valley",
]
