r"""The learning-rate stability threshold: oscillation, then divergence, above η = 2/λ_max.

On U = ½λθ² gradient descent multiplies θ by 1 − ηλ each step: it converges iff ηλ < 2,
oscillates with constant amplitude at ηλ = 2 and diverges above, reaching |θ| > `bound`
(the simulator's divergence detector, `Trajectory.diverged_step`) at

.. math::
    k_{div} = \left\lfloor \frac{\log(\text{bound}/|\theta_0|)}{\log|1 - \eta\lambda|}
    \right\rfloor + 1 .

Heavy ball with momentum β moves the threshold to ηλ = 2(1 + β) (the 2×2 iteration matrix
has the eigenvalue −1 there); its divergence step follows from the matrix powers. Gradient
descent runs as heavy ball with β = 0 (the same update), so each landscape needs one
compiled sweep.

Near the minimum (1, 1) of Rosenbrock the Hessian has λ_max ≈ 1001.6, so the same threshold
η = 2/λ_max decides whether gradient descent converges to the minimum. Above it the
linearisation predicts divergence, but the particle is only expelled from the sharp minimum:
it slides to a flatter part of the valley where the local sharpness λ_max(θ) ≈ 2/η and
oscillates there ("edge of stability"); only a much larger η diverges outright.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from .. import integrators as itg
from .. import landscape as ls
from . import _damping_theory as th
from ._common import Config, fuse_for, save_figure, save_json

DESCRIPTION = "learning rate above 2/λ_max: oscillation, divergence, edge of stability"
ORDER = 13

LAM = 1.0  # curvature of the quadratic U = ½λθ²
BETA = 0.9  # heavy-ball momentum
BOUND = 1e8  # |θ| beyond this counts as diverged (the simulator's default)
QUAD_FACTORS = (0.9, 0.98, 1.0, 1.02, 1.1)  # η in units of the threshold
ROSEN_GD_FACTORS = (0.9, 0.98, 1.02, 1.1, 1.5, 2.0)
ROSEN_HB_FACTORS = (0.9, 0.98, 1.02, 1.1, 1.3)
ROSEN_START = (1.001, 1.0)  # close to the minimum (1, 1)
FACTOR_COLORS = {
    0.9: "#1f77b4",
    0.98: "#17becf",
    1.0: "#7f7f7f",
    1.02: "#ff7f0e",
    1.1: "#d62728",
    1.3: "#9467bd",
    1.5: "#9467bd",
    2.0: "#8c564b",
}


def sharpness(landscape, x) -> jax.Array:
    """λ_max of the Hessian of `landscape` at x."""
    return jnp.linalg.eigvalsh(jax.hessian(landscape.energy)(x))[-1]


def threshold(lam: float, beta: float = 0.0) -> float:
    """The largest stable η on curvature λ: 2(1 + β)/λ (β = 0: gradient descent)."""
    return 2.0 * (1.0 + beta) / lam


def divergence_step(eta_lam: float, beta: float, theta0: float = 1.0, bound: float = BOUND):
    """First k with |θ_k| > bound for heavy ball (β = 0: GD) on ½λθ² from θ₀, v₀ = 0 (−1: never).

    Iterates the 2×2 matrix; for GD this is ⌊log(bound/|θ₀|)/log|1 − ηλ|⌋ + 1.
    """
    if th.spectral_radius(eta_lam, beta) <= 1.0:
        return -1
    a = th.heavy_ball_matrix(eta_lam, beta)
    z = np.array([theta0, theta0])
    for k in range(1, 100_000):
        z = a @ z
        if abs(z[0]) > bound:
            return k
    return -1


def linear_loss(eta_lam: float, beta: float, steps: int, theta0: float = 1.0) -> np.ndarray:
    """U_k/U_0 on ½λθ² from the matrix powers (exact for the linear iteration)."""
    a = th.heavy_ball_matrix(eta_lam, beta)
    z = np.array([theta0, theta0])
    out = np.full(steps + 1, np.inf)
    out[0] = 1.0
    for k in range(1, steps + 1):
        z = a @ z
        if abs(z[0]) > 1e100 * abs(theta0):
            break  # far past any bound: the rest stays +inf (never plotted)
        out[k] = (z[0] / theta0) ** 2
    return out


def _finite_prefix(values) -> np.ndarray:
    """`values` up to (not including) its first non-finite entry."""
    values = np.asarray(values, float)
    bad = np.flatnonzero(~np.isfinite(values))
    return values[: bad[0]] if bad.size else values


def _thin(values, every: int = 5) -> np.ndarray:
    """Every `every`-th entry along the last axis, always keeping the last one."""
    values = np.asarray(values)
    n = values.shape[-1]
    index = np.unique(np.r_[np.arange(0, n, every), n - 1]) if n else np.arange(0)
    return values[..., index]


def _cut(traj_steps, loss, diverged_step):
    """The records strictly before the divergence step (the whole curve if it never diverged)."""
    steps, loss = np.asarray(traj_steps), np.asarray(loss, float)
    keep = steps < diverged_step if diverged_step >= 0 else np.ones(len(steps), bool)
    keep &= np.isfinite(loss) & (loss > 0)
    return steps[keep], loss[keep]


# ----------------------------------------------------------------------------- quadratic


def _sweep(members: list[tuple[str, float, float]]):
    """One zipped heavy-ball sweep over (name, η, β); β = 0 is gradient descent (same update)."""
    return itg.momentum(lr=[m[1] for m in members], momentum=[m[2] for m in members])


def quadratic_runs(config: Config) -> dict:
    """GD and heavy ball on ½λθ² at η = f·threshold, the panels' f and a fine scan, one sweep."""
    steps = 600
    scan = np.linspace(1.01, 1.6, 12 if config.quick else 40)
    methods = (("gd", 0.0), ("heavy_ball", BETA))
    members = [
        (name, f * threshold(LAM, beta), beta)
        for name, beta in methods
        for f in (*QUAD_FACTORS, *scan)
    ]
    U = ls.quadratic([[LAM]])
    # Long enough for the slowest divergence of the scan (f = 1.01: ~930 steps for GD).
    total = max(steps, 1000)
    traj = itg.simulate(
        _sweep(members), U, jnp.asarray([1.0]), total, bound=BOUND, fuse=fuse_for(config)
    )
    loss = np.asarray(traj.loss, float)[:, : steps + 1]
    diverged = np.asarray(traj.diverged_step)
    out = {"steps": steps, "lam": LAM, "beta": BETA, "bound": BOUND, "factors": QUAD_FACTORS}
    n_panel, n_all = len(QUAD_FACTORS), len(QUAD_FACTORS) + len(scan)
    for m, (name, beta) in enumerate(methods):
        panel = slice(m * n_all, m * n_all + n_panel)
        fine = slice(m * n_all + n_panel, (m + 1) * n_all)
        lrs = [mem[1] for mem in members[panel]]
        out[name] = {
            "threshold_lr": threshold(LAM, beta),
            "lrs": lrs,
            "steps": np.asarray(traj.steps)[: steps + 1],
            "loss": loss[panel],
            "diverged_step": diverged[panel],
            "predicted_divergence_step": [divergence_step(lr * LAM, beta) for lr in lrs],
            "theory_loss": [linear_loss(lr * LAM, beta, steps) * loss[0, 0] for lr in lrs],
            "scan": {
                "factors": scan,
                "diverged_step": diverged[fine],
                "predicted": [divergence_step(mem[1] * LAM, beta) for mem in members[fine]],
            },
        }
    return out


