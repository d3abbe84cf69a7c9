"""The stochastic experiments: langevin_equilibrium, kramers, annealing, adaptive_memory.

Each experiment runs once at --quick settings (smoke: its PNG and JSON exist, the JSON holds
only finite numbers); the physics is checked on runs sized for it, with fixed seeds and
tolerances from the standard error:

* Langevin ensembles of 10⁵ particles match the Boltzmann density (total variation below
  0.02, where the multinomial noise floor is ≈ 0.006), and SGD with gradient noise at equal
  η/B samples the same density (the linear scaling rule);
* the overdamped mean first-passage time over the double-well barrier matches the exact
  quadrature within 5% at ΔU/T = 4 and 5 (standard error <= 1.5%, Euler–Maruyama bias at
  η = 0.005 measured at about −0.6%);
* constant-temperature annealing ends in the global basin with the Boltzmann probability;
* Adam's second moment forgets a dropped gradient scale over −1/ln β₂ steps; AdaGrad stalls
  after a gradient spike while RMSprop recovers.
"""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _json_leaves import json_leaves
from scipy import integrate

from optdyn import integrators as itg
from optdyn import landscape as ls
from optdyn.experiments import adaptive_memory, annealing, kramers
from optdyn.experiments import langevin_equilibrium as le
from optdyn.experiments._common import Config
from optdyn.experiments._first_passage import first_passage

FIGURES = {
    "langevin_equilibrium": ["langevin_equilibrium", "langevin_equilibrium_step_bias"],
    "kramers": ["kramers"],
    "annealing": ["annealing"],
    "adaptive_memory": ["adaptive_memory"],
}
MODULES = {
    "langevin_equilibrium": le,
    "kramers": kramers,
    "annealing": annealing,
    "adaptive_memory": adaptive_memory,
}


@pytest.mark.quick_experiment  # the others here are run-bound: XLA's default optimisation
@pytest.mark.parametrize("name", list(MODULES))
def test_quick_run_writes_figure_and_finite_json(name, tmp_path):
    data = MODULES[name].run(Config(quick=True, seed=0, out=str(tmp_path)))
    assert isinstance(data, dict) and data
    for figure in FIGURES[name]:
        png = tmp_path / f"{figure}.png"
        assert png.exists() and png.stat().st_size > 10_000, png
    saved = json.loads((tmp_path / f"{name}.json").read_text())
    leaves = list(json_leaves(saved))
    assert None not in leaves, "a NaN or inf reached the JSON"
    floats = [v for v in leaves if isinstance(v, float)]
    assert floats and np.all(np.isfinite(floats))


# ----------------------------------------------------------------------------- Boltzmann


def test_noise_floor_formula_matches_multinomial_sampling():
    """E[TV] of N exact samples ≈ ½ Σ √(2p(1−p)/(πN)): the floor the histogram test sits on."""
    p = le.bin_probabilities(0.25)
    n = 100_000
    rng = np.random.default_rng(0)
    tv = [le.total_variation(c / n, p) for c in rng.multinomial(n, p, size=400)]
    # 400 draws: the mean TV is known to ±1% (its sd is ~0.1 of its mean).
    assert np.mean(tv) == pytest.approx(le.noise_floor(p, n), rel=0.05)
    assert le.noise_floor(p, n) < 0.008  # far enough below the 0.02 tolerance


def test_langevin_ensembles_sample_boltzmann():
    temperatures = (0.25, 1.0)
    # 300 steps: t = 1.5, 24 relaxation times e^{−2U''t} of the wells (U'' = 8); the start is
    # symmetric in x₀ → −x₀, so the two wells begin with their Boltzmann weights (½ each).
    x = le.langevin_ensembles(temperatures, 100_000, 0.005, 300, jax.random.key(0), fuse=0)
    for i, T in enumerate(temperatures):
        good = le.compare(x[i, :, 0], T)
        assert good["tv"] < 0.02, good
        # the test has power: the same histogram is far from Boltzmann at a temperature 30% off
        assert le.compare(x[i, :, 0], 1.3 * T)["tv"] > 0.03


def test_sgd_linear_scaling_rule():
    """Equal η/B ⇒ equal T = ησ²/(2B) ⇒ the same histogram; a doubled η/B is hotter."""
    eta, sigma2, n, steps = 0.005, 100.0, 100_000, 300  # T = 0.25 at η/B = 0.005
    key1, key2 = jax.random.split(jax.random.key(1))
    b1 = le.sgd_ensembles([eta, 2 * eta], sigma2, 1, n, steps, key1, fuse=0)[:, :, 0]
    b2 = le.sgd_ensembles([2 * eta], sigma2, 2, n, steps, key2, fuse=0)[0, :, 0]
    assert le.compare(b1[0], 0.25)["tv"] < 0.02
    assert le.compare(b2, 0.25)["tv"] < 0.02
    assert le.compare(b1[1], 0.5)["tv"] < 0.02  # η/B doubled: T doubled
    assert le.compare(b1[1], 0.25)["tv"] > 0.05


def test_step_bias_against_the_closed_forms():
    """Each scheme's stationary ⟨θ²⟩k/T on the harmonic well within 5 standard errors of its
    closed form; BAOAB at 1, Euler–Maruyama resolved away from 1. 150 steps leave a
    transient below 1e-9 of the stationary values (`step_bias`)."""
    bias = le.step_bias(100_000, jax.random.key(2), quick=True, steps=150, fuse=0)
    tol = 5 * bias["relative_standard_error"]
    for name in ("euler_maruyama", "heavy_ball", "baoab", "baoab_kinetic"):
        np.testing.assert_allclose(bias[name] / bias["theory"][name], 1, atol=tol, err_msg=name)
    assert np.all(bias["euler_maruyama"][1:] - 1 > 20 * bias["relative_standard_error"])


