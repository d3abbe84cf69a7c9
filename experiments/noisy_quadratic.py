r"""Which algorithmic choices matter at which batch sizes: the noisy quadratic model.

Zhang et al. (2019): U(θ) = ½Σh_iθ_i² with curvatures h_i log-spaced from 1 to 10⁻² and
mini-batch gradient noise of covariance H/B (`gaussian(h, B)`); each coordinate starts with
the same loss (θ_i² = 1/h_i). For every batch size B the learning rate is tuned for the
fewest steps to reach 1% of the initial loss, and the steps are drawn against B:

- closed-form curves: the exact expected-loss recursions of `_nqm_theory` (per coordinate for
  SGD and preconditioned SGD, 3×3 for heavy ball), minimised over a fine grid of η;
- simulated points: one `simulate` call per optimizer and B sweeps 6 learning rates around the
  theory's best (an ensemble of particles each); the point is the fewest steps at which the
  ensemble-mean loss is below the target, over the sweep.

Small B: noise-limited, steps ∝ 1/B (perfect scaling), every optimizer alike. Large B:
curvature-limited, steps flat. The critical batch size B* (marked) is where the steps are
twice the perfect-scaling line; heavy ball (β = 0.9) and preconditioning by H^(−1/2) push it
out. Preconditioned SGD is run as plain SGD in the coordinates φ = H^(1/4)θ, where its
curvatures are h^(1/2) and its noise covariance h^(1/2)/B, with the same loss.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from .. import integrators as itg
from .. import landscape as ls
from . import _nqm_theory as nqm
from ._common import Config, save_figure, save_json
from .plotting import COLORS

DESCRIPTION = "noisy quadratic model: steps to target against B; critical batch size (Zhang 2019)"
ORDER = 44

H = np.geomspace(1.0, 1e-2, 16)
THETA0 = H**-0.5
TARGET_FRACTION = 0.01
BETA, GAMMA = 0.9, 0.5
LR_GRID = np.geomspace(1e-3, 4.0, 48)
SWEEP = 2.0 ** np.arange(-1.5, 1.6, 0.6)  # 6 multiples of the theory's best η, simulated
METHODS = {
    "SGD": COLORS["sgd"],
    "heavy ball β = 0.9": COLORS["momentum"],
    "SGD preconditioned by H^(−1/2)": COLORS["adam"],
}
LABELS = {"SGD preconditioned by H^(−1/2)": r"SGD preconditioned by $H^{-1/2}$"}  # math text


def settings(config: Config) -> dict:
    if config.quick:
        return {"batch_sizes": 4.0 ** np.arange(2, 4), "n": 16, "steps": 400}
    return {"batch_sizes": 4.0 ** np.arange(0, 7), "n": 64, "steps": 3500}


def _theory(method: str, lr, batch_size, steps: int) -> np.ndarray:
    with warnings.catch_warnings():  # unstable η overflow to inf: never below the target
        warnings.simplefilter("ignore", RuntimeWarning)
        if method.startswith("heavy"):
            return nqm.momentum_loss(H, THETA0, lr, BETA, batch_size, steps)
        gamma = GAMMA if "precond" in method else 0.0
        return nqm.sgd_loss(H, THETA0, lr, batch_size, steps, gamma)


def _best(method, batch_size, target, steps):
    s = nqm.steps_to_target(_theory(method, LR_GRID, batch_size, steps), target)
    if not np.isfinite(s).any():
        return np.nan, np.nan
    i = int(np.nanargmin(s))
    return s[i], LR_GRID[i]


def _simulate(method, lrs, batch_size, s, key):
    if "precond" in method:
        h, x0 = H ** (1 - GAMMA), THETA0 * H ** (GAMMA / 2)
    else:
        h, x0 = H, THETA0
    opt = itg.momentum(list(lrs), BETA) if method.startswith("heavy") else itg.sgd(list(lrs))
    x0 = jnp.broadcast_to(jnp.asarray(x0, jnp.float32), (s["n"], H.size))
    traj = itg.simulate(
        opt, ls.quadratic(np.diag(h)), x0, s["steps"], key,
        noise=itg.gaussian(h / batch_size), record_positions=False,
    )  # fmt: skip
    return np.asarray(traj.loss).mean(axis=1)  # (sweep, steps + 1)


def critical_batch_size(batch_sizes, steps) -> float:
    """Where steps first reach twice the perfect-scaling line S(B₀)·B₀/B (log interpolation)."""
    b, st = np.asarray(batch_sizes, float), np.asarray(steps, float)
    excess = np.log(st * b / (st[0] * b[0]))  # 0 on the perfect-scaling line
    above = np.nonzero(excess >= np.log(2))[0]
    if above.size == 0 or above[0] == 0:
        return float("nan")
    i = above[0]
    f = (np.log(2) - excess[i - 1]) / (excess[i] - excess[i - 1])
    return float(np.exp(np.log(b[i - 1]) + f * (np.log(b[i]) - np.log(b[i - 1]))))


def run(config: Config) -> dict:
    s = settings(config)
    target = TARGET_FRACTION * 0.5 * np.sum(H * THETA0**2)
    low, high = np.log2(s["batch_sizes"][0]), np.log2(s["batch_sizes"][-1])
    fine_b = 2.0 ** np.arange(low, high + 0.01, 0.25)
    results = {}
    for mi, method in enumerate(METHODS):
        curve = np.array([_best(method, b, target, s["steps"])[0] for b in fine_b])
        sim_steps, sim_lr, theory_lr = [], [], []
        for bi, b in enumerate(s["batch_sizes"]):
            best_steps, best_lr = _best(method, b, target, s["steps"])
            lrs = best_lr * SWEEP
            key = jax.random.key(1000 * config.seed + 10 * mi + bi)
            mean_loss = _simulate(method, lrs, b, s, key)
            steps = nqm.steps_to_target(mean_loss, target)
            j = int(np.nanargmin(steps)) if np.isfinite(steps).any() else 0
            sim_steps.append(steps[j])
            sim_lr.append(lrs[j])
            theory_lr.append(best_lr)
        results[method] = {
            "theory_batch_sizes": fine_b,
            "theory_steps": curve,
            "critical_batch_size": critical_batch_size(fine_b, curve),
            "batch_sizes": np.asarray(s["batch_sizes"]),
            "simulated_steps": np.asarray(sim_steps),
            "simulated_best_lr": np.asarray(sim_lr),
            "theory_best_lr": np.asarray(theory_lr),
        }

    fig, ax = plt.subplots(figsize=(7.5, 5.2))
    for method, r in results.items():
        color = METHODS[method]
        ax.plot(
            r["theory_batch_sizes"],
            r["theory_steps"],
            color=color,
            lw=1.8,
            label=LABELS.get(method, method),
        )
        ax.plot(r["batch_sizes"], r["simulated_steps"], "o", color=color, mfc="white", mew=1.5)
        b_star = r["critical_batch_size"]
        if np.isfinite(b_star):
            ax.axvline(b_star, color=color, ls=":", lw=1.2)
            ax.annotate(f"B* ≈ {b_star:.0f}", (b_star, 1.5), color=color, rotation=90,
                        fontsize=8, ha="right", va="bottom")  # fmt: skip
    b0 = results["SGD"]["theory_batch_sizes"]
    s0 = results["SGD"]["theory_steps"][0]
    ax.plot(
        b0,
        s0 * b0[0] / b0,
        "--",
        color=COLORS["theory"],
        lw=1,
        label="perfect scaling, steps ∝ 1/B",
    )
    ax.plot([], [], "-", color="0.3", lw=1.8, label="line: exact recursion")
    ax.plot(
        [], [], "o", color="0.3", mfc="white", mew=1.5, label="circles: simulated, η tuned per B"
    )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_ylim(1, None)
    ax.set_xlabel("batch size B")
    ax.set_ylabel(f"steps to reach {TARGET_FRACTION:.0%} of the initial loss (best η)")
    ax.set_title(
        "Noisy quadratic model (16 curvatures 1…10⁻², noise H/B): B* marked where steps are 2× "
        "perfect scaling",
        fontsize=9,
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=9, loc="upper right")
    fig.tight_layout()
    save_figure(fig, config, "noisy_quadratic")

    data = {
        "settings": {k: np.asarray(v).tolist() for k, v in s.items()},
        "curvatures": H,
        "target_loss": target,
        "momentum": BETA,
        "preconditioner_power": GAMMA,
        "lr_sweep_multiples": SWEEP,
        "methods": results,
    }
    save_json(data, config, "noisy_quadratic")
    return data
