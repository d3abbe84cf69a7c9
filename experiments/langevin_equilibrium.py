r"""SGD is overdamped Langevin dynamics: ensembles relax to the Boltzmann density.

Langevin dynamics θ ← θ − η∇U + √(2ηT)ξ (`langevin`) is the Euler–Maruyama step of
dθ = −∇U dt + √(2T) dW, whose stationary density is

.. math::
    p(\theta) = e^{-U(\theta)/T} / Z, \qquad Z = \int e^{-U/T}\,d\theta,

up to an O(η) bias. SGD whose gradient carries Gaussian noise of variance σ²/B (batch size B,
`landscape.gaussian(σ², batch_size=B)`), θ ← θ − η(∇U + ξ), is the same step with
2ηT = η²σ²/B, i.e. at the temperature

.. math::
    T = \frac{\eta\,\sigma^2}{2B},

so runs with equal η/B sample the same distribution: the linear scaling rule of
Goyal et al. (2017). We compare histograms of 10⁵ particles with the Boltzmann probability of
each bin and report the total-variation distance TV = ½ Σ_i |p̂_i − p_i|. With N particles
the multinomial noise alone gives E[TV] ≈ ½ Σ_i √(2p_i(1 − p_i)/(πN)) (E|X| = σ√(2/π) for
a normal X), the noise floor printed beside every TV.

The second figure (`langevin_equilibrium_step_bias`) holds three discretisations of the
same dynamics against their finite-step closed forms on the harmonic well U = ½kθ²:
Euler–Maruyama (SGD/`langevin`, η = dt) has ⟨θ²⟩ = (T/k)/(1 − ηk/2); heavy ball
(`underdamped_langevin`, η = h², β = 1 − γh) has (T/k)/(1 − ηk/(2(1 + β))); BAOAB (`baoab`,
Leimkuhler & Matthews 2013) has exactly T/k at every stable step, and a kinetic temperature
⟨p²⟩/M = T(1 − h²k/(4M)).

References:
  S. Mandt, M. D. Hoffman, D. M. Blei, JMLR 18 (2017) 1-35.
  B. Leimkuhler, C. Matthews, Appl. Math. Res. Express 2013 (1), 34-56.
  P. Goyal et al., "Accurate, large minibatch SGD: training ImageNet in 1 hour",
  arXiv:1706.02677 (2017).
"""

from __future__ import annotations

import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from scipy import integrate, special

from .. import integrators as itg
from .. import landscape as ls
from ._common import Config, save_figure, save_json
from .animation import animate_run

DESCRIPTION = "Langevin/SGD ensembles against the Boltzmann density; the linear scaling rule"
ORDER = 20

EDGES = np.linspace(-2.0, 2.0, 41)  # 40 bins of width 0.1 in x₀
EDGES_Y = np.linspace(-2.5, 2.5, 26)  # 25 bins in x₁ (2-D panel)
TEMPERATURES = (0.25, 0.5, 1.0)
COLORS_T = {0.25: "tab:blue", 0.5: "tab:green", 1.0: "tab:red"}


@functools.cache
def double_well(dim: int) -> ls.Landscape:
    """The double well (x₀² − 1)² + ½|x_{1:}|², built once per dimension (one compilation)."""
    return ls.double_well(dim=dim)


def well_1d(x):
    """U(x₀) = (x₀² − 1)², the x₀ part of `landscape.double_well` (NumPy)."""
    return (np.asarray(x) ** 2 - 1.0) ** 2


def boltzmann_cdf(temperature: float, lo: float = -3.0, hi: float = 3.0, n: int = 60_001):
    """(x, F(x)) with F the CDF of exp(−U(x)/T)/Z on a fine grid; Z by the trapezoid rule."""
    x = np.linspace(lo, hi, n)
    w = np.exp(-well_1d(x) / temperature)
    cdf = integrate.cumulative_trapezoid(w, x, initial=0.0)
    return x, cdf / cdf[-1]


def boltzmann_density(x, temperature: float):
    """exp(−U(x)/T)/Z in one dimension, Z = ∫ e^{−U/T} dx by `scipy.integrate.quad`."""
    z = integrate.quad(lambda y: np.exp(-well_1d(y) / temperature), -np.inf, np.inf)[0]
    return np.exp(-well_1d(x) / temperature) / z


