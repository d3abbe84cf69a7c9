"""Integrators as pairs of pure functions: pytrees, jit and vmap, dtype, state, sweeps,
velocities, schedules and the registry. `init`/`step` are driven directly (no simulator)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optdyn import integrators as itg
from optdyn.integrators import schedules

# every integrator, built at a temperature T (small steps: a few steps stay tame)
FACTORIES = {
    "sgd": lambda T: itg.sgd(0.05, temperature=T),
    "langevin": lambda T: itg.langevin(0.05, T),
    "momentum": lambda T: itg.momentum(0.05, momentum=0.9, temperature=T),
    "nesterov": lambda T: itg.nesterov(0.05, momentum=0.9, temperature=T),
    "underdamped_langevin": lambda T: itg.underdamped_langevin(0.2, 1.0, 2.0, T),
    "adam": lambda T: itg.adam(0.05, temperature=T),
    "adamw": lambda T: itg.adamw(0.05, weight_decay=0.1, temperature=T),
    "rmsprop": lambda T: itg.rmsprop(0.05, temperature=T),
    "adagrad": lambda T: itg.adagrad(0.05, temperature=T),
}
NAMES = list(FACTORIES)
CURVATURE = jnp.linspace(0.5, 4.0, 8)  # per-coordinate curvature of a test quadratic


def quadratic_grad(x: jax.Array) -> jax.Array:
    """∇ of Σ ½λ_i(x_i − 1)², elementwise, for a flat vector of 8 coordinates."""
    return CURVATURE.astype(x.dtype) * (x - 1)


def tree_from_flat(flat: jax.Array) -> dict:
    return {"w": flat[:3], "b": flat[3:7].reshape(2, 2), "c": flat[7]}


def flat_from_tree(tree: dict) -> jax.Array:
    return jnp.concatenate([tree["w"], tree["b"].ravel(), tree["c"][None]])


def run_steps(opt, params, grad_fn, n_steps, key, step=None):
    """`n_steps` of `opt` from `params` with gradients `grad_fn(params)`; `step` may be jitted."""
    step = opt.step if step is None else step
    state = opt.init(params)
    for k in jax.random.split(key, n_steps):
        state = step(state, grad_fn(state.params), k)
    return state


def inexact_leaves(tree):
    return [a for a in jax.tree_util.tree_leaves(tree) if jnp.issubdtype(a.dtype, jnp.inexact)]


# ----------------------------------------------------------------------------- pytrees


@pytest.mark.parametrize("name", NAMES)
def test_pytree_step_equals_flat_step(name):
    """A dict of arrays is stepped exactly as the same numbers in one flat vector (T = 0)."""
    opt = FACTORIES[name](0.0)
    x0 = jnp.linspace(-2.0, 3.0, 8)

    @jax.jit
    def both(x0, key):
        flat = run_steps(opt, x0, quadratic_grad, 5, key)
        tree = run_steps(
            opt,
            tree_from_flat(x0),
            lambda t: tree_from_flat(quadratic_grad(flat_from_tree(t))),
            5,
            key,
        )
        return flat, tree

    flat, tree = both(x0, jax.random.key(0))
    assert jax.tree_util.tree_structure(tree.params) == jax.tree_util.tree_structure(
        tree_from_flat(x0)
    )
    np.testing.assert_allclose(flat_from_tree(tree.params), flat.params, rtol=1e-15)
    assert not np.allclose(flat.params, x0)  # it moved
    # every buffer of the state (momentum, moments) keeps the pytree structure too
    for field, value in zip(tree._fields, tree, strict=True):
        if field != "count":
            assert set(value) == {"w", "b", "c"}


@pytest.mark.parametrize("name", NAMES)
def test_pytree_with_temperature(name):
    """At T > 0 every leaf gets its own independent noise; the structure is kept."""
    opt = FACTORIES[name](0.5)
    params = {"w": jnp.zeros(3), "b": jnp.zeros((2, 2))}
    grads = {"w": jnp.zeros(3), "b": jnp.zeros((2, 2))}
    state = opt.step(opt.init(params), grads, jax.random.key(1))
    assert jax.tree_util.tree_structure(state.params) == jax.tree_util.tree_structure(params)
    moved = flat_from_tree({**state.params, "c": jnp.zeros(())})[:7]
    assert np.all(np.isfinite(moved)) and np.all(moved != 0)
    assert len(np.unique(np.asarray(moved))) == 7  # no leaf reuses another leaf's noise


# ----------------------------------------------------------------------------- dtype and state


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("temperature", [0.0, 0.5])
@pytest.mark.parametrize("name", NAMES)
def test_dtype_preserved_in_every_state_leaf(name, temperature, dtype):
    """float32 in, float32 everywhere (and float64 likewise); traced, as under jit."""
    opt = FACTORIES[name](temperature)

    def three_steps(x0, key):
        state = run_steps(opt, x0, quadratic_grad, 3, key)
        velocity = opt.velocity(state) if opt.velocity is not None else None
        ke = itg.kinetic_energy(opt, state) if opt.velocity is not None else None
        return state, velocity, ke

    out = jax.eval_shape(three_steps, jax.ShapeDtypeStruct((8,), dtype), jax.random.key(0))
    for leaf in inexact_leaves(out):
        assert leaf.dtype == dtype, (name, out)
    state = out[0]
    assert state.count.dtype == jnp.int32 and state.count.shape == ()


@pytest.mark.parametrize("name", NAMES)
def test_state_is_named_tuple_with_params_and_count(name):
    opt = FACTORIES[name](0.0)
    state = opt.init(jnp.ones(8))
    assert type(state).__name__.endswith("State")
    assert state._fields[0] == "params" and state._fields[-1] == "count"
    assert int(state.count) == 0
    assert opt.name == name


# ----------------------------------------------------------------------------- jit and vmap


@pytest.mark.parametrize("name", NAMES)
def test_jit_vmap_init_step_equals_ensemble_step(name):
    """vmap over particles of init/step, under jit, equals stepping the stacked ensemble."""
    opt = FACTORIES[name](0.0)
    x = jax.random.normal(jax.random.key(0), (4, 8))
    keys = jax.random.split(jax.random.key(1), 4)

    @jax.jit
    def both(x, keys):
        per_particle = jax.vmap(lambda x0, k: run_steps(opt, x0, quadratic_grad, 3, k))(x, keys)
        ensemble = run_steps(opt, x, jax.vmap(quadratic_grad), 3, keys[0])
        return per_particle, ensemble

    per_particle, ensemble = both(x, keys)
    np.testing.assert_allclose(per_particle.params, ensemble.params, rtol=1e-14)
    assert per_particle.count.shape == (4,) and np.all(per_particle.count == 3)
    assert not np.allclose(ensemble.params, x)


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])  # the three noise sub-steps
def test_jit_vmap_with_temperature_uses_each_key(name):
    """Identical particles with different keys separate; with equal keys they stay equal."""
    opt = FACTORIES[name](0.5)
    x = jnp.zeros((3, 8))
    step = jax.jit(jax.vmap(opt.step))
    state = jax.vmap(opt.init)(x)
    keys = jax.random.split(jax.random.key(2), 3)
    out = step(state, jnp.zeros((3, 8)), keys)
    assert np.all(np.isfinite(out.params))
    assert not np.allclose(out.params[0], out.params[1])
    same = step(state, jnp.zeros((3, 8)), jnp.stack([keys[0]] * 3))
    np.testing.assert_array_equal(same.params[0], same.params[2])


# ----------------------------------------------------------------------------- physics of a step


def test_sgd_step_closed_form():
    opt = itg.sgd(0.1)
    state = opt.step(opt.init(jnp.array([1.0, -2.0])), jnp.array([3.0, 4.0]), jax.random.key(0))
    np.testing.assert_allclose(state.params, [0.7, -2.4], rtol=1e-15)


@pytest.mark.parametrize("name", ["momentum", "nesterov", "underdamped_langevin"])
def test_velocity_is_displacement_over_dt(name):
    """Heavy ball (not Nesterov's look-ahead) moves θ by dt·v; dt = √(ηM)."""
    opt = FACTORIES[name](0.0)
    hp = opt.hyperparams
    dt = hp["dt"] if "dt" in hp else math.sqrt(hp["lr"])
    state = run_steps(opt, jnp.linspace(-2.0, 3.0, 8), quadratic_grad, 4, jax.random.key(0))
    new = opt.step(state, quadratic_grad(state.params), jax.random.key(0))
    displacement = new.params - state.params
    if name == "nesterov":
        beta = hp["momentum"]
        direction = quadratic_grad(state.params) + beta * new.momentum
        np.testing.assert_allclose(displacement, -hp["lr"] * direction, rtol=1e-12)
    else:
        np.testing.assert_allclose(displacement, dt * opt.velocity(new), rtol=1e-12)
    ke = itg.kinetic_energy(opt, new)
    np.testing.assert_allclose(ke, 0.5 * opt.mass * jnp.sum(opt.velocity(new) ** 2), rtol=1e-14)
    np.testing.assert_allclose(itg.kinetic_temperature(opt, new), 2 * ke / 8, rtol=1e-14)


@pytest.mark.parametrize("name", ["sgd", "adam", "rmsprop", "adagrad"])
def test_kinetic_energy_undefined_without_velocity(name):
    opt = FACTORIES[name](0.0)
    with pytest.raises(ValueError, match=f"integrator='{opt.name}'"):
        itg.kinetic_energy(opt, opt.init(jnp.ones(2)))


def test_adam_first_step_is_sign_step():
    """Adam's first step is −η·g/(|g| + ε): about η per coordinate, whatever the scale of g."""
    opt = itg.adam(0.1)
    g = jnp.array([1e-3, -5.0, 200.0])
    x = opt.step(opt.init(jnp.zeros(3)), g, jax.random.key(0)).params
    np.testing.assert_allclose(x, -0.1 * g / (jnp.abs(g) + 1e-8), rtol=1e-12)


# ----------------------------------------------------------------------------- sweeps


def test_sweep_step_equals_separate_integrators():
    """momentum(lr=[...], momentum=[...]) steps member i as the i-th (lr, momentum) pair."""
    lrs, betas = [0.01, 0.1, 0.3], np.array([0.0, 0.5, 0.9])
    swept = itg.momentum(lr=lrs, momentum=betas)  # zipped, not crossed
    assert swept.sweep_size == 3
    x = jax.random.normal(jax.random.key(0), (3, 5, 8))  # (sweep, particles, dim)
    grad = jax.vmap(jax.vmap(quadratic_grad))
    state = run_steps(swept, x, grad, 4, jax.random.key(1), step=jax.jit(swept.step))
    for i in range(3):
        single = itg.momentum(lr=lrs[i], momentum=float(betas[i]))
        expected = run_steps(single, x[i], jax.vmap(quadratic_grad), 4, jax.random.key(1))
        np.testing.assert_allclose(state.params[i], expected.params, rtol=1e-14)


def test_hyperparams_recorded_and_rebuilt():
    opt = itg.adam(1e-3, b2=0.99)
    assert opt.hyperparams == {
        "lr": 1e-3,
        "b1": 0.9,
        "b2": 0.99,
        "eps": 1e-8,
        "eps_root": 0.0,
        "temperature": 0.0,
    }
    hotter = opt.with_hyperparams(temperature=0.5)
    assert hotter.hyperparams["temperature"] == 0.5 and hotter.hyperparams["b2"] == 0.99
    assert hotter.name == "adam" and opt.sweep_size is None


# ----------------------------------------------------------------------------- schedules

STEPS = np.array([0, 1, 7, 10, 49, 50, 99, 100, 150])


@pytest.mark.parametrize(
    "schedule, closed_form",
    [
        (schedules.constant(0.3), lambda k: np.full_like(k, 0.3, dtype=float)),
        (schedules.exponential(1.0, 0.5, 10), lambda k: 0.5 ** (k / 10)),
        (
            schedules.step(1.0, {50: 0.1, 100: 0.5}),
            lambda k: np.where(k < 50, 1.0, np.where(k < 100, 0.1, 0.05)),
        ),
        (
            schedules.cosine(2.0, 100, alpha=0.1),
            lambda k: 2.0 * (0.9 * 0.5 * (1 + np.cos(np.pi * np.minimum(k, 100) / 100)) + 0.1),
        ),
        (schedules.inverse_time(1.0, 10.0, 0.6), lambda k: (1 + k / 10) ** -0.6),
        (schedules.linear_warmup(1.0, 10), lambda k: np.minimum(k / 10, 1.0)),
        (
            schedules.linear_warmup(1.0, 10, after=schedules.exponential(1.0, 0.5, 10)),
            lambda k: np.where(k < 10, k / 10, 0.5 ** ((k - 10) / 10)),
        ),
        (schedules.geometric_cooling(2.0, 0.9), lambda k: 2.0 * 0.9**k),
        (schedules.logarithmic_cooling(3.0, 2.0), lambda k: 3.0 * np.log(2) / np.log(k + 2)),
    ],
    ids=[
        "constant",
        "exponential",
        "step",
        "cosine",
        "inverse_time",
        "linear_warmup",
        "linear_warmup_then_exponential",
        "geometric_cooling",
        "logarithmic_cooling",
    ],
)
def test_schedule_closed_form(schedule, closed_form):
    """Each schedule at int32 step counts (as the integrators call it), to float64 precision."""
    values = schedule(jnp.asarray(STEPS, jnp.int32))
    np.testing.assert_allclose(values, closed_form(STEPS), rtol=1e-12)
    assert float(schedule(jnp.int32(7))) == pytest.approx(closed_form(np.array(7)), rel=1e-12)


def test_schedule_as_lr_in_step():
    """sgd with a schedule uses η_k at step k: on ½x² (g = x), x_k = x_0 Π_{j<k} (1 − η_j)."""
    lr = schedules.exponential(0.5, 0.5, 2)
    opt = itg.sgd(lr)
    state = run_steps(opt, jnp.ones(1), lambda x: x, 6, jax.random.key(0))
    expected = np.prod([1 - 0.5 * 0.5 ** (j / 2) for j in range(6)])
    np.testing.assert_allclose(state.params, [expected], rtol=1e-14)


# ----------------------------------------------------------------------------- registry


def test_registry_builds_every_integrator():
    assert set(FACTORIES) <= set(itg.names())
    for name in itg.names():
        physical = name in ("underdamped_langevin", "baoab")
        kwargs = {"dt": 0.1, "friction": 1.0} if physical else {"lr": 0.1}
        opt = itg.get(name, **kwargs)
        assert isinstance(opt, itg.Integrator)
    assert itg.get("heavy_ball", lr=0.1).name == "momentum"
    assert itg.get("gd", lr=0.1).hyperparams == itg.sgd(0.1).hyperparams
