"""Trajectories of SGD, momentum, Nesterov, Adam and RMSprop on three classic landscapes.

For the saddle x² − y², an ill-conditioned valley and Rosenbrock: a contour plot with every
optimizer's path from one start (minima ★ and saddles × marked) and the loss against step.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from .. import integrators as itg
from .. import landscape as ls
from . import _damping_theory as theory
from ._common import Config, save_figure, save_json
from .animation import animate
from .plotting import COLORS, LINESTYLES, clip_to_box, plot_landscape, plot_path, theory_line

DESCRIPTION = "paths of SGD, momentum, Nesterov, Adam, RMSprop on saddle, valley, Rosenbrock"
ORDER = 0

# Per landscape: the start, the step budget and each optimizer's hyperparameters, chosen so
# that every path shows its character (GD zig-zags in the valley, momentum overshoots, ...).
SETTINGS = {
    "saddle": {
        "landscape": lambda: ls.saddle(),
        "x0": (1.5, 1e-3),
        "steps": 120,
        "log_contours": False,
        "optimizers": {
            "sgd": dict(lr=0.05),
            "momentum": dict(lr=0.05, momentum=0.8),
            "nesterov": dict(lr=0.05, momentum=0.8),
            "adam": dict(lr=0.05),
            "rmsprop": dict(lr=0.05),
        },
    },
    "valley": {
        "landscape": lambda: ls.valley(condition_number=50.0),
        "x0": None,  # from the plotting box: (−0.9·x_max, 0.6·y_max)
        "steps": 150,
        "log_contours": False,
        "anchor": 0.5,  # the fraction of the run at which the theory slope meets the loss
        "optimizers": {
            "sgd": dict(lr=1.9),
            "momentum": dict(lr=0.5, momentum=0.8),
            "nesterov": dict(lr=0.5, momentum=0.8),
            "adam": dict(lr=0.3),
            "rmsprop": dict(lr=0.1),
        },
    },
    "rosenbrock": {
        "landscape": lambda: ls.rosenbrock(),
        "x0": (-1.5, 2.0),
        "steps": 3000,
        "log_contours": True,
        "anchor": 0.67,
        "theory": ("momentum", "nesterov"),  # GD is still in the curved valley at the end
        "loss_legend": "lower left",
        "optimizers": {
            "sgd": dict(lr=1e-3),
            "momentum": dict(lr=1e-3, momentum=0.9),
            "nesterov": dict(lr=1e-3, momentum=0.9),
            "adam": dict(lr=2e-2),
            "rmsprop": dict(lr=2e-3),
        },
    },
}

# GD drawn wide and underneath, the others on top with their dash patterns: no path hides one.
STYLE = {
    "sgd": dict(lw=3.2, alpha=0.75, zorder=2),
    "momentum": dict(lw=1.5, zorder=3),
    "nesterov": dict(lw=1.5, ls=LINESTYLES["nesterov"], zorder=3),
    "adam": dict(lw=1.5, zorder=3),
    "rmsprop": dict(lw=1.5, ls=LINESTYLES["rmsprop"], zorder=4),
}

LABELS = {
    "sgd": "GD",
    "momentum": "heavy ball",
    "nesterov": "Nesterov",
    "adam": "Adam",
    "rmsprop": "RMSprop",
}


def _describe(name: str, hyper: dict) -> str:
    parts = [f"η={hyper['lr']:g}"]
    if "momentum" in hyper:
        parts.append(f"β={hyper['momentum']:g}")
    return f"{LABELS[name]} ({', '.join(parts)})"


def run_landscape(key: str, config: Config) -> dict:
    setting = SETTINGS[key]
    U = setting["landscape"]()
    (xa, xb), (ya, yb) = U.bounds[:2]
    x0 = setting["x0"] or (xa + 0.05 * (xb - xa), ya + 0.8 * (yb - ya))
    x0 = jnp.asarray(x0, dtype=jnp.float64 if jax.config.jax_enable_x64 else jnp.float32)
    steps = setting["steps"] if not config.quick else max(10, setting["steps"] // 10)
    results = {}
    for name, hyper in setting["optimizers"].items():
        traj = itg.simulate(itg.get(name, **hyper), U, x0, steps, jax.random.key(config.seed))
        results[name] = traj

    fig, (ax_path, ax_loss) = plt.subplots(
        1, 2, figsize=(12.5, 5.6), gridspec_kw={"width_ratios": [1.15, 1]}
    )
    cs, clabel = plot_landscape(
        ax_path, U, log=setting["log_contours"], n=80 if config.quick else 200
    )
    fig.colorbar(cs, ax=ax_path, label=clabel, shrink=0.9)
    summary = {}
    for name, traj in results.items():
        pos, loss, steps_rec = (np.asarray(a) for a in (traj.positions, traj.loss, traj.steps))
        # Cut a path one step after it leaves the plotting box (it escaped the saddle).
        pos, left_at = clip_to_box(pos, U.bounds)
        loss, steps_rec = loss[: len(pos)], steps_rec[: len(pos)]
        plot_path(
            ax_path,
            pos,
            color=COLORS[name],
            label=_describe(name, setting["optimizers"][name]),
            end_marker="o" if left_at is None else None,
            **STYLE[name],
        )
        if key == "saddle":  # the escape: distance along the unstable direction
            shown = np.abs(pos[:, 1])
        elif U.global_minimum is not None:
            shown = loss - U.global_minimum.value
        else:
            shown = loss
        ax_loss.plot(steps_rec, shown, color=COLORS[name], **STYLE[name])
        summary[name] = {
            "hyperparameters": setting["optimizers"][name],
            "final_position": np.asarray(traj.positions)[-1],
            "final_loss": np.asarray(traj.loss)[-1],
            "left_plot_box_at_step": None if left_at is None else int(steps_rec[-1]),
            "diverged_step": int(traj.diverged_step),
        }
    ax_path.plot(*np.asarray(x0), "s", color="white", mec="black", ms=8, label="start", zorder=6)
    rates = THEORY[key](U, setting, np.asarray(x0), steps, results, ax_loss)
    for name, rate in rates.items():
        summary[name]["linear_rate_theory"] = rate
    ax_path.set_title(f"{U.description or U.name}: paths from one start", fontsize=11)
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("step k")
    ax_loss.grid(alpha=0.3, which="major")
    ax_loss.legend(fontsize=8.5, loc=setting.get("loss_legend", "best"), framealpha=0.9)
    handles, labels = ax_path.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=9, frameon=False)
    fig.suptitle(f"Optimizer trajectories on {U.name} ({steps} steps)", fontsize=13)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    save_figure(fig, config, f"trajectories_{key}")
    if config.animate:
        animate(
            {LABELS[k]: t for k, t in results.items()},
            U,
            Path(config.out) / f"trajectories_{key}.gif",
            colors={LABELS[k]: COLORS[k] for k in results},
        )
    return {"landscape": U.name, "start": x0, "steps": steps, "optimizers": summary}


def _linear_rate(name: str, hyper: dict, lam: float) -> float:
    """Per-step factor ρ of the linear map on the mode of curvature λ (|ρ| > 1: it grows)."""
    eta_lam = hyper["lr"] * lam
    if name == "sgd":
        return abs(1.0 - eta_lam)
    return float(theory.spectral_radius(eta_lam, hyper["momentum"], nesterov=name == "nesterov"))


def _saddle_theory(U, setting, x0, steps, results, ax) -> dict:
    """|θ₂,k| = a·ρᵏ on U = x² − y² (λ = −2 along θ₂): the linear maps' growing mode."""
    lam = -2.0
    rates = {}
    k = np.arange(steps + 1)
    for name in ("sgd", "momentum", "nesterov"):
        hyper = setting["optimizers"][name]
        if name == "sgd":
            matrix = np.array([[1.0 - hyper["lr"] * lam]])
            z0 = np.array([x0[1]])
        else:
            build = theory.nesterov_matrix if name == "nesterov" else theory.heavy_ball_matrix
            matrix = build(hyper["lr"] * lam, hyper["momentum"])
            z0 = np.array([x0[1], x0[1]])  # m₀ = 0: θ₋₁ = θ₀
        mode = theory.growing_mode(matrix, z0)
        rates[name] = mode["growth"]
        line = np.abs(mode["amplitude"]) * mode["growth"] ** k
        keep = line <= 2.0 * U.bounds[1][1]
        theory_line(ax, k[keep], line[keep], ls=(0, (2, 2)), lw=1.2)
    ax.plot([], [], color="black", ls=(0, (2, 2)), lw=1.2, label=r"theory $a\,\rho^k$ (linear map)")
    for name in results:
        ax.plot([], [], color=COLORS[name], **STYLE[name], label=_rate_label(name, rates))
    ax.axhline(U.bounds[1][1], color="gray", lw=0.8, ls=":")
    ax.set_ylabel(r"$|\theta_2|$, distance along the unstable direction")
    ax.set_title(r"escape: $|\theta_2|$ grows as $\rho^k$ until it leaves the box", fontsize=11)
    return rates


