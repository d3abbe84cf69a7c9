"""An integrator or noise model written with plain JAX is correct on every path of the engine.

User code knows nothing of counter keys, column layouts or fused chunks: it draws with
`jax.random.normal` and may reduce across coordinates. Stationary moments are checked on
U = ½|θ|², where Euler–Maruyama at step η has variance (T)/(1 − η/2) per coordinate and no
correlation between coordinates (standard errors √(2/N) and 1/√N).
"""

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optdyn import integrators as itg
from optdyn import landscape as ls

N = 100_000
Z = 5.0


class _State(NamedTuple):
    params: jax.Array
    count: jax.Array


def _plain_langevin(lr, temperature):
    """SGLD as a user writes it: one `jax.random.normal` per leaf, the same key."""

    def init(params):
        return _State(params, jnp.zeros([], jnp.int32))

    def step(state, grads, key):
        def move(p, g):
            xi = jax.random.normal(key, jnp.shape(p), jnp.result_type(p))
            return p - lr * g + math.sqrt(2 * lr * temperature) * xi

        return _State(jax.tree_util.tree_map(move, state.params, grads), state.count + 1)

    return itg.Integrator(init, step)


def _clipped_gd(lr, max_norm):
    """Gradient descent with the gradient of each particle clipped to a norm: a reduction
    across coordinates (axis -1), which an elementwise layout would break."""

    def init(params):
        return _State(params, jnp.zeros([], jnp.int32))

    def step(state, grads, key):
        norm = jnp.linalg.norm(grads, axis=-1, keepdims=True)
        return _State(state.params - lr * grads * jnp.minimum(1, max_norm / norm), state.count + 1)

    return itg.Integrator(init, step)


@pytest.mark.parametrize("fuse", [None, 0, 4])
def test_plain_jax_random_langevin_samples_the_right_law(fuse):
    lr, temperature = 0.1, 1.0
    U = ls.quadratic(np.eye(2))
    traj = itg.simulate(
        _plain_langevin(lr, temperature),
        U,
        jnp.zeros((N, 2)),
        300,
        jax.random.key(0),
        record=False,
        fuse=fuse,
    )
    x = np.asarray(traj.final_state.params, dtype=np.float64)
    expected = temperature / (1 - lr / 2)
    np.testing.assert_allclose(x.var(0) / expected, 1, atol=Z * math.sqrt(2 / N))
    assert abs(np.corrcoef(x.T)[0, 1]) < Z / math.sqrt(N)


def test_a_step_that_reduces_across_coordinates_sees_the_arrays_as_given():
    U = ls.rosenbrock()
    x0 = jax.random.uniform(jax.random.key(1), (256, 2), minval=-2.0, maxval=2.0)
    traj = itg.simulate(_clipped_gd(1e-3, 1.0), U, x0, 50, record=False)

    def by_hand(x):
        for _ in range(50):
            g = jax.vmap(jax.grad(U.energy))(x)
            norm = jnp.linalg.norm(g, axis=-1, keepdims=True)
            x = x - 1e-3 * g * jnp.minimum(1, 1.0 / norm)
        return x

    np.testing.assert_allclose(traj.final_state.params, by_hand(x0), rtol=1e-5, atol=1e-6)


class _PlainGaussianNoise:
    """A user's noise model: additive N(0, σ²) gradient noise from `jax.random.normal`."""

    def __init__(self, sigma):
        self.sigma = sigma

    def init(self, landscape, key, n_particles):
        return ()

    def gradient(self, landscape, x, state, key):
        g = jax.vmap(jax.grad(landscape.energy))(x)
        return g + self.sigma * jax.random.normal(key, x.shape, x.dtype), state


def test_plain_jax_noise_model_sets_the_temperature_eta_sigma2_over_2():
    lr, sigma = 0.1, 2.0
    U = ls.quadratic(np.eye(2))
    traj = itg.simulate(
        itg.sgd(lr),
        U,
        jnp.zeros((N, 2)),
        300,
        jax.random.key(2),
        record=False,
        noise=_PlainGaussianNoise(sigma),
    )
    x = np.asarray(traj.final_state.params, dtype=np.float64)
    temperature = lr * sigma**2 / 2
    expected = temperature / (1 - lr / 2)
    np.testing.assert_allclose(x.var(0) / expected, 1, atol=Z * math.sqrt(2 / N))
    assert abs(np.corrcoef(x.T)[0, 1]) < Z / math.sqrt(N)


def test_normal_like_is_independent_across_leaves_and_coordinates():
    key = jax.random.key(3)
    tree = {"a": jnp.zeros((N,)), "b": jnp.zeros((N,)), "c": jnp.zeros((N, 2), jnp.float32)}
    draws = itg.normal_like(key, tree)
    cols = np.stack([draws["a"], draws["b"], draws["c"][:, 0], draws["c"][:, 1]], axis=0).astype(
        np.float64
    )
    corr = np.corrcoef(cols)
    off = corr[~np.eye(4, dtype=bool)]
    assert np.abs(off).max() < Z / math.sqrt(N)
    np.testing.assert_allclose(cols.var(1), 1, atol=Z * math.sqrt(2 / N))
    assert draws["c"].dtype == jnp.float32
