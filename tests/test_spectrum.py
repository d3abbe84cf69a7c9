"""Stochastic Lanczos quadrature (`landscape.hessian_density`) against the exact `eigh`
spectrum of a small digits MLP's Hessian: moments, Gauss-quadrature exactness, the largest
eigenvalues, the smoothed density, dtype and bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from optdyn import landscape as ls

PROBES, STEPS = 16, 30


@pytest.fixture(scope="module")
def net():
    """A 64-8-10 sigmoid MLP (610 parameters) on 200 digits, its exact Hessian and SLQ."""
    data = ls.digits()
    batch = jax.tree.map(lambda a: jnp.asarray(a[:200]), data.train)
    model = ls.mlp((64, 8, 10), activation="sigmoid")
    params = model.init(jax.random.key(0), jnp.float64)
    loss = lambda p: model.loss_fn(p, batch)  # noqa: E731
    flat, unravel = ravel_pytree(params)
    H = jax.jit(jax.hessian(lambda x: loss(unravel(x))))(flat)
    eigs = np.linalg.eigvalsh(np.asarray(H))
    density = ls.hessian_density(loss, params, jax.random.key(1), PROBES, STEPS)
    return loss, params, np.asarray(H), eigs, density


def test_moments_match_the_exact_spectrum_within_4_standard_errors(net):
    _, _, _, eigs, density = net
    assert density.nodes.shape == density.weights.shape == (PROBES, STEPS)
    assert density.dim == eigs.size == 610
    np.testing.assert_allclose(density.weights.sum(-1), 1.0, rtol=1e-10)
    for p in (1, 2, 3):
        est, se = ls.spectral_moment(density, p)
        exact = np.mean(eigs**p)
        assert 0 < se < 0.2 * abs(exact)  # the estimator is informative at 16 probes
        assert abs(est - exact) < 4 * se, (p, est, exact, se)


def test_each_probe_is_a_gauss_quadrature_exact_to_degree_2m_minus_1(net):
    """Σⱼ wⱼ λⱼᵖ = vᵀHᵖv for the probe itself, p < 2m: no statistics involved."""
    _, _, H, _, density = net
    v = jax.random.normal(jax.random.split(jax.random.key(1), PROBES)[0], (H.shape[0],))
    v = np.asarray(v / jnp.linalg.norm(v))
    Hp_v = v
    for p in range(1, 6):
        Hp_v = H @ Hp_v
        quad = float(np.sum(density.weights[0] * density.nodes[0] ** p))
        np.testing.assert_allclose(quad, v @ Hp_v, rtol=1e-8, atol=1e-14)


def test_largest_nodes_are_the_largest_eigenvalues(net):
    _, _, _, eigs, density = net
    top = np.sort(np.asarray(density.nodes[0]))[::-1][:3]
    np.testing.assert_allclose(top, eigs[::-1][:3], rtol=1e-6)
    assert np.all(density.nodes >= eigs[0] - 1e-8) and np.all(density.nodes <= eigs[-1] + 1e-8)


def test_smoothed_density_integrates_to_one_and_keeps_dtype(net):
    _, _, _, eigs, density = net
    grid = np.linspace(eigs[0] - 1, eigs[-1] + 1, 4001)
    phi = np.asarray(ls.smoothed_density(density, grid, 0.05))
    assert np.all(phi >= 0)
    np.testing.assert_allclose(np.trapezoid(phi, grid), 1.0, rtol=1e-6)
    # float32 in, float32 out; on a diagonal quadratic the 5 nodes of a 5-D probe are exact
    curv = jnp.arange(1.0, 6.0, dtype=jnp.float32)
    quad = lambda x: 0.5 * jnp.sum(curv * x**2)  # noqa: E731
    d32 = ls.hessian_density(quad, jnp.ones(5, jnp.float32), jax.random.key(2), 2, 5)
    assert d32.nodes.dtype == d32.weights.dtype == jnp.float32
    np.testing.assert_allclose(d32.nodes, np.tile(np.arange(1.0, 6.0), (2, 1)), rtol=1e-5)
    assert ls.smoothed_density(d32, jnp.zeros(3, jnp.float32), 0.1).dtype == jnp.float32


def test_bad_arguments_name_the_argument(net):
    loss, params, *_ = net
    with pytest.raises(ValueError, match="num_steps=1"):
        ls.hessian_density(loss, params, jax.random.key(0), num_probes=2, num_steps=1)
    with pytest.raises(ValueError, match="num_probes=0"):
        ls.hessian_density(loss, params, jax.random.key(0), num_probes=0)
    with pytest.raises(ValueError, match="sigma"):
        ls.smoothed_density(net[4], jnp.zeros(2), 0.0)