# ----------------------------------------------------------------------------- Rosenbrock


def rosenbrock_runs(config: Config) -> dict:
    """GD and heavy ball near Rosenbrock's minimum, with the local sharpness recorded.

    Runs in float64: in float32 the soft-mode step η·λ_min·|θ − 1| falls below the spacing
    of floats near 1 once U ≈ 1e-9, and the descent stalls there.
    """
    with jax.enable_x64(True):
        return _rosenbrock_runs(config)


def _rosenbrock_runs(config: Config) -> dict:
    U = ls.rosenbrock()
    x_min = jnp.asarray([1.0, 1.0], dtype=jnp.float64)
    hessian = np.asarray(jax.jit(U.hessian)(x_min), float)  # one compile, not one per op
    lam, vec = np.linalg.eigh(hessian)
    lam_max = float(lam[-1])
    steps = 2000 if config.quick else 5000
    every = 10
    x0 = jnp.asarray(ROSEN_START, dtype=jnp.float64)
    offset = np.asarray(ROSEN_START) - 1.0
    coeff = vec.T @ offset  # initial offset in the Hessian's eigenbasis
    out = {"lambda": lam, "lambda_max": lam_max, "start": ROSEN_START, "steps": steps}
    methods = (("gd", 0.0, ROSEN_GD_FACTORS), ("heavy_ball", BETA, ROSEN_HB_FACTORS))
    members = [
        (name, f * threshold(lam_max, beta), beta)
        for name, beta, factors in methods
        for f in factors
    ]
    traj = itg.simulate(
        _sweep(members),
        U,
        x0,
        steps,
        jax.random.key(config.seed),
        record_every=every,
        bound=BOUND,
        observe={"sharpness": lambda x: sharpness(U, x)},
        fuse=fuse_for(config),
    )
    k = np.asarray(traj.steps)
    positions = np.asarray(traj.positions, float)
    start_index = 0
    for name, beta, factors in methods:
        sel = slice(start_index, start_index + len(factors))
        start_index += len(factors)
        lrs = [m[1] for m in members[sel]]
        # Linearised theory U_k ≈ ½ Σ_i λ_i c_i² (mode factor)^{2k} per Hessian eigenvalue λ_i.
        theory = []
        for lr in lrs:
            modes = [
                linear_loss(lr * li, beta, steps)[k] * 0.5 * li * ci**2
                for li, ci in zip(lam, coeff, strict=True)
            ]
            theory.append(np.sum(modes, axis=0))
        out[name] = {
            "factors": factors,
            "threshold_lr": threshold(lam_max, beta),
            "lrs": lrs,
            "steps": k,
            "loss": np.asarray(traj.loss, float)[sel],
            "sharpness": np.asarray(traj.observed["sharpness"], float)[sel],
            "diverged_step": np.asarray(traj.diverged_step)[sel],
            "final_position": positions[sel, -1],
            "final_distance": np.linalg.norm(positions[sel, -1] - 1.0, axis=-1),
            "linear_theory_loss": theory,
        }
    return out


