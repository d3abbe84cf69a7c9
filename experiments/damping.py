r"""Momentum is a damped oscillator: phase portraits, rates, stability region, energy.

Heavy ball on U = ½λθ² in optimizer units (η is `lr`, β is `momentum`) is the
symplectic-Euler step of M θ̈ = −λθ − γMθ̇ with

.. math::
    dt = \sqrt{\eta M}, \qquad \gamma = (1 - \beta)/\sqrt{\eta M}, \qquad M = 1,

and the physical velocity is v_k = (θ_k − θ_{k−1})/dt = −√η·m_k, i.e.
`integrators.momentum(...).velocity(state)` (the Trajectory's kinetic energy is ½v²).
The continuous oscillator is under-damped for γ < 2√λ, critically damped at γ = 2√λ and
over-damped above; the discrete one has its double root at β_c = (1 − √(ηλ))².

Figures:
  damping_phase.png: (x, v) portraits in the three regimes beside the exact continuous
    solution, x(t), E(t) = K + U, and the energy balance E + ∫γ·2K dt = E(0).
  damping_rates.png: measured per-step contraction against β with the spectral radius of the
    2×2 iteration matrix, for one curvature and for two (μ, L), Polyak's β* marked,
    Nesterov beside heavy ball.
  damping_stability.png: measured stability region in the (ηλ, β) plane against
    ηλ = 2(1 + β) (heavy ball) and ηλ = 2(1 + β)/(1 + 2β) (Nesterov).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from scipy.linalg import expm

from .. import integrators as itg
from .. import landscape as ls
from . import _damping_theory as th
from ._common import Config, fuse_for, save_figure, save_json
from .plotting import COLORS

DESCRIPTION = "momentum as a damped oscillator: phase portraits, rates vs β, stability, energy"
ORDER = 10

LAM = 1.0  # curvature λ of the one-dimensional quadratic U = ½λθ² (= L below)
PHASE_LR = 0.01  # η of the phase portraits: dt = √η = 0.1 in units of 1/√λ
RATE_LR = 0.04  # η of the one-curvature rate sweep (ηλ = 0.04, β_c = 0.64)
MU, L = 0.01, 1.0  # the two curvatures of the rate sweep on diag(μ, L), κ = 100
REGIME_COLORS = {"under": "#1f77b4", "critical": "#2ca02c", "over": "#d62728"}


def _regimes() -> dict:
    """β of the under-, critically and over-damped portraits at η = PHASE_LR."""
    return {
        "under": 0.97,
        "critical": th.critical_beta(PHASE_LR * LAM),
        "over": 0.2,
    }


def continuous_oscillator(t: np.ndarray, lam: float, friction: float, x0: float = 1.0):
    """Exact solution (x(t), v(t)) of ẍ = −λx − γẋ from x(0) = x0, v(0) = 0."""
    gen = np.array([[0.0, 1.0], [-lam, -friction]])
    states = expm(gen[None] * np.asarray(t, float)[:, None, None]) @ np.array([x0, 0.0])
    return states[:, 0], states[:, 1]


def measured_rate(z_norm: np.ndarray, floor: float = 1e-30, ceiling: float = 1e6) -> float:
    """Per-step factor ρ from a log-linear fit of ‖z_k‖ (recorded every step).

    The fit uses the second half of the window where ‖z_k‖/‖z_0‖ stays inside
    (floor, ceiling) (so no rounding floor and no frozen, diverged particle), which removes
    the transient of the non-dominant eigenvalue.
    """
    rel = z_norm / z_norm[0]
    outside = np.flatnonzero((rel <= floor) | (rel >= ceiling) | ~np.isfinite(rel))
    end = int(outside[0]) if outside.size else len(rel)
    start = max(2, end // 2)
    if end - start < 5:
        return float("nan")
    k = np.arange(start, end)
    slope = np.polyfit(k, np.log(z_norm[start:end]), 1)[0]
    return float(np.exp(slope))


def _state_norm(positions: np.ndarray) -> np.ndarray:
    """‖(θ_k, θ_{k−1})‖ for records every step: positions (..., n_records, dim)."""
    prev = np.concatenate([positions[..., :1, :], positions[..., :-1, :]], axis=-2)
    return np.sqrt(np.sum(positions**2 + prev**2, axis=-1))


# ---------------------------------------------------------------------------- phase portraits


def phase_portraits(config: Config) -> dict:
    """Simulate the three regimes in one sweep; return positions, velocities and energies."""
    regimes = _regimes()
    betas = list(regimes.values())
    steps = 200 if config.quick else 800
    U = ls.quadratic([[LAM]])
    opt = itg.momentum(lr=[PHASE_LR] * len(betas), momentum=betas)
    traj = itg.simulate(opt, U, jnp.asarray([1.0]), steps, jax.random.key(config.seed))
    dt = math.sqrt(PHASE_LR)
    x = np.asarray(traj.positions)[..., 0]  # (regime, k)
    v = np.concatenate([np.zeros((len(betas), 1)), np.diff(x, axis=1) / dt], axis=1)
    kinetic = np.asarray(traj.kinetic_energy)
    potential = np.asarray(traj.loss)
    t = np.arange(steps + 1) * dt
    out = {"t": t, "dt": dt, "lr": PHASE_LR, "lam": LAM, "regimes": {}}
    for i, (name, beta) in enumerate(regimes.items()):
        friction = (1.0 - beta) / dt
        x_th, v_th = continuous_oscillator(t, LAM, friction)
        # Energy balance of symplectic Euler: Ẽ = ½v_k² + ½λθ_kθ_{k−1} obeys exactly
        # Ẽ_{k+1} − Ẽ_k = −γ·dt·v_k(v_k + v_{k+1})/2 ≈ −γ·2K·dt.
        x_prev = np.concatenate([x[i, :1], x[i, :-1]])
        shadow = 0.5 * v[i] ** 2 + 0.5 * LAM * x[i] * x_prev
        power = friction * v[i, :-1] * (v[i, :-1] + v[i, 1:]) / 2.0
        work = np.concatenate([[0.0], np.cumsum(power * dt)])
        out["regimes"][name] = {
            "momentum": beta,
            "friction": friction,
            "damping_ratio": friction / (2.0 * math.sqrt(LAM)),
            "x": x[i],
            "v": v[i],
            "kinetic": kinetic[i],
            "potential": potential[i],
            "x_continuous": x_th,
            "v_continuous": v_th,
            "energy_continuous": 0.5 * v_th**2 + 0.5 * LAM * x_th**2,
            "shadow_energy": shadow,
            "friction_work": work,
            "velocity_vs_kinetic_max_error": float(np.max(np.abs(0.5 * v[i] ** 2 - kinetic[i]))),
            "energy_balance_max_error": float(np.max(np.abs(shadow + work - shadow[0]))),
        }
    return out


def _plot_phase(data: dict, config: Config) -> None:
    fig, axes = plt.subplots(2, 3, figsize=(15, 9.2))
    t = data["t"]
    labels = {"under": "under-damped", "critical": "critically damped", "over": "over-damped"}
    beta_c = r"$\beta_c = (1-\sqrt{\eta\lambda})^2$"
    for ax, (name, r) in zip(axes[0], data["regimes"].items(), strict=True):
        c = REGIME_COLORS[name]
        # The simulation wide and pale underneath, the exact continuous solution on top.
        ax.plot(r["x"], r["v"], "-", color=c, lw=4, alpha=0.45, label="heavy ball (simulated)")
        ax.plot(
            r["x_continuous"],
            r["v_continuous"],
            "--",
            color="black",
            lw=1.1,
            label="continuous oscillator (exact)",
        )
        ax.plot(1.0, 0.0, "s", color="white", mec="black", ms=8, zorder=5, label="start")
        ax.plot(0.0, 0.0, "*", color="gold", mec="black", ms=13, zorder=5, label="minimum")
        ax.set_xlabel("position θ")
        ax.set_ylabel("velocity v = (θₖ − θₖ₋₁)/dt")
        extra = f" ({beta_c})" if name == "critical" else ""
        ax.set_title(
            f"{labels[name]}{extra}: β = {r['momentum']:.3g},\n"
            f"γ = {r['friction']:.3g}, damping ratio ζ = γ/2√λ = {r['damping_ratio']:.2f}",
            fontsize=10.5,
        )
        ax.grid(alpha=0.3)
        if name == "under":
            ax.legend(fontsize=9.5, loc="lower right")
    ax = axes[1, 0]
    for name, r in data["regimes"].items():
        c = REGIME_COLORS[name]
        ax.plot(t, r["x"], color=c, lw=2.2, label=f"{labels[name]}, β = {r['momentum']:.3g}")
        ax.plot(t, r["x_continuous"], "--", color="black", lw=0.8)
    ax.plot([], [], "--", color="black", lw=0.8, label="continuous oscillator")
    ax.set_xlim(0, min(t[-1], 45))
    ax.set_xlabel("physical time t = k·dt")
    ax.set_ylabel("position θ(t)")
    ax.set_title("position against time")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9.5)
    ax = axes[1, 1]
    for name, r in data["regimes"].items():
        c = REGIME_COLORS[name]
        energy = r["kinetic"] + r["potential"]
        keep = energy > 1e-30
        ax.semilogy(t[keep], energy[keep], color=c, lw=2.2, label=f"{labels[name]}: K + U")
        th_e = r["energy_continuous"]
        keep = th_e > 1e-30
        ax.semilogy(t[keep], th_e[keep], "--", color="black", lw=0.8)
    ax.plot([], [], "--", color="black", lw=0.8, label="continuous oscillator")
    ax.set_xlabel("physical time t = k·dt")
    ax.set_ylabel("energy E = ½v² + ½λθ²")
    ax.set_title("energy decays (dE/dt = −γ·2K)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=9.5)
    ax = axes[1, 2]
    r = data["regimes"]["under"]
    ax.plot(t, r["kinetic"], color="#9467bd", lw=1.0, label="kinetic K = ½v²")
    ax.plot(t, r["potential"], color="#8c564b", lw=1.0, label="potential U = ½λθ²")
    ax.plot(
        t, r["kinetic"] + r["potential"], color=REGIME_COLORS["under"], lw=1.6, label="E = K + U"
    )
    ax.plot(t, r["friction_work"], color="#ff7f0e", lw=1.6, label="friction work W = ∫γ·2K dt")
    # Ẽ + W sits exactly on E(0): drawn wide and pale, the theory thin and dashed on top.
    ax.plot(
        t,
        r["shadow_energy"] + r["friction_work"],
        color="black",
        lw=5,
        alpha=0.3,
        label="Ẽ + W  (Ẽ = ½v² + ½λθₖθₖ₋₁)",
    )
    ax.axhline(r["shadow_energy"][0], color="black", ls="--", lw=1.1, label="theory: E(0)")
    ax.set_xlim(0, min(t[-1], 30))
    ax.set_xlabel("physical time t = k·dt")
    ax.set_ylabel("energy")
    ax.set_title(f"energy balance, under-damped (γ = {r['friction']:.2g})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9.5, loc="center right")
    fig.suptitle(
        f"Heavy ball on U = ½λθ² (λ = {LAM:g}) is a damped oscillator: η = {PHASE_LR:g} ⇒ "
        f"dt = √η = {data['dt']:g}, γ = (1−β)/√η, unit mass",
        fontsize=13,
    )
    fig.tight_layout()
    save_figure(fig, config, "damping_phase")


# ---------------------------------------------------------------------------- rates against β


def _measured(ax, x, y, color, label):
    """Measured points: open circles."""
    ax.plot(x, y, "o", color=color, mfc="none", ms=6, label=label)


def rate_sweep(config: Config) -> dict:
    """Measured contraction per step against β, on λ and on diag(μ, L), with the theory.

    One landscape, U = ½(μθ₁² + Lθ₂²) with L = λ, and two particles: (0, 1) feels only the
    curvature λ (θ₁ stays 0), (1, 1) both. All heavy-ball cases form one zipped sweep over
    (η, β), the Nesterov cases another, so the whole figure costs two compilations.
    """
    n_beta = 12 if config.quick else 40
    steps = 600 if config.quick else 1500
    polyak = th.polyak(MU, L)
    # A grid of β plus the two optima (the double roots), where the theory has its kink.
    special = [th.critical_beta(RATE_LR * LAM), polyak["momentum"]]
    betas = np.unique(np.r_[np.linspace(0.0, 0.97, n_beta), special])
    n_beta = len(betas)
    U = ls.quadratic(np.diag([MU, L]))
    x0 = jnp.asarray([[0.0, 1.0], [1.0, 1.0]])  # particle 0: curvature λ = L only
    cases = {
        # name: (lr, nesterov, particle)
        "one_heavy_ball": (RATE_LR, False, 0),
        "two_heavy_ball_polyak_lr": (polyak["lr"], False, 1),
        "two_heavy_ball_unit_lr": (1.0 / L, False, 1),
        "one_nesterov": (RATE_LR, True, 0),
        "two_nesterov_unit_lr": (1.0 / L, True, 1),
    }
    out = {"betas": betas, "steps": steps, "lam": LAM, "mu": MU, "L": L, "polyak": polyak}
    for nesterov in (False, True):
        names = [name for name, case in cases.items() if case[1] == nesterov]
        lrs = np.repeat([cases[name][0] for name in names], n_beta)
        opt = itg.momentum(lr=lrs, momentum=np.tile(betas, len(names)), nesterov=nesterov)
        traj = itg.simulate(
            opt, U, x0, steps, jax.random.key(config.seed), bound=1e8, fuse=fuse_for(config)
        )
        positions = np.asarray(traj.positions, dtype=float)  # (sweep, particle, k, 2)
        diverged = np.asarray(traj.diverged_step)
        for i, name in enumerate(names):
            lr, _, particle = cases[name]
            block = slice(i * n_beta, (i + 1) * n_beta)
            norms = _state_norm(positions[block, particle])
            measured = np.array([measured_rate(nz) for nz in norms])
            curvatures = [LAM] if particle == 0 else [MU, L]
            theory = np.max(
                [th.spectral_radius(lr * c, betas, nesterov) for c in curvatures], axis=0
            )
            out[name] = {
                "lr": lr,
                "nesterov": nesterov,
                "curvatures": curvatures,
                "measured": measured,
                "theory": theory,
                "diverged_step": diverged[block, particle],
                "max_abs_error": float(np.nanmax(np.abs(measured - theory))),
            }
    return out


def _plot_rates(data: dict, config: Config) -> None:
    fine = np.linspace(0.0, 0.995, 600)
    betas = data["betas"]
    fig, axes = plt.subplots(1, 3, figsize=(17, 5.4))

    # (a) one curvature
    ax = axes[0]
    lr = RATE_LR
    for name, nesterov in (("momentum", False), ("nesterov", True)):
        key = "one_nesterov" if nesterov else "one_heavy_ball"
        label = "Nesterov" if nesterov else "heavy ball"
        ax.plot(
            fine,
            th.spectral_radius(lr * LAM, fine, nesterov),
            color=COLORS[name],
            lw=1.5,
            label=f"{label}: ρ(A) theory",
        )
        _measured(ax, betas, data[key]["measured"], COLORS[name], f"{label}: measured")
    beta_c = th.critical_beta(lr * LAM)
    ax.axvline(beta_c, color="gray", ls=":", lw=1.2)
    ax.plot(
        beta_c,
        1 - math.sqrt(lr * LAM),
        "*",
        color="gold",
        mec="black",
        ms=14,
        label=f"β* = (1−√ηλ)² = {beta_c:.2f}, ρ = 1−√ηλ",
    )
    # For β ≥ β* the roots are complex and heavy ball's ρ is √β itself: drawn only below.
    below = fine <= beta_c
    ax.plot(
        fine[below],
        np.sqrt(fine[below]),
        ":",
        color=COLORS["theory"],
        lw=1.2,
        label="√β: heavy ball's ρ for β ≥ β* (complex roots)",
    )
    ax.set_ylim(0.5, 1.01)
    ax.set_xlabel("momentum β")
    ax.set_ylabel("contraction per step ρ")
    ax.set_title(f"one curvature: U = ½λθ², ηλ = {lr * LAM:g}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9, loc="lower left")

    # (b) two curvatures at Polyak's η*
    ax = axes[1]
    polyak = data["polyak"]
    lr = polyak["lr"]
    r_mu = th.spectral_radius(lr * MU, fine)
    r_L = th.spectral_radius(lr * L, fine)
    # The worst-case envelope wide and pale underneath, the two curves it is made of on top.
    # Above Polyak's β* both modes have complex roots and ρ_μ = ρ_L = √β: one curve there.
    distinct = np.abs(r_mu - r_L) > 1e-9
    ax.plot(
        fine[distinct],
        r_mu[distinct],
        "--",
        color="#9467bd",
        lw=1.4,
        zorder=3,
        label=rf"$\rho_\mu$ (μ = {MU:g})",
    )
    ax.plot(
        fine,
        r_L,
        "--",
        color="#8c564b",
        lw=1.4,
        zorder=3,
        label=rf"$\rho_L$ (L = {L:g}); $\rho_\mu = \rho_L = \sqrt{{\beta}}$ past β*",
    )
    ax.plot(
        fine,
        np.maximum(r_mu, r_L),
        color=COLORS["momentum"],
        lw=6,
        alpha=0.35,
        zorder=1,
        label=r"worst eigenvalue $\max(\rho_\mu, \rho_L)$",
    )
    d = data["two_heavy_ball_polyak_lr"]
    _measured(ax, betas, d["measured"], COLORS["momentum"], "heavy ball: measured")
    ax.plot(
        polyak["momentum"],
        polyak["rate"],
        "*",
        color="gold",
        mec="black",
        ms=14,
        zorder=6,
        label=f"Polyak β* = {polyak['momentum']:.3f}, ρ* = (√κ−1)/(√κ+1) = {polyak['rate']:.3f}",
    )
    ax.axhline(1.0, color="gray", lw=0.8)
    ax.set_ylim(0.6, 1.5)
    ax.set_xlabel("momentum β")
    ax.set_ylabel("contraction per step ρ (> 1: diverges)")
    ax.set_title(f"U = ½(μθ₁² + Lθ₂²), κ = {L / MU:g}, Polyak's η* = {lr:.3f}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9, loc="lower left")

    # (c) two curvatures at η = 1/L: heavy ball and Nesterov
    ax = axes[2]
    lr = 1.0 / L
    for name, nesterov, key in (
        ("momentum", False, "two_heavy_ball_unit_lr"),
        ("nesterov", True, "two_nesterov_unit_lr"),
    ):
        label = "Nesterov" if nesterov else "heavy ball"
        worst = np.maximum(
            th.spectral_radius(lr * MU, fine, nesterov), th.spectral_radius(lr * L, fine, nesterov)
        )
        ax.plot(fine, worst, color=COLORS[name], lw=1.5, label=f"{label}: max over (μ, L) of ρ(A)")
        _measured(ax, betas, data[key]["measured"], COLORS[name], f"{label}: measured")
        best = int(np.argmin(worst))
        ax.plot(
            fine[best],
            worst[best],
            "D" if nesterov else "*",
            color=COLORS[name],
            mec="black",
            ms=8 if nesterov else 14,
            zorder=5 if nesterov else 4,
            label=f"{label}: best β = {fine[best]:.3f}, ρ = {worst[best]:.3f}",
        )
    ax.set_ylim(0.85, 1.005)
    ax.set_xlabel("momentum β")
    ax.set_ylabel("contraction per step ρ")
    ax.set_title("same (μ, L) at η = 1/L: Nesterov beside heavy ball")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9, loc="lower left")
    fig.suptitle(
        "Convergence rate against momentum: measured per-step contraction of ‖(θₖ, θₖ₋₁)‖ "
        "vs the spectral radius of the 2×2 iteration matrix",
        fontsize=12,
    )
    fig.tight_layout()
    save_figure(fig, config, "damping_rates")


# ---------------------------------------------------------------------------- stability region


def classify(traj_loss_final, loss0, diverged_step, converged_below: float = 1e-4) -> np.ndarray:
    """+1 converged (U_K < tol·U_0), −1 diverged (hit `bound`), 0 undecided."""
    label = np.zeros(np.shape(diverged_step), int)
    label[np.asarray(traj_loss_final) < converged_below * loss0] = 1
    label[np.asarray(diverged_step) >= 0] = -1
    return label


def stability_grid(config: Config) -> dict:
    """Sweep (ηλ, β) on U = ½λθ² for heavy ball and Nesterov, one call each."""
    n_lr, n_beta = (14, 10) if config.quick else (43, 30)
    steps = 600 if config.quick else 2000
    eta_lam = np.linspace(0.1, 4.3, n_lr)
    betas = np.linspace(0.0, 0.97, n_beta)
    grid_lr, grid_beta = np.meshgrid(eta_lam / LAM, betas)
    U = ls.quadratic([[LAM]])
    out = {"eta_lam": eta_lam, "betas": betas, "steps": steps, "bound": 1e6}
    for name, nesterov in (("heavy_ball", False), ("nesterov", True)):
        opt = itg.momentum(lr=grid_lr.ravel(), momentum=grid_beta.ravel(), nesterov=nesterov)
        traj = itg.simulate(
            opt,
            U,
            jnp.asarray([1.0]),
            steps,
            jax.random.key(config.seed),
            record_every=steps,
            record_positions=False,
            bound=1e6,
            fuse=fuse_for(config),
        )
        loss = np.asarray(traj.loss)
        label = classify(loss[:, -1], loss[0, 0], np.asarray(traj.diverged_step))
        boundary = 2 * (1 + grid_beta.ravel()) / ((1 + 2 * grid_beta.ravel()) if nesterov else 1)
        stable = grid_lr.ravel() * LAM < boundary
        decided = label != 0
        agree = np.mean((label[decided] == 1) == stable[decided])
        out[name] = {
            "label": label.reshape(grid_lr.shape),
            "diverged_step": np.asarray(traj.diverged_step).reshape(grid_lr.shape),
            "agreement_with_boundary": float(agree),
            "undecided_fraction": float(np.mean(~decided)),
        }
    return out


def _plot_stability(data: dict, config: Config) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(13.5, 5.4), sharey=True)
    X, B = np.meshgrid(data["eta_lam"], data["betas"])
    fine = np.linspace(0.0, 0.995, 300)
    for ax, (name, title, boundary) in zip(
        axes,
        (
            ("heavy_ball", "heavy ball", 2 * (1 + fine)),
            ("nesterov", "Nesterov", 2 * (1 + fine) / (1 + 2 * fine)),
        ),
        strict=True,
    ):
        label = data[name]["label"]
        for value, marker, color, text in (
            (1, "o", "#1f77b4", "converged (U after K steps < 10⁻⁴U₀)"),
            (-1, "x", "#d62728", "diverged (|θ| > bound, step reported)"),
            (0, "s", "#7f7f7f", "undecided in the step budget"),
        ):
            sel = label == value
            ax.plot(
                X[sel],
                B[sel],
                marker,
                color=color,
                ms=4.5,
                mfc="none",
                ls="none",
                label=f"{text}: {int(sel.sum())}",
            )
        formula = "ηλ = 2(1+β)" if name == "heavy_ball" else "ηλ = 2(1+β)/(1+2β)"
        ax.plot(boundary, fine, color="black", lw=2.2, label=f"theory: {formula}")
        ax.set_xlim(0, data["eta_lam"][-1] + 0.15)
        ax.set_ylim(-0.03, 1.0)
        ax.set_xlabel("ηλ (learning rate × curvature)")
        ax.set_title(
            f"{title}: measured stability region ({data['steps']} steps); "
            f"agreement {100 * data[name]['agreement_with_boundary']:.1f}%",
            fontsize=10,
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=10, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2)
    axes[0].set_ylabel("momentum β")
    fig.suptitle("Where momentum diverges: grid of sweeps on U = ½λθ²", fontsize=13)
    fig.tight_layout()
    save_figure(fig, config, "damping_stability")


def _subsample(tree, stride: int):
    """Every `stride`-th record of every array (keeps the JSON small); scalars unchanged."""
    if isinstance(tree, dict):
        return {k: _subsample(v, stride) for k, v in tree.items()}
    if isinstance(tree, np.ndarray) and tree.ndim == 1:
        return tree[::stride]
    return tree


def run(config: Config) -> dict:
    phase = phase_portraits(config)
    _plot_phase(phase, config)
    rates = rate_sweep(config)
    _plot_rates(rates, config)
    stability = stability_grid(config)
    _plot_stability(stability, config)
    data = {
        "units": (
            "optimizer units: η = lr, β = momentum; physical units at unit mass: dt = √η, "
            "γ = (1 − β)/√η; v = (θ_k − θ_{k−1})/dt = −√η·m_k"
        ),
        "phase": _subsample(phase, 8),
        "rates": rates,
        "stability": stability,
    }
    save_json(data, config, "damping")
    return data
