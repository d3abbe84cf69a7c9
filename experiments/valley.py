r"""Ill-conditioned valleys: steps to a tolerance grow like κ for GD and like √κ with momentum.

On `landscape.valley(condition_number=κ)`, U = ½(μx² + Ly²) with μ = 1/κ, L = 1, started at
θ₀ = (1/√μ, 1/√L) = (√κ, 1) (equal energy ½ in both modes, U₀ = 1), we count the steps
until U(θ_k) < tol·U₀ (tol = 10⁻⁶), recording U at every step so the count is exact.

* Gradient descent at η = 2/(L + μ) multiplies both modes by ±(κ − 1)/(κ + 1), so
  U_k = ρ^{2k}U₀ exactly and k = ⌈log tol / (2 log((κ − 1)/(κ + 1)))⌉ ≈ (κ/4)·log(1/tol).
* Polyak's heavy ball, η* = 4/(√L + √μ)², β* = ((√κ − 1)/(√κ + 1))², puts both modes at the
  double root of the 2×2 iteration matrix: the rate is ρ* = (√κ − 1)/(√κ + 1), so
  k ≈ log tol/(2 log ρ*) ≈ (√κ/4)·log(1/tol), plus a log k correction from the double root
  (θ_k ∝ (1 + ck)ρ*^k); the exact count follows from powers of the matrix.
  Gradient descent runs as heavy ball with β = 0 (the same update) in one sweep with it.
* Adam (η fixed) is invariant to rescaling a coordinate, so on this axis-aligned valley it
  sees a unit problem with step η/√κ along the floor: its count also grows roughly like √κ.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from .. import integrators as itg
from .. import landscape as ls
from . import _damping_theory as th
from ._common import Config, save_figure, save_json
from .plotting import COLORS, plot_landscape

DESCRIPTION = "steps to a tolerance vs condition number κ: GD ∝ κ, heavy ball ∝ √κ, Adam"
ORDER = 12

TOL = 1e-6  # stop when U < TOL·U(θ₀)
ADAM_LR = 0.1  # Adam's fixed learning rate (b1 = 0.9, b2 = 0.999)
PATH_KAPPA = 100.0  # the valley whose paths are drawn
PATH_STEPS = 80


def start(kappa: float) -> np.ndarray:
    """θ₀ = (√κ, 1): energy ½ in each mode, U₀ = 1."""
    return np.array([math.sqrt(kappa), 1.0])


def momentum_sweep(kappa: float, extra: tuple = ()) -> tuple[list[str], object]:
    """GD at η = 2/(L + μ) and Polyak's heavy ball on μ = 1/κ, L = 1 as one zipped sweep.

    Gradient descent is heavy ball with β = 0 (m_{k+1} = ∇U, θ_{k+1} = θ_k − η∇U, the same
    update), so both share one compilation; `extra` appends (name, lr, β) members.
    """
    mu, L = 1.0 / kappa, 1.0
    polyak = th.polyak(mu, L)
    members = [("gd", 2.0 / (L + mu), 0.0), ("momentum", polyak["lr"], polyak["momentum"])]
    members += list(extra)
    opt = itg.momentum(lr=[m[1] for m in members], momentum=[m[2] for m in members])
    return [m[0] for m in members], opt


def gd_theory_steps(kappa: float, tol: float = TOL) -> int:
    """⌈log tol / (2 log ρ)⌉ with ρ = (κ − 1)/(κ + 1): exact for GD at η = 2/(L + μ)."""
    return math.ceil(th.steps_to_tolerance(th.gd_rate(1.0 / kappa, 1.0), tol))


def heavy_ball_rate_steps(kappa: float, tol: float = TOL) -> float:
    """log tol / (2 log ρ*), ρ* = (√κ − 1)/(√κ + 1): the count from the rate alone."""
    return th.steps_to_tolerance(th.polyak(1.0 / kappa, 1.0)["rate"], tol)


def heavy_ball_exact_steps(kappa: float, tol: float = TOL, max_steps: int = 10**6) -> int:
    """First k with U(θ_k) < tol·U₀ from powers of the two 2×2 heavy-ball matrices."""
    mu, L = 1.0 / kappa, 1.0
    p = th.polyak(mu, L)
    theta0 = start(kappa)
    curv = np.array([mu, L])
    mats = [th.heavy_ball_matrix(p["lr"] * c, p["momentum"]) for c in curv]
    z = [np.array([x, x]) for x in theta0]  # (θ_k, θ_{k−1}); θ_{−1} = θ₀ (zero momentum)
    u0 = 0.5 * np.sum(curv * theta0**2)
    for k in range(1, max_steps + 1):
        z = [m @ zi for m, zi in zip(mats, z, strict=True)]
        if 0.5 * sum(c * zi[0] ** 2 for c, zi in zip(curv, z, strict=True)) < tol * u0:
            return k
    return -1


def heavy_ball_exact_loss(kappa: float, steps: int) -> np.ndarray:
    """U(θ_k)/U₀, k = 0..steps, for Polyak's heavy ball from powers of the 2×2 matrices."""
    mu, L = 1.0 / kappa, 1.0
    p = th.polyak(mu, L)
    theta0, curv = start(kappa), np.array([mu, L])
    mats = [th.heavy_ball_matrix(p["lr"] * c, p["momentum"]) for c in curv]
    z = [np.array([x, x]) for x in theta0]
    out = [1.0]
    u0 = 0.5 * np.sum(curv * theta0**2)
    for _ in range(steps):
        z = [m @ zi for m, zi in zip(mats, z, strict=True)]
        out.append(0.5 * sum(c * zi[0] ** 2 for c, zi in zip(curv, z, strict=True)) / u0)
    return np.array(out)


