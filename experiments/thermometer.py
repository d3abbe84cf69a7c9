r"""A thermometer for any optimizer: the temperature a run has against the one it is stated at.

The configurational thermometer T_conf = ⟨|∇U|²⟩/⟨∇²U⟩ (Rugh 1997) needs positions only,
so it reads every optimizer, overdamped or not; the kinetic one, T_kin = ⟨v²⟩ per degree of
freedom, reads heavy ball from its displacement velocity Δθ/√η. Each run is held against
`integrators.stated_temperature` (the continuum value of its optimizer and noise model):

- SGD with Gaussian gradient noise C/B: T = η·tr C/(2Bd); on U = ½Σk_iθ_i² Euler–Maruyama
  reads T_conf = Σ_i k_i T/(1 − ηk_i/2) / Σ_i k_i (drawn);
- heavy ball (β = 0.9) with the same noise: T = η·tr C/(2Bd(1−β)); its kinetic reading is
  2T/(1 + β − ηk/2) per mode, 5.3% high at η → 0 (drawn);
- BAOAB at its `temperature`: exactly T on the quadratic;
- Adam with the same noise: T ≈ η·σ_B/2 (σ_B² = c/B dominating v̂) — an approximation that
  the thermometer tests, a few percent high because v̂ also holds the squared mean gradient;
- optax's `noisy_sgd(α, eta, gamma=0)` through `from_optax`: T = α·eta/2.

Landscapes: the quadratic ½(θ₁² + 4θ₂²) and the 2-D double well (θ₁² − 1)² + ½θ₂²
(particles start in both minima). Ensembles of particles, burn-in discarded; error bars are
4 standard errors from the spread between independent particles.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

from .. import integrators as itg
from .. import landscape as ls
from ._common import Config, save_figure, save_json
from .plotting import COLORS

DESCRIPTION = "configurational and kinetic thermometers read SGD, heavy ball, BAOAB, Adam, optax"
ORDER = 21

TEMPERATURES = (0.05, 0.1, 0.2)
COVARIANCE, BATCH = 25.0, 1  # gradient noise σ²/B = 25 per coordinate (σ_B = 5)
BETA = 0.9
CURVATURES = np.array([1.0, 4.0])
STYLE = {
    "SGD": (COLORS["sgd"], "o"),
    "heavy ball": (COLORS["momentum"], "s"),
    "heavy ball (kinetic)": (COLORS["momentum"], "D"),
    "BAOAB": (COLORS["nesterov"], "^"),
    "Adam": (COLORS["adam"], "v"),
    "optax noisy_sgd": (COLORS["rmsprop"], "P"),
}


def settings(config: Config) -> dict:
    if config.quick:
        return {"n": 64, "steps": 300, "burn": 150, "every": 5}
    return {"n": 1000, "steps": 4000, "burn": 1500, "every": 5}


def _optimizers():
    """(label, optimizer, noise, stated temperatures) with three temperatures swept in one call."""
    noise = itg.gaussian(COVARIANCE, BATCH)
    t = np.asarray(TEMPERATURES)
    sgd = itg.sgd(list(2 * t * BATCH / COVARIANCE))
    hb = itg.momentum(list(2 * t * BATCH * (1 - BETA) / COVARIANCE), BETA)
    adam = itg.adam(list(2 * t / np.sqrt(COVARIANCE / BATCH)))
    baoab = itg.baoab(0.2, 1.0, temperature=list(t))
    alpha = 2 * TEMPERATURES[1] / COVARIANCE
    noisy = optax.noisy_sgd(alpha, eta=COVARIANCE, gamma=0.0, key=0)
    return [
        ("SGD", sgd, noise, itg.stated_temperature(sgd, noise)),
        ("heavy ball", hb, noise, itg.stated_temperature(hb, noise)),
        ("BAOAB", baoab, None, itg.stated_temperature(baoab)),
        ("Adam", adam, noise, itg.stated_temperature(adam, noise)),
        (
            "optax noisy_sgd",
            noisy,
            None,
            np.array([itg.noisy_sgd_temperature(alpha, COVARIANCE, 0)]),
        ),
    ]


def _measure(label, opt, noise, stated, U, x0, s, key):
    stream = {"conf": itg.configurational_thermometer(U, start=s["burn"], every=s["every"])}
    if label == "heavy ball":
        lrs = np.asarray(opt.hyperparams["lr"])
        # one displacement thermometer per swept η (dt = √η): read the matching row
        for i, lr in enumerate(lrs):
            stream[f"kin{i}"] = itg.kinetic_thermometer(
                float(np.sqrt(lr)), start=s["burn"], every=s["every"]
            )
    traj = itg.simulate(opt, U, x0, s["steps"], key, noise=noise, record=False, stream=stream)
    out = {
        label: {
            "stated": np.atleast_1d(stated),
            "measured": np.atleast_1d(np.asarray(traj.stream["conf"].temperature)),
            "stderr": np.atleast_1d(np.asarray(traj.stream["conf"].stderr)),
        }
    }
    if label == "heavy ball":
        kin = [traj.stream[f"kin{i}"] for i in range(len(stated))]
        out["heavy ball (kinetic)"] = {
            "stated": np.atleast_1d(stated),
            "measured": np.array([float(r.temperature[i]) for i, r in enumerate(kin)]),
            "stderr": np.array([float(r.stderr[i]) for i, r in enumerate(kin)]),
        }
    return out


def _math_label(label: str) -> str:
    """'heavy ball (kinetic)' -> 'heavy ball $T_{kin}$', others -> '<label> $T_{conf}$'."""
    if label.endswith(" (kinetic)"):
        return label.removesuffix(" (kinetic)") + r" $T_{\rm kin}$"
    return label + r" $T_{\rm conf}$"


def _theory_quadratic(stated):
    """Finite-step readings on ½Σk_iθ_i²: SGD T_conf and heavy ball's kinetic T_kin."""
    t = np.asarray(stated)
    k = CURVATURES
    lr_sgd = 2 * t * BATCH / COVARIANCE
    sgd = t * np.sum(k / (1 - np.outer(lr_sgd, k) / 2), axis=1) / k.sum()
    lr_hb = 2 * t * BATCH * (1 - BETA) / COVARIANCE
    kin = t * np.mean(2 / (1 + BETA - np.outer(lr_hb, k) / 2), axis=1)
    return {"SGD": sgd / t, "heavy ball (kinetic)": kin / t}


