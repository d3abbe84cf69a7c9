"""The textbook loop: validation split, early stopping, divergence, resume and checkpoints."""

import jax
import numpy as np
import pytest

from optdyn import integrators as itg
from optdyn import landscape as ls
from optdyn.landscape.data import digits
from optdyn.landscape.mlp import mlp


@pytest.fixture(scope="module")
def setup():
    """120 digits with a stratified validation split (84 train / 36 val), a 64-6-10 net."""
    data = digits().subset(120).with_validation(0.3, seed=0)
    return data, mlp((64, 6, 10), activation="tanh")


def _replay(curve, patience, min_delta):
    """Keras-style early stopping replayed in NumPy on a recorded validation curve."""
    best, best_epoch, wait = curve[0], 0, 0
    for e in range(1, len(curve)):
        if curve[e] < best - min_delta:
            best, best_epoch, wait = curve[e], e, 0
        else:
            wait += 1
            if wait >= patience:
                return e, best_epoch
    return -1, best_epoch


def test_validation_split_is_stratified_and_fixed():
    d = digits()
    v, again = d.with_validation(0.25, seed=3), d.with_validation(0.25, seed=3)
    np.testing.assert_array_equal(v.y_val, again.y_val)
    assert v.n_train + len(v.y_val) == d.n_train
    frac = np.bincount(v.y_val, minlength=10) / np.bincount(d.y_train, minlength=10)
    np.testing.assert_allclose(frac, 0.25, atol=0.02)
    np.testing.assert_allclose(v.x_train.mean(axis=0), 0, atol=1e-5)  # train statistics only
    with pytest.raises(ValueError, match="fraction=1.5"):
        d.with_validation(1.5)


def test_early_stopping_epoch_equals_numpy_replay(setup):
    """Each (lr, seed) member stops at the epoch a NumPy replay of its recorded validation
    loss gives; after it, its parameters and metrics are frozen, and best_params are those
    of its best epoch."""
    data, model = setup
    rule = itg.early_stopping("val_loss", patience=3, min_delta=1e-3)
    res = itg.train(
        model,
        data,
        itg.sgd([0.5, 2.0]),
        epochs=16,
        batch_size=28,
        seeds=2,
        early_stopping=rule,
    )
    val = np.asarray(res.val_loss)
    stop = np.asarray(res.stop_epoch)
    assert val.shape == (2, 2, 17) and res.val_accuracy.shape == (2, 2, 17)
    assert np.any(stop > 0)  # the rule fired for some member
    for i in np.ndindex(stop.shape):
        assert (stop[i], res.best_epoch[i]) == _replay(val[i], 3, 1e-3), (i, val[i])
        if stop[i] > 0:  # frozen: every later record is the stopping record
            assert np.all(val[i][stop[i] :] == val[i][stop[i]])
    # best params reproduce the best validation loss
    loss_val = model.loss_fn(jax.tree.map(lambda a: a[0, 0], res.best_params), data.val)
    b = int(res.best_epoch[0, 0])
    np.testing.assert_allclose(loss_val, val[0, 0, b], rtol=1e-5)


def test_divergent_training_is_frozen_and_reported_without_nan(setup):
    data, model = setup
    res = itg.train(model, data, itg.sgd([0.1, 1e9]), epochs=3, batch_size=28)
    assert not bool(res.diverged[0, 0]) and bool(res.diverged[1, 0])
    assert int(res.diverged_epoch[1, 0]) >= 1 and int(res.diverged_epoch[0, 0]) == -1
    for name in ("train_loss", "val_loss", "test_loss", "val_accuracy", "grad_norm"):
        assert np.all(np.isfinite(np.asarray(getattr(res, name)))), name


def test_simulate_resume_is_bit_for_bit_with_noise():
    """k + (n − k) steps == n steps, with thermal noise and mini-batch noise."""
    U = ls.rosenbrock()
    x0 = np.random.default_rng(0).uniform(-1.5, 1.5, (16, 2)).astype(np.float32)
    for opt in (itg.langevin(1e-3, 0.1), itg.underdamped_langevin(1e-2, 1.0, 0.1)):
        full = itg.simulate(opt, U, x0, 120, jax.random.key(3))
        a = itg.simulate(opt, U, x0, 37, jax.random.key(3))
        b = itg.simulate(opt, U, None, 83, resume=a)
        np.testing.assert_array_equal(full.final_state.params, b.final_state.params)
        np.testing.assert_array_equal(full.loss, np.concatenate([a.loss, b.loss], axis=-1))
        np.testing.assert_array_equal(full.steps, np.r_[a.steps, b.steps])
    with pytest.raises(ValueError, match="resume=dict"):
        itg.simulate(opt, U, x0, 5, resume={})


