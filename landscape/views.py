"""Honest views of a loss landscape: one import for the three kinds of picture.

    from optdyn.landscape import views
    line = views.interpolate(loss_fn, theta_init, theta_final)          # 1-D, with barrier
    sl = views.random_slice(loss_fn, theta_star, key)                   # 2-D, Li et al. 2018
    plane = views.pca_plane(traj.positions)                             # PCA of the path
    honest = views.honest_view(loss_fn, traj.positions, plane)          # what the map hides

Every function takes any `loss_fn(params) -> scalar` on any pytree of parameters (close over
the data: `lambda p: mlp_loss(p, batch)`), flattens pytrees with `ravel_pytree` and evaluates
grids in one jitted vmap. The pieces live in `landscape.interpolation`, `landscape.slices`,
`landscape.pca_plane` and `landscape._affine`.
"""

from ._affine import (
    loss_along,
    loss_on_subspace,
    quadratic_value,
    restricted_quadratic,
)
from .interpolation import Interpolation, interpolate
from .pca_plane import HonestView, PCAPlane, honest_view, pca_plane, pca_slice
from .slices import (
    Slice,
    filter_normalize,
    filter_normalized_direction,
    plane_loss,
    random_slice,
)

__all__ = [
    "HonestView",
    "Interpolation",
    "PCAPlane",
    "Slice",
    "filter_normalize",
    "filter_normalized_direction",
    "honest_view",
    "interpolate",
    "loss_along",
    "loss_on_subspace",
    "pca_plane",
    "pca_slice",
    "plane_loss",
    "quadratic_value",
    "random_slice",
    "restricted_quadratic",
]