def run(config: Config) -> dict:
    s = settings(config)
    landscapes = {
        "quadratic ½(θ₁² + 4θ₂²)": ls.quadratic(np.diag(CURVATURES)),
        "double well (θ₁² − 1)² + ½θ₂²": ls.double_well(dim=2),
    }
    results = {}
    for li, (name, U) in enumerate(landscapes.items()):
        n = s["n"]
        start = np.zeros((n, 2))
        if "double" in name:
            start[:, 0] = np.where(np.arange(n) % 2 == 0, -1.0, 1.0)
        x0 = jnp.asarray(start, jnp.float32)
        readings = {}
        for oi, (label, opt, noise, stated) in enumerate(_optimizers()):
            key = jax.random.key(config.seed * 100 + li * 10 + oi)
            readings.update(_measure(label, opt, noise, stated, U, x0, s, key))
        results[name] = readings

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), sharey=True)
    offsets = dict(zip(STYLE, np.linspace(-0.06, 0.06, len(STYLE)), strict=True))
    for ax, (name, readings) in zip(axes, results.items(), strict=True):
        ax.axhline(1.0, color=COLORS["theory"], lw=1, label="stated T (continuum)")
        if "quadratic" in name:
            grid = np.geomspace(TEMPERATURES[0] * 0.8, TEMPERATURES[-1] * 1.25, 50)
            for label, ratio in _theory_quadratic(grid).items():
                ax.plot(
                    grid, ratio, "--", color=STYLE[label][0], lw=1,
                    label=f"{_math_label(label)}: finite-step theory",
                )  # fmt: skip
        for label, r in readings.items():
            color, marker = STYLE[label]
            x = r["stated"] * np.exp(offsets[label])
            ax.errorbar(
                x, r["measured"] / r["stated"], yerr=4 * r["stderr"] / r["stated"],
                fmt=marker, color=color, mfc="white" if "kinetic" in label else color,
                ms=6, capsize=2, label=_math_label(label),
            )  # fmt: skip
        ax.set_xscale("log")
        ax.set_xlabel("stated temperature T (units of the loss)")
        ax.set_title(name)
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel("measured / stated temperature")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=9, loc="lower center", ncol=3, bbox_to_anchor=(0.5, -0.13))
    fig.suptitle(
        r"Thermometers $T_{\rm conf} = \langle|\nabla U|^2\rangle/\langle\nabla^2 U\rangle$ and "
        r"$T_{\rm kin} = \langle v^2\rangle$ against the stated temperature; bars: 4 SE",
        fontsize=11,
    )
    fig.tight_layout()
    save_figure(fig, config, "thermometer")

    data = {"settings": s, "noise_variance_per_sample": COVARIANCE, "batch_size": BATCH}
    data["readings"] = {
        name: {label: {k: np.asarray(v).tolist() for k, v in r.items()} for label, r in rd.items()}
        for name, rd in results.items()
    }
    quad = next(iter(results.values()))
    data["finite_step_theory_quadratic"] = {
        k: v.tolist() for k, v in _theory_quadratic(np.asarray(TEMPERATURES)).items()
    }
    data["z_scores_quadratic"] = {
        label: ((quad[label]["measured"] - quad[label]["stated"] * theory) / quad[label]["stderr"])
        .round(2)
        .tolist()
        for label, theory in (
            ("SGD", _theory_quadratic(np.asarray(TEMPERATURES))["SGD"]),
            ("BAOAB", np.ones(len(TEMPERATURES))),
            (
                "heavy ball (kinetic)",
                _theory_quadratic(np.asarray(TEMPERATURES))["heavy ball (kinetic)"],
            ),
        )
    }
    save_json(data, config, "thermometer")
    return data
