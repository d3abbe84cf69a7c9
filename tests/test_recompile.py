"""Landscapes and noise models are pytrees: their numbers are traced, so a new condition
number, barrier, data set or σ² reuses the compiled simulation, and the new numbers are used."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optdyn import integrators as itg
from optdyn import landscape as ls
from optdyn.integrators._engine.columns import column_gradient
from optdyn.integrators.simulate import _runner
from optdyn.landscape._base import BoundEnergy, Landscape
from optdyn.landscape.quadratic import valley_hessian

TRACES = {"count": 0}
X0 = jnp.asarray([[-1.0, 0.5], [0.3, -0.8], [1.2, 0.1]], jnp.float32)


def _counting_energy(params, x):
    TRACES["count"] += 1  # a side effect runs only while JAX traces the function
    return 0.5 * params["k"] * jnp.sum(x**2)


def _bowl(k: float) -> Landscape:
    # an array parameter is traced; a Python number would be a compile-time constant
    energy = BoundEnergy(_counting_energy, {"k": np.asarray(k)})
    return Landscape(energy, "bowl", 2, description=f"k={k}")


def _gd_valley(hessian, lr, steps, x0):
    """GD on ½xᵀHx: x_k = (I − ηH)^k x₀ for every particle, shape (n, steps + 1, dim)."""
    step = np.eye(len(hessian)) - lr * np.asarray(hessian)
    out = [np.asarray(x0, np.float64)]
    for _ in range(steps):
        out.append(out[-1] @ step.T)
    return np.stack(out, axis=1)


def test_new_condition_number_reuses_the_compiled_scan():
    lr, steps = 0.5, 30
    first = itg.simulate(itg.sgd(lr), ls.valley(50), X0, steps)
    size = _runner()._cache_size()
    second = itg.simulate(itg.sgd(lr), ls.valley(100), X0, steps)
    assert _runner()._cache_size() == size
    # each run used its own κ: GD equals (I − ηH_κ)^k x₀ for its Hessian
    for traj, kappa in ((first, 50), (second, 100)):
        want = _gd_valley(ls.valley(kappa).params, lr, steps, X0)
        np.testing.assert_allclose(traj.positions, want, rtol=1e-4, atol=1e-6)
    assert not np.allclose(first.positions[:, -1], second.positions[:, -1])


def test_new_parameters_do_not_trace_the_energy_again():
    """Counted inside the traced energy itself: landscapes that differ in their numbers and
    their description trace it once."""
    itg.simulate(itg.sgd(0.1), _bowl(1.0), X0, 5)
    traces, size = TRACES["count"], _runner()._cache_size()
    runs = [itg.simulate(itg.sgd(0.1), _bowl(k), X0, 5) for k in (2.0, 3.0)]
    assert TRACES["count"] == traces and _runner()._cache_size() == size
    np.testing.assert_allclose(runs[1].positions[:, 1], (1 - 0.1 * 3.0) * X0, rtol=1e-6)


def _gd_reference(landscape, lr, steps, x0):
    x = np.asarray(x0, np.float64)
    grad = jax.jit(jax.vmap(landscape.grad))
    for _ in range(steps):
        x = x - lr * np.asarray(grad(jnp.asarray(x)))
    return x


def test_new_barrier_reuses_the_compiled_scan():
    lr, steps = 0.05, 20
    first = itg.simulate(itg.sgd(lr), ls.double_well(2, barrier=1.0), X0, steps)
    size = _runner()._cache_size()
    U = ls.double_well(2, barrier=3.0)
    second = itg.simulate(itg.sgd(lr), U, X0, steps)
    assert _runner()._cache_size() == size
    np.testing.assert_allclose(
        second.positions[:, -1], _gd_reference(U, lr, steps, X0), rtol=1e-4, atol=1e-5
    )
    assert not np.allclose(first.positions[:, -1], second.positions[:, -1])


def test_new_gaussian_variance_reuses_the_compiled_scan():
    """One step from the same key draws the same z: the noise part of the step,
    −η√(σ²/B) z, scales with √σ², so the two runs differ by the ratio √(0.7/0.5)."""
    U, lr, key = ls.valley(50), 0.1, jax.random.key(3)
    exact = itg.simulate(itg.sgd(lr), U, X0, 1, key=key).positions[:, 1]
    low = itg.simulate(itg.sgd(lr), U, X0, 1, key=key, noise=itg.gaussian(0.5, 8))
    size = _runner()._cache_size()
    high = itg.simulate(itg.sgd(lr), U, X0, 1, key=key, noise=itg.gaussian(0.7, 8))
    assert _runner()._cache_size() == size
    ratio = (high.positions[:, 1] - exact) / (low.positions[:, 1] - exact)
    np.testing.assert_allclose(ratio, np.sqrt(0.7 / 0.5), rtol=1e-3)


def test_new_data_set_reuses_the_compiled_scan():
    """A finite sum's data are leaves: another data set of the same shapes (and mini-batch
    noise of the same batch size) reuses the compiled scan."""
    x0 = jnp.zeros((2, 2))
    runs, sizes = [], []
    for seed in (0, 1):
        U = ls.least_squares(n_samples=64, seed=seed)
        runs.append(itg.simulate(itg.sgd(0.1), U, x0, 10, noise=itg.minibatch(16)))
        sizes.append(_runner()._cache_size())
    assert sizes[0] == sizes[1]
    assert not np.allclose(runs[0].positions[:, -1], runs[1].positions[:, -1])


def test_network_data_are_leaves_not_constants():
    model = ls.mlp((3, 4, 2))
    params = jax.tree.map(lambda a: a[None], model.init(jax.random.key(0)))
    sizes, losses = [], []
    for seed in (0, 1):
        k1, k2 = jax.random.split(jax.random.key(seed))
        data = {"x": jax.random.normal(k1, (16, 3)), "y": jax.random.randint(k2, (16,), 0, 2)}
        U = ls.from_loss(model.loss_fn, data)
        assert any(leaf is data["x"] for leaf in jax.tree.leaves(U))
        traj = itg.simulate(itg.sgd(0.1), U, params, 3, ensemble=True, noise=itg.minibatch(4))
        sizes.append(_runner()._cache_size())
        losses.append(traj.loss)
    assert sizes[0] == sizes[1]
    assert not np.allclose(losses[0], losses[1])


CONVERTED = {
    "valley": lambda: ls.valley(30),
    "quadratic": lambda: ls.quadratic([[2.0, 0.5], [0.5, 1.0]], b=[0.1, -0.2], c=0.3),
    "double_well": lambda: ls.double_well(2, barrier=2.0),
    "rosenbrock": lambda: ls.rosenbrock(),
    "rastrigin": lambda: ls.rastrigin(2, A=5.0),
    "styblinski_tang": lambda: ls.styblinski_tang(2),
    "muller_brown": lambda: ls.muller_brown(),
    "least_squares": lambda: ls.least_squares(n_samples=32),
}


@pytest.mark.parametrize("name", sorted(CONVERTED))
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_dtype_follows_the_input(name, dtype):
    U = CONVERTED[name]()
    x = jnp.asarray([0.3, -0.2], dtype)
    assert U.energy(x).dtype == dtype and U.grad(x).dtype == dtype
    assert jax.jit(lambda U, x: U.energy(x))(U, x).dtype == dtype
    traj = itg.simulate(itg.sgd(1e-3), U, jnp.stack([x, -x]), 4)
    assert traj.positions.dtype == dtype and traj.loss.dtype == dtype
    assert np.all(np.isfinite(traj.positions))


def test_landscape_is_a_pytree_of_its_numbers():
    U = ls.valley(50)
    (leaf,) = jax.tree_util.tree_leaves(U)
    np.testing.assert_array_equal(leaf, valley_hessian(50))
    x = jnp.asarray([0.4, -1.0])
    energy = jax.jit(lambda U, x: U.energy(x))
    np.testing.assert_allclose(energy(U, x), U.energy(x), rtol=1e-12)
    # the metadata travels as static data; a compute view shares one compilation
    again = jax.tree_util.tree_map(lambda a: a, U)
    assert again.description == U.description and again.minima == U.minima
    before = energy._cache_size()
    V = ls.valley(100).compute_view()
    np.testing.assert_allclose(energy(U.compute_view(), x), U.energy(x), rtol=1e-12)
    np.testing.assert_allclose(energy(V, x), ls.valley(100).energy(x), rtol=1e-12)
    assert energy._cache_size() == before + 1


def test_a_user_function_has_no_leaves_and_keeps_working():
    U = ls.from_function(lambda x: jnp.sum(x**4), "quartic", 2)
    assert jax.tree_util.tree_leaves(U) == []
    x = jnp.asarray([1.0, 2.0])
    assert float(jax.jit(lambda U, x: U(x))(U, x)) == 17.0
    traj = itg.simulate(itg.sgd(0.01), U, x, 3)
    assert traj.positions.shape == (4, 2)


@pytest.mark.parametrize("name", ["rosenbrock", "valley", "double_well"])
def test_column_gradient_with_a_traced_landscape(name):
    """Inside a jit the landscape's numbers are tracers: the energy is still evaluated by
    columns (what makes ensembles fast), and gives ∇U."""
    U = CONVERTED[name]()
    found = []

    def grads(U, x):
        g = column_gradient(U.energy, 2, x.dtype)
        found.append(g is not None)
        return jnp.stack(g([x[:, 0], x[:, 1]]), axis=-1)

    got = jax.jit(grads)(U, X0)
    assert found == [True]
    np.testing.assert_allclose(got, jax.vmap(U.grad)(X0), rtol=1e-5)


class _ScaledExact:
    """A user's noise model that is not a pytree: the gradient times a constant."""

    def __init__(self, scale):
        self.scale = scale

    def init(self, landscape, key, n_particles):
        return ()

    def gradient(self, landscape, x, state, key):
        return self.scale * itg.exact_gradient(landscape, x), state


