r"""The Hessian eigenvalue density by stochastic Lanczos quadrature (Ghorbani et al. 2019).

The spectral density of the D×D Hessian H, φ(λ) = (1/D) Σᵢ δ(λ − λᵢ), is estimated without
forming H. For a unit probe v, m Lanczos steps from v give the tridiagonal T = QΛQᵀ
(m × m); its eigenvalues are the nodes and the squared first components of its eigenvectors
the weights of the Gauss quadrature of the measure Σᵢ (v·uᵢ)² δ(λ − λᵢ):

.. math::
    v^\top f(H)\, v \approx \sum_{j=1}^{m} w_j f(\lambda_j), \qquad
    \lambda_j = \Lambda_{jj},\quad w_j = Q_{1j}^2,

exact for every polynomial f of degree ≤ 2m − 1. With v uniform on the sphere,
E[v vᵀ] = I/D, so the average over probes of these measures is an unbiased estimate of φ,
and in particular of every moment tr(Hᵖ)/D (p < 2m). The extreme nodes are Ritz values:
the outliers of a network's spectrum converge within a few dozen steps.

References:
  B. Ghorbani, S. Krishnan, Y. Xiao, "An investigation into neural net optimization via
  Hessian eigenvalue density", ICML 2019.
  G. H. Golub, G. Meurant, "Matrices, moments and quadrature with applications", Princeton
  (2010).
  V. Papyan, "Measurements of three-level hierarchical structure in the outliers in the
  spectrum of deepnet Hessians", ICML 2019.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from .curvature import LossFn, PyTree, _flat_operator, _unit, lanczos_tridiagonal
from .validate import check_int, check_positive


class SpectralDensity(NamedTuple):
    """Gauss-quadrature nodes and weights of the Hessian spectrum, one row per probe.

    Attributes:
      nodes: (num_probes, num_steps) Ritz values λ_j of each probe's tridiagonal T.
      weights: (num_probes, num_steps) w_j = Q_{1j}², each row summing to 1.
      dim: D, the number of parameters (the spectrum has D eigenvalues).
    """

    nodes: jax.Array
    weights: jax.Array
    dim: int


def hessian_density(
    loss: LossFn,
    params: PyTree,
    key: jax.Array,
    num_probes: int = 8,
    num_steps: int = 60,
) -> SpectralDensity:
    r"""The eigenvalue density of ∇²L at `params` by stochastic Lanczos quadrature.

    Each probe v (a normalised Gaussian vector) runs `num_steps` Lanczos steps with full
    re-orthogonalisation, one Hessian-vector product (`jax.jvp` of `jax.grad`) each; the
    eigen-decomposition T = QΛQᵀ gives nodes Λ and weights Q₁ⱼ². The estimate of
    (1/D) tr f(H) is the mean over probes of Σⱼ wⱼ f(λⱼ) (`spectral_moment`); the smoothed
    density is `smoothed_density`.

    Args:
      loss: `params -> scalar`.
      params: the point θ (any pytree; D parameters in all).
      key: random key of the probes.
      num_probes: independent probe vectors (>= 1); the moments' standard error falls as
        1/√num_probes.
      num_steps: Lanczos steps m per probe (>= 2), capped at D; moments of order < 2m are
        exact for each probe.

    Returns:
      A `SpectralDensity` (nodes and weights in the params' dtype).
    """
    num_probes = check_int("num_probes", num_probes)
    num_steps = check_int("num_steps", num_steps, minimum=2)
    matvec, flat = _flat_operator(loss, params)
    num_steps = min(num_steps, flat.shape[0])

    def one(k):
        alphas, betas, _ = lanczos_tridiagonal(matvec, _unit(k, flat), num_steps)
        T = jnp.diag(alphas) + jnp.diag(betas, 1) + jnp.diag(betas, -1)
        nodes, Q = jnp.linalg.eigh(T)
        return nodes, Q[0] ** 2

    nodes, weights = jax.lax.map(one, jax.random.split(key, num_probes))
    return SpectralDensity(nodes, weights, int(flat.shape[0]))


def spectral_moment(density: SpectralDensity, order: int) -> tuple[jax.Array, jax.Array]:
    """The estimate of tr(Hᵖ)/D (p = `order`) and its standard error over probes.

    Returns:
      (mean over probes of Σⱼ wⱼ λⱼᵖ, its standard error; 0 with a single probe).
    """
    order = check_int("order", order, minimum=0)
    per_probe = jnp.sum(density.weights * density.nodes**order, axis=-1)
    n = per_probe.shape[0]
    se = jnp.std(per_probe, ddof=1) / jnp.sqrt(n) if n > 1 else jnp.zeros_like(per_probe[0])
    return jnp.mean(per_probe), se


def smoothed_density(density: SpectralDensity, grid: jax.Array, sigma: float) -> jax.Array:
    r"""φ_σ(λ) = mean over probes of Σⱼ wⱼ N(λ; λⱼ, σ²) on `grid`: a density integrating to 1.

    Args:
      density: from `hessian_density`.
      grid: eigenvalues λ at which to evaluate, any shape.
      sigma: the Gaussian kernel width (> 0), in eigenvalue units.
    """
    check_positive("sigma", sigma)
    grid = jnp.asarray(grid, density.nodes.dtype)
    z = (grid[..., None, None] - density.nodes) / sigma
    kernel = jnp.exp(-0.5 * z**2) / (sigma * jnp.sqrt(2 * jnp.pi))
    return jnp.mean(jnp.sum(density.weights * kernel, axis=-1), axis=-1)
