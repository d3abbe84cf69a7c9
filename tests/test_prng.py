"""The float32 normals of the counter-mode generator (`integrators.prng.normal`).

The rest of the suite runs in float64 (conftest), where `prng.normal` defers to
`jax.random.normal`; these tests pin float32, the dtype of the fast Box–Muller path, and
check it against closed forms: the N(0, 1) moments and tails, Box–Muller's known values, and
Langevin's exact finite-step stationary law on a quadratic, through the fused simulator.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import integrators as itg
import landscape as ls
from integrators import prng

N = 400_000


def _normals(seed, n=N, dtype=jnp.float32):
    return prng.normal(jax.random.fold_in(prng.key(seed), 7), (n,), dtype)


def test_box_muller_known_values():
    half = jnp.uint32(2**31)  # u = (2**31 + 1/2) / 2**32 ~ 1/2
    r = np.sqrt(-2 * np.log(0.5))
    # a = 0: z = r cos 0; lowest bit of w1 set: the sign flips
    assert float(prng.box_muller(half, jnp.uint32(0))) == pytest.approx(r, rel=1e-6)
    assert float(prng.box_muller(half, jnp.uint32(1))) == pytest.approx(-r, rel=1e-6)
    # top 23 bits of w1 = v 2**23 with v = 2/3: a = π/3, cos a = 1/2
    v = round(2 / 3 * 2**23)
    w1 = jnp.uint32(v << 9)
    expected = r * np.cos(np.pi / 2 * v / 2**23)
    assert float(prng.box_muller(half, w1)) == pytest.approx(expected, abs=2e-7)
    # the polynomial cosine over all of [0, π/2): within 1e-6 of np.cos
    v = np.arange(0, 2**23, 997, dtype=np.uint32)
    z = np.asarray(prng.box_muller(jnp.full(v.shape, half), jnp.asarray(v << 9)), np.float64)
    np.testing.assert_allclose(z, r * np.cos(np.pi / 2 * v / 2**23), atol=1e-6)


def test_float32_normals_moments_tails_and_independence():
    z = np.asarray(_normals(1), np.float64)
    assert _normals(1).dtype == jnp.float32
    se = 1 / np.sqrt(N)
    assert abs(z.mean()) < 4 * se
    assert abs(z.var() - 1) < 4 * np.sqrt(2) * se
    assert abs(np.mean(z**3)) < 4 * np.sqrt(15) * se  # Var z³ = 15
    assert abs(np.mean(z**4) - 3) < 4 * np.sqrt(96) * se  # Var z⁴ = 105 − 9
    p = 2 * stats.norm.sf(2.5)  # P(|z| > 2.5) = 0.0124
    assert abs(np.mean(np.abs(z) > 2.5) - p) < 4 * np.sqrt(p * (1 - p)) * se
    assert stats.kstest(z, "norm").pvalue > 1e-3
    assert abs(np.mean(z[1:] * z[:-1])) < 4 * se  # neighbouring draws
    other = np.asarray(_normals(2), np.float64)
    assert abs(np.mean(z * other)) < 4 * se  # another key
    # the same key gives the same numbers; low-precision dtypes are the float32 ones rounded
    np.testing.assert_array_equal(_normals(1), _normals(1))
    half = _normals(1, 1000, jnp.bfloat16)
    assert half.dtype == jnp.bfloat16
    np.testing.assert_array_equal(half, _normals(1, 1000).astype(jnp.bfloat16))


def test_float64_and_other_keys_use_jax_normal():
    key = prng.key(3)
    np.testing.assert_array_equal(
        prng.normal(key, (5,), jnp.float64), jax.random.normal(key, (5,), jnp.float64)
    )
    default = jax.random.key(3)
    np.testing.assert_array_equal(
        prng.normal(default, (5,), jnp.float32), jax.random.normal(default, (5,), jnp.float32)
    )


def test_float32_langevin_stationary_law_through_the_fused_simulator():
    """Euler–Maruyama on U = ½λx² with Gaussian noise: x stays Gaussian, and its stationary
    variance is exactly (T/λ)/(1 − ηλ/2) per coordinate (4/3 at ηλ = 1/2)."""
    lam, lr, temperature, n = 1.0, 0.5, 1.0, 100_000
    landscape = ls.quadratic(lam * np.eye(2))
    x0 = jnp.zeros((n, 2), jnp.float32)
    traj = itg.simulate(itg.langevin(lr, temperature), landscape, x0, 200, jax.random.key(5),
                        record=False)  # fmt: skip
    x = np.asarray(traj.final_state.params, np.float64).ravel()
    assert traj.final_state.params.dtype == jnp.float32
    var = temperature / lam / (1 - lr * lam / 2)
    m = x.size
    assert abs(x.mean()) < 4 * np.sqrt(var / m)
    assert abs(x.var() / var - 1) < 4 * np.sqrt(2 / m)
    assert abs(np.mean(x**4) / var**2 - 3) < 4 * np.sqrt(96 / m)  # Gaussian, not just var
    # the two coordinates of a particle are independent
    xy = np.asarray(traj.final_state.params, np.float64)
    assert abs(np.mean(xy[:, 0] * xy[:, 1])) / var < 4 / np.sqrt(n)


def test_fused_random_steps_equal_step_by_step_and_divergence_is_exact():
    """Random steps fused per chunk give the numbers of the step-by-step check, and a
    particle that diverges inside a fused chunk is reported at its exact step."""
    landscape = ls.quadratic(np.diag([1.0, 2.5]))  # ηλ = 2.5·0.9 > 2: coordinate 2 diverges
    x0 = jnp.asarray(np.random.default_rng(0).normal(size=(64, 2)), jnp.float32)
    x0 = x0.at[:32, 1].set(0.0)  # ... unless it starts at 0 and stays small for a while
    opt = itg.langevin(0.9, 1e-6)
    kw = dict(record_every=None, bound=1e6)
    fused = itg.simulate(opt, landscape, x0, 300, jax.random.key(2), **kw)
    exact = itg.simulate(opt, landscape, x0, 300, jax.random.key(2), fuse=0, **kw)
    np.testing.assert_array_equal(fused.diverged_step, exact.diverged_step)
    assert bool(jnp.all(fused.diverged))
    np.testing.assert_allclose(fused.final_state.params, exact.final_state.params, rtol=1e-6)
    ok = itg.langevin(0.1, 0.5)
    fused = itg.simulate(ok, landscape, x0, 300, jax.random.key(2), **kw)
    exact = itg.simulate(ok, landscape, x0, 300, jax.random.key(2), fuse=0, **kw)
    assert not bool(jnp.any(fused.diverged))
    np.testing.assert_allclose(fused.final_state.params, exact.final_state.params, rtol=1e-5,
                               atol=1e-6)  # fmt: skip