# ----------------------------------------------------------------------------- figure


ETA_C = r"$\eta_c$"
LAM_MAX = r"$\lambda_{\max}$"


def _mark_divergence(ax, steps, loss, color):
    """✕ at the last record before the reported divergence step."""
    ax.plot(steps[-1], loss[-1], "X", color=color, mec="black", ms=11, zorder=5)


def _loss_panel(
    ax,
    run: dict,
    factors,
    title: str,
    theory_key: str,
    cut_theory: float,
    legend="lower left",
    floor: float = 1e-12,
    top: float | None = None,
):
    """Loss curves with their linear theory; below `floor` a curve leaves through the bottom,
    so the axis spends its decades on the threshold region rather than on 10⁻⁴⁰."""
    for i, f in enumerate(factors):
        color = FACTOR_COLORS[f]
        d = int(run["diverged_step"][i])
        k, loss = _cut(run["steps"], run["loss"][i], d)
        label = f"η = {f:g}·{ETA_C}" + (f", diverged at {d}" if d >= 0 else "")
        ax.semilogy(k, loss, color=color, lw=1.5, label=label)
        if 0 <= d <= run["steps"][-1]:
            _mark_divergence(ax, k, loss, color)
        th_loss = np.asarray(run[theory_key][i], float)
        th_k = (
            np.asarray(run["steps"])
            if len(th_loss) == len(run["steps"])
            else np.arange(len(th_loss))
        )
        keep = (th_loss > 1e-30) & (th_loss < cut_theory)
        ax.semilogy(th_k[keep], th_loss[keep], "--", color="black", lw=0.8)
    ax.plot([], [], "--", color="black", lw=0.8, label="linear theory")
    ax.set_xlabel("step k")
    ax.set_ylabel(r"loss $U(\theta_k)$" + f" (axis cut at {floor:.0e})")
    ax.set_ylim(bottom=floor)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=9, loc=legend, ncol=2 if legend == "upper right" and top else 1)
    if top is not None:  # headroom for the legend above the data
        ax.set_ylim(top=top)