def test_a_noise_model_that_is_not_a_pytree_still_works():
    noise, U = _ScaledExact(2.0), ls.valley(10)
    traj = itg.simulate(itg.sgd(0.1), U, X0, 5, noise=noise)
    size = _runner()._cache_size()
    again = itg.simulate(itg.sgd(0.1), U, X0, 5, noise=noise)  # the same object: cached
    assert _runner()._cache_size() == size
    np.testing.assert_allclose(traj.positions, _gd_valley(U.hessian(X0[0]), 0.2, 5, X0), 1e-5)
    np.testing.assert_array_equal(again.positions, traj.positions)


def test_vmap_over_landscapes_sweeps_their_numbers():
    """Stacked parameters of one family (compute views share their static data) run as one
    vmapped simulation, each equal to its own run."""
    views = [ls.valley(k).compute_view() for k in (10.0, 100.0)]
    stacked = jax.tree.map(lambda *h: jnp.stack([jnp.asarray(a, jnp.float32) for a in h]), *views)
    out = jax.vmap(lambda U: itg.simulate(itg.sgd(0.1), U, X0, 5).positions)(stacked)
    for i, U in enumerate(views):
        np.testing.assert_allclose(out[i], itg.simulate(itg.sgd(0.1), U, X0, 5).positions, 1e-6)


def test_python_numbers_in_params_are_constants_and_arrays_are_leaves():
    """Rosenbrock keeps a, b as constants XLA folds into the step (GD 25% faster measured);
    a valley's Hessian and a double well's barrier are traced leaves."""
    assert jax.tree_util.tree_leaves(ls.rosenbrock()) == []
    assert len(jax.tree_util.tree_leaves(ls.valley(50))) == 1
    assert len(jax.tree_util.tree_leaves(ls.double_well(barrier=2.0))) == 2
    energy = BoundEnergy(_counting_energy, {"k": 2.0})
    flat, tree = jax.tree_util.tree_flatten(energy)
    assert flat == [] and jax.tree_util.tree_unflatten(tree, flat).params == {"k": 2.0}
