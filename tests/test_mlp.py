"""Data sets, MLP models and network landscapes (landscape.data, landscape.mlp)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optdyn import integrators as itg
from optdyn import landscape as ls
from optdyn.landscape.data import digits, load_csv, load_npz, teacher_student
from optdyn.landscape.mlp import apply_mlp, cross_entropy, from_loss, init_mlp, mlp, squared_error

# ---------------------------------------------------------------------------- data


def test_digits_split_is_fixed_stratified_and_standardised():
    a, b = digits(), digits()
    assert a.x_train.shape == (1438, 64) and a.x_test.shape == (359, 64)
    assert a.x_train.dtype == np.float32 and a.y_train.dtype == np.int32
    np.testing.assert_array_equal(a.x_train, b.x_train)  # fixed split
    assert a.n_classes == 10 and a.n_features == 64
    # every class keeps ~20 % of its samples for testing
    counts = np.bincount(a.y_test, minlength=10) / (
        np.bincount(a.y_test, minlength=10) + np.bincount(a.y_train, minlength=10)
    )
    assert np.all(np.abs(counts - 0.2) < 0.01)
    # standardised with train statistics: mean 0, std 1 (or 0 for constant pixels)
    std = a.x_train.std(axis=0)
    assert np.allclose(a.x_train.mean(axis=0), 0, atol=1e-5)
    assert np.allclose(std[std > 0], 1, atol=1e-4)
    # the stored statistics undo the standardisation: back to integer pixel values 0..16
    raw = np.asarray(a.info["std"]) * a.x_test + np.asarray(a.info["mean"])
    assert np.allclose(raw, np.round(raw), atol=1e-3) and raw.min() > -1e-3 and raw.max() < 16.01


def _write_csv(path, n=40, pixels=6, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    x = rng.integers(0, 256, size=(n, pixels))
    header = "label," + ",".join(f"pixel{i}" for i in range(pixels))
    rows = [",".join(map(str, [lab, *row])) for lab, row in zip(labels, x, strict=True)]
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return labels, x


def test_load_csv_mnist_layout(tmp_path):
    labels, x = _write_csv(tmp_path / "train.csv")
    ds = load_csv(tmp_path / "train.csv", test_fraction=0.25)
    assert ds.n_classes == 3 and ds.n_features == 6
    assert ds.n_train + ds.x_test.shape[0] == 40
    # the standardisation is undone exactly by the stored statistics
    raw = ds.x_train * ds.info["std"] + ds.info["mean"]
    rows = {tuple(r) for r in x.astype(float)}
    assert all(tuple(np.round(r)) in rows for r in raw)


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "empty"),
        ("pixel0,pixel1\n1,2\n", "no 'label' column"),
        ("label,pixel0\n", "no data rows"),
        ("label,pixel0,pixel1\n1,2,3\n0,4\n", "line 3: 2 values"),
        ("label,pixel0\n1,abc\n", "line 2: 'abc' is not a number"),
        ("label,pixel0\n1.5,3\n", "labels must be integers"),
    ],
)
def test_load_csv_malformed_names_file_and_problem(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as err:
        load_csv(path)
    assert "bad.csv" in str(err.value)


def test_missing_files_raise_file_not_found(tmp_path):
    for loader in (load_csv, load_npz):
        with pytest.raises(FileNotFoundError, match="nowhere.dat"):
            loader(tmp_path / "nowhere.dat")


def test_load_npz_both_layouts_and_errors(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((50, 2, 3)), np.arange(50) % 5
    np.savez(tmp_path / "xy.npz", x=x, y=y)
    ds = load_npz(tmp_path / "xy.npz")
    assert ds.n_features == 6 and ds.n_classes == 5 and ds.n_train == 40
    np.savez(tmp_path / "split.npz", x_train=x[:30], y_train=y[:30], x_test=x[30:], y_test=y[30:])
    ds = load_npz(tmp_path / "split.npz", standardise=False)
    np.testing.assert_allclose(ds.x_test, x[30:].reshape(20, 6).astype(np.float32))
    np.savez(tmp_path / "reg.npz", x=x, y=rng.standard_normal((50, 2)))
    assert load_npz(tmp_path / "reg.npz").n_classes == 0
    np.savez(tmp_path / "keys.npz", inputs=x)
    with pytest.raises(ValueError, match="keys.npz.*expected x_train"):
        load_npz(tmp_path / "keys.npz")
    np.savez(tmp_path / "len.npz", x=x, y=y[:10])
    with pytest.raises(ValueError, match="50 inputs but 10 labels"):
        load_npz(tmp_path / "len.npz")
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(ValueError, match="junk.npz.*not a NumPy .npz"):
        load_npz(tmp_path / "junk.npz")


def test_teacher_reaches_the_noise_floor():
    """The teacher's own squared loss on fresh data is ½σ² per output (within 4 SE)."""
    sigma = 0.3
    ds = teacher_student(n_train=10, n_test=4000, sizes=(5, 8, 2), noise=sigma, seed=1)
    f = jax.jit(lambda p, x: apply_mlp(p, x, activation="tanh"))(ds.info["teacher"], ds.x_test)
    per_sample = 0.5 * np.sum((np.asarray(f) - ds.y_test) ** 2, axis=1)
    se = per_sample.std() / np.sqrt(per_sample.size)
    assert abs(per_sample.mean() - ds.info["noise_floor"]) < 4 * se
    assert ds.info["noise_floor"] == pytest.approx(0.5 * sigma**2 * 2)


