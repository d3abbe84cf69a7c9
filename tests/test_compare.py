"""The fair comparison reproduces Polyak's √κ: heavy ball against GD on a quadratic valley.

Optimally tuned GD contracts by ρ_GD = (κ−1)/(κ+1) per step, heavy ball at β* =
((√κ−1)/(√κ+1))² by ρ_HB = (√κ−1)/(√κ+1), so the steps to a target U₀·ε scale as
ln(1/ε)/(2 ln 1/ρ). The runs are deterministic (exact gradients). Each median is checked against the
asymptotic steps at its tuned rate within 10% (the transient: a prefactor A of ρᵏ costs
ln A / ln(1/ρ) steps, a few on ~200); the ratio against √κ within the grid's resolution
(heavy ball's best grid rate, 3% below η*, leaves the slow mode overdamped: ρ 0.85 for 0.82).
"""

import math

import numpy as np
import pytest
from PIL import Image, ImageSequence

from optdyn import integrators as itg
from optdyn import landscape as ls
from optdyn.experiments import compare as cmp
from optdyn.experiments._protocol import median_interval, parse_optimizer, steps_to_target
from optdyn.experiments.animation import animate

KAPPA = 100.0
BETA = ((math.sqrt(KAPPA) - 1) / (math.sqrt(KAPPA) + 1)) ** 2
SETTINGS = dict(
    optimizers={"gd": "gd", "hb": f"momentum:momentum={BETA}"},
    start=[(-8.0, 8.0), (-0.8, 0.8)],
    steps=2500,
    target=1e-28,
    lr_range={"gd": (1.0, 2.2), "hb": (1.5, 4.5)},
    n_lr=24,
    tune_seeds=4,
    test_seeds=8,
    seed=0,
)


@pytest.fixture(scope="module")
def result():
    return cmp.compare(ls.valley(condition_number=KAPPA), **SETTINGS)


def test_heavy_ball_is_sqrt_kappa_faster_than_gd(result):
    gd, hb = result["optimizers"]["gd"], result["optimizers"]["hb"]
    assert result["ranking"] == ["hb", "gd"]
    assert gd["success_rate"] == hb["success_rate"] == 1.0
    eig = np.array([1 / KAPPA, 1.0])  # the valley's Hessian: μ = 1/κ, L = 1
    # the closed-form rates at the optimal tuning (Polyak 1964)
    rho_gd = (KAPPA - 1) / (KAPPA + 1)
    rho_hb = (math.sqrt(KAPPA) - 1) / (math.sqrt(KAPPA) + 1)
    np.testing.assert_allclose(cmp.contraction(2 / (1 + 1 / KAPPA), eig), rho_gd, rtol=1e-12)
    np.testing.assert_allclose(cmp.contraction(4 / 1.1**2, eig, BETA), rho_hb, rtol=1e-6)
    # each measured median against ln(U₀/target) / (2 ln 1/ρ) at its tuned rate
    u0, target = result["initial_loss_median"], SETTINGS["target"]
    for r, beta in ((gd, 0.0), (hb, BETA)):
        expected = cmp.asymptotic_steps(r["tuned_lr"], eig, beta, u0, target)
        assert abs(r["median_steps"] / expected - 1) < 0.1, (r["median_steps"], expected)
    # the tuned rates are the grid's best: within one grid factor of the optimal contraction
    factor = (SETTINGS["lr_range"]["gd"][1] / SETTINGS["lr_range"]["gd"][0]) ** (1 / 23)
    assert cmp.contraction(gd["tuned_lr"] * factor, eig) > rho_gd  # the next one is past η*
    measured = gd["median_steps"] / hb["median_steps"]
    theory = math.log(rho_hb) / math.log(rho_gd)  # 10.0 ≈ √κ at the optimal rates
    assert 0.75 * theory < measured < 1.1 * theory, (measured, theory)


def test_same_seed_same_numbers(result):
    again = cmp.compare(ls.valley(condition_number=KAPPA), **{**SETTINGS, "n_lr": 24})
    for label in ("gd", "hb"):
        a, b = result["optimizers"][label], again["optimizers"][label]
        assert a["tuned_lr"] == b["tuned_lr"] and a["interval"] == b["interval"]
        np.testing.assert_array_equal(a["paths"], b["paths"])


def test_steps_to_target_and_bootstrap():
    loss = np.array([[5.0, 2.0, 0.5, 0.1], [5.0, 4.0, 3.0, 2.0], [5.0, 0.5, 0.1, 0.1]])
    hit = steps_to_target(loss, np.array([0, 10, 20, 30]), 0.6, np.array([-1, -1, 5]))
    np.testing.assert_array_equal(hit, [20, np.inf, np.inf])  # the third diverged first
    med, lo, hi = median_interval(np.arange(1.0, 102.0), np.random.default_rng(0))
    assert med == 51 and lo < 51 < hi and hi - lo < 30


def test_bad_specs_name_the_argument():
    with pytest.raises(ValueError, match="optimizer"):
        parse_optimizer("momentun")
    with pytest.raises(ValueError, match="lr is tuned"):
        parse_optimizer("gd:lr=0.1")
    with pytest.raises(ValueError, match="start"):
        cmp.compare("valley", ["gd"], start=[1.0, 2.0, 3.0], steps=10, target=1e-3)


def test_animation_is_written_whole_with_every_frame(tmp_path):
    U = ls.valley(condition_number=10.0)
    x0 = np.array([[-2.0, 0.3], [1.5, -0.4]])
    traj = itg.simulate(itg.momentum(0.5, momentum=0.5), U, x0, 40, record_every=4)
    (path,) = animate(traj, U, tmp_path / "a.gif", frames=4, dpi=40, mp4=False)
    frames = list(ImageSequence.Iterator(Image.open(path)))
    assert len(frames) == 4
    assert path.stat().st_size < 3e6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gif"]  # no temporary file left