def _rate_label(name: str, rates: dict) -> str:
    return f"{LABELS[name]}, ρ = {rates[name]:.4g}" if name in rates else LABELS[name]


def _quadratic_theory(U, setting, x0, steps, results, ax) -> dict:
    """U_k − U_min ∝ ρ^{2k}, ρ = max over the Hessian's eigenvalues of the linear map's factor."""
    lams = np.linalg.eigvalsh(
        np.asarray(
            jax.jit(jax.hessian(U.energy))(jnp.asarray(U.global_minimum.x, x0.dtype)), np.float64
        )
    )
    rates = {}
    k = np.arange(steps + 1)
    for name in setting.get("theory", ("sgd", "momentum", "nesterov")):
        hyper = setting["optimizers"][name]
        rates[name] = max(_linear_rate(name, hyper, lam) for lam in lams)
        loss = np.asarray(results[name].loss) - U.global_minimum.value
        anchor = int(setting["anchor"] * steps)
        line = loss[anchor] * rates[name] ** (2 * (k - anchor))
        keep = k >= anchor // 2
        theory_line(ax, k[keep], line[keep], color="black", ls=(0, (2, 2)), lw=1.1)
    ax.plot([], [], color="black", ls=(0, (2, 2)), lw=1.1, label=r"theory slope $\rho^{2k}$")
    for name in results:
        ax.plot([], [], color=COLORS[name], **STYLE[name], label=_rate_label(name, rates))
    ax.set_ylabel(r"$U(\theta_k) - U_{\min}$")
    ax.set_title(
        f"loss; dashed: linear rate near the minimum, Hessian λ = {lams.min():.4g}"
        f" … {lams.max():.4g}",
        fontsize=10,
    )
    return rates


THEORY = {"saddle": _saddle_theory, "valley": _quadratic_theory, "rosenbrock": _quadratic_theory}


def run(config: Config) -> dict:
    data = {key: run_landscape(key, config) for key in SETTINGS}
    save_json(data, config, "trajectories")
    return data
