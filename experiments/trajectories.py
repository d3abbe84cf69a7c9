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
from ._common import COLORS, Config, plot_landscape, save_figure, save_json
from .animation import animate

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
        "legend": "lower right",
        "optimizers": {
            "sgd": dict(lr=1e-3),
            "momentum": dict(lr=1e-3, momentum=0.9),
            "nesterov": dict(lr=1e-3, momentum=0.9),
            "adam": dict(lr=2e-2),
            "rmsprop": dict(lr=2e-3),
        },
    },
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
        1, 2, figsize=(12.5, 5.2), gridspec_kw={"width_ratios": [1.15, 1]}
    )
    cs, clabel = plot_landscape(ax_path, U, log=setting["log_contours"])
    fig.colorbar(cs, ax=ax_path, label=clabel, shrink=0.9)
    summary = {}
    for name, traj in results.items():
        pos, loss, steps_rec = (np.asarray(a) for a in (traj.positions, traj.loss, traj.steps))
        # Cut a path one step after it leaves the plotting box (it escaped the saddle).
        outside = (pos[:, 0] < xa) | (pos[:, 0] > xb) | (pos[:, 1] < ya) | (pos[:, 1] > yb)
        left_at = int(np.argmax(outside)) if outside.any() else None
        if left_at is not None:
            pos, loss, steps_rec = pos[: left_at + 1], loss[: left_at + 1], steps_rec[: left_at + 1]
        ax_path.plot(
            pos[:, 0],
            pos[:, 1],
            "-",
            color=COLORS[name],
            lw=1.6,
            label=_describe(name, setting["optimizers"][name]),
        )
        ax_path.plot(pos[-1, 0], pos[-1, 1], "o", color=COLORS[name], mec="black", ms=6)
        if U.global_minimum is not None:
            shown, ylabel = loss - U.global_minimum.value, "U(θ) − U_min"
        else:
            shown, ylabel = loss, "U(θ)"
        ax_loss.plot(steps_rec, shown, color=COLORS[name], lw=1.6, label=LABELS[name])
        summary[name] = {
            "hyperparameters": setting["optimizers"][name],
            "final_position": np.asarray(traj.positions)[-1],
            "final_loss": np.asarray(traj.loss)[-1],
            "left_plot_box_at_step": None if left_at is None else int(steps_rec[-1]),
            "diverged_step": int(traj.diverged_step),
        }
    ax_path.plot(*np.asarray(x0), "s", color="white", mec="black", ms=8, label="start")
    ax_path.legend(loc=setting.get("legend", "best"), fontsize=8, framealpha=0.85)
    ax_path.set_title(f"{U.description or U.name}: paths from one start")
    if U.global_minimum is not None:
        ax_loss.set_yscale("log")
    else:
        ax_loss.set_yscale("symlog", linthresh=1e-2)
        ax_loss.set_title("loss against step (until the path leaves the box)")
    ax_loss.set_xlabel("step k")
    ax_loss.set_ylabel(ylabel)
    if U.global_minimum is not None:
        ax_loss.set_title("loss against step")
    ax_loss.grid(alpha=0.3, which="both")
    ax_loss.legend(fontsize=8)
    fig.suptitle(f"Optimizer trajectories on {U.name} ({steps} steps)", fontsize=13)
    fig.tight_layout()
    save_figure(fig, config, f"trajectories_{key}")
    if config.animate:
        animate(
            {LABELS[k]: t for k, t in results.items()},
            U,
            Path(config.out) / f"trajectories_{key}.gif",
            colors={LABELS[k]: COLORS[k] for k in results},
        )
    return {"landscape": U.name, "start": x0, "steps": steps, "optimizers": summary}


def run(config: Config) -> dict:
    data = {key: run_landscape(key, config) for key in SETTINGS}
    save_json(data, config, "trajectories")
    return data
