"""Tests of the gradient-noise models: moments against closed forms, epochs, temperature, errors.

Statistical checks use a fixed seed and tolerances of 4-5 standard errors, derived from the
variance of the sample mean (σ²/n) and of the sample covariance ((C_ii C_jj + C_ij²)/n for
Gaussian data), so they neither flake nor pass by luck.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optdyn import integrators as itg
from optdyn import landscape as ls

jax.config.update("jax_enable_x64", True)

N_PARTICLES = 100_000
Z = 4.5  # tolerance in standard errors


def _ensemble(landscape, point, n=N_PARTICLES, dtype=jnp.float64):
    return jnp.broadcast_to(jnp.asarray(point, dtype), (n, landscape.dim))


def _draw(noise, landscape, x, seed=0):
    """One step of `noise` from a fresh state, jitted as the simulator does."""

    def draw(x, key):
        key_init, key_step = jax.random.split(key)
        state = noise.init(landscape, key_init, x.shape[0])
        return noise.gradient(landscape, x, state, key_step)

    return jax.jit(draw)(x, jax.random.key(seed))


def _grad(landscape, point):
    return np.asarray(jax.jit(landscape.grad)(jnp.asarray(point)))


def _temperature(noise, lr, landscape, point):
    return float(jax.jit(lambda p: noise.temperature(lr, landscape, p))(point))


def _assert_moments(samples, mean, cov, n):
    """Sample mean and covariance equal `mean` and `cov` within Z standard errors."""
    samples = np.asarray(samples)
    d = np.diag(cov)
    np.testing.assert_array_less(np.abs(samples.mean(0) - mean), Z * np.sqrt(d / n) + 1e-12)
    se_cov = np.sqrt((np.outer(d, d) + cov**2) / n)  # 2σ⁴/n on the diagonal
    np.testing.assert_array_less(np.abs(np.cov(samples.T) - cov), Z * se_cov + 1e-12)


# exact and gaussian -------------------------------------------------------------------------


def test_exact_is_the_vmapped_gradient():
    r = ls.rosenbrock()
    x = jnp.asarray(np.random.default_rng(0).normal(size=(7, 2)))
    noise = itg.exact()
    state = noise.init(r, jax.random.key(0), 7)
    grads, new_state = noise.gradient(r, x, state, jax.random.key(1))
    assert state == () and new_state == ()
    np.testing.assert_allclose(grads, jax.jit(jax.vmap(jax.grad(r.energy)))(x), rtol=1e-14)
    assert noise.temperature(0.1) == 0.0


@pytest.mark.parametrize("name", ls.names())
def test_exact_gradient_by_columns_equals_vmap_grad_on_every_landscape(name):
    """`exact_gradient` differentiates (n, dim) ensembles coordinate by coordinate: the
    same numbers as vmap(grad(U)), in float64 and float32, and the same dtype."""
    hessian = np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 3.0]])
    landscape = ls.get(name, hessian=hessian) if name == "quadratic" else ls.get(name)
    dim = landscape.dim or 3
    x = np.random.default_rng(1).uniform(-1.5, 1.5, (33, dim))
    for dtype, rtol in ((jnp.float64, 1e-12), (jnp.float32, 2e-5)):
        xs = jnp.asarray(x, dtype)
        got = jax.jit(lambda a: itg.exact_gradient(landscape, a))(xs)
        want = jax.jit(jax.vmap(jax.grad(landscape.energy)))(xs)
        assert got.dtype == dtype and got.shape == xs.shape
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * float(jnp.abs(want).max()))
    if name in ("rosenbrock", "muller_brown", "quadratic", "double_well"):  # really by columns
        from optdyn.integrators._engine.columns import ensemble_gradient

        assert ensemble_gradient(landscape.energy, jnp.asarray(x)) is not None


@pytest.mark.parametrize(
    "covariance,batch_size",
    [
        (0.5, 1),
        (2.0, 8),
        (np.array([0.3, 1.7]), 2),
        (np.array([[1.0, 0.6], [0.6, 0.5]]), 4),
        (np.array([[1.0, 1.0], [1.0, 1.0]]), 1),  # singular: semi-definite is allowed
    ],
)
def test_gaussian_noise_has_mean_grad_and_covariance_c_over_b(covariance, batch_size):
    r = ls.rosenbrock()
    point = np.array([-0.5, 0.8])
    x = _ensemble(r, point)
    grads, state = _draw(itg.gaussian(covariance, batch_size=batch_size), r, x)
    assert state == ()
    cov = np.asarray(covariance, dtype=float)
    cov = cov * np.eye(2) if cov.ndim < 2 else cov
    _assert_moments(grads, _grad(r, point), cov / batch_size, len(x))


def test_gaussian_noise_is_one_normal_draw_for_the_whole_ensemble():
    v = ls.valley()
    x = jnp.asarray(np.random.default_rng(1).normal(size=(5, 2)))
    key = jax.random.key(3)
    grads, _ = itg.gaussian(0.8, batch_size=2).gradient(v, x, (), key)
    expected = jax.jit(jax.vmap(v.grad))(x) + math.sqrt(0.8 / 2) * jax.random.normal(key, x.shape)
    np.testing.assert_allclose(grads, expected, rtol=1e-13)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("covariance", [0.5, [0.5, 0.25], [[0.5, 0.1], [0.1, 0.25]]])
def test_gaussian_preserves_dtype(dtype, covariance):
    x = _ensemble(ls.himmelblau(), [1.0, 2.0], n=3, dtype=dtype)
    grads, _ = _draw(itg.gaussian(covariance), ls.himmelblau(), x)
    assert grads.dtype == dtype and grads.shape == x.shape


def test_gaussian_on_a_pytree_landscape():
    f = ls.from_function(lambda p: jnp.sum(p["w"] ** 2) + p["b"] ** 2)
    x = {"w": jnp.ones((4, 3)), "b": jnp.zeros(4, jnp.float32)}
    grads, _ = itg.gaussian(1e-30).gradient(f, x, (), jax.random.key(0))
    np.testing.assert_allclose(grads["w"], 2.0, rtol=1e-12)
    assert grads["b"].dtype == jnp.float32 and grads["b"].shape == (4,)


def test_gaussian_temperature():
    eta = 0.05
    assert itg.gaussian(0.5, batch_size=4).temperature(eta) == pytest.approx(eta * 0.5 / 8)
    assert itg.gaussian([0.2, 0.6]).temperature(eta) == pytest.approx(eta * 0.4 / 2)
    full = itg.gaussian([[1.0, 0.3, 0.0], [0.3, 2.0, 0.0], [0.0, 0.0, 0.0]], batch_size=2)
    assert full.temperature(eta) == pytest.approx(eta * 3.0 / (2 * 2 * 3))
    schedule = itg.gaussian(1.0).temperature(lambda step: 0.1 / (1 + step))
    assert schedule(1) == pytest.approx(0.1 / 2 / 2)


def test_gaussian_covariance_can_be_swept_under_vmap():
    v = ls.valley()
    x = _ensemble(v, [0.0, 0.0], n=20_000)

    def spread(var):
        grads, _ = itg.gaussian(var).gradient(v, x, (), jax.random.key(0))
        return jnp.var(grads[:, 1])

    np.testing.assert_allclose(jax.vmap(spread)(jnp.array([0.5, 2.0])), [0.5, 2.0], rtol=0.05)


# finite sums --------------------------------------------------------------------------------


def test_finite_sum_energy_is_the_sample_mean():
    data = {"a": np.arange(6.0).reshape(3, 2), "c": np.array([1.0, 2.0, 3.0])}
    fs = ls.finite_sum(lambda x, s: s["c"] * jnp.sum((x - s["a"]) ** 2), data, dim=2)
    assert isinstance(fs, ls.Landscape) and isinstance(fs, ls.FiniteSum)
    assert fs.n_samples == 3 and fs.dim == 2 and fs.per_sample_energy is not None
    x = np.array([0.5, -1.0])
    expected = np.mean(data["c"] * np.sum((x - data["a"]) ** 2, axis=1))
    assert float(fs(jnp.asarray(x))) == pytest.approx(expected, rel=1e-14)
    assert fs(jnp.asarray(x, jnp.float32)).dtype == jnp.float32


def test_least_squares_minimum_is_the_normal_equations_solution():
    fs = ls.least_squares(n_samples=100, dim=3, noise=0.2, seed=5)
    a, y = np.asarray(fs.data["inputs"]), np.asarray(fs.data["targets"])
    w_star = np.linalg.lstsq(a, y, rcond=None)[0]
    (p,) = fs.minima
    np.testing.assert_allclose(p.x, w_star, rtol=1e-10)
    assert p.value == pytest.approx(0.5 * np.mean((a @ w_star - y) ** 2), rel=1e-10)
    assert np.linalg.norm(_grad(fs, p.x)) < 1e-12
    assert ls.least_squares(seed=5).data["inputs"].shape == (256, 2)
    again, other = ls.least_squares(100, 3, 0.2, seed=5), ls.least_squares(seed=6)
    np.testing.assert_array_equal(again.data["targets"], fs.data["targets"])  # seeded
    assert not np.array_equal(other.data["inputs"][:2], fs.data["inputs"][:2, :2])


# minibatch ----------------------------------------------------------------------------------


def _one_hot_sum(n_samples):
    """ℓ(x, s) = x · e_s: the batch-mean gradient is the histogram of the batch / B."""
    return ls.finite_sum(lambda x, s: x @ s, np.eye(n_samples), dim=n_samples)


def _run_steps(noise, landscape, x, n_steps, seed=0):
    """`n_steps` steps of `noise` at fixed x in one jitted scan: (final state, all grads)."""

    def run(key):
        key_init, key_run = jax.random.split(key)
        state = noise.init(landscape, key_init, jax.tree.leaves(x)[0].shape[0])

        def step(state, key):
            grads, state = noise.gradient(landscape, x, state, key)
            return state, grads

        return jax.lax.scan(step, state, jax.random.split(key_run, n_steps))

    return jax.jit(run)(jax.random.key(seed))


@pytest.mark.parametrize("n_samples,batch_size", [(12, 4), (10, 3)])
def test_minibatch_without_replacement_visits_each_sample_once_per_epoch(n_samples, batch_size):
    fs = _one_hot_sum(n_samples)
    n_batches, n_particles, n_epochs = n_samples // batch_size, 64, 3
    x = jnp.zeros((n_particles, n_samples))
    state, grads = _run_steps(itg.minibatch(batch_size), fs, x, n_batches * n_epochs)
    counts = np.asarray(grads).reshape(n_epochs, n_batches, n_particles, n_samples) * batch_size
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-12)
    per_epoch = counts.sum(axis=1)  # (epoch, particle, sample)
    assert per_epoch.max() == 1.0  # never twice in an epoch
    assert (per_epoch.sum(axis=-1) == n_batches * batch_size).all()
    if n_samples % batch_size == 0:
        assert (per_epoch == 1.0).all()
    else:  # the dropped remainder differs between particles and epochs
        assert len({tuple(row) for row in per_epoch.reshape(-1, n_samples)}) > 1
    assert int(state.epoch) == n_epochs and int(state.batch) == 0
    assert state.keys.dtype == jnp.uint32 and state.keys.shape == (n_particles, 2)  # O(1) each
    first = counts[:, 0]  # (epoch, particle, sample): the first batch of each epoch
    assert len({tuple(b) for b in first[0]}) > 1  # particles have their own orders
    assert not np.array_equal(first[0], first[1])  # and are reshuffled every epoch


@pytest.mark.parametrize("n_samples", [1, 2, 3, 10, 64, 65, 1438])
def test_sample_order_is_a_permutation_per_particle_and_epoch(n_samples):
    from optdyn.integrators.minibatch import sample_order

    keys = jax.random.bits(jax.random.key(0), (5, 2), jnp.uint32)
    positions = jnp.arange(n_samples)
    orders = [np.asarray(sample_order(keys, jnp.int32(e), positions, n_samples)) for e in (0, 1)]
    for order in orders:
        assert order.shape == (5, n_samples) and order.dtype == np.int32
        np.testing.assert_array_equal(np.sort(order, axis=1), np.tile(positions, (5, 1)))
    if n_samples >= 10:  # particles and epochs get different orders, not the identity
        assert len({tuple(row) for row in orders[0]}) == 5
        assert not np.array_equal(orders[0], orders[1])
        assert not np.array_equal(orders[0][0], np.arange(n_samples))
    # a batch is the same slice of the order, wherever it is computed
    part = sample_order(keys, jnp.int32(1), positions[3:7], n_samples) if n_samples > 7 else None
    if part is not None:
        np.testing.assert_array_equal(part, orders[1][:, 3:7])


def test_sample_order_positions_are_uniform_over_samples():
    """Where sample 0 lands in the order, over many keys: uniform on [0, N) (chi-squared)."""
    from scipy.stats import chisquare

    from optdyn.integrators.minibatch import sample_order

    n_samples, n_keys = 20, 20_000
    keys = jax.random.bits(jax.random.key(1), (n_keys, 2), jnp.uint32)
    order = np.asarray(sample_order(keys, jnp.int32(3), jnp.arange(n_samples), n_samples))
    where = np.argmax(order == 0, axis=1)
    assert chisquare(np.bincount(where, minlength=n_samples)).pvalue > 1e-3
    first = np.bincount(order[:, 0], minlength=n_samples)  # the first sample of an epoch
    assert chisquare(first).pvalue > 1e-3


def test_minibatch_epoch_average_is_the_full_gradient_for_pytree_params():
    rng = np.random.default_rng(2)
    data = {"a": rng.normal(size=(24, 3)), "y": rng.normal(size=24)}
    fs = ls.finite_sum(lambda p, s: 0.5 * (s["a"] @ p["w"] + p["b"] - s["y"]) ** 2, data)
    point = {"w": jnp.array([0.3, -1.0, 2.0]), "b": jnp.array(0.5)}
    x = jax.tree.map(lambda a: jnp.broadcast_to(a, (5,) + a.shape), point)
    _, grads = _run_steps(itg.minibatch(6), fs, x, 4)  # one epoch of 24 // 6 batches
    full = jax.jit(fs.grad)(point)
    for name in ("w", "b"):
        epoch_mean = grads[name].mean(axis=0)  # (particles, ...)
        np.testing.assert_allclose(epoch_mean, np.broadcast_to(full[name], epoch_mean.shape))
        assert not np.allclose(grads[name][0], full[name])  # a single batch is noisy
    # The temperature accepts pytree parameters: tr C sums over every leaf.
    g = jax.jit(fs.per_sample_grads)(point)
    trace = sum(np.var(np.asarray(leaf).reshape(24, -1), axis=0).sum() for leaf in g.values())
    temp = _temperature(itg.minibatch(6), 0.1, fs, point)
    assert temp == pytest.approx(0.1 * trace * (24 - 6) / 23 / (2 * 6 * 4), rel=1e-10)


@pytest.mark.parametrize("replace", [True, False])
def test_minibatch_is_unbiased_with_the_predicted_covariance(replace):
    fs = ls.least_squares(n_samples=40, dim=2, noise=0.5, seed=0)
    point = jnp.array([1.5, -0.5])
    size, n = 5, 20_000
    grads, _ = _draw(itg.minibatch(size, replace=replace), fs, _ensemble(fs, point, n=n))
    g = np.asarray(jax.jit(fs.per_sample_grads)(point))
    fpc = 1.0 if replace else (fs.n_samples - size) / (fs.n_samples - 1)
    cov = np.cov(g.T, bias=True) * fpc / size
    mean = _grad(fs, point)
    assert np.abs(np.asarray(grads).mean(0) - mean).max() > 0  # it is noisy at all
    # Batch means of 5 non-Gaussian samples: allow the Gaussian standard error plus 10%.
    samples = np.asarray(grads)
    se = np.sqrt(np.diag(cov) / n)
    np.testing.assert_array_less(np.abs(samples.mean(0) - mean), Z * se)
    np.testing.assert_allclose(np.cov(samples.T), cov, rtol=0.1, atol=0.1 * np.abs(cov).max())
    # The temperature is the trace of that covariance: T = η tr(Cov) / (2 dim).
    eta = 0.01
    temp = _temperature(itg.minibatch(size, replace=replace), eta, fs, point)
    assert temp == pytest.approx(eta * np.trace(cov) / (2 * 2), rel=1e-10)


def test_minibatch_temperature_finite_population_correction():
    fs = ls.least_squares(n_samples=64, dim=2, seed=1)
    point = jnp.array([0.0, 0.0])
    with_rep = _temperature(itg.minibatch(8, replace=True), 0.1, fs, point)
    without = _temperature(itg.minibatch(8), 0.1, fs, point)
    assert without / with_rep == pytest.approx((64 - 8) / (64 - 1), rel=1e-12)
    assert _temperature(itg.minibatch(64), 0.1, fs, point) == 0.0  # full batch: GD
    schedule = jax.jit(lambda p: itg.minibatch(8).temperature(lambda step: 0.1, fs, p)(0))
    assert float(schedule(point)) == pytest.approx(without)


def test_full_batch_without_replacement_is_the_exact_gradient():
    fs = ls.least_squares(n_samples=16, dim=2, seed=4)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(3, 2)))
    grads, _ = _draw(itg.minibatch(16), fs, x)
    assert grads.dtype == jnp.float64
    np.testing.assert_allclose(grads, jax.jit(jax.vmap(fs.grad))(x), rtol=1e-12)


@pytest.mark.parametrize("replace", [True, False])
def test_minibatch_preserves_float32(replace):  # float64 throughout the other tests
    fs = ls.least_squares(n_samples=10, dim=2)
    x = _ensemble(fs, [0.1, 0.2], n=4, dtype=jnp.float32)
    grads, _ = _draw(itg.minibatch(3, replace=replace), fs, x)
    assert grads.dtype == jnp.float32 and grads.shape == x.shape


# Bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build,match",
    [
        (lambda: itg.gaussian(-1.0), "covariance=-1.0"),
        (lambda: itg.gaussian(float("nan")), "covariance=nan"),
        (lambda: itg.gaussian([1.0, -0.5]), "covariance="),
        (lambda: itg.gaussian([[1.0, 0.5], [0.0, 1.0]]), "covariance=.*not symmetric"),
        (lambda: itg.gaussian([[1.0, 2.0], [2.0, 1.0]]), "covariance=.*positive semi-definite"),
        (lambda: itg.gaussian(np.ones((2, 3))), "covariance has shape"),
        (lambda: itg.gaussian(1.0, batch_size=0), "batch_size=0"),
        (lambda: itg.gaussian(1.0, batch_size=2.0), "batch_size=2.0"),
        (lambda: itg.minibatch(0), "batch_size=0"),
        (lambda: itg.minibatch(4, replace="no"), "replace='no'"),
        (lambda: ls.finite_sum(3.0, np.ones(3)), "per_sample_energy=3.0"),
        (lambda: ls.finite_sum(jnp.dot, (np.ones(3), np.ones(4))), "data has leading axes"),
        (lambda: ls.finite_sum(jnp.dot, np.array(1.0)), "data has leading axes"),
        (lambda: ls.least_squares(n_samples=0), "n_samples=0"),
        (lambda: ls.least_squares(noise=-0.1), "noise=-0.1"),
        (lambda: ls.least_squares(seed=-1), "seed=-1"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_minibatch_rejects_a_landscape_that_is_not_a_finite_sum():
    with pytest.raises(ValueError, match="landscape='rosenbrock'.*finite sum"):
        itg.minibatch(4).init(ls.rosenbrock(), jax.random.key(0), 2)
    with pytest.raises(ValueError, match="batch_size=20.*n_samples=10"):
        itg.minibatch(20).init(ls.least_squares(n_samples=10), jax.random.key(0), 2)
    itg.minibatch(20, replace=True).init(ls.least_squares(n_samples=10), jax.random.key(0), 2)


def test_gaussian_rejects_a_covariance_of_the_wrong_dimension():
    with pytest.raises(ValueError, match="covariance has shape \\(3,\\)"):
        itg.gaussian([1.0, 1.0, 1.0]).gradient(ls.beale(), jnp.zeros((2, 2)), (), jax.random.key(0))


def test_every_noise_model_takes_one_temperature_signature():
    """temperature(lr, landscape=None, x=None) for all: the mini-batch needs the landscape
    and a point and says so; the others ignore them."""
    fs = ls.least_squares(n_samples=8, dim=2)
    x = jnp.zeros(2)
    for noise in (itg.exact(), itg.gaussian(0.5, batch_size=4), itg.minibatch(4)):
        t = noise.temperature(0.1, fs, x)
        assert np.isfinite(float(t)) and float(t) >= 0
    assert itg.gaussian(0.5, 4).temperature(0.1, fs, x) == itg.gaussian(0.5, 4).temperature(0.1)
    with pytest.raises(ValueError, match="landscape"):
        itg.minibatch(4).temperature(0.1)
