"""Integrators against closed forms: stability thresholds, Polyak's rate, stationary variances
on a harmonic well at finite step size, and equipartition of underdamped Langevin dynamics.

Every statistical check uses a fixed seed, >= 10^5 independent particles and a tolerance of
3 standard errors, where the standard error of a second moment estimated from N independent
Gaussian samples with variance v is v·√(2/N). Records pooled from one trajectory are spaced
so that their correlation (the squared spectral radius of the linear update raised to the
spacing) is below 1e-3, and the burn-in makes the transient bias far below the tolerance.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optdyn import integrators as itg
from optdyn.landscape._base import Landscape

N_PARTICLES = 100_000
LAMBDAS = np.array([1.0, 3.0])  # curvatures of the 2-D harmonic well

HARMONIC_1D = Landscape(lambda x: 0.5 * jnp.sum(x**2), "harmonic", 1)
HARMONIC_2D = Landscape(lambda x: 0.5 * (x[0] ** 2 + 3.0 * x[1] ** 2), "harmonic2", 2)


class AdditiveNoise:
    """Gradient noise model: exact gradient plus N(0, σ²) per coordinate (a heat bath)."""

    def __init__(self, sigma: float):
        self.sigma = sigma

    def init(self, landscape, key, n_particles):
        return ()

    def gradient(self, landscape, x, state, key):
        grads = jax.vmap(jax.grad(landscape.energy))(x)
        return grads + self.sigma * jax.random.normal(key, x.shape, x.dtype), state


UNIT_NOISE = AdditiveNoise(1.0)


def spectral_radius(eta_lambda: float, beta: float) -> float:
    """Largest |z| of the heavy-ball map on ½λx²: z² − (1 + β − ηλ)z + β = 0."""
    return float(np.max(np.abs(np.roots([1.0, -(1.0 + beta - eta_lambda), beta]))))


def stationary_records(traj, burn_in: int) -> np.ndarray:
    """Positions recorded at steps >= burn_in, shape (n, records, dim)."""
    return np.asarray(traj.positions)[:, traj.steps >= burn_in, :]


def assert_second_moment(samples: np.ndarray, predicted: np.ndarray, label: str):
    """⟨x_i²⟩ per coordinate within 3 SE of `predicted`, SE = v·√(2/N); mean within 3 SE."""
    samples = samples.reshape(-1, samples.shape[-1])
    n = samples.shape[0]
    measured = np.mean(samples**2, axis=0)
    se = predicted * np.sqrt(2.0 / n)
    assert np.all(np.abs(measured - predicted) < 3 * se), (
        f"{label}: measured {measured}, predicted {predicted}, SE {se}"
    )
    assert np.all(np.abs(samples.mean(axis=0)) < 3 * np.sqrt(predicted / n)), label
    return measured, se


# ----------------------------------------------------------------------------- gradient descent


def test_gd_harmonic_threshold_eta_lambda_2():
    """GD on ½λx² is x_k = (1 − ηλ)^k x_0: stable for ηλ = 1.9, diverges for ηλ = 2.1."""
    steps, bound = 300, 1e8
    traj = itg.simulate(itg.sgd(lr=[1.9, 2.1]), HARMONIC_1D, jnp.array([1.0]), steps, bound=bound)
    x = np.asarray(traj.positions[..., 0])  # (2, steps + 1)
    k = np.arange(steps + 1)

    # stable member: exactly the geometric sequence, never flagged
    assert int(traj.diverged_step[0]) == -1
    np.testing.assert_allclose(x[0], (-0.9) ** k, rtol=1e-12, atol=1e-300)
    assert abs(x[0, -1]) < 1e-13

    # unstable member: |x_k| = 1.1^k first exceeds the bound at k*, frozen at k* − 1 after
    k_star = int(np.argmax(1.1**k > bound))
    assert int(traj.diverged_step[1]) == k_star
    np.testing.assert_allclose(x[1, :k_star], (-1.1) ** k[:k_star], rtol=1e-12)
    assert np.all(x[1, k_star:] == x[1, k_star - 1])
    for leaf in jax.tree_util.tree_leaves(traj):
        assert np.all(np.isfinite(np.asarray(leaf))), "a diverged particle leaked inf/NaN"


def test_gd_nonfinite_step_is_caught_and_frozen():
    """GD on x⁴ with η = 1 overflows to inf (then NaN) within 7 steps; no NaN leaks.

    The particle is frozen at its last finite position (~4e249, inside the bound), where the
    energy x⁴ itself overflows: the recorded loss may be +inf there, but never NaN.
    """
    quartic = Landscape(lambda x: jnp.sum(x**4), "quartic", 1)
    traj = itg.simulate(itg.sgd(lr=1.0), quartic, jnp.array([1.0]), 20, bound=1e300)
    x, k_star = np.float64(1.0), 0
    with np.errstate(over="ignore", invalid="ignore"):
        while np.isfinite(x) and abs(x) <= 1e300:
            x, k_star = x - 4.0 * x**3, k_star + 1
    assert int(traj.diverged_step) == k_star
    assert k_star < 20
    assert np.all(np.isfinite(traj.positions)) and np.all(np.isfinite(traj.final_state.params))
    assert np.all(np.isfinite(traj.loss[: k_star - 1]))  # x⁴ overflows at the frozen x
    for leaf in jax.tree_util.tree_leaves(traj):
        assert not np.any(np.isnan(np.asarray(leaf)))


def test_gd_quadratic_bowl_reaches_minimum():
    """GD on ½xᵀHx + bᵀx from an ensemble of starts converges to −H⁻¹b."""
    H = np.array([[3.0, 1.0], [1.0, 2.0]])
    b = np.array([1.0, -1.0])
    bowl = Landscape(lambda x: 0.5 * x @ jnp.asarray(H) @ x + jnp.asarray(b) @ x, "bowl", 2)
    x0 = jax.random.normal(jax.random.key(1), (8, 2)) * 5
    mu, L = np.linalg.eigvalsh(H)
    traj = itg.simulate(itg.sgd(lr=2 / (mu + L)), bowl, x0, steps=200)
    expected = -np.linalg.solve(H, b)
    np.testing.assert_allclose(traj.final_state.params, np.tile(expected, (8, 1)), atol=1e-12)
    assert not np.any(traj.diverged)


# ----------------------------------------------------------------------------- heavy ball


def test_heavy_ball_polyak_rate():
    """Polyak's η*, β* on eigenvalues μ = 1, L = 100 contract at (√κ − 1)/(√κ + 1) per step."""
    mu, L = 1.0, 100.0
    kappa = L / mu
    lr = 4 / (np.sqrt(L) + np.sqrt(mu)) ** 2
    beta = ((np.sqrt(kappa) - 1) / (np.sqrt(kappa) + 1)) ** 2
    bowl = Landscape(lambda x: 0.5 * (mu * x[0] ** 2 + L * x[1] ** 2), "kappa100", 2)
    traj = itg.simulate(itg.momentum(lr=lr, momentum=beta), bowl, jnp.array([1.0, 1.0]), 400)
    norms = np.linalg.norm(np.asarray(traj.positions), axis=-1)
    window = slice(200, 401)
    slope = np.polyfit(np.arange(401)[window], np.log(norms[window]), 1)[0]
    measured = np.exp(slope)
    predicted = (np.sqrt(kappa) - 1) / (np.sqrt(kappa) + 1)
    assert measured == pytest.approx(predicted, rel=0.02), (measured, predicted)
    # the ratio of norms over 200 steps agrees too; plain GD's best rate would be 0.98
    ratio = (norms[400] / norms[200]) ** (1 / 200)
    assert ratio == pytest.approx(predicted, rel=0.02)