def first_below(loss: np.ndarray, steps: np.ndarray, tol: float = TOL) -> int:
    """First recorded step with U_k < tol·U_0 (−1: never); `loss` recorded every step."""
    below = np.flatnonzero(loss < tol * loss[0])
    return int(steps[below[0]]) if below.size else -1


def fit_slope(kappas, counts) -> float:
    """Least-squares slope of log(count) against log κ (counts <= 0 are left out)."""
    kappas, counts = np.asarray(kappas, float), np.asarray(counts, float)
    ok = counts > 0
    return float(np.polyfit(np.log(kappas[ok]), np.log(counts[ok]), 1)[0])


def count_sweep(kappas) -> dict:
    """Measured steps to tolerance for every κ and optimizer, with the theory.

    U is recorded at every step (`record_positions=False` keeps it to two floats a step), so
    the counts are exact; the budgets come from the theory with a margin.
    """
    out = {name: [] for name in ("gd", "momentum", "adam")}
    # One step budget per optimizer for every κ (the largest κ's), so that each optimizer
    # compiles one program: κ, η and β are traced numbers, the step count is not.
    top = float(np.max(kappas))
    budget = max(int(1.02 * gd_theory_steps(top)), int(1.2 * heavy_ball_exact_steps(top))) + 20
    adam_budget = int(10 * math.sqrt(top) / ADAM_LR) + 500
    for kappa in kappas:
        U = ls.valley(condition_number=float(kappa))
        x0 = jnp.asarray(start(kappa))
        names, opt = momentum_sweep(kappa)
        traj = itg.simulate(opt, U, x0, budget, record_positions=False)
        for name, loss in zip(names, np.asarray(traj.loss, float), strict=True):
            out[name].append(first_below(loss, traj.steps))
        traj = itg.simulate(itg.adam(lr=ADAM_LR), U, x0, adam_budget, record_positions=False)
        out["adam"].append(first_below(np.asarray(traj.loss, float), traj.steps))
    theory = {
        "gd": [gd_theory_steps(k) for k in kappas],
        "momentum_rate_only": [heavy_ball_rate_steps(k) for k in kappas],
        "momentum_exact": [heavy_ball_exact_steps(k) for k in kappas],
    }
    slopes = {name: fit_slope(kappas, out[name]) for name in out}
    slopes["gd_theory"] = fit_slope(kappas, theory["gd"])
    slopes["momentum_theory"] = fit_slope(kappas, theory["momentum_exact"])
    return {"kappas": np.asarray(kappas), "measured": out, "theory": theory, "slopes": slopes}