# ----------------------------------------------------------------------------- Kramers


def _below(x):
    return x[:, 0] <= 0.01


def test_first_passage_scan_is_exact_for_gradient_descent():
    """GD on ½x²: x_k = (1 − η)^k x₀, so the first k with x_k <= c is known exactly; the
    particles finish at different steps, so the ensemble is compacted several times."""
    x0 = np.linspace(0.02, 50.0, 300)[:, None]
    opt = itg.sgd(lr=0.01)
    fp = first_passage(
        opt,
        ls.quadratic([[1.0]]),
        opt.init(jnp.asarray(x0)),
        jax.random.key(0),
        _below,
        max_steps=800,
        chunk=50,
        min_size=16,
    )
    expected = np.ceil(np.log(0.01 / x0[:, 0]) / np.log(0.99)).astype(int)
    expected[expected > 800] = -1
    assert np.array_equal(fp.steps, expected)
    assert (~fp.crossed).sum() == (expected < 0).sum() > 0


def test_exact_mfpt_quadrature_and_kramers_asymptote():
    T = 0.25

    def inner(y):
        return integrate.quad(lambda z: math.exp(-kramers.potential(z) / T), -np.inf, y)[0]

    nested = (
        integrate.quad(
            lambda y: math.exp(kramers.potential(y) / T) * inner(y), -1.0, 1.0, limit=200
        )[0]
        / T
    )
    assert kramers.exact_mfpt(T) == pytest.approx(nested, rel=1e-5)
    # Kramers' 1/k lies below the exact MFPT, ~10% at ΔU/T = 5, closing as ΔU/T grows.
    ratios = [1 / kramers.kramers_rate(1 / r) / kramers.exact_mfpt(1 / r) for r in (5, 10, 20)]
    assert 0.88 < ratios[0] < 0.92
    assert ratios[0] < ratios[1] < ratios[2] < 1.0


@pytest.mark.parametrize("barrier_over_T", [4.0, 5.0])
def test_overdamped_mfpt_matches_exact(barrier_over_T):
    T, n, lr = 1.0 / barrier_over_T, 4608, 0.005
    # float32, as the experiment runs by default (and half the random bits of float64)
    key = jax.random.key(int(barrier_over_T))
    times = kramers.overdamped_times(T, lr, n, key, dtype=np.float32)
    exact = kramers.exact_mfpt(T)
    se = times.std(ddof=1) / math.sqrt(n)
    assert se / exact <= 0.015
    assert times.mean() == pytest.approx(exact, rel=0.05)
    # escape is a Poisson process: exponential times have a coefficient of variation of 1
    assert times.std() / times.mean() == pytest.approx(1.0, abs=0.06)


# ----------------------------------------------------------------------------- annealing


def test_constant_temperature_reaches_the_boltzmann_basin_probability():
    name = "muller_brown"
    s = annealing.SETTINGS[name]
    n = 2000
    x0 = annealing.initial_ensemble(name, n, jax.random.key(0))
    xf = annealing._anneal(
        annealing.SCHEDULES.index("constant"),
        x0,
        jax.random.key(1),
        init_value=s["T0"],
        lr=s["lr"],
        sigma2=1.0,
        name=name,
        family="temperature",
        steps=s["steps"],
        fuse=0,
    )
    p = annealing.in_global_basin(name, xf, fuse=0).mean()
    expected = annealing.boltzmann_global_probability(name, s["T0"], 100, n, fuse=0)
    se = math.sqrt(expected * (1 - expected) / n)
    assert abs(p - expected) < 3 * se, (p, expected, se)
    assert abs(annealing.boltzmann_global_probability(name, 10.0, 100, n, 0) - p) > 10 * se


# ----------------------------------------------------------------------------- adaptive


def test_adam_second_moment_decays_over_minus_one_over_log_beta2():
    k0 = 1500
    run = adaptive_memory.adam_drop(k0, 1500, jax.random.key(0))
    for j, b2 in enumerate(adaptive_memory.BETA2):
        for i in range(2):
            tau = adaptive_memory.fit_decay_time(run["nu"][:, j, i], k0, b2)
            assert tau == pytest.approx(adaptive_memory.decay_time(b2), rel=0.05)
    # 1/(1 − β₂) is the same memory to O(1): the fit tells them apart only for small 1 − β₂
    assert adaptive_memory.decay_time(0.987) == pytest.approx(76.42, abs=0.01)


def test_adagrad_stalls_after_a_spike_while_rmsprop_recovers():
    runs = adaptive_memory.spike_runs(2000, 1e3, jax.random.key(0))
    loss0 = runs[("adagrad", "spike")]["loss"][0]
    assert runs[("adagrad", "spike")]["loss"][-1] > 0.9 * loss0  # AdaGrad's step stays tiny
    assert runs[("adagrad", "no spike")]["loss"][-1] < 0.7 * loss0
    assert runs[("rmsprop", "spike")]["loss"][-1] < 1e-3 * loss0  # RMSprop forgot the spike
    # AdaGrad's time step after the spike is η/√(G₀ + g_s²), for good
    g = runs[("adagrad", "spike")]["moment"]
    g_s2 = g[1] - 0.1
    assert np.all(g[-1] < 1.01 * g[1]) and np.all(g_s2 > 1e4)