def bin_probabilities(temperature: float, edges: np.ndarray = EDGES) -> np.ndarray:
    """Boltzmann probability of each bin, then the mass outside [edges[0], edges[-1]]."""
    x, cdf = boltzmann_cdf(temperature)
    at = np.interp(edges, x, cdf)
    return np.r_[np.diff(at), at[0] + 1.0 - at[-1]]


def empirical_probabilities(samples: np.ndarray, edges: np.ndarray = EDGES) -> np.ndarray:
    """Fraction of samples in each bin, then the fraction outside the bins."""
    counts = np.histogram(samples, bins=edges)[0]
    return np.r_[counts, samples.size - counts.sum()] / samples.size


def total_variation(p_hat: np.ndarray, p: np.ndarray) -> float:
    """TV = ½ Σ |p̂_i − p_i| over bins (including the outside bin)."""
    return float(0.5 * np.abs(p_hat - p).sum())


def noise_floor(p: np.ndarray, n: int) -> float:
    """E[TV] of n exact samples: ½ Σ √(2p_i(1 − p_i)/(πn)) (normal approximation)."""
    return float(0.5 * np.sqrt(2.0 * p * (1.0 - p) / (np.pi * n)).sum())


def initial_ensemble(key, n: int, dim: int) -> jax.Array:
    """n particles uniform in the plotting box of the double well (far from equilibrium)."""
    bounds = np.asarray(double_well(dim).bounds)
    u = jax.random.uniform(key, (n, dim), dtype=jnp.result_type(float))
    return bounds[:, 0] + u * (bounds[:, 1] - bounds[:, 0])


def langevin_ensembles(
    temperatures, n: int, lr: float, steps: int, key, dim: int = 1, fuse: int | None = None
):
    """Final positions `(len(temperatures), n, dim)` of Langevin ensembles from one start.

    One `simulate` call per temperature: T is traced, so they share one compilation.
    `fuse` goes to `simulate` (0: a smaller program that compiles about 3x faster, for the
    smoke runs; the same trajectory up to rounding).
    """
    k0, k1 = jax.random.split(key)
    x0 = initial_ensemble(k0, n, dim)
    finals = []
    for i, T in enumerate(temperatures):
        opt = itg.langevin(lr=lr, temperature=T)
        traj = itg.simulate(
            opt, double_well(dim), x0, steps, jax.random.fold_in(k1, i), record=False, fuse=fuse
        )
        finals.append(np.asarray(traj.final_state.params))
    return np.stack(finals)


@functools.cache
def _gaussian(sigma2: float, batch_size: int) -> itg.Gaussian:
    """One noise model per (σ², B): the simulator compiles once per noise-model object."""
    return itg.gaussian(sigma2, batch_size=batch_size)


def sgd_ensembles(
    lrs, sigma2: float, batch_size: int, n: int, steps: int, key, fuse: int | None = None
):
    """Final positions `(len(lrs), n, 1)` of SGD with Gaussian gradient noise σ²/B, 1-D."""
    k0, k1 = jax.random.split(key)
    x0 = initial_ensemble(k0, n, 1)
    noise = _gaussian(sigma2, batch_size)
    finals = []
    for i, lr in enumerate(lrs):
        traj = itg.simulate(
            itg.sgd(lr=lr),
            double_well(1),
            x0,
            steps,
            jax.random.fold_in(k1, i),
            noise=noise,
            record=False,
            fuse=fuse,
        )
        finals.append(np.asarray(traj.final_state.params))
    return np.stack(finals)


def compare(samples: np.ndarray, temperature: float) -> dict:
    """TV distance of the x₀ histogram from Boltzmann at T, with the noise floor."""
    p = bin_probabilities(temperature)
    p_hat = empirical_probabilities(samples)
    return {
        "temperature": temperature,
        "n": int(samples.size),
        "tv": total_variation(p_hat, p),
        "noise_floor": noise_floor(p, samples.size),
        "mean_x0_squared": float(np.mean(samples**2)),
    }


