"""Potential-energy landscapes and gradient-noise models (the heat bath) for optdyn.

import landscape as ls
U = ls.rosenbrock()            # or ls.get("rosenbrock", dim=3)
noise = ls.gaussian(0.5, batch_size=4)
"""

from landscape import views  # noqa: E402  (submodule: interpolation, slices, PCA plane)
from landscape._base import Landscape, Point
from landscape.classic import beale, himmelblau, rosenbrock, six_hump_camel
from landscape.curvature import (
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
from landscape.custom import from_function
from landscape.data import Dataset, digits, load_csv, load_npz, teacher_student
from landscape.double_well import double_well
from landscape.finite_sum import FiniteSum, finite_sum, least_squares
from landscape.gradient_noise import GradientNoise, gradient_covariance, minibatch_temperature
from landscape.minibatch import Minibatch, MinibatchState, minibatch
from landscape.mixed_precision import mixed_precision
from landscape.mlp import MLP, apply_mlp, from_loss, init_mlp, mlp
from landscape.muller_brown import muller_brown
from landscape.multimodal import rastrigin, styblinski_tang
from landscape.noise import Exact, Gaussian, NoiseModel, exact, exact_gradient, gaussian
from landscape.quadratic import quadratic, valley
from landscape.registry import get, names
from landscape.saddles import monkey_saddle, saddle

__all__ = [
    "views",
    "mixed_precision",
    "Dataset",
    "Exact",
    "FiniteSum",
    "Gaussian",
    "GradientNoise",
    "Landscape",
    "MLP",
    "Minibatch",
    "MinibatchState",
    "NoiseModel",
    "Point",
    "adam_preconditioned_sharpness",
    "adam_preconditioner",
    "apply_mlp",
    "beale",
    "digits",
    "double_well",
    "exact",
    "exact_gradient",
    "finite_sum",
    "from_function",
    "from_loss",
    "gaussian",
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
    "minibatch",
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
