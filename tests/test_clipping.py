"""Clipping as a speed limit on the force: equal to optax's clipping chained before the same
optimizer, per particle in an ensemble, and composing with noise and force re-evaluation."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optdyn import integrators as itg
from optdyn import landscape as ls

X0 = jnp.array([-1.5, 2.0], jnp.float64)  # |∇L| ≈ 1.6e3 on Rosenbrock: clipping is active
STEPS = 300


def _rosenbrock(x):
    return (1.0 - x[0]) ** 2 + 100.0 * (x[1] - x[0] ** 2) ** 2


ROSENBROCK = ls.from_function(_rosenbrock, dim=2)


def optax_loop(tx: optax.GradientTransformation, x0=X0, steps=STEPS) -> np.ndarray:
    """The textbook optax loop (no optdyn code): positions (steps + 1, 2)."""
    grad = jax.grad(_rosenbrock)

    def body(carry, _):
        x, s = carry
        u, s = tx.update(grad(x), s, x)
        x = optax.apply_updates(x, u)
        return (x, s), x

    _, xs = jax.lax.scan(body, (x0, tx.init(x0)), None, length=steps)
    return np.concatenate([np.asarray(x0)[None], np.asarray(xs)])


PAIRS = {  # (ours, the same optimizer in optax); momentum: see the per-particle test
    "sgd": (lambda: itg.sgd(lr=1e-3), lambda: optax.sgd(1e-3)),
    # (b1, b2) = (0.8, 0.995) with clipping by value makes a trajectory along which Adam
    # itself (clipped or not, ours or optax's) amplifies a 1-ulp difference to 3e-12
    "adam": (lambda: itg.adam(lr=1e-2, b1=0.9, b2=0.999), lambda: optax.adam(1e-2, 0.9, 0.999)),
}


@pytest.mark.parametrize("name", sorted(PAIRS))
@pytest.mark.parametrize(
    "ours,theirs",
    [
        (itg.clip_by_global_norm, optax.clip_by_global_norm),
        (itg.clip, optax.clip),
    ],
    ids=["global_norm", "value"],
)
def test_equals_optax_chain_float64(name, ours, theirs):
    make_ours, make_theirs = PAIRS[name]
    traj = itg.simulate(ours(make_ours(), 2.0), ROSENBROCK, X0, STEPS)
    ref = optax_loop(optax.chain(theirs(2.0), make_theirs()))
    assert traj.positions.dtype == jnp.float64
    np.testing.assert_allclose(traj.positions, ref, rtol=1e-12, atol=1e-12)
    # the clipping is active: without it the trajectory is another one
    unclipped = optax_loop(make_theirs())
    assert np.max(np.abs(unclipped - ref)) > 1e-2


def test_by_hand_one_particle_without_axis():
    """`per_particle=False`: the step called by hand on a pytree that is one particle."""
    params = {"a": jnp.array([3.0, 4.0]), "b": jnp.array(12.0)}  # |g| = 13
    opt = itg.clip_by_global_norm(itg.sgd(lr=1.0), 1.3, per_particle=False)
    new = opt.step(opt.init(params), params, None)  # g = θ: θ − θ·(1.3/13) = 0.9 θ
    np.testing.assert_allclose(new.params["a"], [2.7, 3.6], rtol=1e-14)
    np.testing.assert_allclose(new.params["b"], 10.8, rtol=1e-14)


def test_each_particle_clipped_by_its_own_norm():
    x0 = jnp.array([[-1.5, 2.0], [0.5, 0.3], [1.1, 1.2]])  # gradient norms 1.6e3, 10, 2
    opt = itg.clip_by_global_norm(itg.momentum(lr=5e-4, momentum=0.9), 5.0)
    ens = itg.simulate(opt, ROSENBROCK, x0, 200).positions
    for i in range(3):
        alone = itg.simulate(opt, ROSENBROCK, x0[i], 200).positions
        np.testing.assert_allclose(ens[i], alone, rtol=1e-12, atol=1e-14)
    # from_optax keeps one optax state per particle, so optax's own chain agrees
    chained = itg.simulate(
        optax.chain(optax.clip_by_global_norm(5.0), optax.sgd(5e-4, momentum=0.9)),
        ROSENBROCK,
        x0,
        200,
    ).positions
    np.testing.assert_allclose(chained, ens, rtol=1e-5, atol=1e-6)


def test_thermal_noise_is_not_clipped():
    """On U = a·x with |a| = 5 > c the clipped Langevin run is Langevin on U = (c/|a|) a·x,
    the same keys giving the same kicks: the drift is capped, the kicks √(2ηT)ξ are not
    (after k steps the spread is Var x = 2ηTk = 1, which clipped kicks could not reach)."""
    a = jnp.array([3.0, -4.0])
    c, lr, steps = 1e-3, 0.01, 50
    x0 = jnp.zeros((2000, 2))
    opt = lambda c: itg.clip_by_global_norm(itg.langevin(lr=lr, temperature=1.0), c)  # noqa: E731
    clipped = itg.simulate(opt(c), ls.from_function(lambda x: a @ x, dim=2), x0, steps)
    scaled = ls.from_function(lambda x: (c / 5.0) * a @ x, dim=2)
    free = itg.simulate(opt(1e30), scaled, x0, steps)
    np.testing.assert_allclose(clipped.positions, free.positions, rtol=1e-12, atol=1e-14)
    x = np.asarray(clipped.positions[:, -1])
    se = np.sqrt(2.0 / x.shape[0])  # standard error of a Gaussian sample variance
    np.testing.assert_allclose(np.var(x, axis=0), 2 * lr * 1.0 * steps, atol=4 * se)
    np.testing.assert_allclose(np.mean(x, axis=0), -c * lr * steps * a / 5.0, atol=4 * 0.023)


def test_needs_grad_fn_every_force_evaluation_clipped():
    """BAOAB evaluates the force twice per step. On a linear potential U = a·x with |a| > c
    both evaluations see a·c/|a|: the clipped run is BAOAB on U = (c/|a|) a·x, noise and all."""
    a = jnp.array([3.0, -4.0])  # |a| = 5
    c = 0.5
    opt = lambda c: itg.clip_by_global_norm(  # noqa: E731
        itg.baoab(dt=0.1, friction=1.0, temperature=0.2), c
    )
    x0 = jnp.zeros((8, 2))
    linear = ls.from_function(lambda x: a @ x, dim=2)
    clipped = itg.simulate(opt(c), linear, x0, 40)
    scaled = ls.from_function(lambda x: (c / 5.0) * a @ x, dim=2)
    free = itg.simulate(opt(1e30), scaled, x0, 40)
    np.testing.assert_allclose(clipped.positions, free.positions, rtol=1e-12, atol=1e-13)
    # (the scaled force is a tenth of the unclipped one, so an unclipped kick would not match)


def test_swept_inner_and_schedule_and_float32():
    sweep = itg.clip_by_global_norm(itg.sgd(lr=[1e-3, 3e-4]), 2.0)
    both = itg.simulate(sweep, ROSENBROCK, X0, 100).positions
    one = itg.simulate(itg.clip_by_global_norm(itg.sgd(lr=3e-4), 2.0), ROSENBROCK, X0, 100)
    np.testing.assert_allclose(both[1], one.positions, rtol=1e-12)
    assert np.max(np.abs(both[0] - both[1])) > 1e-2
    # a schedule of the limit: c_k = 0.2 for k < 50, then 0.05 (|∇L| stays far above)
    sched = lambda k: jnp.where(k < 50, 0.2, 0.05)  # noqa: E731
    traj = itg.simulate(itg.clip_by_global_norm(itg.sgd(lr=1e-3), sched), ROSENBROCK, X0, 100)
    speed = np.linalg.norm(np.diff(traj.positions, axis=0), axis=1) / 1e-3
    np.testing.assert_allclose(speed[:50], 0.2, rtol=1e-9)  # far from the minimum: at the limit
    np.testing.assert_allclose(speed[50:], 0.05, rtol=1e-9)
    x32 = itg.simulate(itg.clip(itg.adam(lr=1e-2), 0.1), ROSENBROCK, X0.astype(jnp.float32), 20)
    assert x32.positions.dtype == jnp.float32 and np.all(np.isfinite(x32.positions))


def test_with_hyperparams_and_bad_input():
    opt = itg.clip_by_global_norm(itg.momentum(lr=0.1, momentum=0.9), 1.0)
    assert opt.hyperparams["max_norm"] == 1.0 and opt.hyperparams["lr"] == 0.1
    assert opt.with_hyperparams(max_norm=3.0).hyperparams["max_norm"] == 3.0
    with pytest.raises(ValueError, match="max_norm"):
        itg.clip_by_global_norm(itg.sgd(lr=0.1), -1.0)
    with pytest.raises(ValueError, match="max_delta"):
        itg.clip(itg.sgd(lr=0.1), [0.1, 0.2])
    with pytest.raises(TypeError, match="integrator"):
        itg.clip(optax.sgd(0.1), 1.0)
    with pytest.raises(ValueError, match="Clip it once"):
        itg.clip(itg.clip(itg.sgd(lr=0.1), 1.0), 2.0)