SMOOTH = {"lr": 0.5, "momentum": 0.8}  # a gentler heavy ball for the path panel


def paths(config: Config) -> dict:
    """Positions and losses of GD, heavy ball (Polyak's and a gentler one) and Adam at κ = 100."""
    U = ls.valley(condition_number=PATH_KAPPA)
    x0 = jnp.asarray(start(PATH_KAPPA) * np.array([-1.0, 1.0]))
    steps = 40 if config.quick else PATH_STEPS
    key = jax.random.key(config.seed)
    names, opt = momentum_sweep(PATH_KAPPA, extra=(("smooth", SMOOTH["lr"], SMOOTH["momentum"]),))
    sweep = itg.simulate(opt, U, x0, steps, key)
    adam = itg.simulate(itg.adam(lr=ADAM_LR), U, x0, steps, key)
    runs = {
        name: {"positions": np.asarray(sweep.positions[i]), "loss": np.asarray(sweep.loss[i])}
        for i, name in enumerate(names)
    }
    runs["adam"] = {"positions": np.asarray(adam.positions), "loss": np.asarray(adam.loss)}
    return {
        "landscape": U,
        "x0": np.asarray(x0),
        "steps": np.asarray(sweep.steps),
        "momentum_exact_loss": heavy_ball_exact_loss(PATH_KAPPA, steps),
        "trajectories": runs,
    }


LABELS = {
    "gd": "GD, η = 2/(L+μ)",
    "momentum": "heavy ball, Polyak η*, β*",
    "adam": f"Adam, η = {ADAM_LR:g}",
    "smooth": f"heavy ball, η = {SMOOTH['lr']:g}, β = {SMOOTH['momentum']:g}",
}
PATH_COLORS = {**COLORS, "smooth": "#e377c2"}
# Polyak's wide swings drawn thin and underneath, so GD's zig-zag stays visible on top.
PATH_STYLE = {
    "gd": {"lw": 1.2, "ms": 3, "zorder": 3},
    "momentum": {"lw": 0.8, "ms": 2.5, "alpha": 0.8, "zorder": 2},
    "smooth": {"lw": 1.4, "ms": 3, "zorder": 4},
    "adam": {"lw": 1.4, "ms": 3, "zorder": 4},
}
# Curves that a theory line runs along are drawn wide, so the line stays on top of them.
LOSS_STYLE = {"gd": {"lw": 4, "alpha": 0.5}, "momentum": {"lw": 4, "alpha": 0.5}}