def _plot(quad: dict, rosen: dict, config: Config) -> None:
    fig, axes = plt.subplots(2, 3, figsize=(18, 10.5))
    gd, hb = quad["gd"], quad["heavy_ball"]
    _loss_panel(
        axes[0, 0],
        gd,
        QUAD_FACTORS,
        f"GD on U = ½λθ² (λ = {LAM:g}), {ETA_C} = 2/λ = {gd['threshold_lr']:g}: Uₖ = U₀(1 − ηλ)²ᵏ",
        "theory_loss",
        0.5 * LAM * BOUND**2,
        legend="lower right",
    )
    _loss_panel(
        axes[0, 1],
        hb,
        QUAD_FACTORS,
        f"heavy ball β = {BETA:g} on ½λθ², {ETA_C} = 2(1+β)/λ = {hb['threshold_lr']:g}",
        "theory_loss",
        0.5 * LAM * BOUND**2,
    )
    ax = axes[0, 2]
    for name, label, color in (
        ("gd", "GD", "#1f77b4"),
        ("heavy_ball", f"heavy ball β = {BETA:g}", "#d62728"),
    ):
        scan = quad[name]["scan"]
        ax.plot(
            scan["factors"],
            scan["predicted"],
            "-",
            color=color,
            lw=1.3,
            label=f"{label}: theory (2×2 matrix powers)",
        )
        ax.plot(
            scan["factors"],
            scan["diverged_step"],
            "o",
            color=color,
            mfc="none",
            ms=6,
            label=f"{label}: Trajectory.diverged_step",
        )
    ax.set_yscale("log")
    ax.set_xlabel(f"η / {ETA_C}")
    ax.set_ylabel(f"divergence step (first |θ| > {BOUND:.0e})")
    ax.set_title("how fast it diverges above the threshold (θ₀ = 1)", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=9)

    lam_max = rosen["lambda_max"]
    _loss_panel(
        axes[1, 0],
        rosen["gd"],
        ROSEN_GD_FACTORS,
        f"GD on Rosenbrock from {ROSEN_START}: {ETA_C} = 2/{LAM_MAX}, {LAM_MAX} = {lam_max:.1f}",
        "linear_theory_loss",
        1e3,
        legend="upper right",
        top=1e8,
    )
    _loss_panel(
        axes[1, 2],
        rosen["heavy_ball"],
        ROSEN_HB_FACTORS,
        f"heavy ball β = {BETA:g} on Rosenbrock, {ETA_C} = 2(1+β)/{LAM_MAX}",
        "linear_theory_loss",
        1e3,
        legend="upper right",
    )
    ax = axes[1, 1]
    run = rosen["gd"]
    for i, f in enumerate(ROSEN_GD_FACTORS):
        color = FACTOR_COLORS[f]
        d = int(run["diverged_step"][i])
        k, s = _cut(run["steps"], run["sharpness"][i], d)
        gone = f", diverged at {d}" if d >= 0 else ""
        ax.plot(k, s, color=color, lw=1.3, label=f"η = {f:g}·{ETA_C}{gone}")
        if f > 1 and d < 0:
            ax.axhline(2 / run["lrs"][i], color=color, ls="--", lw=1)
    ax.plot([], [], "--", color="gray", label="2/η (edge of stability)")
    ax.axhline(
        lam_max, color="black", ls=":", lw=1, label=f"{LAM_MAX} at the minimum = {lam_max:.1f}"
    )
    ax.set_ylim(0, 1.25 * lam_max)
    ax.set_xlabel("step k")
    ax.set_ylabel(f"sharpness {LAM_MAX}(∇²U(θₖ))")
    ax.set_title(
        f"GD on Rosenbrock above {ETA_C}: expelled from the minimum, it settles\n"
        f"where the local sharpness {LAM_MAX}(θ) ≈ 2/η instead of diverging",
        fontsize=10,
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9, loc="lower right")
    fig.suptitle(
        f"Learning rate against curvature: converge below {ETA_C}, oscillate at {ETA_C}, "
        "diverge above "
        "(curves cut at the reported divergence step ✕)",
        fontsize=13,
    )
    fig.tight_layout()
    save_figure(fig, config, "stability")


def run(config: Config) -> dict:
    quad = quadratic_runs(config)
    rosen = rosenbrock_runs(config)
    _plot(quad, rosen, config)
    for name in ("gd", "heavy_ball"):
        r = rosen[name]
        r["final_sharpness_over_2_by_lr"] = [
            float(s[-1] * lr / 2) for s, lr in zip(r["sharpness"], r["lrs"], strict=True)
        ]
    for runs, key in ((quad, "theory_loss"), (rosen, "linear_theory_loss")):
        for name in ("gd", "heavy_ball"):  # JSON has no inf: keep each curve's finite start
            runs[name][key] = [_finite_prefix(c) for c in runs[name][key]]
    # Keep the JSON small: every 5th record of the curves (the figure used all of them).
    for runs in (quad, rosen):
        for name in ("gd", "heavy_ball"):
            r = runs[name]
            for key in ("steps", "loss", "sharpness"):
                if key in r:
                    r[key] = _thin(r[key])
            for key in ("theory_loss", "linear_theory_loss"):
                if key in r:
                    r[key] = [_thin(c) for c in r[key]]
    data = {"quadratic": quad, "rosenbrock": rosen}
    save_json(data, config, "stability")
    return data