def _settings(quick: bool) -> dict:
    """Sizes; `fuse` 0 (a program that compiles ~3x faster) for the smoke run only."""
    if quick:
        return {"n": 1000, "lr": 0.01, "time": 1.5, "scaling_lr": 0.005, "fuse": 0}
    return {"n": 100_000, "lr": 0.005, "time": 2.5, "scaling_lr": 0.0025, "fuse": None}


def run(config: Config) -> dict:
    s = _settings(config.quick)
    key = jax.random.key(config.seed)
    k1, k2, k3 = jax.random.split(key, 3)
    steps = int(round(s["time"] / s["lr"]))

    one = langevin_ensembles(TEMPERATURES, s["n"], s["lr"], steps, k1, dim=1, fuse=s["fuse"])
    two = langevin_ensembles(TEMPERATURES, s["n"], s["lr"], steps, k2, dim=2, fuse=s["fuse"])
    one_d = [
        {**compare(one[i, :, 0], T), "lr": s["lr"], "steps": steps}
        for i, T in enumerate(TEMPERATURES)
    ]
    two_d = []
    for i, T in enumerate(TEMPERATURES):
        row = {**compare(two[i, :, 0], T), "lr": s["lr"], "steps": steps}
        row["var_x1"] = float(np.var(two[i, :, 1]))  # Boltzmann: T (stiffness 1)
        two_d.append(row)
    density_T = 0.5
    joint = _joint_comparison(two[TEMPERATURES.index(density_T)], density_T)

    # Linear scaling rule: equal η/B, equal T = ησ²/(2B).
    eta0 = s["scaling_lr"]
    target_T = 0.25
    sigma2 = 2.0 * target_T / eta0  # T = η σ² / (2B) with η/B = eta0
    scaling_steps = int(round(s["time"] / eta0))
    equal = [(eta0, 1), (2 * eta0, 2)] + ([] if config.quick else [(4 * eta0, 4)])
    scaling, scaling_samples = [], []
    for r, (eta, batch) in enumerate([*equal, (2 * eta0, 1)]):  # the last: η/B doubled
        k = jax.random.fold_in(k3, r)
        x = sgd_ensembles([eta], sigma2, batch, s["n"], scaling_steps, k, fuse=s["fuse"])[0, :, 0]
        T = eta * sigma2 / (2 * batch)
        row = {"lr": eta, "batch_size": batch, "lr_over_batch": eta / batch, "sigma2": sigma2}
        scaling.append({**row, **compare(x, T)})
        scaling_samples.append(x)

    bias = step_bias(s["n"], jax.random.fold_in(key, 7), quick=config.quick, fuse=s["fuse"])

    data = {
        "landscape": "double well U = (x0^2 - 1)^2 (+ x1^2/2 in 2-D), uniform start",
        "bins": {"edges_x0": EDGES, "edges_x1": EDGES_Y},
        "langevin_1d": one_d,
        "langevin_2d_marginal_x0": two_d,
        "langevin_2d_joint": joint,
        "linear_scaling": scaling,
        "step_bias": bias,
    }
    _plot(data, one, two, scaling_samples, config)
    _plot_step_bias(bias, config)
    save_json(data, config, "langevin_equilibrium")
    if config.animate:  # an ensemble spreading out of the left well at T = 0.5
        x0 = jnp.tile(jnp.array([-1.0, 0.0]), (24, 1))
        animate_run(
            {"Langevin, T = 0.5": itg.langevin(s["lr"], 0.5)},
            ls.double_well(dim=2),
            x0,
            steps,
            Path(config.out) / "langevin_equilibrium.gif",
            k3,
        )
    return data


def _joint_boltzmann(temperature: float):
    """Boltzmann probability of each 2-D bin (x₀ bins × x₁ bins); separable in x₀ and x₁."""
    px = bin_probabilities(temperature)[:-1]
    py = np.diff(special.ndtr(EDGES_Y / np.sqrt(temperature)))  # normal CDF, variance T
    return np.outer(px, py)