def test_checkpoint_resume_equals_uninterrupted_run(setup, tmp_path):
    data, model = setup
    kw = dict(epochs=5, batch_size=28, seeds=2, early_stopping=itg.early_stopping(patience=2))
    opt = itg.momentum(0.2, 0.9)
    full = itg.train(model, data, opt, **kw)
    path = tmp_path / "run.npz"
    itg.train(model, data, opt, **{**kw, "epochs": 3}, checkpoint=path, checkpoint_every=3)
    assert oct(path.stat().st_mode & 0o777) != "0o600"  # mode from the umask, not mkstemp's
    resumed = itg.train(model, data, opt, **kw, resume_from=path)
    for name in ("train_loss", "val_loss", "test_accuracy", "stop_epoch", "best_epoch"):
        np.testing.assert_array_equal(getattr(resumed, name), getattr(full, name), name)
    for a, b in zip(*map(jax.tree.leaves, (resumed.final_params, full.final_params)), strict=True):
        np.testing.assert_array_equal(a, b)
    # mismatched and corrupt checkpoints: clear errors naming the file
    with pytest.raises(ValueError, match="does not fit"):
        itg.train(model, data, opt, **{**kw, "seeds": 3}, resume_from=path)
    with pytest.raises(ValueError, match="another key"):
        itg.train(model, data, opt, **kw, resume_from=path, key=jax.random.key(5))
    bad = tmp_path / "bad.npz"
    bad.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match="bad.npz.*corrupt"):
        itg.train(model, data, opt, **kw, resume_from=bad)


def test_checkpoint_on_new_best_resumes_to_the_uninterrupted_run(setup, tmp_path):
    """`checkpoint_best` is written at the latest epoch at which some member's validation
    loss improved (the best epoch for one seed), holds every member's best parameters,
    and resuming from it gives the uninterrupted run bit for bit."""
    data, model = setup
    # the run of the test above (same compiled program) at a rate at which the validation
    # loss turns up: seed 0 is best at epoch 3, seed 1 at epoch 2, both stop
    kw = dict(epochs=5, batch_size=28, seeds=2, early_stopping=itg.early_stopping(patience=2))
    opt = itg.momentum(1.0, 0.9)
    full = itg.train(model, data, opt, **kw)
    best, every = tmp_path / "best.npz", tmp_path / "every.npz"
    with_best = itg.train(
        model, data, opt, **kw, checkpoint=every, checkpoint_every=2, checkpoint_best=best
    )
    best_epoch, stop_epoch = np.asarray(full.best_epoch), np.asarray(full.stop_epoch)
    # the test needs: members with different best epochs, a stop, and epochs left to resume
    assert len(set(best_epoch)) == 2 and np.all(stop_epoch > 0), (best_epoch, stop_epoch)
    assert 1 <= best_epoch.max() < 5
    assert itg.checkpoint.read_meta(best)["epoch"] == best_epoch.max()
    assert itg.checkpoint.read_meta(every)["epoch"] == 5
    kw_best = {**kw, "epochs": int(best_epoch.max())}
    at_best = itg.train(model, data, opt, **kw_best, resume_from=best)
    for a, b in zip(*map(jax.tree.leaves, (at_best.best_params, full.best_params)), strict=True):
        np.testing.assert_array_equal(a, b)
    resumed = itg.train(model, data, opt, **kw, resume_from=best)
    for res in (with_best, resumed):
        for name in ("train_loss", "val_loss", "test_accuracy", "stop_epoch", "best_epoch"):
            np.testing.assert_array_equal(getattr(res, name), getattr(full, name), name)
        for a, b in zip(*map(jax.tree.leaves, (res.final_params, full.final_params)), strict=True):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="its own path"):
        itg.train(model, data, opt, **kw, checkpoint=best, checkpoint_best=best)


def test_checkpoint_structure_checked(tmp_path):
    tree = {"a": np.arange(3.0), "k": jax.random.key(1)}
    itg.checkpoint.save(tmp_path / "c.npz", tree, {"x": 1})
    back, meta = itg.checkpoint.load(tmp_path / "c.npz", like=tree)
    np.testing.assert_array_equal(back["a"], tree["a"])
    assert meta == {"x": 1}
    assert jax.random.key_data(back["k"]).tolist() == jax.random.key_data(tree["k"]).tolist()
    with pytest.raises(ValueError, match="c.npz.*shape"):
        itg.checkpoint.load(tmp_path / "c.npz", like={"a": np.arange(4.0), "k": tree["k"]})
    with pytest.raises(ValueError, match="structure"):
        itg.checkpoint.load(tmp_path / "c.npz", like=[tree["a"], tree["k"]])


def test_progress_bar_from_inside_the_scan(capsys):
    traj = itg.simulate(itg.sgd(1e-3), ls.rosenbrock(), np.zeros(2), 500, progress=True)
    err = capsys.readouterr().err
    assert "500/500" in err and np.all(np.isfinite(traj.loss))
    with pytest.raises(TypeError, match="progress=1"):
        itg.simulate(itg.sgd(1e-3), ls.rosenbrock(), np.zeros(2), 5, progress=1)
