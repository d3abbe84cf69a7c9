"""Hyperparameters are data: `simulate` under `jax.jit`, `jax.vmap` and `jax.grad`.

The hypergradient d U(θ_K)/dη of a whole trajectory is checked against a central finite
difference in float64, whose error is O(h²) truncation plus O(ε/h) round-off.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optdyn import integrators as itg
from optdyn import landscape as ls
from optdyn.integrators.simulate import _runner

jax.config.update("jax_enable_x64", True)

U = ls.rosenbrock()
X0 = jnp.array([-1.0, 1.5])


def _final_loss(opt, steps=200, x0=X0, key=None):
    return itg.simulate(opt, U, x0, steps, key, record_every=steps).loss[..., -1]


@pytest.mark.parametrize(
    "value", [1e-3, np.float64(1e-3), np.array(1e-3), jnp.float64(1e-3), jnp.array(1e-3)]
)
def test_python_numpy_and_jax_scalars_give_the_same_run(value):
    expected = _final_loss(itg.adam(1e-3))
    np.testing.assert_allclose(_final_loss(itg.adam(value)), expected, rtol=1e-12)


def test_a_new_jax_scalar_does_not_compile_again():
    _final_loss(itg.sgd(jnp.array(1e-4)))
    cache = _runner()._cache_size()
    for lr in (2e-4, 3e-4):
        _final_loss(itg.sgd(jnp.array(lr)))
    assert _runner()._cache_size() == cache


def test_simulate_under_jit_equals_the_eager_call():
    jitted = jax.jit(lambda lr: _final_loss(itg.momentum(lr, momentum=0.8)))
    np.testing.assert_allclose(
        jitted(5e-4), _final_loss(itg.momentum(5e-4, momentum=0.8)), rtol=1e-12
    )


def test_simulate_under_vmap_over_the_learning_rate_equals_separate_runs():
    lrs = jnp.array([1e-4, 5e-4, 1e-3])
    batched = jax.vmap(lambda lr: _final_loss(itg.sgd(lr)))(lrs)
    separate = [_final_loss(itg.sgd(float(lr))) for lr in lrs]
    np.testing.assert_allclose(batched, separate, rtol=1e-12)


def _central_difference(f, x, h):
    return (f(x + h) - f(x - h)) / (2 * h)


@pytest.mark.parametrize(
    "factory",
    [
        lambda lr: itg.sgd(lr),
        lambda lr: itg.momentum(lr, momentum=0.9),
        lambda lr: itg.adam(lr),
        lambda lr: itg.langevin(lr, temperature=0.05),  # noise fixed by the key: pathwise
    ],
    ids=["sgd", "momentum", "adam", "langevin"],
)
def test_hypergradient_matches_a_central_finite_difference(factory):
    """d U(θ_200)/dη by reverse-mode through the whole scan, against (f(η+h) − f(η−h))/2h
    with h = 1e-6 η (relative truncation ~h² f'''/6f' and round-off ~ε f/h: both < 1e-6)."""
    lr = 2e-4
    f = lambda eta: float(_final_loss(factory(eta)))  # noqa: E731
    g = float(jax.grad(lambda eta: _final_loss(factory(eta)))(lr))
    fd = _central_difference(f, lr, 1e-6 * lr)
    assert np.isfinite(g) and g != 0
    assert g == pytest.approx(fd, rel=1e-5)


def test_hypergradient_of_an_ensemble_mean():
    x0 = jax.random.uniform(jax.random.key(1), (64, 2), minval=-1.5, maxval=1.5)

    def mean_loss(lr):
        traj = itg.simulate(itg.sgd(lr), U, x0, 100, record=False)
        return jnp.mean(jax.vmap(U.energy)(traj.final_state.params))

    lr = 1e-4
    g = float(jax.grad(mean_loss)(lr))
    fd = _central_difference(lambda eta: float(mean_loss(eta)), lr, 1e-6 * lr)
    assert g == pytest.approx(fd, rel=1e-5)
