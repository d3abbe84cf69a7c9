"""BAOAB against its closed forms on a harmonic well, and the force-calling step contract.

On U = ½kθ² (mass M, temperature T, step h, h²k/M < 4) BAOAB's stationary law has
⟨θ²⟩ = T/k exactly and ⟨p²⟩/M = T(1 − h²k/(4M)) (Leimkuhler & Matthews 2013), where
Euler–Maruyama at η = h² gives ⟨θ²⟩ = (T/k)/(1 − ηk/2). Variances are estimated from
N independent particles; the relative standard error of a Gaussian sample variance is
√(2/N), and tolerances are Z of those.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import linalg

from optdyn import integrators as itg
from optdyn import landscape as ls

jax.config.update("jax_enable_x64", True)

N = 200_000
Z = 5.0
REL_SE = math.sqrt(2 / N)


def _baoab_matrices(h, k, gamma, mass, temperature):
    """The linear BAOAB map z ← A z + b ξ on z = (θ, p) for U = ½kθ²."""
    c = math.exp(-gamma * h)
    b_half = np.array([[1.0, 0.0], [-h * k / 2, 1.0]])
    a_half = np.array([[1.0, h / (2 * mass)], [0.0, 1.0]])
    o = np.array([[1.0, 0.0], [0.0, c]])
    noise = np.array([0.0, math.sqrt((1 - c * c) * mass * temperature)])
    after_o = b_half @ a_half  # the matrix applied after O
    a = after_o @ o @ a_half @ b_half
    return a, after_o @ noise


@pytest.mark.parametrize("h", [0.3, 1.0, 1.7])
def test_closed_forms_from_the_exact_stationary_covariance(h):
    """The discrete Lyapunov equation Σ = AΣAᵀ + bbᵀ of the linear map gives exactly the
    closed forms the simulation tests below rely on."""
    k, gamma, mass, temperature = 1.3, 0.7, 2.0, 0.8
    a, b = _baoab_matrices(h, k, gamma, mass, temperature)
    sigma = linalg.solve_discrete_lyapunov(a, np.outer(b, b))
    assert sigma[0, 0] == pytest.approx(temperature / k, rel=1e-12)
    kinetic = temperature * (1 - h * h * k / (4 * mass))
    assert sigma[1, 1] / mass == pytest.approx(kinetic, rel=1e-12)


def _stationary(opt, k, h, n=N, dim=1, seed=1, relax=40.0):
    steps = int(math.ceil(relax / h))
    U = ls.quadratic(np.diag(np.atleast_1d(k)))
    traj = itg.simulate(opt, U, jnp.zeros((n, dim)), steps, jax.random.key(seed), record=False)
    state = traj.final_state
    return np.asarray(state.params), np.asarray(getattr(state, "momentum", state.params))


@pytest.mark.parametrize("h", [0.5, 1.0, 1.5])
def test_configurational_variance_is_exact_at_every_stable_step(h):
    k, temperature = 1.0, 1.0
    theta, p = _stationary(itg.baoab(h, friction=1.0, temperature=temperature), k, h)
    measured = theta.var() * k / temperature
    assert abs(measured - 1) < Z * REL_SE, measured
    # and the kinetic temperature carries its known bias 1 − h²k/4
    kinetic = p.var() / temperature
    expected = 1 - h * h * k / 4
    assert abs(kinetic / expected - 1) < Z * REL_SE, (kinetic, expected)


@pytest.mark.parametrize("h", [0.5, 1.0])
def test_euler_maruyama_carries_its_order_dt_bias_where_baoab_has_none(h):
    """At the same step, SGD/Langevin (η = h²) sits on (T/k)/(1 − ηk/2), far from T/k."""
    k, temperature = 1.0, 1.0
    eta = h * h
    theta, _ = _stationary(itg.langevin(eta, temperature), k, h)
    expected = 1 / (1 - eta * k / 2)
    measured = theta.var() * k / temperature
    assert abs(measured / expected - 1) < Z * REL_SE, (measured, expected)
    assert measured - 1 > 20 * REL_SE  # the bias is resolved, not noise


def test_anisotropic_well_each_coordinate_at_its_own_equipartition_value():
    """U = ½(θ₁² + 4θ₂²), mass 2: ⟨θᵢ²⟩ = T/kᵢ, ⟨pᵢ²⟩/M = T(1 − h²kᵢ/(4M))."""
    k = np.array([1.0, 4.0])
    h, mass, temperature = 0.8, 2.0, 0.5
    opt = itg.baoab(h, friction=0.5, mass=mass, temperature=temperature)
    theta, p = _stationary(opt, k, h, dim=2, relax=60.0)
    np.testing.assert_allclose(theta.var(0) * k / temperature, 1, atol=Z * REL_SE)
    expected = 1 - h * h * k / (4 * mass)
    np.testing.assert_allclose(p.var(0) / mass / temperature / expected, 1, atol=Z * REL_SE)


def test_kinetic_energy_is_recorded_from_the_physical_velocity():
    h, mass, temperature = 0.5, 3.0, 2.0
    U = ls.quadratic([[1.0]])
    opt = itg.baoab(h, friction=1.0, mass=mass, temperature=temperature)
    traj = itg.simulate(opt, U, jnp.zeros((N, 1)), 100, jax.random.key(3), record_every=100)
    ke = np.asarray(traj.kinetic_energy[:, -1])
    expected = 0.5 * temperature * (1 - h * h / (4 * mass))  # ½⟨p²⟩/M per dof
    assert abs(ke.mean() / expected - 1) < Z * REL_SE * 1.5  # ½p²/M: relative SE √2·√(1/N)


def test_without_friction_or_temperature_it_is_velocity_verlet():
    """γ = T = 0: velocity Verlet, symplectic. On U = ½θ² (M = 1) it conserves the shadow
    energy p² + (1 − h²/4)θ² exactly (to rounding) over 10⁴ steps, while the true energy
    oscillates by O(h²) without drift."""
    h = 0.1
    U = ls.quadratic([[1.0]])
    opt = itg.baoab(h, friction=0.0, temperature=0.0)
    state = opt.init(jnp.array([1.0]))
    grad_fn = jax.grad(lambda x: U.energy(x))

    def body(s, _):
        s = opt.step(s, grad_fn(s.params), None, grad_fn)
        return s, (s.params[0], s.momentum[0])

    _, (q, p) = jax.lax.scan(body, state, None, length=10_000)
    q, p = np.asarray(q), np.asarray(p)
    shadow = p**2 + (1 - h * h / 4) * q**2
    np.testing.assert_allclose(shadow, 1 - h * h / 4, rtol=1e-11)
    energy = 0.5 * (p**2 + q**2)
    assert np.abs(energy - 0.5).max() < h * h / 8 * 1.01


def test_simulate_equals_the_step_called_by_hand():
    U = ls.rosenbrock()
    opt = itg.baoab(0.01, friction=2.0, temperature=0.1)
    x0 = jnp.array([[-1.0, 1.0], [0.5, 0.2]])
    key = jax.random.key(0)
    traj = itg.simulate(opt, U, x0, 1, key, prng_impl=None)
    grad_fn = jax.vmap(jax.grad(U.energy))
    state = opt.init(x0)
    # simulate's first step: the run key split as (noise, run), run split as (grad, step),
    # then step t folds t into the step key
    _, run = jax.random.split(key)
    _, step_key = jax.random.split(run)
    state = opt.step(state, grad_fn(x0), jax.random.fold_in(step_key, 0), grad_fn)
    np.testing.assert_allclose(traj.final_state.params, state.params, rtol=1e-12)


def test_step_without_grad_fn_is_refused_with_a_clear_error():
    opt = itg.baoab(0.1, 1.0)
    state = opt.init(jnp.zeros(2))
    with pytest.raises(ValueError, match="grad_fn"):
        opt.step(state, jnp.zeros(2), jax.random.key(0))


def test_dtype_follows_the_input():
    opt = itg.baoab(0.1, 1.0, temperature=0.5)
    traj = itg.simulate(opt, ls.double_well(), jnp.zeros((16, 1), jnp.float32), 50)
    assert traj.positions.dtype == jnp.float32
    assert traj.final_state.momentum.dtype == jnp.float32


def test_a_sweep_over_the_step_runs_every_value():
    k = 1.0
    hs = [0.5, 1.0]
    opt = itg.baoab(hs, friction=1.0, temperature=1.0)
    U = ls.quadratic([[k]])
    traj = itg.simulate(opt, U, jnp.zeros((N // 4, 1)), 80, jax.random.key(5), record=False)
    var = np.asarray(traj.final_state.params).var(axis=(1, 2))
    rel = math.sqrt(2 / (N // 4))
    np.testing.assert_allclose(var * k, 1, atol=Z * rel)
    kinetic = np.asarray(traj.final_state.momentum).var(axis=(1, 2))
    np.testing.assert_allclose(kinetic / (1 - np.square(hs) * k / 4), 1, atol=Z * rel)


def test_by_name_and_validation():
    assert itg.get("baoab", dt=0.1, friction=1.0).name == "baoab"
    with pytest.raises(ValueError, match="dt"):
        itg.baoab(-0.1, 1.0)
    with pytest.raises(ValueError, match="friction"):
        itg.baoab(0.1, -1.0)