def _joint_comparison(samples: np.ndarray, temperature: float) -> dict:
    p = _joint_boltzmann(temperature)
    counts = np.histogram2d(samples[:, 0], samples[:, 1], bins=[EDGES, EDGES_Y])[0]
    n = samples.shape[0]
    p_all = np.r_[p.ravel(), 1.0 - p.sum()]
    p_hat = np.r_[counts.ravel(), n - counts.sum()] / n
    return {
        "temperature": temperature,
        "n": n,
        "tv": total_variation(p_hat, p_all),
        "noise_floor": noise_floor(p_all, n),
    }


def _hist_line(ax, samples, color, label, lw=1.6, ls="-"):
    density = np.histogram(samples, bins=EDGES, density=False)[0] / (samples.size * np.diff(EDGES))
    ax.stairs(density, EDGES, color=color, lw=lw, ls=ls, label=label, zorder=3)


def _boltzmann_bins(ax, temperature: float, label=None) -> None:
    """The Boltzmann probability of each bin ÷ its width: what a histogram of exact samples
    tends to (the bin average of e^{−U/T}/Z), drawn as a wide grey band under the data."""
    density = bin_probabilities(temperature)[:-1] / np.diff(EDGES)
    ax.stairs(density, EDGES, color="0.72", lw=5.0, label=label, zorder=2)


def _plot(data, one, two, scaling_samples, config) -> None:
    fig, axes = plt.subplots(2, 2, figsize=(14, 10.5))
    (ax1, ax2), (ax3, ax4) = axes
    xs = np.linspace(EDGES[0], EDGES[-1], 400)
    boltzmann_label = r"Boltzmann $e^{-U/T}/Z$, bin-averaged"

    for ax, ens, rows, title in (
        (ax1, one, data["langevin_1d"], "(a) 1-D double well: histogram of x₀"),
        (ax2, two, data["langevin_2d_marginal_x0"], "(b) 2-D double well: marginal of x₀"),
    ):
        for i, row in enumerate(rows):
            T = row["temperature"]
            _boltzmann_bins(ax, T)
            _hist_line(
                ax,
                ens[i, :, 0],
                COLORS_T[T],
                f"T = {T:g}: TV = {row['tv']:.3f} (noise floor {row['noise_floor']:.3f})",
            )
        ax.plot([], [], color="0.72", lw=5.0, label=boltzmann_label)  # last in the legend
        ax.set_xlabel("x₀")
        ax.set_ylabel("probability density")
        ax.set_title(title + f" (N = {rows[0]['n']:,}, η = {rows[0]['lr']:g})")
        ax.set_xlim(EDGES[0], EDGES[-1])
        ax.set_ylim(0, 1.3 * ax.get_ylim()[1])  # room for the legend above the peaks
        ax.grid(alpha=0.3)
        ax.legend(fontsize=10, loc="upper center")

    # (c) 2-D density with Boltzmann contours.
    joint = data["langevin_2d_joint"]
    T = joint["temperature"]
    ens = two[TEMPERATURES.index(T)]
    counts = np.histogram2d(ens[:, 0], ens[:, 1], bins=[EDGES, EDGES_Y])[0]
    dens = counts / (ens.shape[0] * np.outer(np.diff(EDGES), np.diff(EDGES_Y)))
    mesh = ax3.pcolormesh(EDGES, EDGES_Y, dens.T, cmap="Blues", shading="flat")
    fig.colorbar(mesh, ax=ax3, label="simulated density p̂(x₀, x₁)")
    gx, gy = np.meshgrid(xs, np.linspace(EDGES_Y[0], EDGES_Y[-1], 300))
    boltz = boltzmann_density(gx, T) * np.exp(-0.5 * gy**2 / T) / np.sqrt(2 * np.pi * T)
    levels = np.array([0.05, 0.2, 0.4, 0.6, 0.8]) * boltz.max()
    cs = ax3.contour(gx, gy, boltz, levels=levels, colors="black", linewidths=1.0)
    ax3.clabel(cs, fmt="%.2f", fontsize=7)
    ax3.plot([], [], color="black", lw=1.0, label="Boltzmann density contours")
    ax3.plot(
        *zip(*[m.x for m in double_well(2).minima], strict=True),
        "*",
        color="gold",
        mec="black",
        ms=13,
        ls="none",
        label="minima",
    )
    ax3.set_xlabel("x₀")
    ax3.set_ylabel("x₁")
    ax3.set_title(
        f"(c) 2-D density at T = {T:g}: TV = {joint['tv']:.4f}\n"
        f"(noise floor {joint['noise_floor']:.4f}, {len(EDGES) - 1}×{len(EDGES_Y) - 1} bins)"
    )
    ax3.legend(fontsize=8.5, loc="upper right")

    # (d) Linear scaling rule.
    equal_styles = iter([("-", "tab:blue"), ("--", "tab:orange"), (":", "tab:purple")])
    first_ratio = data["linear_scaling"][0]["lr_over_batch"]
    for row, x in zip(data["linear_scaling"], scaling_samples, strict=True):
        same = row["lr_over_batch"] == first_ratio
        st, c = next(equal_styles) if same else ("-", "tab:red")
        _hist_line(
            ax4,
            x,
            c,
            f"η = {row['lr']:g}, B = {row['batch_size']} (T = {row['temperature']:g}): "
            f"TV = {row['tv']:.3f}",
            lw=2.0 if st != "-" else 1.6,
            ls=st,
        )
    rule = r"Boltzmann at $T = \eta\sigma^2/(2B)$, bin-averaged"
    _boltzmann_bins(ax4, data["linear_scaling"][0]["temperature"], rule)
    _boltzmann_bins(ax4, data["linear_scaling"][-1]["temperature"])
    ax4.set_xlabel("x₀")
    ax4.set_ylabel("probability density")
    sigma2 = data["linear_scaling"][0]["sigma2"]
    ax4.set_title(f"(d) SGD, gradient noise σ²/B (σ² = {sigma2:g}): equal η/B, equal density")
    ax4.set_xlim(EDGES[0], EDGES[-1])
    ax4.set_ylim(0, 1.3 * ax4.get_ylim()[1])
    ax4.grid(alpha=0.3)
    ax4.legend(fontsize=9.5, loc="upper center")

    fig.suptitle("SGD is overdamped Langevin dynamics: ensembles sample exp(−U/T)/Z", fontsize=14)
    fig.tight_layout()
    save_figure(fig, config, "langevin_equilibrium")


