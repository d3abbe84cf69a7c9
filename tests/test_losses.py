"""Each loss against its formula (NumPy, and optax where it has one) and its gradient against
the closed-form derivative ∂ℓ/∂f; each selectable as `mlp(..., loss=name)`."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optdyn import landscape as ls
from optdyn.landscape import losses

N, K = 7, 3
RNG = np.random.default_rng(0)
F = jnp.asarray(RNG.normal(size=(N, K)) * 2)
Y = jnp.asarray(RNG.normal(size=(N, K)))
LABELS = jnp.asarray(RNG.integers(0, K, N))
BITS = jnp.asarray(RNG.integers(0, 2, N))
Z = jnp.asarray(RNG.normal(size=N) * 3)


def _softmax(f):
    e = np.exp(f - f.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


# name: (value, closed-form value, closed-form gradient in f), all means over the batch
CASES = {
    "mse": (
        lambda f: losses.mse(f, Y),
        lambda f: 0.5 * np.sum((f - Y) ** 2) / N,
        lambda f: (f - Y) / N,
    ),
    "mae": (
        lambda f: losses.mae(f, Y),
        lambda f: np.sum(np.abs(f - Y)) / N,
        lambda f: np.sign(f - Y) / N,
    ),
    "smooth_l1": (
        lambda f: losses.smooth_l1(f, Y, delta=0.7),
        lambda f: np.sum(np.asarray(optax.huber_loss(f, Y, delta=0.7))) / N,
        lambda f: np.clip(f - Y, -0.7, 0.7) / N,
    ),
    "cross_entropy": (
        lambda f: losses.cross_entropy(f, LABELS),
        lambda f: -np.mean(np.log(_softmax(np.asarray(f)))[np.arange(N), LABELS]),
        lambda f: (_softmax(np.asarray(f)) - np.eye(K)[LABELS]) / N,
    ),
    "binary_cross_entropy": (
        lambda z: losses.binary_cross_entropy(z, BITS),
        lambda z: (
            -np.mean(
                BITS * np.log(1 / (1 + np.exp(-z))) + (1 - BITS) * np.log(1 - 1 / (1 + np.exp(-z)))
            )
        ),
        lambda z: (1 / (1 + np.exp(-np.asarray(z))) - BITS) / N,
    ),
    "hinge_binary": (
        lambda z: losses.hinge(z, BITS),
        lambda z: np.mean(np.maximum(0, 1 - (2 * BITS - 1) * z)),
        lambda z: -(2 * BITS - 1) * ((2 * BITS - 1) * z < 1) / N,
    ),
    "hinge": (
        lambda f: losses.hinge(f, LABELS),
        lambda f: (
            sum(
                max(0.0, 1 + f[i, j] - f[i, LABELS[i]])
                for i in range(N)
                for j in range(K)
                if j != LABELS[i]
            )
            / N
        ),
        None,  # below, by its own rule
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_value_and_gradient_closed_form(name):
    value, formula, derivative = CASES[name]
    x = Z if name in ("binary_cross_entropy", "hinge_binary") else F
    v, g = jax.jit(jax.value_and_grad(value))(x)  # one compilation, not one per operation
    np.testing.assert_allclose(v, formula(np.asarray(x)), rtol=1e-12)
    if derivative is None:  # multiclass hinge: +1 on each active j ≠ y, −(#active) on y
        f = np.asarray(x)
        active = (1 + f - f[np.arange(N), LABELS][:, None] > 0) & (np.eye(K)[LABELS] == 0)
        expected = active.astype(float) - np.eye(K)[LABELS] * active.sum(1, keepdims=True)
        np.testing.assert_allclose(g, expected / N, rtol=1e-12)
    else:
        np.testing.assert_allclose(g, derivative(x), rtol=1e-12, atol=1e-15)
    # dtype follows the input
    assert jax.eval_shape(value, x.astype(jnp.float32)).dtype == jnp.float32


def test_binary_cross_entropy_stable_and_optax():
    z = jnp.array([-1000.0, -30.0, 0.0, 30.0, 1000.0])
    y = jnp.array([1, 0, 1, 1, 0])
    per = np.array([1000.0, 0.0, np.log(2.0), 0.0, 1000.0])
    np.testing.assert_allclose(
        losses.binary_cross_entropy(z, y), per.mean(), rtol=1e-12, atol=1e-12
    )
    assert np.isfinite(np.asarray(jax.grad(losses.binary_cross_entropy)(z, y))).all()
    np.testing.assert_allclose(
        losses.binary_cross_entropy(Z[:, None], BITS),
        optax.sigmoid_binary_cross_entropy(Z, BITS.astype(Z.dtype)).mean(),
        rtol=1e-12,
    )


def test_selectable_in_mlp_and_bad_names():
    batch = {"x": jnp.asarray(RNG.normal(size=(N, 4))), "y": Y}
    for name in ("mse", "mae", "smooth_l1"):
        model = ls.mlp((4, 6, K), activation="tanh", loss=name)
        params = model.init(jax.random.key(1), jnp.float64)
        value, expected = jax.jit(
            lambda p, b, m=model, n=name: (m.loss_fn(p, b), losses.LOSSES[n](m.apply(p, b["x"]), Y))
        )(params, batch)
        np.testing.assert_allclose(value, expected, rtol=1e-14)
    model = ls.mlp((4, 6, 1), loss="binary_cross_entropy")
    params = model.init(jax.random.key(1), jnp.float64)
    bits = {"x": batch["x"], "y": BITS}
    assert np.isfinite(jax.jit(model.loss_fn)(params, bits))
    custom = ls.mlp((4, 6, K), loss=lambda f, y: losses.smooth_l1(f, y, delta=0.1))
    params = custom.init(jax.random.key(2), jnp.float64)
    outputs = custom.apply(params, batch["x"])
    np.testing.assert_allclose(
        jax.jit(custom.loss_fn)(params, batch), losses.smooth_l1(outputs, Y, 0.1), rtol=1e-14
    )
    with pytest.raises(ValueError, match="Did you mean 'hinge'"):
        ls.mlp((4, 3), loss="hinges")
    with pytest.raises(ValueError, match="delta"):
        losses.smooth_l1(F, Y, delta=0.0)
