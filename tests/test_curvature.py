"""Curvature (HVP, power iteration, Lanczos, Hutchinson, Adam's preconditioned sharpness),
gradient-noise statistics and mixed-precision loss scaling, against dense closed forms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from optdyn import integrators as itg
from optdyn import landscape as ls
from optdyn.landscape import curvature as cv
from optdyn.landscape.gradient_noise import gradient_covariance, minibatch_temperature
from optdyn.landscape.mixed_precision import mixed_precision
from optdyn.landscape.mlp import from_loss, mlp


@pytest.fixture(scope="module")
def small_net():
    """A 6-4-3 tanh MLP (43 parameters) on 40 random samples, float64, and its dense Hessian."""
    rng = np.random.default_rng(0)
    data = {"x": rng.standard_normal((40, 6)), "y": rng.integers(0, 3, 40)}
    model = mlp((6, 4, 3), activation="tanh", weight_decay=1e-3)
    params = model.init(jax.random.key(0), jnp.float64)
    U = from_loss(model.loss_fn, data)
    flat, unravel = ravel_pytree(params)
    H = np.asarray(jax.jit(jax.hessian(lambda x: U.energy(unravel(x))))(flat))
    return U, params, H


def test_hvp_equals_dense_hessian(small_net):
    U, params, H = small_net
    v = jax.tree.map(lambda a: jnp.ones_like(a) * 0.3, params)
    hv = jax.jit(lambda p, v: cv.hvp(U.energy, p, v))(params, v)
    np.testing.assert_allclose(ravel_pytree(hv)[0], H @ ravel_pytree(v)[0], rtol=1e-8, atol=1e-12)


def test_lanczos_and_power_find_the_top_eigenvalues(small_net):
    U, params, H = small_net
    eigs = np.linalg.eigvalsh(H)[::-1]
    lz = jax.jit(lambda p: cv.lanczos(U.energy, p, jax.random.key(1), k=30, n_eigs=3))(params)
    np.testing.assert_allclose(lz, eigs[:3], rtol=1e-6)
    assert float(cv.sharpness(U.energy, params, k=30)) == pytest.approx(eigs[0], rel=1e-6)
    # power iteration finds the eigenvalue of largest magnitude; converges as (λ₂/λ₁)^k
    lam, vec = jax.jit(lambda p: cv.power_iteration(U.energy, p, jax.random.key(2), 300))(params)
    top = eigs[np.argmax(np.abs(eigs))]
    assert float(lam) == pytest.approx(top, rel=1e-4)
    assert abs(float(jnp.linalg.norm(ravel_pytree(vec)[0])) - 1) < 1e-10


def test_hutchinson_trace_within_its_standard_error():
    A = np.diag(np.arange(1.0, 9.0)) + 0.3 * np.ones((8, 8))  # off-diagonal: non-zero variance
    est, se = cv.hutchinson_trace(lambda x: 0.5 * x @ A @ x, jnp.zeros(8), jax.random.key(0), 400)
    # Var(zᵀAz) = 2 Σ_{i≠j} A_ij² for Rademacher z
    expected_se = np.sqrt(2 * (np.sum(A**2) - np.sum(np.diag(A) ** 2)) / 400)
    assert float(se) == pytest.approx(expected_se, rel=0.2)
    assert abs(float(est) - np.trace(A)) < 4 * expected_se


def test_preconditioned_sharpness_is_top_eigenvalue_of_p_inverse_h(small_net):
    U, params, H = small_net
    d = np.random.default_rng(1).uniform(0.5, 3.0, H.shape[0])
    precond = ravel_pytree(params)[1](jnp.asarray(d))
    ps = cv.preconditioned_sharpness(U.energy, params, precond, k=43)
    ref = np.max(np.linalg.eigvals(np.diag(1 / d) @ H).real)
    assert float(ps) == pytest.approx(ref, rel=1e-6)


def test_adam_update_is_minus_p_inverse_m():
    """Cohen et al. (2022): with P_t = (1−β₁ᵗ)diag(√v̂_t + ε)/η, Adam is θ ← θ − P⁻¹m."""
    loss = lambda x: 0.5 * jnp.sum(jnp.arange(1.0, 5.0) * x**2)  # noqa: E731
    opt = itg.adam(0.05, b1=0.9, b2=0.99, eps=1e-3)
    state = opt.init(jnp.array([1.0, -2.0, 0.5, 3.0]))
    for _ in range(7):
        new = opt.step(state, jax.grad(loss)(state.params), jax.random.key(0))
        P = cv.adam_preconditioner(new, 0.05, b1=0.9, b2=0.99, eps=1e-3)
        np.testing.assert_allclose(new.params, state.params - new.mu / P, rtol=1e-12)
        state = new
    # on a quadratic the preconditioned sharpness is max_i h_i / P_i
    ps = cv.adam_preconditioned_sharpness(loss, state, 0.05, b1=0.9, b2=0.99, eps=1e-3, k=4)
    P = cv.adam_preconditioner(state, 0.05, b1=0.9, b2=0.99, eps=1e-3)
    assert float(ps) == pytest.approx(float(jnp.max(jnp.arange(1.0, 5.0) / P)), rel=1e-8)


def test_gradient_covariance_and_temperature_match_numpy():
    U = ls.least_squares(n_samples=50, dim=3, noise=0.5, seed=2)
    x = jnp.array([0.3, -0.2, 1.0])
    stats = gradient_covariance(U, x, n_eigs=3)
    A, y = np.asarray(U.data["inputs"]), np.asarray(U.data["targets"])
    g = (A @ np.asarray(x) - y)[:, None] * A  # per-sample gradients of ½(a·x − y)²
    C = np.cov(g.T, bias=True)
    np.testing.assert_allclose(stats.trace, np.trace(C), rtol=1e-10)
    np.testing.assert_allclose(stats.top_eigenvalues, np.linalg.eigvalsh(C)[::-1], rtol=1e-8)
    T = minibatch_temperature(0.1, 5, stats.trace, n_samples=50)
    assert float(T) == pytest.approx(0.1 * np.trace(C) / 10 * 45 / 49, rel=1e-10)
    # the noise model's per-coordinate temperature is T / dim
    assert float(itg.minibatch(5).temperature(0.1, U, x)) == pytest.approx(float(T) / 3, rel=1e-8)


def test_loss_scaling_recovers_float16_underflow():
    """A backward signal 2⁻¹⁰·2⁻¹⁰·2⁻⁸ = 2⁻²⁸ flushes to zero in float16; S = 2¹⁵ restores it;
    S = 2¹⁶ overflows at once (the scaled cotangent of the loss, S·1, exceeds 65504)."""

    def loss_fn(params, batch):  # every constant is a normal float16; only their product is not
        return 2.0**-10 * (2.0**-10 * (2.0**-8 * jnp.sum(params["w"] * batch["x"])))

    params = {"w": jnp.ones(3, jnp.float32)}
    batch = {"x": np.array([1.0, 2.0, 4.0], np.float32)}
    exact = 2.0**-28 * batch["x"]
    g32 = jax.grad(mixed_precision(loss_fn, jnp.float32))(params, batch)["w"]
    g16 = jax.grad(mixed_precision(loss_fn, jnp.float16))(params, batch)["w"]
    scaled = mixed_precision(loss_fn, jnp.float16, 2.0**15)
    g16s = jax.grad(scaled)(params, batch)["w"]
    assert g16s.dtype == jnp.float32
    np.testing.assert_allclose(g32, exact, rtol=1e-6)
    np.testing.assert_array_equal(g16, 0.0)
    np.testing.assert_allclose(g16s, exact, rtol=1e-3)
    # the value is the unscaled loss; too large a scale overflows to inf
    assert float(scaled(params, batch)) == float(
        mixed_precision(loss_fn, jnp.float16)(params, batch)
    )
    huge = jax.grad(mixed_precision(loss_fn, jnp.float16, 2.0**16))
    assert not np.any(np.isfinite(huge(params, batch)["w"]))