def test_heavy_ball_stability_threshold():
    """Heavy ball on ½λx² is stable iff ηλ < 2(1 + β): 2% below converges, 2% above diverges."""
    betas = np.array([0.0, 0.0, 0.5, 0.5, 0.9, 0.9])
    scale = np.array([0.98, 1.02, 0.98, 1.02, 0.98, 1.02])
    lrs = 2 * (1 + betas) * scale  # λ = 1
    steps, bound = 2000, 1e8
    traj = itg.simulate(
        itg.momentum(lr=lrs, momentum=betas), HARMONIC_1D, jnp.array([1.0]), steps, bound=bound
    )
    for i, (lr, beta) in enumerate(zip(lrs, betas, strict=True)):
        rho = spectral_radius(lr, beta)
        diverged = int(traj.diverged_step[i])
        if scale[i] < 1:
            assert diverged == -1, (lr, beta)
            assert abs(float(traj.positions[i, -1, 0])) < 1e-6
        else:
            # |x_k| ~ c·ρ^k crosses the bound after about log(bound)/log(ρ) steps
            expected = np.log(bound) / np.log(rho)
            assert 0.8 * expected < diverged < 1.2 * expected, (lr, beta, diverged, expected)
    for leaf in jax.tree_util.tree_leaves(traj):
        assert np.all(np.isfinite(np.asarray(leaf)))


