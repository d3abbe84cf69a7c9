"""The damping, saddle_escape, valley and stability experiments: smoke runs and their physics.

Each experiment runs once at --quick settings (float64 from conftest) inside one test, so
`pytest -n 2` never runs it twice; the test checks its files (smoke) and then the numbers
it returned against the closed forms it plots, one `_check_*` helper per claim.
"""

import json
import math

import numpy as np
import pytest
from _json_leaves import json_leaves

from optdyn.experiments import _damping_theory as th
from optdyn.experiments import damping, saddle_escape, stability, valley
from optdyn.experiments._common import Config

pytestmark = pytest.mark.quick_experiment  # `make test` runs these with --compile-fast

FIGURES = {
    "damping": ["damping_phase", "damping_rates", "damping_stability"],
    "saddle_escape": ["saddle_escape"],
    "valley": ["valley"],
    "stability": ["stability"],
}
MODULES = {
    "damping": damping,
    "saddle_escape": saddle_escape,
    "valley": valley,
    "stability": stability,
}


def _quick(name, tmp_path):
    data = MODULES[name].run(Config(quick=True, seed=0, out=str(tmp_path)))
    _check_outputs(name, tmp_path, data)
    return data


def _check_outputs(name, out, data):
    """Smoke: every PNG and the JSON exist, the JSON holds only finite numbers."""
    assert isinstance(data, dict) and data
    for figure in FIGURES[name]:
        png = out / f"{figure}.png"
        assert png.exists() and png.stat().st_size > 10_000, png
    saved = json.loads((out / f"{name}.json").read_text())
    leaves = list(json_leaves(saved))
    assert None not in leaves, "a NaN or inf reached the JSON"
    floats = [v for v in leaves if isinstance(v, float)]
    assert floats and np.all(np.isfinite(floats))


# ----------------------------------------------------------------------------- damping


def _check_damping_velocity_and_energy_balance(data):
    for regime in data["phase"]["regimes"].values():
        # v = (θ_k − θ_{k−1})/√η is the integrator's velocity: ½v² = Trajectory.kinetic_energy.
        assert regime["velocity_vs_kinetic_max_error"] < 1e-12
        # Ẽ + ∫γ v_k v̄_k dt is conserved exactly by symplectic Euler with friction.
        assert regime["energy_balance_max_error"] < 1e-12
    under = data["phase"]["regimes"]["under"]
    assert under["friction"] == pytest.approx((1 - 0.97) / math.sqrt(damping.PHASE_LR))


def _check_damping_rates_match_spectral_radius(data):
    rates = data["rates"]
    betas = rates["betas"]
    for name in (
        "one_heavy_ball",
        "one_nesterov",
        "two_heavy_ball_polyak_lr",
        "two_heavy_ball_unit_lr",
        "two_nesterov_unit_lr",
    ):
        case = rates[name]
        err = np.abs(case["measured"] - case["theory"])
        # Away from the double roots the fit is exact to ~1e-4; at a double root θ_k ∝ kρ^k
        # biases the fitted rate by ~1/k over the fitted window.
        assert np.all(err < 5e-3), (name, err.max())
    polyak = rates["polyak"]
    i = int(np.argmin(np.abs(betas - polyak["momentum"])))
    assert betas[i] == pytest.approx(polyak["momentum"])
    measured = rates["two_heavy_ball_polyak_lr"]["measured"][i]
    assert measured == pytest.approx(polyak["rate"], abs=5e-3)
    # Polyak's β* is the best β on the grid at η*.
    assert np.nanargmin(rates["two_heavy_ball_polyak_lr"]["measured"]) == i


def _check_damping_stability_region(data):
    for name in ("heavy_ball", "nesterov"):
        grid = data["stability"][name]
        assert grid["agreement_with_boundary"] == 1.0
        assert grid["undecided_fraction"] < 0.05
    label = data["stability"]["heavy_ball"]["label"]
    assert (label == 1).any() and (label == -1).any()


# ----------------------------------------------------------------------------- saddle escape


def _check_saddle_gd_and_momentum_steps_exact(data):
    r = data["saddle"]
    gd = np.array([st["mean"] for st in r["gd_vs_eps"]])
    np.testing.assert_array_equal(gd, np.ceil(r["theory"]["gd_vs_eps"]))
    assert gd == pytest.approx(
        np.log(1.0 / r["eps"]) / np.log(1 + saddle_escape.LR * saddle_escape.LAM), abs=1.0
    )
    mom = np.array([st["mean"] for st in r["momentum_vs_eps"]])
    np.testing.assert_array_equal(mom, np.ceil(r["theory"]["momentum_vs_eps"]))


def _check_saddle_noisy_escape_matches_linear_theory(data):
    r = data["saddle"]
    pairs = [
        (r["sgd_vs_T"], r["theory"]["sgd_vs_T"]),
        (r["momentum_vs_T"], r["theory"]["momentum_vs_T"]),
        (r["sgd_vs_eps"]["stats"], r["theory"]["sgd_vs_eps"]),
    ]
    for stats, theory in pairs:
        for st, t in zip(stats, theory, strict=True):
            assert st["escaped"] == 1.0
            assert abs(st["mean"] - t) < 4 * st["se"] + 0.05, (st, t)
    # Gaussian gradient noise σ² = 2T/η is the same heat bath as temperature T.
    g = r["sgd_gaussian_noise"]
    t = saddle_escape._linear(saddle_escape.sgd_mode(saddle_escape.LR, 0.0, g["temperature"]))
    assert abs(g["mean"] - t) < 4 * g["se"] + 0.05


