"""The float32 normals of the counter-mode generator (`integrators.prng.normal`).

The rest of the suite runs in float64 (conftest), where `prng.normal` defers to
`jax.random.normal`; these tests pin float32, the dtype of the fast Box–Muller path, and
check it against closed forms: the N(0, 1) moments and tails, Box–Muller's known values, and
Langevin's exact finite-step stationary law on a quadratic, through the fused simulator.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from optdyn import integrators as itg
from optdyn import landscape as ls
from optdyn.integrators._engine import prng as prng

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


def test_other_keys_use_jax_normal():
    default = jax.random.key(3)
    np.testing.assert_array_equal(
        prng.normal(default, (5,), jnp.float32), jax.random.normal(default, (5,), jnp.float32)
    )
    np.testing.assert_array_equal(
        prng.normal(default, (5,), jnp.float64), jax.random.normal(default, (5,), jnp.float64)
    )


def test_float64_normal_pairs_are_independent_normals():
    """float64 Box–Muller with 53-bit uniforms and polynomial cos/sin by quadrant."""
    z0, z1 = prng.normal_pair(prng.stream_key(prng.key(5), 3), (N,), jnp.float64)
    assert z0.dtype == z1.dtype == jnp.float64
    z0, z1 = np.asarray(z0), np.asarray(z1)
    se = 1 / np.sqrt(N)
    for z in (z0, z1):
        assert abs(z.mean()) < 4 * se
        assert abs(z.var() - 1) < 4 * np.sqrt(2) * se
        assert abs(np.mean(z**3)) < 4 * np.sqrt(15) * se
        assert abs(np.mean(z**4) - 3) < 4 * np.sqrt(96) * se
        assert stats.kstest(z, "norm").pvalue > 1e-3
    assert abs(np.mean(z0 * z1)) < 4 * se
    assert abs(np.mean(z0**2 * z1**2) - 1) < 4 * np.sqrt(8) * se
    assert stats.kstest(z0**2 + z1**2, "expon", args=(0, 2)).pvalue > 1e-3
    # a single draw is the first of the pair; the polynomial angle matches np.cos/np.sin
    np.testing.assert_array_equal(
        prng.normal(prng.stream_key(prng.key(5), 3), (N,), jnp.float64), z0
    )
    w = np.arange(0, 2**32, 2**20 + 7, dtype=np.uint64).astype(np.uint32)
    half = np.full(w.shape, 2**31, np.uint32)
    radius = (jnp.asarray(half), jnp.zeros(w.shape, jnp.uint32))
    c, s = prng.box_muller_pair64(radius, (jnp.asarray(w), jnp.zeros(w.shape, jnp.uint32)))
    r = np.sqrt(-2 * np.log(0.5 + 2.0**-54))
    theta = 2 * np.pi * w.astype(np.float64) * 2.0**-32
    np.testing.assert_allclose(np.asarray(c), r * np.cos(theta), rtol=0, atol=4e-15)
    np.testing.assert_allclose(np.asarray(s), r * np.sin(theta), rtol=0, atol=4e-15)


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


def test_box_muller_pair_first_is_box_muller_and_second_is_the_signed_sine():
    rng = np.random.default_rng(0)
    w0 = jnp.asarray(rng.integers(0, 2**32, 10_000, dtype=np.uint64).astype(np.uint32))
    w1 = jnp.asarray(rng.integers(0, 2**32, 10_000, dtype=np.uint64).astype(np.uint32))
    z0, z1 = prng.box_muller_pair(w0, w1)
    np.testing.assert_array_equal(z0, prng.box_muller(w0, w1))
    # z1 = ± r sin a, with the sign from the second-lowest bit of w1
    u = (np.asarray(w0, np.float64) + 0.5) * 2.0**-32
    r = np.sqrt(-2 * np.log(u))
    a = np.pi / 2 * (np.asarray(w1) >> 9) / 2**23
    sign = np.where((np.asarray(w1) >> 1) & 1, -1.0, 1.0)
    np.testing.assert_allclose(np.asarray(z1, np.float64), sign * r * np.sin(a), atol=5e-6)


def test_float32_normal_pairs_are_independent_normals():
    z0, z1 = prng.normal_pair(prng.key(4), (N,), jnp.float32)
    z0, z1 = np.asarray(z0, np.float64), np.asarray(z1, np.float64)
    se = 1 / np.sqrt(N)
    for z in (z0, z1):
        assert abs(z.mean()) < 4 * se
        assert abs(z.var() - 1) < 4 * np.sqrt(2) * se
        assert abs(np.mean(z**4) - 3) < 4 * np.sqrt(96) * se
    assert abs(np.mean(z0 * z1)) < 4 * se
    assert abs(np.mean(z0**2 * z1**2) - 1) < 4 * np.sqrt(8) * se  # Var z0²z1² = 9 − 1
    # the radius: z0² + z1² is exponential with mean 2 (chi-squared, 2 degrees of freedom)
    assert stats.kstest(z0**2 + z1**2, "expon", args=(0, 2)).pvalue > 1e-3


def test_stream_keys_are_counter_streams_of_one_key():
    key = prng.key(6)
    same = prng.normal(prng.stream_key(key, 0), (100,), jnp.float32)
    np.testing.assert_array_equal(same, prng.normal(key, (100,), jnp.float32))
    a = np.asarray(prng.normal(prng.stream_key(key, 1), (N,), jnp.float32), np.float64)
    b = np.asarray(prng.normal(prng.stream_key(key, 2), (N,), jnp.float32), np.float64)
    assert abs(np.mean(a * b)) < 4 / np.sqrt(N)
    assert abs(a.var() - 1) < 4 * np.sqrt(2 / N)
    # a traced stream number gives the same numbers; arrays of streams broadcast
    traced = jax.jit(lambda s: prng.normal(prng.stream_key(key, s), (100,), jnp.float32))
    np.testing.assert_allclose(traced(1), a[:100], rtol=1e-6, atol=1e-6)  # jit: other rounding
    keys = prng.stream_key(key, jnp.arange(3))
    assert keys.shape == (3,) and prng.is_stream_key(keys)
    # every jax.random function works on them; derived keys are new streams
    u = jax.random.uniform(prng.stream_key(key, 1), (1000,))
    assert 0.45 < float(u.mean()) < 0.55
    k1, k2 = jax.random.split(prng.stream_key(key, 1))
    for derived in (k1, k2, jax.random.fold_in(prng.stream_key(key, 1), 3)):
        assert prng.is_stream_key(derived)
        c = np.asarray(prng.normal(derived, (N,), jnp.float32), np.float64)
        assert abs(np.mean(a * c)) < 4 / np.sqrt(N)
    with pytest.raises(ValueError, match="counter-mode key"):
        prng.stream_key(jax.random.key(0), 1)


def test_table_keys_read_the_numbers_of_their_stream():
    """Equal up to float32 rounding: the table is computed by another XLA program, whose
    log and polynomial may round differently in the last bit."""
    key = prng.key(8)
    same = functools.partial(np.testing.assert_allclose, rtol=1e-6, atol=1e-6)
    streams = jnp.arange(5, 10)
    z0, z1 = prng.stream_normals(key, streams, 4)
    assert z0.shape == z1.shape == (5, 4)
    for j in (0, 3):
        table = prng.table_key(key, streams[j], z0[j], z1[j])
        plain = prng.stream_key(key, streams[j])
        for shape, offset in (((3,), 0), ((1,), 3), ((2, 2), 0), ((6,), 0), ((2,), 3)):
            same(  # within the table, and past it (computed)
                prng.normal(table, shape, jnp.float32, offset),
                prng.normal(plain, shape, jnp.float32, offset),
            )
            for a, b in zip(
                prng.normal_pair(table, shape, jnp.float32, offset),
                prng.normal_pair(plain, shape, jnp.float32, offset),
                strict=True,
            ):
                same(a, b)
        tree = {"a": jnp.zeros((2,), jnp.float32), "b": jnp.zeros((2,), jnp.float32)}
        for a, b in zip(
            jax.tree.leaves(prng.tree_normal(table, tree)),
            jax.tree.leaves(prng.tree_normal(plain, tree)),
            strict=True,
        ):
            same(a, b)
        same(jax.random.uniform(table, (7,)), jax.random.uniform(plain, (7,)))
        for derive in (lambda k: jax.random.split(k)[1], lambda k: jax.random.fold_in(k, 2)):
            same(
                prng.normal(derive(table), (3,), jnp.float32),
                prng.normal(derive(plain), (3,), jnp.float32),
            )


def test_one_langevin_trajectory_has_independent_gaussian_noise_per_step():
    """One particle, float32 (normals read from per-chunk tables): on U = ½x² the
    increments ξ_t = (x_{t+1} − (1 − η)x_t)/√(2ηT) must be independent N(0, 1), across
    steps and across the two coordinates, and the fused run must equal the exact one."""
    lr, temperature, steps = 0.5, 1.0, 100_000
    landscape = ls.quadratic(np.eye(2))
    x0 = jnp.zeros((2,), jnp.float32)
    opt = itg.langevin(lr, temperature)
    traj = itg.simulate(opt, landscape, x0, steps, jax.random.key(9))
    x = np.asarray(traj.positions, np.float64)
    xi = (x[1:] - (1 - lr) * x[:-1]) / np.sqrt(2 * lr * temperature)
    n = xi.shape[0]
    se = 1 / np.sqrt(n)
    for c in range(2):
        z = xi[:, c]
        assert abs(z.mean()) < 4 * se
        assert abs(z.var() - 1) < 4 * np.sqrt(2) * se
        assert abs(np.mean(z[1:] * z[:-1])) < 4 * se  # consecutive steps
        assert abs(np.mean(z[2:] * z[:-2])) < 4 * se
    assert abs(np.mean(xi[:, 0] * xi[:, 1])) < 4 * se  # the two coordinates
    # the stationary variance (T/λ)/(1 − ηλ/2) = 4/3; x² has correlation time
    # (1 + φ²)/(1 − φ²) = 5/3 steps for φ = 1 − ηλ
    var = 4 / 3
    assert abs(np.mean(x[1000:] ** 2) / var - 1) < 4 * np.sqrt(2 * (5 / 3) / (2 * n))
    fused = itg.simulate(opt, landscape, x0, steps, jax.random.key(9), record=False)
    np.testing.assert_allclose(fused.final_state.params.reshape(-1), x[-1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_tree_normal_numbers_do_not_depend_on_the_ensemble_size(dtype):
    """Element i of every leaf uses the same counters for 62 and 64 particles (a sharded
    ensemble is padded), for paired, single and unequal leaves; leaves are independent."""
    key = prng.stream_key(prng.key(12), 7)

    def draw(n):
        cols = {"x": jnp.zeros(n, dtype), "y": jnp.zeros(n, dtype), "z": jnp.zeros(n, dtype)}
        ragged = [jnp.zeros((n, 3), dtype), jnp.zeros((5,), dtype)]
        return prng.tree_normal(key, cols), prng.tree_normal(key, ragged)

    (small, ragged_small), (big, ragged_big) = draw(62), draw(64)
    for name in "xyz":
        assert small[name].dtype == dtype
        np.testing.assert_array_equal(small[name], big[name][:62])
    np.testing.assert_array_equal(ragged_small[0], ragged_big[0][:62])
    np.testing.assert_array_equal(ragged_small[1], ragged_big[1])
    n = 200_000
    (cols, ragged) = draw(n)
    x, y, z = (np.asarray(cols[c], np.float64) for c in "xyz")
    se = 1 / np.sqrt(n)
    for a, b in ((x, y), (x, z), (y, z)):
        assert abs(np.mean(a * b)) < 4 * se
    for a in (x, y, z, np.asarray(ragged[0], np.float64).ravel()):
        assert abs(a.var() - 1) < 4 * np.sqrt(2 / a.size)