# ----------------------------------------------------------------------------- stationary variance

ETA = 0.5  # ηλ = 0.5 and 1.5 on the two coordinates: the finite-step corrections are large
TEMPERATURE = 1.0
BURN_IN, SPACING, RECORDS = 40, 12, 3


def _stationary_samples(optimizer, noise=None, key=0) -> np.ndarray:
    """N_PARTICLES started at 0 in the 2-D well: positions (n, RECORDS, 2) after BURN_IN.

    Each test passes its own key so that the tests are independent draws.
    """
    steps = BURN_IN + SPACING * (RECORDS - 1)
    x0 = jnp.zeros((N_PARTICLES, 2))
    traj = itg.simulate(
        optimizer, HARMONIC_2D, x0, steps, jax.random.key(key), noise=noise, record_every=SPACING
    )
    assert not np.any(traj.diverged)
    samples = stationary_records(traj, BURN_IN)
    assert samples.shape == (N_PARTICLES, RECORDS, 2)
    return samples


def _check_mixing(beta: float):
    """Assumptions of the SE: transient bias and inter-record correlation both negligible.

    The covariance of the linear update relaxes as ρ^(2k), and the correlation of x² between
    records `SPACING` apart is at most ρ^(2·SPACING), ρ the spectral radius of the update.
    """
    rho = max(spectral_radius(ETA * lam, beta) for lam in LAMBDAS)
    assert rho ** (2 * SPACING) < 1e-3
    assert rho ** (2 * BURN_IN) < 1e-6


def test_langevin_stationary_variance_finite_step():
    """SGLD on ½λx²: ⟨x²⟩ = (T/λ)/(1 − ηλ/2) exactly, not the continuum T/λ."""
    _check_mixing(0.0)
    samples = _stationary_samples(itg.sgd(ETA, temperature=TEMPERATURE), key=1)
    predicted = (TEMPERATURE / LAMBDAS) / (1 - ETA * LAMBDAS / 2)
    measured, se = assert_second_moment(samples, predicted, "langevin")
    # the finite-step correction is resolved: the continuum limit is many SE away
    assert np.all(np.abs(measured - TEMPERATURE / LAMBDAS) > 10 * se)


def test_langevin_alias_same_as_sgd_with_temperature():
    x = jax.random.normal(jax.random.key(0), (4, 2))
    key = jax.random.key(1)
    a, b = itg.langevin(ETA, TEMPERATURE), itg.sgd(ETA, temperature=TEMPERATURE)
    np.testing.assert_array_equal(
        a.step(a.init(x), x, key).params, b.step(b.init(x), x, key).params
    )
    assert a.name == "langevin"


def test_sgd_gradient_noise_stationary_variance():
    """SGD with gradient noise of variance σ²: ⟨x²⟩ = ησ²/(λ(2 − ηλ))."""
    _check_mixing(0.0)
    samples = _stationary_samples(itg.sgd(ETA), noise=UNIT_NOISE, key=2)
    sigma2 = UNIT_NOISE.sigma**2
    predicted = ETA * sigma2 / (LAMBDAS * (2 - ETA * LAMBDAS))
    assert_second_moment(samples, predicted, "sgd + gradient noise")


