"""One particle, one answer: shapes of a single-particle run, the per-particle optax state,
and the warning for a noisy run without a key."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optdyn import integrators as itg
from optdyn.integrators import _default_key

X = jnp.array([[-1.5, 2.0], [3.0, -4.0]])
STEPS = 200
CLIPPED = optax.chain(optax.clip_by_global_norm(1.0), optax.sgd(1e-3))


@jax.jit
def _optax_alone(x0, steps=STEPS):
    """The textbook optax loop on one particle (the reference, not our bridge)."""
    tx = CLIPPED
    grad = jax.grad(lambda x: (1.0 - x[0]) ** 2 + 100.0 * (x[1] - x[0] ** 2) ** 2)

    def body(carry, _):
        x, state = carry
        updates, state = tx.update(grad(x), state, x)
        return (optax.apply_updates(x, updates), state), None

    (x, _), _ = jax.lax.scan(body, (x0, tx.init(x0)), None, length=steps)
    return x


def test_ensemble_member_equals_particle_alone_with_global_norm_clipping():
    # Gradients on Rosenbrock are >> 1 at these starts, so clipping is active every step
    # and a norm over the whole ensemble would move every particle differently.
    ens = itg.simulate(CLIPPED, "rosenbrock", X, STEPS, record_every=STEPS)
    for i in range(len(X)):
        reference = _optax_alone(X[i])
        np.testing.assert_allclose(ens.positions[i, -1], reference, rtol=1e-6)
        alone = itg.simulate(CLIPPED, "rosenbrock", X[i], STEPS, record_every=STEPS)
        np.testing.assert_allclose(alone.positions[-1], ens.positions[i, -1], rtol=1e-6)


def test_one_particle_final_state_has_one_particle_shapes():
    one = itg.simulate(itg.adam(1e-2), "rosenbrock", X[0], 5)
    assert one.final_state.params.shape == (2,) == one.positions.shape[1:]
    assert one.final_state.mu.shape == (2,)
    np.testing.assert_array_equal(one.final_state.params, one.positions[-1])
    tree = {"w": jnp.ones(3), "b": jnp.asarray(2.0)}
    fn = lambda p: jnp.sum(p["w"] ** 2) + p["b"] ** 2  # noqa: E731
    traj = itg.simulate(CLIPPED, fn, tree, 3)
    assert jax.tree.map(jnp.shape, traj.final_state.params) == {"w": (3,), "b": ()}
    swept = itg.simulate(itg.momentum(lr=[0.01, 0.02]), "rosenbrock", X[0], 5)
    assert swept.final_state.params.shape == (2, 2) == swept.positions[:, -1].shape
    ens = itg.simulate(itg.adam(1e-2), "rosenbrock", X[:1], 5)  # an ensemble of one keeps it
    assert ens.final_state.params.shape == (1, 2)


@pytest.fixture
def fresh_warning(monkeypatch):
    monkeypatch.setattr(_default_key, "_warned", False)


def _key_warnings(fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn()
    return [w for w in caught if "key=None" in str(w.message)]


@pytest.mark.usefixtures("fresh_warning")
def test_noisy_run_without_key_warns_once():
    def hot():
        return itg.simulate(itg.langevin(1e-3, temperature=0.1), "rosenbrock", X, 3)

    caught = _key_warnings(lambda: (hot(), hot()))
    assert len(caught) == 1 and issubclass(caught[0].category, UserWarning)
    assert "pass key=" in str(caught[0].message)


@pytest.mark.usefixtures("fresh_warning")
def test_no_warning_with_a_key_or_without_noise():
    key = jax.random.key(3)
    assert not _key_warnings(lambda: itg.simulate(itg.langevin(1e-3), "rosenbrock", X, 3, key))
    assert not _key_warnings(lambda: itg.simulate(itg.sgd(1e-3), "rosenbrock", X, 3))
    noise = itg.gaussian(1.0)  # a gradient-noise model counts as noise
    assert _key_warnings(lambda: itg.simulate(itg.sgd(1e-3), "rosenbrock", X, 3, noise=noise))