# ---------------------------------------------------------------------------- models


def test_bad_names_suggest_the_closest():
    with pytest.raises(ValueError, match="Did you mean 'sigmoid'"):
        mlp((2, 3), activation="sigmoud")
    with pytest.raises(ValueError, match="Did you mean 'cross_entropy'"):
        mlp((2, 3), loss="crossentropy")
    with pytest.raises(ValueError, match="sizes"):
        mlp((2,))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_dtype_follows_the_parameters(dtype):
    model = mlp((4, 5, 3), activation="gelu", weight_decay=1e-3)
    params = model.init(jax.random.key(0), dtype)
    batch = {"x": np.ones((2, 4), np.float32), "y": np.array([0, 2])}
    out, loss, grads = jax.jit(
        lambda p, b: (model.apply(p, b["x"]), model.loss_fn(p, b), jax.grad(model.loss_fn)(p, b))
    )(params, batch)
    assert out.dtype == dtype and loss.dtype == dtype
    assert all(g.dtype == dtype for g in jax.tree.leaves(grads))


@pytest.mark.parametrize("activation, gain2", [("tanh", 1.0), ("relu", 2.0)])
def test_init_variance_is_gain_squared_over_fan_in(activation, gain2):
    params = init_mlp(jax.random.key(0), (400, 300), activation, jnp.float64)
    w = np.asarray(params[0]["w"])
    # the sample variance of n Gaussian entries has relative standard error √(2/n)
    assert abs(w.var() * 400 / gain2 - 1) < 4 * np.sqrt(2 / w.size)
    assert np.all(np.asarray(params[0]["b"]) == 0)


def test_losses_match_optax_and_closed_forms():
    logits = jax.random.normal(jax.random.key(1), (7, 4))
    labels = jnp.array([0, 1, 2, 3, 0, 1, 2])
    ref = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    np.testing.assert_allclose(cross_entropy(logits, labels), ref, rtol=1e-6)
    onehot = jax.nn.one_hot(labels, 4)
    np.testing.assert_allclose(
        squared_error(logits, labels), 0.5 * jnp.sum((logits - onehot) ** 2, 1).mean(), rtol=1e-6
    )


def test_residual_and_weight_decay():
    model = mlp((3, 4, 4, 2), activation="tanh", residual=True, weight_decay=0.1)
    p = jax.tree.map(np.asarray, model.init(jax.random.key(2), jnp.float64))
    x = np.random.default_rng(3).standard_normal((5, 3))
    h1 = np.tanh(x @ p[0]["w"] + p[0]["b"])
    h2 = h1 + np.tanh(h1 @ p[1]["w"] + p[1]["b"])  # equal widths: skip connection
    batch = {"x": x, "y": np.array([0, 1, 0, 1, 1])}
    out, total, data = jax.jit(
        lambda p, b: (model.apply(p, b["x"]), model.loss_fn(p, b), model.data_loss(p, b))
    )(p, batch)
    np.testing.assert_allclose(out, h2 @ p[2]["w"] + p[2]["b"], rtol=1e-12)
    penalty = 0.05 * sum(float(np.sum(layer["w"] ** 2)) for layer in p)
    assert total - data == pytest.approx(penalty)


def test_from_loss_energy_and_minibatch_gradient():
    ds = digits().subset(64)
    model = mlp((64, 8, 10), activation="sigmoid")
    p = model.init(jax.random.key(0), jnp.float64)
    U = from_loss(model.loss_fn, ds.train)
    assert U.n_samples == 64 and U.dim is None
    full = {k: jnp.asarray(v) for k, v in ds.train.items()}
    idx = jnp.array([3, 7, 11, 60])

    @jax.jit
    def compare(p):
        batch = {k: v[idx] for k, v in full.items()}
        return (
            U.energy(p),
            model.loss_fn(p, full),
            jax.grad(U.batch_energy)(p, idx),
            jax.grad(model.loss_fn)(p, batch),
        )

    energy, loss, g_batch, g_ref = compare(p)
    np.testing.assert_allclose(energy, loss, rtol=1e-10)
    for a, b in zip(jax.tree.leaves(g_batch), jax.tree.leaves(g_ref), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_any_user_pytree_loss_trains_with_minibatch_noise():
    """A hand-written linear model on a dict pytree: SGD with mini-batches converges to the
    least-squares solution (normal equations) of noiseless data."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((96, 3)).astype(np.float32)
    w_true, b_true = np.array([1.0, -2.0, 0.5], np.float32), np.float32(0.3)
    data = {"inputs": x, "targets": x @ w_true + b_true}

    def loss_fn(params, batch):
        pred = batch["inputs"] @ params["w"] + params["b"]
        return 0.5 * jnp.mean((pred - batch["targets"]) ** 2)

    U = ls.from_loss(loss_fn, data, name="linear")
    p0 = {"w": jnp.zeros((2, 3), jnp.float32), "b": jnp.zeros((2,), jnp.float32)}
    traj = itg.simulate(
        itg.sgd(0.1), U, p0, 600, noise=itg.minibatch(16), ensemble=True, record_every=600
    )
    assert traj.final_state.params["w"].dtype == jnp.float32
    np.testing.assert_allclose(traj.final_state.params["w"], np.stack([w_true] * 2), atol=1e-4)
    np.testing.assert_allclose(traj.final_state.params["b"], [b_true] * 2, atol=1e-4)