def heavy_ball_variance(eta, beta, lam, sigma2):
    """ησ²(1 + β)/(λ(1 − β)(2(1 + β) − ηλ)): the stationary ⟨x²⟩ of noisy heavy ball."""
    return eta * sigma2 * (1 + beta) / (lam * (1 - beta) * (2 * (1 + beta) - eta * lam))


def test_heavy_ball_gradient_noise_stationary_variance():
    beta = 0.5
    _check_mixing(beta)
    samples = _stationary_samples(itg.momentum(ETA, momentum=beta), UNIT_NOISE, key=3)
    predicted = heavy_ball_variance(ETA, beta, LAMBDAS, UNIT_NOISE.sigma**2)
    assert_second_moment(samples, predicted, "heavy ball + gradient noise")


def test_heavy_ball_thermostat_is_gradient_noise():
    """momentum(temperature=T) adds gradient noise of variance 2T(1 − β)/η: same ⟨x²⟩."""
    beta = 0.3
    _check_mixing(beta)
    samples = _stationary_samples(itg.momentum(ETA, momentum=beta, temperature=TEMPERATURE), key=4)
    sigma2 = 2 * TEMPERATURE * (1 - beta) / ETA
    predicted = heavy_ball_variance(ETA, beta, LAMBDAS, sigma2)
    measured, se = assert_second_moment(samples, predicted, "heavy ball thermostat")
    assert np.all(np.abs(measured - TEMPERATURE / LAMBDAS) > 10 * se)


# ----------------------------------------------------------------------------- underdamped Langevin

FRICTION, MASS = 1.2, 2.0  # ω² = λ/M = 0.5, 1.5: both coordinates underdamped (ω > γ/2)


def kinetic_temperature_exact(dt: float) -> np.ndarray:
    """Stationary 2⟨K⟩ per coordinate of the scheme, exactly: T/(1 − γdt/2 − ω²dt²/4).

    From the Lyapunov equation of m' = βm + λθ + σξ, θ' = θ − ηm': ⟨m²⟩ =
    2σ²/((1−β)(2(1+β) − ηλ)); with v = −(dt/M)m, η = dt²/M, β = 1 − γdt, σ² = 2T(1−β)/η.
    """
    omega2 = LAMBDAS / MASS
    return TEMPERATURE / (1 - FRICTION * dt / 2 - omega2 * dt**2 / 4)


def _equipartition(dt: float, spacing: int):
    """Mean kinetic temperature per degree of freedom, its SE, and the exact prediction."""
    opt = itg.underdamped_langevin(dt, FRICTION, MASS, TEMPERATURE)
    beta = 1 - FRICTION * dt
    burn_in, records = 2 * spacing, 3
    rho = max(spectral_radius(dt**2 / MASS * lam, beta) for lam in LAMBDAS)
    assert rho ** (2 * spacing) < 3e-3 and rho ** (2 * burn_in) < 1e-5
    steps = burn_in + spacing * (records - 1)
    x0 = jnp.zeros((N_PARTICLES, 2))
    traj = itg.simulate(opt, HARMONIC_2D, x0, steps, jax.random.key(7), record_every=spacing)
    assert not np.any(traj.diverged)
    # the observable and the recorded kinetic energy agree on the final state (2K/d, d = 2)
    t_kin_final = itg.kinetic_temperature(opt, traj.final_state, batch_ndim=1)
    np.testing.assert_allclose(t_kin_final, traj.kinetic_energy[:, -1], rtol=1e-12)
    kinetic = np.asarray(traj.kinetic_energy)[:, traj.steps >= burn_in]
    t_kin = np.mean(kinetic)  # 2K/d = K for d = 2
    predicted_per_dof = kinetic_temperature_exact(dt)
    # each sample of 2K/d = K = Σ_i ½Mv_i² = Σ_i (T_i/2)·χ²₁ has variance Σ_i T_i²/2
    se = np.sqrt(np.sum(predicted_per_dof**2) / 2 / kinetic.size)
    return t_kin, se, float(np.mean(predicted_per_dof))


