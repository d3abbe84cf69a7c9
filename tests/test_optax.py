"""At zero temperature our optimizers are optax's, step for step (cf. optax's
`test_rms_match_adam`): the reference is a hand-written optax loop, never our bridge."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optdyn import integrators as itg
from optdyn.landscape._base import Landscape

STEPS = 1000
X0 = jnp.array([-1.5, 2.0])
RTOL = 1e-5


def _rosenbrock(x):
    return (1.0 - x[0]) ** 2 + 100.0 * (x[1] - x[0] ** 2) ** 2


ROSENBROCK = Landscape(_rosenbrock, "rosenbrock", 2)

# (ours, optax's) with the same hyperparameters, mostly away from the defaults so that a
# mismatched argument would show. Step sizes keep ηλ_max < 2 (λ_max ≈ 1950 at X0).
# The comparison needs a well-conditioned trajectory: with b2 = 0.99 and lr = 1e-2, Adam
# has a loss spike near step 940 during which optax alone amplifies a 1e-16 perturbation of
# θ by ×2.5 per step, so 1-ulp differences (e.g. β^k as a float or an integer power in the
# bias correction) reach 1e-2. With b2 = 0.995 the trajectories agree to 6e-13.
CASES = {
    "sgd": lambda: (itg.sgd(lr=5e-4), optax.sgd(5e-4)),
    "momentum": lambda: (itg.momentum(lr=2e-4, momentum=0.9), optax.sgd(2e-4, momentum=0.9)),
    "nesterov": lambda: (
        itg.nesterov(lr=2e-4, momentum=0.85),
        optax.sgd(2e-4, momentum=0.85, nesterov=True),
    ),
    "adam": lambda: (
        itg.adam(lr=1e-2, b1=0.8, b2=0.995, eps=1e-7),
        optax.adam(1e-2, b1=0.8, b2=0.995, eps=1e-7),
    ),
    "adamw": lambda: (
        itg.adamw(lr=1e-2, weight_decay=1e-2, eps_root=1e-10),
        optax.adamw(1e-2, weight_decay=1e-2, eps_root=1e-10),
    ),
    "rmsprop": lambda: (
        itg.rmsprop(lr=1e-3, decay=0.95, eps=1e-6, initial_scale=0.1),
        optax.rmsprop(1e-3, decay=0.95, eps=1e-6, initial_scale=0.1),
    ),
    "adagrad": lambda: (
        itg.adagrad(lr=0.1, initial_accumulator_value=0.5, eps=1e-6),
        optax.adagrad(0.1, initial_accumulator_value=0.5, eps=1e-6),
    ),
}


def optax_trajectory(tx: optax.GradientTransformation, steps: int = STEPS) -> np.ndarray:
    """The textbook optax loop in a `lax.scan`: positions (steps + 1, 2), starting at X0."""
    grad = jax.grad(_rosenbrock)

    @jax.jit
    def run(x0):
        def body(carry, _):
            x, state = carry
            updates, state = tx.update(grad(x), state, x)
            x = optax.apply_updates(x, updates)
            return (x, state), x

        _, xs = jax.lax.scan(body, (x0, tx.init(x0)), None, length=steps)
        return jnp.concatenate([x0[None], xs])

    return np.asarray(run(X0))


def max_relative_error(ours, reference) -> float:
    ours, reference = np.asarray(ours), np.asarray(reference)
    assert ours.shape == reference.shape
    err = np.linalg.norm(ours - reference, axis=-1) / np.linalg.norm(reference, axis=-1)
    return float(np.max(err))


@functools.cache
def reference(name: str) -> np.ndarray:
    return optax_trajectory(CASES[name]()[1])


@pytest.mark.parametrize("name", list(CASES))
def test_matches_optax_on_rosenbrock(name):
    ours, _ = CASES[name]()
    traj = itg.simulate(ours, ROSENBROCK, X0, STEPS)
    assert not bool(traj.diverged)
    ref = reference(name)
    assert max_relative_error(traj.positions, ref) <= RTOL
    # the runs went somewhere: not a trivially matching pair of frozen particles
    assert np.linalg.norm(ref[-1] - ref[0]) > 0.5


SCHEDULES = {
    "sgd": (
        itg.sgd,
        optax.sgd,
        optax.warmup_cosine_decay_schedule(0.0, 5e-4, 50, STEPS, end_value=1e-5),
    ),
    "adam": (itg.adam, optax.adam, optax.exponential_decay(2e-2, 100, 0.5)),
}


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_matches_optax_with_schedule(name):
    """An optax schedule as lr is evaluated at the same step counts as optax does."""
    ours, theirs, schedule = SCHEDULES[name]
    traj = itg.simulate(ours(lr=schedule), ROSENBROCK, X0, STEPS)
    ref = optax_trajectory(theirs(schedule))
    assert max_relative_error(traj.positions, ref) <= RTOL
    # the schedule matters: a constant lr at its initial value ends elsewhere
    assert np.linalg.norm(ref[-1] - optax_trajectory(theirs(schedule(0) + 1e-4))[-1]) > 1e-3


def test_simulate_runs_optax_transformation():
    """`simulate` accepts a GradientTransformation directly and follows optax's trajectory."""
    _, tx = CASES["adam"]()
    traj = itg.simulate(tx, ROSENBROCK, X0, STEPS)
    assert max_relative_error(traj.positions, reference("adam")) <= RTOL
    # an ensemble through the shared optax state: each particle as if alone (elementwise tx)
    x0 = jnp.stack([X0, X0])
    ens = itg.simulate(tx, ROSENBROCK, x0, STEPS)
    assert max_relative_error(ens.positions[1], reference("adam")) <= RTOL


@pytest.mark.parametrize("name", ["momentum", "adam"])
def test_as_optax_reproduces_simulate(name):
    """`as_optax(itg)` in a hand-written optax loop lands on `simulate(itg)`'s positions."""
    ours, _ = CASES[name]()
    traj = itg.simulate(ours, ROSENBROCK, X0, STEPS)
    via_optax = optax_trajectory(itg.as_optax(ours))
    # θ + (θ' − θ) rounds differently from θ': allow accumulated rounding, far below RTOL
    assert max_relative_error(via_optax, traj.positions) <= 1e-10


def test_as_optax_requires_params():
    tx = itg.as_optax(itg.sgd(0.1))
    state = tx.init(X0)
    with pytest.raises(ValueError, match="params=None"):
        tx.update(X0, state)