def _plot(counts: dict, path: dict, config: Config) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(19, 5.8), gridspec_kw={"width_ratios": [1, 1.25, 1]})
    kappas = counts["kappas"]
    fine = np.geomspace(kappas[0], kappas[-1], 200)

    ax = axes[0]
    slopes = counts["slopes"]
    for name, marker in (("gd", "o"), ("momentum", "s"), ("adam", "^")):
        label = LABELS[name]
        measured = np.asarray(counts["measured"][name], float)
        ok = measured > 0
        ax.loglog(
            kappas[ok],
            measured[ok],
            marker,
            color=COLORS[name],
            ms=8,
            mfc="none",
            mew=1.6,
            label=f"{label}: measured, slope {slopes[name]:.3f}",
        )
    ax.loglog(
        fine,
        [th.steps_to_tolerance(th.gd_rate(1 / k, 1), TOL) for k in fine],
        "-",
        color=COLORS["gd"],
        lw=1.3,
        label="theory GD: log tol / 2 log((κ−1)/(κ+1)) ∝ κ",
    )
    ax.loglog(
        fine,
        [heavy_ball_rate_steps(k) for k in fine],
        "--",
        color=COLORS["momentum"],
        lw=1.3,
        label="theory heavy ball, rate only: log tol / 2 log ρ*",
    )
    ax.loglog(
        kappas,
        counts["theory"]["momentum_exact"],
        ":",
        color=COLORS["momentum"],
        lw=1.6,
        label=f"theory heavy ball, exact 2×2 powers, slope {slopes['momentum_theory']:.3f}",
    )
    ax.set_xlabel("condition number κ = L/μ")
    ax.set_ylabel(f"steps until U < {TOL:g}·U(θ₀)")
    ax.set_title("steps to tolerance against κ")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=9, loc="upper left")

    ax = axes[1]
    U = path["landscape"]
    extent = max(1.05 * np.abs(t["positions"][:, 1]).max() for t in path["trajectories"].values())
    extent = max(extent, U.bounds[1][1])
    box = dataclasses.replace(U, bounds=(U.bounds[0], (-extent, extent)))
    cs, clabel = plot_landscape(ax, box, log=False, n=80 if config.quick else 200)
    fig.colorbar(cs, ax=ax, label=clabel, shrink=0.9)
    for name, traj in path["trajectories"].items():
        pos = traj["positions"]
        ax.plot(
            pos[:, 0],
            pos[:, 1],
            ".-",
            color=PATH_COLORS[name],
            label=LABELS[name],
            **PATH_STYLE[name],
        )
    ax.plot(*path["x0"], "s", color="white", mec="black", ms=8, label="start")
    mu = 1.0 / PATH_KAPPA
    ax.set_title(
        f"κ = {PATH_KAPPA:g}, {len(pos) - 1} steps: GD zig-zags and creeps along the floor "
        f"(ρ = {th.gd_rate(mu, 1.0):.3f}/step);\nPolyak's heavy ball swings wider but every mode "
        f"shrinks at ρ* = {th.polyak(mu, 1.0)['rate']:.3f}/step; a gentler β damps the swing",
        fontsize=10,
    )
    ax.legend(fontsize=9, loc="lower right", framealpha=0.9)

    ax = axes[2]
    for name, traj in path["trajectories"].items():
        loss = np.asarray(traj["loss"], float)
        keep = loss > 0
        ax.semilogy(
            path["steps"][keep],
            loss[keep] / loss[0],
            color=PATH_COLORS[name],
            label=LABELS[name],
            **LOSS_STYLE.get(name, {"lw": 1.5}),
        )
    k = path["steps"]
    ax.semilogy(
        k,
        th.gd_rate(mu, 1.0) ** (2 * k),
        "--",
        color="black",
        lw=1,
        label="theory GD: ((κ−1)/(κ+1))²ᵏ",
    )
    ax.semilogy(
        k,
        path["momentum_exact_loss"],
        ":",
        color="black",
        lw=1.6,
        label="theory heavy ball: exact 2×2 matrix powers",
    )
    ax.semilogy(
        k,
        th.polyak(mu, 1.0)["rate"] ** (2 * k),
        "-.",
        color="gray",
        lw=1,
        label="heavy ball rate only: ρ*²ᵏ",
    )
    ax.set_xlabel("step k")
    ax.set_ylabel("U(θₖ)/U(θ₀)")
    ax.set_title(f"loss on the κ = {PATH_KAPPA:g} valley")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=9)
    fig.suptitle(
        "Ill-conditioned valley U = ½(x²/κ + y²), start (√κ, 1): gradient descent needs ∝ κ "
        "steps, Polyak's heavy ball ∝ √κ",
        fontsize=13,
    )
    fig.tight_layout()
    save_figure(fig, config, "valley")


def run(config: Config) -> dict:
    kappas = np.logspace(1, 3, 3) if config.quick else np.logspace(1, 4, 7)
    counts = count_sweep(kappas)
    path = paths(config)
    _plot(counts, path, config)
    data = {
        "tolerance": TOL,
        "start": "(√κ, 1), U₀ = 1",
        "gd_lr": "2/(L+μ)",
        "momentum": "Polyak: η* = 4/(√L+√μ)², β* = ((√κ−1)/(√κ+1))²",
        "adam_lr": ADAM_LR,
        **counts,
        "paths": {
            "kappa": PATH_KAPPA,
            **{name: t["positions"] for name, t in path["trajectories"].items()},
        },
    }
    save_json(data, config, "valley")
    return data