# ----------------------------------------------------------------------------- step bias

STIFFNESS = 1.0  # k of the harmonic well ½kθ²
FRICTION = 0.5  # γ of heavy ball and BAOAB (γh <= 1 for every h below)
STEP_BIAS_T = 1.0


def step_bias_theory(eta_k) -> dict:
    """⟨θ²⟩k/T of each scheme at ηk (η = h² for the underdamped ones, M = 1), and BAOAB's
    kinetic ⟨p²⟩/(MT)."""
    eta_k = np.asarray(eta_k, dtype=float)
    beta = 1 - FRICTION * np.sqrt(eta_k / STIFFNESS)
    return {
        "euler_maruyama": 1 / (1 - eta_k / 2),
        "heavy_ball": 1 / (1 - eta_k / (2 * (1 + beta))),
        "baoab": np.ones_like(eta_k),
        "baoab_kinetic": 1 - eta_k / 4,
    }


def step_bias(n: int, key, quick: bool = False, steps: int = 400, fuse: int | None = None) -> dict:
    """Stationary ⟨θ²⟩k/T of Euler–Maruyama, heavy ball and BAOAB on ½kθ² against the step,
    each scheme one swept `simulate` call of n particles started at 0. Relative standard
    error √(2/n).

    From θ = p = 0 the second moments approach their stationary values as ρ^k, with
    ρ = (1 − ηk)² (Euler–Maruyama), β = 1 − γh (heavy ball) and e^{−γh} (BAOAB); at the
    smallest step (ηk = 0.1, h = 0.32) ρ <= 0.86, so 150 steps leave a relative transient
    below 1e-9 and 400 below 1e-25, far under the standard error.
    """
    if steps < 150:
        raise ValueError(f"steps={steps}: at least 150 are needed to reach the stationary state.")
    eta_k = np.array([0.1, 0.25, 0.5, 0.75, 1.0, 1.25] + ([] if quick else [1.5, 1.75]))
    eta = eta_k / STIFFNESS
    h = np.sqrt(eta)
    well = ls.quadratic([[STIFFNESS]])
    x0 = jnp.zeros((n, 1))
    schemes = {
        "euler_maruyama": itg.langevin(list(eta), STEP_BIAS_T),
        "heavy_ball": itg.underdamped_langevin(list(h), FRICTION, temperature=STEP_BIAS_T),
        "baoab": itg.baoab(list(h), FRICTION, temperature=STEP_BIAS_T),
    }
    out = {"eta_k": eta_k, "n": n, "steps": steps}
    out["relative_standard_error"] = float(np.sqrt(2 / n))
    for i, (name, opt) in enumerate(schemes.items()):
        traj = itg.simulate(
            opt, well, x0, steps, jax.random.fold_in(key, i), record=False, fuse=fuse
        )
        theta = np.asarray(traj.final_state.params, dtype=np.float64)[..., 0]
        out[name] = theta.var(axis=1) * STIFFNESS / STEP_BIAS_T
        if name == "baoab":
            p = np.asarray(traj.final_state.momentum, dtype=np.float64)[..., 0]
            out["baoab_kinetic"] = p.var(axis=1) / STEP_BIAS_T
    out["theory"] = step_bias_theory(eta_k)
    return out


