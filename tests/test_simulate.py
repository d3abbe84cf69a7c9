"""The jitted simulator: shapes, records, compilation, keys, sweeps, dtype, pytrees, schedules
as learning rate and temperature, and per-particle divergence."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optdyn import integrators as itg
from optdyn.integrators.simulate import _runner
from optdyn.landscape._base import Landscape

LAMBDA = np.array([1.0, 2.0, 3.0])
TRACES = {"count": 0}


def _bowl_energy(x):
    TRACES["count"] += 1  # a side effect runs only while JAX traces the function
    return 0.5 * (x[0] ** 2 + 2.0 * x[1] ** 2 + 3.0 * x[2] ** 2)


BOWL = Landscape(_bowl_energy, "bowl3", 3)  # U = ½ Σ λ_i x_i², λ = (1, 2, 3)
X0 = jnp.array([1.0, -1.0, 0.5])


def gd_closed_form(lr: float, steps: int, x0=X0) -> np.ndarray:
    """GD on the bowl: x_k = (1 − ηλ)^k x_0, shape (*x0.shape[:-1], steps + 1, 3)."""
    k = np.arange(steps + 1)[:, None]
    return (1 - lr * LAMBDA) ** k * np.asarray(x0)[..., None, :]


# ----------------------------------------------------------------------------- shapes and records


STEPS = 10


def test_shapes_particle_ensemble_sweep():
    steps, n, d = STEPS, 5, 3
    x_ens = jax.random.normal(jax.random.key(0), (n, d))
    one = itg.simulate(itg.momentum(0.1), BOWL, X0, steps)
    ens = itg.simulate(itg.momentum(0.1), BOWL, x_ens, steps)
    sweep = itg.simulate(itg.momentum(lr=[0.05, 0.1], momentum=[0.5, 0.9]), BOWL, x_ens, steps)
    sweep_one = itg.simulate(itg.momentum(lr=[0.05, 0.1]), BOWL, X0, steps)
    for traj, batch in [(one, ()), (ens, (n,)), (sweep, (2, n)), (sweep_one, (2,))]:
        assert traj.positions.shape == (*batch, steps + 1, d)
        assert traj.loss.shape == traj.grad_norm.shape == (*batch, steps + 1)
        assert traj.kinetic_energy.shape == (*batch, steps + 1)
        assert traj.diverged_step.shape == batch and traj.diverged_step.dtype == jnp.int32
        np.testing.assert_array_equal(traj.steps, np.arange(steps + 1))
        # final_state has the batch axes of the other fields: (d,) for one particle
        np.testing.assert_array_equal(traj.positions[..., -1, :], traj.final_state.params)
        np.testing.assert_allclose(
            traj.loss, jax.vmap(BOWL.energy)(traj.positions.reshape(-1, d)).reshape(traj.loss.shape)
        )
    # the first record is x0 itself, for every member and particle
    np.testing.assert_array_equal(sweep.positions[:, :, 0], jnp.broadcast_to(x_ens, (2, n, d)))
    assert itg.simulate(itg.sgd(0.1), BOWL, X0, steps).kinetic_energy is None


def test_record_every_with_remainder_records_last_step():
    steps, every = STEPS, 4
    full = itg.simulate(itg.momentum(0.1), BOWL, X0, steps)
    sparse = itg.simulate(itg.momentum(0.1), BOWL, X0, steps, record_every=every)
    np.testing.assert_array_equal(sparse.steps, [0, 4, 8, 10])
    np.testing.assert_allclose(sparse.positions, full.positions[sparse.steps], rtol=1e-15)
    np.testing.assert_allclose(sparse.loss, full.loss[sparse.steps], rtol=1e-15)
    np.testing.assert_allclose(sparse.positions[-1], sparse.final_state.params, rtol=1e-15)
    no_positions = itg.simulate(
        itg.momentum(0.1), BOWL, X0, steps, record_every=every, record_positions=False
    )
    assert no_positions.positions is None
    np.testing.assert_allclose(no_positions.loss, sparse.loss, rtol=1e-15)


def test_gd_closed_form_on_bowl():
    traj = itg.simulate(itg.sgd(0.3), BOWL, X0, STEPS)
    np.testing.assert_allclose(traj.positions, gd_closed_form(0.3, STEPS), rtol=1e-13)
    np.testing.assert_allclose(
        traj.grad_norm, np.linalg.norm(LAMBDA * gd_closed_form(0.3, STEPS), axis=-1), rtol=1e-13
    )


# ----------------------------------------------------------------------------- compilation


def test_no_recompilation_for_new_numeric_hyperparameters():
    """Numeric hyperparameters are traced: a new lr, momentum or temperature reuses the
    compiled scan (counted both by jit's cache and by traces of the energy function)."""
    x = jnp.zeros((4, 3))
    itg.simulate(itg.momentum(0.1, momentum=0.9, temperature=0.5), BOWL, x, 5)
    cache, traces = _runner()._cache_size(), TRACES["count"]
    for lr, beta, temperature in [(0.2, 0.5, 1.0), (0.05, 0.0001, 2.0)]:
        traj = itg.simulate(itg.momentum(lr, momentum=beta, temperature=temperature), BOWL, x, 5)
        assert np.all(np.isfinite(traj.positions))
    assert _runner()._cache_size() == cache
    assert TRACES["count"] == traces


# ----------------------------------------------------------------------------- keys


def test_same_key_same_trajectory_different_key_different():
    opt = itg.sgd(0.1, temperature=1.0)
    x = jnp.zeros((8, 3))
    a = itg.simulate(opt, BOWL, x, 10, jax.random.key(0))
    b = itg.simulate(opt, BOWL, x, 10, jax.random.key(0))
    c = itg.simulate(opt, BOWL, x, 10, jax.random.key(1))
    for la, lb in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_array_equal(la, lb)
    assert not np.any(np.isclose(a.positions[:, 1:], c.positions[:, 1:]))
    # the default key is key(0)
    np.testing.assert_array_equal(itg.simulate(opt, BOWL, x, 10).positions, a.positions)
    # particles started together separate: each has its own noise
    assert len(np.unique(np.asarray(a.positions[:, -1, 0]))) == 8


# ----------------------------------------------------------------------------- sweeps


def test_sweep_equals_separate_runs():
    lrs = [0.05, 0.2, 0.6]
    x = jax.random.normal(jax.random.key(2), (4, 3))
    sweep = itg.simulate(itg.sgd(lr=lrs), BOWL, x, 15)
    for i, lr in enumerate(lrs):
        single = itg.simulate(itg.sgd(lr=lr), BOWL, x, 15)
        np.testing.assert_allclose(sweep.positions[i], single.positions, rtol=1e-14)
        np.testing.assert_allclose(sweep.loss[i], single.loss, rtol=1e-14)
        np.testing.assert_allclose(sweep.positions[i], gd_closed_form(lr, 15, x), rtol=1e-12)


def test_sweep_with_temperature_gives_each_member_its_noise():
    """A temperature sweep at equal lr: members differ, and T = 0 stays deterministic."""
    x = jnp.zeros((2, 3))
    traj = itg.simulate(itg.sgd(lr=0.1, temperature=[0.0, 1.0, 1.0]), BOWL, x, 5)
    np.testing.assert_array_equal(traj.positions[0], 0.0)
    assert not np.allclose(traj.positions[1], traj.positions[2])


# ----------------------------------------------------------------------------- dtype

DTYPE_CASES = {
    "sgd": lambda: itg.sgd(0.1, temperature=0.5),
    "langevin": lambda: itg.langevin(0.1, 0.5),
    "momentum": lambda: itg.momentum(0.1, 0.9, temperature=0.5),
    "nesterov": lambda: itg.nesterov(0.1, 0.9, temperature=0.5),
    "underdamped_langevin": lambda: itg.underdamped_langevin(0.3, 1.0, 2.0, 0.5),
    "adam": lambda: itg.adam(0.1, temperature=0.5),
    "adamw": lambda: itg.adamw(0.1, temperature=0.5),
    "rmsprop": lambda: itg.rmsprop(0.1, temperature=0.5),
    "adagrad": lambda: itg.adagrad(0.1, temperature=0.5),
    "sgd_sweep": lambda: itg.sgd([0.1, 0.2], temperature=[0.5, 0.0]),
    "sgd_zero_temperature": lambda: itg.sgd(0.1),
    "adam_zero_temperature": lambda: itg.adam(0.1),
    "optax_adam": lambda: optax.adam(0.1),
}


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("name", list(DTYPE_CASES))
def test_dtype_preserved_through_simulate(name, dtype):
    """Every floating leaf of the Trajectory (positions, loss, kinetic energy, final state)
    has the dtype of x0. Checked by tracing the jitted simulator (as its compilation would)."""
    opt = DTYPE_CASES[name]()

    def run(x0):
        return itg.simulate(opt, BOWL, x0, 4, jax.random.key(0))

    traj = jax.eval_shape(run, jax.ShapeDtypeStruct((5, 3), dtype))
    leaves = [traj.positions, traj.loss, traj.grad_norm, traj.kinetic_energy, traj.final_state]
    for leaf in jax.tree_util.tree_leaves(leaves):
        if jnp.issubdtype(leaf.dtype, jnp.inexact):
            assert leaf.dtype == dtype, (name, traj)
    assert jax.tree_util.tree_leaves(traj.final_state.params)[0].dtype == dtype


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_dtype_float32_run_is_finite_and_close_to_float64(dtype):
    """A real float32 run (sweep, temperature, momentum) gives float32 numbers near float64's."""
    opt = itg.momentum(lr=[0.05, 0.1], momentum=0.9)
    x = jax.random.normal(jax.random.key(3), (4, 3))
    traj = itg.simulate(opt, BOWL, x.astype(dtype), 30)
    ref = itg.simulate(opt, BOWL, x, 30)
    assert traj.positions.dtype == traj.final_state.momentum.dtype == dtype
    np.testing.assert_allclose(traj.positions, ref.positions, atol=1e-5)


# ----------------------------------------------------------------------------- pytrees


def _tree_energy(p):
    return 0.5 * (jnp.sum(p["w"] ** 2) + 4.0 * p["b"] ** 2)


TREE = Landscape(_tree_energy, "tree", None)


def test_pytree_particle_and_ensemble():
    """A dict of parameters (landscape of any dimension): GD gives (1 − ηλ)^k per leaf."""
    lr, steps = 0.1, 8
    k = np.arange(steps + 1)
    one = itg.simulate(itg.sgd(lr), TREE, {"w": jnp.ones(2), "b": jnp.asarray(2.0)}, steps)
    assert one.positions["w"].shape == (steps + 1, 2) and one.positions["b"].shape == (steps + 1,)
    np.testing.assert_allclose(one.positions["w"][:, 0], (1 - lr) ** k, rtol=1e-13)
    np.testing.assert_allclose(one.positions["b"], 2.0 * (1 - 4 * lr) ** k, rtol=1e-13)
    ens = itg.simulate(
        itg.adam(lr), TREE, {"w": jnp.ones((3, 2)), "b": jnp.full(3, 2.0)}, steps, ensemble=True
    )
    assert ens.positions["w"].shape == (3, steps + 1, 2) and ens.loss.shape == (3, steps + 1)
    np.testing.assert_allclose(ens.positions["b"][0], ens.positions["b"][2])


# ----------------------------------------------------------------------------- schedules


def test_optax_schedule_as_lr():
    """lr from an optax schedule: on the bowl x_k = x_0 Π_{j<k} (1 − η_j λ)."""
    steps = 12
    schedule = optax.linear_schedule(0.3, 0.05, 10)
    traj = itg.simulate(itg.sgd(schedule), BOWL, X0, steps)
    j = np.arange(steps)
    etas = 0.3 + (0.05 - 0.3) * np.minimum(j, 10) / 10  # exact closed form, float64
    factors = 1 - etas[:, None] * LAMBDA
    expected = np.concatenate([[np.asarray(X0)], np.cumprod(factors, axis=0) * np.asarray(X0)])
    # optax divides the int32 count in float32, so each η_j carries a relative error up to
    # ε₃₂; it enters x_k through Σ_j η_jλ/|1 − η_jλ|, the worst coordinate's sensitivity
    sensitivity = np.sum(np.max(np.abs(etas[:, None] * LAMBDA / factors), axis=1))
    rtol = sensitivity * np.finfo(np.float32).eps
    np.testing.assert_allclose(traj.positions, expected, rtol=rtol)
    assert rtol < 1e-5


def test_annealed_temperature_becomes_gradient_descent():
    """T_k = T₀·0.8^k from an optax schedule: the residual of the GD update at step k is
    √(2ηT_k)·ξ_k, so the motion becomes gradient descent as T → 0 (T_120 ≈ 2e-12)."""
    lr, t0, n, steps = 0.1, 1.0, 10_000, 120
    temperature = optax.exponential_decay(t0, 1, 0.8)
    traj = itg.simulate(
        itg.sgd(lr, temperature=temperature), BOWL, jnp.zeros((n, 3)), steps, jax.random.key(5)
    )
    x = np.asarray(traj.positions)  # (n, steps + 1, 3)
    assert np.all(np.isfinite(x))
    noise_scale = np.sqrt(2 * lr * t0 * 0.8 ** np.arange(steps))[None, :, None]
    z = (x[:, 1:] - (1 - lr * LAMBDA) * x[:, :-1]) / noise_scale  # iid N(0, 1) if T_k is right
    for window in [slice(0, 10), slice(100, 120)]:  # 4 SE: a wrong T_k (one step of 0.8
        m2 = np.mean(z[:, window] ** 2)  # off) moves m2 by 25%, over 100 SE
        assert abs(m2 - 1) < 4 * np.sqrt(2 / z[:, window].size), (window, m2)
    # from step 100 on the particles follow GD up to a noise of total std √(Σ 2ηT_k) ≈ 1e-5:
    # 6 std bounds every one of the 3·10^4 coordinates (two-sided tail 2e-9 each)
    gd = x[:, 100] * (1 - lr * LAMBDA) ** 20
    late_noise = np.sqrt(np.sum(noise_scale[0, 100:, 0] ** 2))
    assert np.max(np.abs(x[:, 120] - gd)) < 6 * late_noise
    assert late_noise < 2e-5


# ----------------------------------------------------------------------------- divergence


def test_divergence_is_per_particle():
    """GD on ¼x⁴ with η = 0.1 converges from 1 and blows up from 10; only that one freezes."""
    quartic = Landscape(lambda x: 0.25 * jnp.sum(x**4), "quartic", 1)
    traj = itg.simulate(itg.sgd(0.1), quartic, jnp.array([[1.0], [10.0]]), 50)
    alone = itg.simulate(itg.sgd(0.1), quartic, jnp.array([[1.0]]), 50)
    assert int(traj.diverged_step[0]) == -1 and int(traj.diverged_step[1]) > 0
    assert bool(traj.diverged[1]) and not bool(traj.diverged[0])
    np.testing.assert_array_equal(traj.positions[0], alone.positions[0])
    k = int(traj.diverged_step[1])
    assert np.all(traj.positions[1, k:] == traj.positions[1, k - 1])
    assert np.all(np.isfinite(traj.positions)) and np.all(np.isfinite(traj.loss))