def test_underdamped_equipartition_first_order_in_dt():
    """⟨½Mv²⟩ = T/2 per degree of freedom up to O(dt): measured at dt = 0.2 and 0.1."""
    dts = (0.2, 0.1)
    spacing = 46  # (1 − γ·0.1)^46 < 3e-3; shared by both runs so they share one compilation
    results = [_equipartition(dt, spacing) for dt in dts]
    errors = []
    for dt, (t_kin, se, predicted) in zip(dts, results, strict=True):
        # exact finite-dt kinetic temperature, within 3 SE
        assert abs(t_kin - predicted) < 3 * se, (dt, t_kin, predicted, se)
        # the derived bound: |T_kin/T − 1| <= γ·dt for γdt, ω²dt² small (+ 3 SE)
        assert abs(t_kin / TEMPERATURE - 1) < FRICTION * dt + 3 * se / TEMPERATURE
        errors.append((t_kin / TEMPERATURE - 1, se / TEMPERATURE, predicted / TEMPERATURE - 1))
    (e1, s1, p1), (e2, s2, p2) = errors
    # measured order of convergence log(e1/e2)/log(dt1/dt2): first order (exact value ≈ 1.16)
    order = np.log(e1 / e2) / np.log(dts[0] / dts[1])
    order_exact = np.log(p1 / p2) / np.log(dts[0] / dts[1])
    order_se = np.sqrt((s1 / e1) ** 2 + (s2 / e2) ** 2) / np.log(dts[0] / dts[1])
    assert abs(order - order_exact) < 3 * order_se, (order, order_exact, order_se)
    assert 0.75 < order < 1.5


def test_physical_units_round_trip():
    """to_physical ∘ to_optimizer is the identity: exactly on dyadic numbers, else to ~ulp."""
    units = itg.to_optimizer(dt=0.5, friction=0.5, mass=2.0)
    assert units == {"lr": 0.125, "momentum": 0.75}
    assert itg.to_physical(**units, mass=2.0) == {"dt": 0.5, "friction": 0.5, "mass": 2.0}
    rng = np.random.default_rng(0)
    for dt, friction, mass in rng.uniform(0.01, 1.0, (20, 3)):
        back = itg.to_physical(**itg.to_optimizer(dt, friction, mass), mass=mass)
        assert back["dt"] == pytest.approx(dt, rel=4e-16)
        # γ = (1 − β)/dt loses the digits cancelled in 1 − β, β = 1 − γdt
        assert back["friction"] == pytest.approx(friction, rel=1e-13)
        assert back["mass"] == mass
        lr, beta = rng.uniform(0.01, 1.0, 2)
        fwd = itg.to_optimizer(**itg.to_physical(lr, beta, mass))
        assert fwd["lr"] == pytest.approx(lr, rel=4e-16)
        assert fwd["momentum"] == pytest.approx(beta, rel=4e-16)


def test_underdamped_langevin_is_heavy_ball():
    """underdamped_langevin(dt, γ, M, T) gives the positions of momentum(dt²/M, 1 − γdt, T)."""
    dt, friction, mass, temperature = 0.5, 0.5, 2.0, 0.3  # lr = 0.125, β = 0.75 exactly
    x0 = jax.random.normal(jax.random.key(3), (16, 2))
    key = jax.random.key(4)
    phys = itg.simulate(
        itg.underdamped_langevin(dt, friction, mass, temperature), HARMONIC_2D, x0, 50, key
    )
    units = itg.to_optimizer(dt, friction, mass)
    opt = itg.simulate(itg.momentum(**units, temperature=temperature), HARMONIC_2D, x0, 50, key)
    np.testing.assert_array_equal(phys.positions, opt.positions)
    # ½M|v|² with v = −(dt/M)m equals heavy ball's ½η|m|² (M = 1, dt = √η)
    np.testing.assert_allclose(phys.kinetic_energy, opt.kinetic_energy, rtol=1e-12)
