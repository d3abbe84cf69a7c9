"""`integrators.train`: training is one `simulate` call on a finite-sum landscape."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optdyn import integrators as itg
from optdyn.integrators.simulate import _runner
from optdyn.landscape.data import digits
from optdyn.landscape.mlp import mlp


@pytest.fixture(scope="module")
def small():
    """200 digits, a 64-8-10 sigmoid net."""
    return digits().subset(200), mlp((64, 8, 10), activation="sigmoid")


def test_full_batch_training_is_gradient_descent(small):
    """With B = N the mini-batch heat bath is off: train(...) equals simulate with exact
    gradients, epoch for step, and a learning-rate sweep equals the separate runs."""
    data, model = small
    res = itg.train(model, data, itg.sgd([0.3, 1.0]), epochs=5, batch_size=200, seeds=2)
    assert res.iterations_per_epoch == 1
    assert res.train_loss.shape == (2, 2, 6) and res.test_accuracy.shape == (2, 2, 6)
    np.testing.assert_array_equal(res.epochs, np.arange(6))
    U = itg.training_landscape(model, data)
    p0 = model.init(jax.random.split(jax.random.split(jax.random.key(0))[0], 2)[1])
    for i, lr in enumerate([0.3, 1.0]):
        ref = itg.simulate(itg.sgd(lr), U, p0, 5, record_positions=False)
        np.testing.assert_allclose(res.train_loss[i, 1], ref.loss, rtol=2e-5)
    assert res.train_loss.dtype == jnp.float32


def test_epochs_seeds_metrics_and_no_recompilation(small):
    data, model = small
    kw = dict(epochs=3, batch_size=32, seeds=3)
    res = itg.train(model, data, itg.momentum(0.1, 0.9), key=jax.random.key(0), **kw)
    assert res.iterations_per_epoch == 200 // 32
    assert res.train_loss.shape == (3, 4) and res.trajectory.steps[-1] == 3 * (200 // 32)
    for name in ("train_accuracy", "test_accuracy"):
        acc = np.asarray(getattr(res, name))
        assert np.all((acc >= 0) & (acc <= 1))
    # seeds differ (initialisation and shuffling), and the loss falls
    assert len(np.unique(np.asarray(res.train_loss[:, -1]))) == 3
    assert np.all(np.asarray(res.train_loss[:, -1]) < np.asarray(res.train_loss[:, 0]))
    assert not np.any(np.asarray(res.diverged))
    size = _runner()._cache_size()
    again = itg.train(model, data, itg.momentum(0.2, 0.9), key=jax.random.key(1), **kw)
    assert _runner()._cache_size() == size  # new key and lr: same compiled scan
    assert not np.allclose(again.train_loss, res.train_loss)


def test_minibatch_epoch_visits_every_sample_once():
    """Without replacement an epoch is a permutation of the samples cut into N/B batches.
    With ℓ(θ, i) = θ_i every step moves the B coordinates of its batch by −η/B, so after one
    epoch every coordinate has moved exactly once, whatever the shuffle."""
    n, b = 24, 6
    data = {"i": np.arange(n)}

    def loss_fn(params, batch):  # ∇ of a sample's loss is the one-hot vector of its index
        return jnp.mean(params["w"][batch["i"]])

    p0 = {"w": jnp.zeros(n, jnp.float32)}
    res = itg.train(loss_fn, data, itg.sgd(1.0), params=p0, epochs=1, batch_size=b, seeds=2)
    # each sample's weight moved by exactly lr/B once: -1/B on every coordinate
    np.testing.assert_allclose(res.final_params["w"], -np.ones((2, n)) / b, rtol=1e-6)


def test_bad_arguments():
    data = digits().subset(50)
    model = mlp((64, 4, 10))
    with pytest.raises(ValueError, match="batch_size=80"):
        itg.train(model, data, itg.sgd(0.1), epochs=1, batch_size=80)
    with pytest.raises(ValueError, match="params is required"):
        itg.train(model.loss_fn, data, itg.sgd(0.1), epochs=1, batch_size=10)
    with pytest.raises(ValueError, match="params_per_seed"):
        p = model.init(jax.random.key(0))
        itg.train(
            model,
            data,
            itg.sgd(0.1),
            epochs=1,
            batch_size=10,
            seeds=2,
            params=p,
            params_per_seed=True,
        )
