"""Finite-difference gradients: truncation slopes 1 and 2, the optimal step between truncation
and round-off, and `check_gradient` telling a correct gradient from a wrong one."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optdyn import landscape as ls


def _f(x):
    return jnp.sum(jnp.exp(0.7 * x) * jnp.sin(x + 0.3))


X = jnp.array([0.3, -0.5, 0.8, 0.1], jnp.float64)
HS = np.logspace(-13, -0.5, 51)


@pytest.fixture(scope="module")
def errors():
    """Relative error of forward and central differences against jax.grad, over HS."""
    g = jax.grad(_f)(X)
    out = {}
    for scheme in ("forward", "central"):
        num = jax.vmap(lambda h, s=scheme: ls.numerical_gradient(_f, X, h, s))(jnp.asarray(HS))
        out[scheme] = np.asarray(jnp.linalg.norm(num - g, axis=1) / jnp.linalg.norm(g))
    return out


@pytest.mark.parametrize(
    "scheme,slope,band", [("forward", 1, (1e-4, 1e-1)), ("central", 2, (1e-3, 1e-1))]
)
def test_truncation_slope(errors, scheme, slope, band):
    sel = (HS >= band[0]) & (HS <= band[1])
    fitted = np.polyfit(np.log(HS[sel]), np.log(errors[scheme][sel]), 1)[0]
    assert abs(fitted - slope) < 0.05, fitted
    # and the constant: the leading Taylor term, computed by forward-mode derivatives
    model = ls.finite_difference_error(_f, X, HS[sel], scheme)
    np.testing.assert_allclose(errors[scheme][sel], model.truncation, rtol=0.2)


@pytest.mark.parametrize("scheme,power", [("forward", 1 / 2), ("central", 1 / 3)])
def test_optimal_step_near_theory(errors, scheme, power):
    """The measured best h lies within a factor 4 of the model's optimum, itself near ε^power,
    and the best error is within a factor 10 of the predicted minimum (round-off is random)."""
    model = ls.finite_difference_error(_f, X, HS, scheme)
    h_pred = HS[np.argmin(model.total)]
    h_best = HS[np.argmin(errors[scheme])]
    eps = np.finfo(np.float64).eps
    assert 0.25 < h_best / h_pred < 4, (h_best, h_pred)
    assert 0.1 < h_pred / eps**power < 10
    assert np.min(errors[scheme]) < np.min(model.total) and np.min(errors[scheme]) > 0.1 * np.min(
        model.total
    )


def test_check_gradient_on_a_network_any_pytree_and_dtype():
    model = ls.mlp((4, 5, 3), activation="tanh")
    key_x, key_p = jax.random.split(jax.random.key(0))
    batch = {"x": jax.random.normal(key_x, (16, 4)), "y": jnp.arange(16) % 3}

    def loss(p):
        return model.loss_fn(p, batch)

    params = model.init(key_p, jnp.float64)

    def wrong(p):
        g = jax.grad(loss)(p)
        return [jax.tree.map(lambda a: 1.01 * a, g[0])] + g[1:]

    # one compilation for both checks
    report, wrong_report = jax.jit(
        lambda p: (ls.check_gradient(loss, p), ls.check_gradient(loss, p, grad=wrong))
    )(params)
    assert report.relative_error < 1e-8, report.relative_error  # predicted ~ε^(2/3) = 4e-11
    assert report.numerical[0]["w"].dtype == jnp.float64
    # a subtly wrong backward pass (a factor 1.01 on the first layer) is caught
    assert wrong_report.relative_error > 1e-3


def test_coordinates_sample_and_float32():
    sample = ls.numerical_gradient(_f, X, coordinates=jnp.array([0, 2]))
    np.testing.assert_allclose(sample, jax.grad(_f)(X)[jnp.array([0, 2])], rtol=1e-9)
    report = jax.jit(lambda x: ls.check_gradient(_f, x))(
        X.astype(jnp.float32)
    )  # central: ~ε^(2/3) = 2.5e-5
    assert report.numerical.dtype == jnp.float32 and report.relative_error < 3e-4


def test_bad_input():
    with pytest.raises(ValueError, match="scheme"):
        ls.numerical_gradient(_f, X, scheme="centre")
    with pytest.raises(ValueError, match="h"):
        ls.numerical_gradient(_f, X, h=-1e-3)
    with pytest.raises(TypeError, match="dtype"):
        ls.numerical_gradient(_f, jnp.arange(3))