def _plot_step_bias(bias: dict, config: Config) -> None:
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8))
    grid = np.linspace(0.02, bias["eta_k"][-1] * 1.02, 200)
    theory = step_bias_theory(grid)
    styles = {
        "euler_maruyama": ("tab:red", "o", r"Euler–Maruyama (SGD): $1/(1 - \eta k/2)$"),
        "heavy_ball": ("tab:orange", "s", r"heavy ball: $1/(1 - \eta k/(2(1+\beta)))$"),
        "baoab": ("tab:blue", "D", "BAOAB: exactly 1"),
    }
    for name, (color, marker, label) in styles.items():
        ax1.plot(grid, theory[name], color=color, lw=1.4, label=label)
        ax1.plot(bias["eta_k"], bias[name], marker, color=color, mfc="white", ms=7, ls="none")
    ax1.plot([], [], "o", color="gray", mfc="white", ls="none", label="simulated")
    ax1.set_yscale("log")  # Euler–Maruyama's 1/(1 − ηk/2) grows to 8 at ηk = 1.75
    ax1.set_yticks([1, 1.5, 2, 3, 4, 6, 8], ["1", "1.5", "2", "3", "4", "6", "8"])
    ax1.minorticks_off()
    ax1.set_ylim(0.92, 10)
    ax1.set_xlabel(r"step $\eta k$  ($\eta = h^2/M$ for the underdamped schemes)")
    ax1.set_ylabel(r"configurational temperature $\langle\theta^2\rangle k / T$")
    ax1.set_title(
        r"(a) stationary $\langle\theta^2\rangle$ on $\frac{1}{2}k\theta^2$: "
        "BAOAB has no step bias"
    )
    ax1.text(
        0.98,
        0.12,
        r"heavy ball: $\beta = 1 - \gamma h$",
        transform=ax1.transAxes,
        ha="right",
        fontsize=10,
    )
    ax1.grid(alpha=0.3)
    ax1.legend(fontsize=10, loc="upper left")

    ax2.plot(grid, theory["baoab_kinetic"], color="tab:blue", lw=1.4, label=r"$1 - h^2k/(4M)$")
    ax2.plot(
        bias["eta_k"],
        bias["baoab_kinetic"],
        "D",
        color="tab:blue",
        mfc="white",
        ms=7,
        ls="none",
        label="BAOAB, simulated",
    )
    ax2.axhline(1.0, color="black", lw=0.8, ls=":", label="continuum: T")
    ax2.set_xlabel(r"step $h^2k/M$")
    ax2.set_ylabel(r"kinetic temperature $\langle p^2\rangle / (MT)$")
    ax2.set_title("(b) BAOAB's momenta carry the known bias")
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=10, loc="lower left")
    fig.suptitle(
        f"Finite-step bias at T = {STEP_BIAS_T:g}, γ = {FRICTION:g}, N = {bias['n']:,} particles "
        f"per point (relative standard error {bias['relative_standard_error']:.2%})",
        fontsize=12,
    )
    fig.tight_layout()
    save_figure(fig, config, "langevin_equilibrium_step_bias")