def _check_adam_escape_time_independent_of_offset(data):
    for name in ("saddle", "monkey_saddle"):
        r = data[name]
        adam = np.array([st["mean"] for st in r["adam_vs_eps"]])
        gd = np.array([st["mean"] for st in r["gd_vs_eps"]])
        small = r["eps"] <= 0.1
        # ≈ (R − ε)/η steps: each step moves ≈ η (a little more while gradients grow).
        ideal = (saddle_escape.RADIUS - r["eps"]) / saddle_escape.ADAM_LR
        assert np.all((adam > 0.7 * ideal) & (adam <= ideal + 1))
        assert adam[small].max() / adam[small].min() < 1.15
        assert gd[small].max() / gd[small].min() > 3


def _check_monkey_saddle_gd_and_noise_scaling(data):
    r = data["monkey_saddle"]
    gd = r["gd_vs_eps"][0]["mean"]
    assert gd == pytest.approx(r["theory"]["gd_vs_eps"][0], rel=0.05)
    # Overdamped Langevin on a cubic: escape time ∝ T^(−1/3).
    assert r["sgd_vs_T_slope"] == pytest.approx(-1 / 3, abs=0.03)


# ----------------------------------------------------------------------------- valley


def _check_valley_counts_and_slopes(data):
    measured, theory = data["measured"], data["theory"]
    np.testing.assert_allclose(measured["gd"], theory["gd"], rtol=0.01)
    np.testing.assert_allclose(measured["momentum"], theory["momentum_exact"], atol=1)
    assert data["slopes"]["gd"] == pytest.approx(1.0, abs=0.1)
    assert data["slopes"]["momentum"] == pytest.approx(0.5, abs=0.1)
    assert all(k > 0 for k in measured["adam"])


def test_valley_gd_closed_form():
    for kappa in (10.0, 1e4):
        rho = (kappa - 1) / (kappa + 1)
        k = valley.gd_theory_steps(kappa)
        assert rho ** (2 * k) < valley.TOL <= rho ** (2 * (k - 1))


# ----------------------------------------------------------------------------- stability


def _by_factor(run, factor):
    return list(run["factors"] if "factors" in run else stability.QUAD_FACTORS).index(factor)


def _check_stability_threshold_on_quadratic(data):
    quad = data["quadratic"]
    for name in ("gd", "heavy_ball"):
        run = quad[name]
        below, above = _by_factor(quad, 0.98), _by_factor(quad, 1.02)
        assert run["diverged_step"][below] == -1
        assert run["loss"][below, -1] < 1e-6 * run["loss"][below, 0]
        assert run["diverged_step"][above] > 0
        assert run["diverged_step"][above] == run["predicted_divergence_step"][above]
        scan = run["scan"]
        np.testing.assert_array_equal(scan["diverged_step"], scan["predicted"])
    assert quad["heavy_ball"]["threshold_lr"] == pytest.approx(2 * (1 + stability.BETA))


def _check_stability_threshold_on_rosenbrock(data):
    rosen = data["rosenbrock"]
    assert rosen["lambda_max"] == pytest.approx(1001.6, abs=0.05)
    for name in ("gd", "heavy_ball"):
        run = rosen[name]
        below, above = _by_factor(run, 0.98), _by_factor(run, 1.02)
        # Below the threshold: converges to the minimum (1, 1) (the soft mode, λ ≈ 0.4,
        # decays by only 1 − ηλ ≈ 1 − 8e-4 a step).
        assert run["diverged_step"][below] == -1
        assert run["final_distance"][below] < 1e-3
        assert run["loss"][below, -1] < 1e-5 * run["loss"][below, 0]
        # Above it: expelled from the minimum, never converges to it.
        assert run["final_distance"][above] > 1e-2
        assert run["loss"][above, -1] > run["loss"][above, 0]
    gd = rosen["gd"]
    for f in (1.02, 1.1):  # edge of stability: local sharpness settles at ≈ 2/η
        i = _by_factor(gd, f)
        late = gd["sharpness"][i, gd["sharpness"].shape[1] // 2 :]
        assert np.median(late) * gd["lrs"][i] / 2 == pytest.approx(1.0, abs=0.03)
    big = _by_factor(gd, 2.0)
    assert gd["diverged_step"][big] > 0


def test_divergence_step_closed_form():
    # GD on ½λθ²: ⌊log(bound/|θ₀|)/log|1 − ηλ|⌋ + 1.
    for eta_lam in (2.04, 2.2, 3.0):
        k = stability.divergence_step(eta_lam, 0.0)
        assert k == math.floor(math.log(stability.BOUND) / math.log(eta_lam - 1)) + 1
    assert stability.divergence_step(1.9, 0.0) == -1
    assert th.spectral_radius(2 * (1 + 0.9), 0.9) == pytest.approx(1.0)


# ----------------------------------------------------------------------------- the runs


def test_damping(tmp_path):
    data = _quick("damping", tmp_path)
    _check_damping_velocity_and_energy_balance(data)
    _check_damping_rates_match_spectral_radius(data)
    _check_damping_stability_region(data)


def test_saddle_escape(tmp_path):
    data = _quick("saddle_escape", tmp_path)
    _check_saddle_gd_and_momentum_steps_exact(data)
    _check_saddle_noisy_escape_matches_linear_theory(data)
    _check_adam_escape_time_independent_of_offset(data)
    _check_monkey_saddle_gd_and_noise_scaling(data)


def test_valley(tmp_path):
    data = _quick("valley", tmp_path)
    _check_valley_counts_and_slopes(data)


def test_stability(tmp_path):
    data = _quick("stability", tmp_path)
    _check_stability_threshold_on_quadratic(data)
    _check_stability_threshold_on_rosenbrock(data)
