r"""Kramers' escape over a barrier: mean first-passage times of Langevin dynamics.

On the double well U(x) = (x² − 1)² (barrier ΔU = 1 at x = 0, minima a = −1 and b = +1,
U''(±1) = 8, U''(0) = −4) every particle starts at x = a and we record the first step at which
it has reached x >= b = +1, the bottom of the other well. For overdamped Langevin dynamics
dx = −U'(x) dt + √(2T) dW (`langevin`, dt = η, D = T) the mean first-passage time (MFPT)
from a to b, with a reflecting wall at −∞, is exactly

.. math::
    \tau(a \to b) = \frac1T \int_a^b dy\, e^{U(y)/T} \int_{-\infty}^{y} dz\, e^{-U(z)/T},

and for ΔU/T → ∞ it tends to the inverse of Kramers' rate,

.. math::
    k = \frac{\sqrt{U''(a)\,|U''(0)|}}{2\pi}\, e^{-\Delta U/T}.

For underdamped dynamics dx = v dt, dv = −U' dt − γv dt + √(2γT) dW (`underdamped_langevin`,
M = 1) the rate depends on the friction γ: Kramers–Langer at moderate to high friction,

.. math::
    k_{KL} = \frac{\omega_a}{2\pi\omega_b}\left(\sqrt{\gamma^2/4 + \omega_b^2}
             - \gamma/2\right) e^{-\Delta U/T},

(ω_a = √U''(a), ω_b = √|U''(0)|) and energy diffusion at low friction,

.. math::
    k_{ED} = \gamma\,\frac{I(E_b)}{T}\,\frac{\omega_a}{2\pi}\, e^{-\Delta U/T},
    \qquad I(E_b) = \oint p\,dx = 8/3 \text{ at the barrier energy},

so the MFPT has a minimum in γ (Kramers' turnover), which Mel'nikov and Meshkov's formula
k = A(γI(E_b)/T)·k_KL bridges. All three are ΔU/T → ∞ asymptotes: at ΔU/T = 4 they lie 3–25%
below the measured MFPT, as Kramers' overdamped rate lies 12% below the exact MFPT there.

References:
  H. A. Kramers, Physica 7 (1940) 284-304. J. S. Langer, Ann. Phys. 54 (1969) 258-275.
  V. I. Mel'nikov, S. V. Meshkov, J. Chem. Phys. 85 (1986) 1018-1027.
  P. Hänggi, P. Talkner, M. Borkovec, "Reaction-rate theory: fifty years after Kramers",
  Rev. Mod. Phys. 62 (1990) 251-341 (the MFPT formula, eq. 4.5, and the turnover).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from scipy import integrate

from .. import integrators as itg
from .. import landscape as ls
from ._common import Config, save_figure, save_json
from ._first_passage import first_passage
from .plotting import COLORS

DESCRIPTION = "Kramers escape: MFPT vs 1/T (Arrhenius), exponential escape times, turnover in γ"
ORDER = 22

BARRIER = 1.0  # ΔU of U = (x² − 1)²
START, TARGET = -1.0, 1.0  # from the left minimum to first reaching the right one
CURV_MIN, CURV_TOP = 8.0, 4.0  # U''(±1) and |U''(0)|
OMEGA_A, OMEGA_B = math.sqrt(CURV_MIN), math.sqrt(CURV_TOP)
BARRIER_ACTION = 8.0 / 3.0  # I(E_b) = 2∫₀^√2 √(2(1 − (x² − 1)²)) dx


def potential(x):
    """U(x) = (x² − 1)² on NumPy arrays (the 1-D `landscape.double_well()`)."""
    return (np.asarray(x) ** 2 - 1.0) ** 2


def reached_target(x: jax.Array) -> jax.Array:
    """The first-passage target: x₀ >= +1 (the bottom of the right well)."""
    return x[:, 0] >= TARGET


def exact_mfpt(temperature: float, a: float = START, b: float = TARGET, n: int = 20_001):
    r"""τ(a→b) = (1/T)∫_a^b e^{U(y)/T} ∫_{−∞}^y e^{−U(z)/T} dz dy by quadrature.

    Trapezoid rules on two grids of n points, [a − 1 − 12√(T/U''(a)), a] (where the
    inner integrand starts below e^{−100}) and [a, b]; the inner integral is cumulative.
    The relative error is below 1e-5 (the tests check it against nested `scipy.integrate.quad`).
    """
    t = float(temperature)
    lo = a - 1.0 - 12.0 * math.sqrt(t / CURV_MIN)
    left, y = np.linspace(lo, a, n), np.linspace(a, b, n)
    start = integrate.trapezoid(np.exp(-potential(left) / t), left)
    inner = start + integrate.cumulative_trapezoid(np.exp(-potential(y) / t), y, initial=0.0)
    return float(integrate.trapezoid(np.exp(potential(y) / t) * inner, y) / t)


def kramers_rate(temperature):
    """Overdamped Kramers rate √(U''(a)|U''(0)|)/(2π)·e^{−ΔU/T}."""
    return math.sqrt(CURV_MIN * CURV_TOP) / (2 * math.pi) * np.exp(-BARRIER / temperature)


def kramers_langer_rate(temperature, friction):
    """Kramers–Langer rate (ω_a/(2πω_b))(√(γ²/4 + ω_b²) − γ/2)·e^{−ΔU/T} (unit mass)."""
    g = np.asarray(friction, dtype=float)
    prefactor = OMEGA_A / (2 * math.pi * OMEGA_B) * (np.sqrt(g**2 / 4 + OMEGA_B**2) - g / 2)
    return prefactor * np.exp(-BARRIER / temperature)


def energy_diffusion_rate(temperature, friction):
    """Low-friction (energy-diffusion) rate γ·(I(E_b)/T)·(ω_a/2π)·e^{−ΔU/T}."""
    g = np.asarray(friction, dtype=float)
    return (
        g * BARRIER_ACTION / temperature * OMEGA_A / (2 * math.pi) * np.exp(-BARRIER / temperature)
    )


def melnikov_meshkov_rate(temperature, friction):
    r"""Mel'nikov–Meshkov turnover rate A(Δ)·k_KL, Δ = γ·I(E_b)/T, bridging both regimes.

    A(Δ) = exp[(1/2π)∫ ln(1 − exp(−Δ(x² + ¼)))/(x² + ¼) dx] tends to 1 at high friction
    (Kramers–Langer) and to Δ at low friction (energy diffusion).
    """
    gammas = np.atleast_1d(np.asarray(friction, dtype=float))
    out = []
    for g in gammas:
        delta = g * BARRIER_ACTION / temperature

        def integrand(x, delta=delta):
            return np.log1p(-np.exp(-delta * (x * x + 0.25))) / (x * x + 0.25)

        log_a = integrate.quad(integrand, -np.inf, np.inf, limit=400)[0] / (2 * math.pi)
        out.append(math.exp(log_a) * float(kramers_langer_rate(temperature, g)))
    return np.asarray(out).reshape(np.shape(friction))


def _times(fp, dt: float) -> np.ndarray:
    if not fp.crossed.all():
        raise RuntimeError(
            f"{(~fp.crossed).sum()} particles did not escape within {fp.max_steps} steps."
        )
    return fp.steps * dt


@functools.cache
def double_well() -> ls.Landscape:
    """The 1-D double well, built once (a jitted scan compiles once per landscape object)."""
    return ls.double_well(dim=1, barrier=BARRIER)


def _start(n: int, dtype=None) -> np.ndarray:
    return np.full((n, 1), START, dtype=dtype or jnp.result_type(float))


def overdamped_times(
    temperature: float, lr: float, n: int, key, max_steps: int = 10**8, dtype=None
):
    """First-passage times (time units) of n overdamped particles started at x = −1.

    The particles are simulated in `dtype` (default: JAX's default float).
    """
    opt = itg.langevin(lr=lr, temperature=temperature)
    state = opt.init(_start(n, dtype))
    return _times(first_passage(opt, double_well(), state, key, reached_target, max_steps), lr)


def underdamped_times(temperature, friction, dt, n, key, max_steps: int = 10**8):
    """First-passage times of n underdamped particles from x = −1 with thermal velocities."""
    opt = itg.underdamped_langevin(dt=dt, friction=friction, mass=1.0, temperature=temperature)
    k_v, k_run = jax.random.split(key)
    v0 = math.sqrt(temperature) * np.asarray(jax.random.normal(k_v, (n, 1)))
    state = opt.init(_start(n))
    state = state._replace(momentum=(-v0 / dt).astype(v0.dtype))  # v = −(dt/M)·m
    fp = first_passage(opt, double_well(), state, k_run, reached_target, max_steps)
    return _times(fp, dt)


def _summary(times: np.ndarray) -> dict:
    mean = float(times.mean())
    return {
        "n": int(times.size),
        "mfpt": mean,
        "se": float(times.std(ddof=1) / math.sqrt(times.size)),
        "cv": float(times.std(ddof=1) / mean),  # 1 for exponential times
    }


def _settings(quick: bool) -> dict:
    if quick:
        return {
            "ratios": [2.0, 3.0],
            # 64 particles: the smallest padded size of `first_passage`, one compilation
            "n": {2.0: 64, 3.0: 64},
            "lr": 0.02,
            "bias_ratio": 3.0,
            "bias_lrs": [0.04],
            "survival": [2.0, 3.0],
            "ud_ratio": 3.0,
            "frictions": [0.1, 1.0, 10.0],
            "ud_n": 64,
        }
    return {
        "ratios": [2.0, 3.0, 4.0, 5.0, 6.0],
        "n": {2.0: 4096, 3.0: 4096, 4.0: 4096, 5.0: 2048, 6.0: 1024},
        "lr": 0.01,
        "bias_ratio": 4.0,  # also runs the Arrhenius η at this ΔU/T
        "bias_lrs": [0.08, 0.04, 0.02],
        "survival": [2.0, 4.0, 6.0],
        "ud_ratio": 4.0,
        "frictions": [0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0],
        "ud_n": 1024,
    }


def _underdamped_dt(friction: float) -> float:
    """dt with ω_a·dt <= 0.14 and γ·dt <= 0.5 (the overdamped step dt/γ stays small)."""
    return min(0.05, 0.5 / friction)


def run(config: Config) -> dict:
    s = _settings(config.quick)
    key = jax.random.key(config.seed)
    lr = s["lr"]

    # Arrhenius: overdamped MFPT against ΔU/T.
    arrhenius, survival_data = [], {}
    for i, ratio in enumerate(s["ratios"]):
        T = BARRIER / ratio
        times = overdamped_times(T, lr, s["n"][ratio], jax.random.fold_in(key, i))
        exact, kramers = exact_mfpt(T), 1.0 / kramers_rate(T)
        row = {"barrier_over_T": ratio, "temperature": T, "lr": lr, **_summary(times)}
        row.update(exact=exact, kramers=kramers, kramers_over_exact=kramers / exact)
        row["measured_over_exact"] = row["mfpt"] / exact
        arrhenius.append(row)
        if ratio in s["survival"]:
            survival_data[ratio] = times

    # Discretisation bias: MFPT against η at one temperature (the Arrhenius run included).
    T_bias = BARRIER / s["bias_ratio"]
    exact_bias = exact_mfpt(T_bias)
    bias = [
        {"lr": a["lr"], **{k: a[k] for k in ("n", "mfpt", "se", "cv")}}
        for a in arrhenius
        if a["barrier_over_T"] == s["bias_ratio"]
    ]
    n_bias = s["n"][s["bias_ratio"]]
    for j, eta in enumerate(s["bias_lrs"]):
        times = overdamped_times(T_bias, eta, n_bias, jax.random.fold_in(key, 100 + j))
        bias.append({"lr": eta, **_summary(times)})
    for row in bias:
        row["relative_bias"] = row["mfpt"] / exact_bias - 1.0
        row["relative_se"] = row["se"] / exact_bias
    etas = np.array([b["lr"] for b in bias])
    rel = np.array([b["relative_bias"] for b in bias])
    rse = np.array([b["relative_se"] for b in bias])
    # Weighted least squares for bias = c₁η + c₂η² (Euler–Maruyama is weak order 1).
    design = np.stack([etas, etas**2], axis=1)
    coef = np.linalg.lstsq(design / rse[:, None], rel / rse, rcond=None)[0]

    # Underdamped: MFPT against friction at fixed T.
    T_ud = BARRIER / s["ud_ratio"]
    turnover = []
    for j, gamma in enumerate(s["frictions"]):
        dt = _underdamped_dt(gamma)
        times = underdamped_times(T_ud, gamma, dt, s["ud_n"], jax.random.fold_in(key, 200 + j))
        row = {"friction": gamma, "dt": dt, **_summary(times)}
        row["kramers_langer"] = 1.0 / float(kramers_langer_rate(T_ud, gamma))
        row["energy_diffusion"] = 1.0 / float(energy_diffusion_rate(T_ud, gamma))
        row["melnikov_meshkov"] = 1.0 / float(melnikov_meshkov_rate(T_ud, gamma))
        turnover.append(row)

    data = {
        "potential": "U(x) = (x^2 - 1)^2, barrier 1, from x = -1 to first x >= +1",
        "arrhenius": arrhenius,
        "discretisation_bias": {
            "barrier_over_T": s["bias_ratio"],
            "exact": exact_bias,
            "runs": bias,
            "fit_c1_c2": coef,  # relative bias ≈ c₁η + c₂η²
            "bias_at_lr": float(coef[0] * lr + coef[1] * lr**2),
        },
        "turnover": {
            "barrier_over_T": s["ud_ratio"],
            "temperature": T_ud,
            "overdamped_exact": exact_mfpt(T_ud),
            "runs": turnover,
        },
    }
    _plot(data, survival_data, config)
    save_json(data, config, "kramers")
    return data


def _plot(data: dict, survival_data: dict, config: Config) -> None:
    fig, axes = plt.subplots(2, 3, figsize=(17, 10))
    (ax_arr, ax_ratio, ax_surv), (ax_u, ax_bias, ax_turn) = axes
    arr = data["arrhenius"]
    r = np.array([a["barrier_over_T"] for a in arr])
    mfpt = np.array([a["mfpt"] for a in arr])
    se = np.array([a["se"] for a in arr])
    r_fine = np.linspace(min(1.5, r.min()), max(r.max(), 8.0) + 0.5, 80)
    exact_fine = np.array([exact_mfpt(BARRIER / x) for x in r_fine])
    kramers_fine = 1.0 / kramers_rate(BARRIER / r_fine)
    lr = arr[0]["lr"]

    # (a) Arrhenius plot.
    ax_arr.semilogy(
        r_fine, exact_fine, "-", color=COLORS["theory"], lw=1.6, label="exact MFPT (quadrature)"
    )
    ax_arr.semilogy(
        r_fine,
        kramers_fine,
        "--",
        color="tab:orange",
        lw=1.6,
        label=r"Kramers $1/k=\frac{2\pi}{\sqrt{32}}e^{\Delta U/T}$",
    )
    ax_arr.errorbar(
        r,
        mfpt,
        yerr=2 * se,
        fmt="o",
        color=COLORS["langevin"],
        mec="black",
        ms=6,
        capsize=3,
        label=f"Langevin, η = {lr:g} (±2 SE)",
    )
    ax_arr.set_xlabel("ΔU / T  (inverse temperature, ΔU = 1)")
    ax_arr.set_ylabel("mean first-passage time τ(−1 → +1)")
    ax_arr.set_title("(a) Arrhenius plot: τ ∝ exp(ΔU/T)")
    ax_arr.grid(alpha=0.3, which="both")
    ax_arr.legend(fontsize=9)

    # (b) Ratio to the exact MFPT: Kramers is the asymptote.
    big = np.linspace(2.0, 20.0, 120)
    ratio_fine = np.array([1.0 / kramers_rate(BARRIER / x) / exact_mfpt(BARRIER / x) for x in big])
    ax_ratio.plot(big, ratio_fine, "--", color="tab:orange", lw=1.6, label="Kramers 1/k ÷ exact τ")
    ax_ratio.axhline(1.0, color=COLORS["theory"], lw=1.2, label="exact τ")
    ax_ratio.errorbar(
        r,
        mfpt / np.array([a["exact"] for a in arr]),
        yerr=2 * se / np.array([a["exact"] for a in arr]),
        fmt="o",
        color=COLORS["langevin"],
        mec="black",
        capsize=3,
        label=f"measured ÷ exact (η = {lr:g}, ±2 SE)",
    )
    at5 = 1.0 / kramers_rate(BARRIER / 5.0) / exact_mfpt(BARRIER / 5.0)
    ax_ratio.annotate(
        f"{100 * (1 - at5):.1f}% below at ΔU/T = 5",
        (5.0, at5),
        xytext=(7.5, 0.84),
        arrowprops={"arrowstyle": "->"},
        fontsize=9,
    )
    ax_ratio.set_xlabel("ΔU / T")
    ax_ratio.set_ylabel("MFPT ÷ exact MFPT")
    ax_ratio.set_ylim(0.75, 1.08)
    ax_ratio.set_title("(b) Kramers' formula is the low-T asymptote")
    ax_ratio.grid(alpha=0.3)
    ax_ratio.legend(fontsize=9, loc="lower right")

    # (c) Survival probability: exponential escape times.
    colors = ["tab:blue", "tab:red", "tab:green"]
    for c, (ratio, times) in zip(colors, sorted(survival_data.items()), strict=False):
        t = np.sort(times)
        surv = 1.0 - np.arange(1, t.size + 1) / t.size
        keep = surv > 0
        ax_surv.semilogy(
            t[keep] / t.mean(),
            surv[keep],
            "-",
            color=c,
            lw=1.5,
            drawstyle="steps-post",
            label=f"ΔU/T = {ratio:g}: S(t), N = {t.size}",
        )
    x = np.linspace(0, 6, 50)
    ax_surv.semilogy(x, np.exp(-x), "--", color=COLORS["theory"], lw=1.4, label="exp(−t/τ)")
    ax_surv.set_xlabel("t / τ  (τ = measured mean)")
    ax_surv.set_ylabel("survival probability S(t) = P(not yet escaped)")
    ax_surv.set_title("(c) escape times are exponential (Poisson escape)")
    ax_surv.set_xlim(0, 6)
    ax_surv.set_ylim(1e-3, 1.2)
    ax_surv.grid(alpha=0.3, which="both")
    ax_surv.legend(fontsize=9)

    # (d) The potential.
    xs = np.linspace(-1.7, 1.7, 400)
    ax_u.plot(xs, potential(xs), color="black", lw=1.6, label="U(x) = (x² − 1)²")
    ax_u.plot([START], [0], "o", color=COLORS["langevin"], ms=9, mec="black", label="start a = −1")
    ax_u.axvline(TARGET, color="tab:red", ls=":", lw=1.5, label="target: first x ≥ b = +1")
    ax_u.annotate("", xy=(0, 1.0), xytext=(0, 0.0), arrowprops={"arrowstyle": "<->"})
    ax_u.text(0.05, 0.45, "ΔU = 1", fontsize=10)
    ax_u.text(
        -1.55,
        1.3,
        "$U''(\\pm 1) = 8$  ($\\omega_a = 2\\sqrt{2}$)\n$U''(0) = -4$  ($\\omega_b = 2$)",
        fontsize=10,
    )
    ax_u.set_ylim(-0.15, 2.2)
    ax_u.set_xlabel("x")
    ax_u.set_ylabel("U(x)")
    ax_u.set_title("(d) the double well and the first-passage problem")
    ax_u.legend(fontsize=9, loc="upper right")
    ax_u.grid(alpha=0.3)

    # (e) Discretisation bias against η.
    b = data["discretisation_bias"]
    etas = np.array([row["lr"] for row in b["runs"]])
    rel = np.array([row["relative_bias"] for row in b["runs"]])
    rse = np.array([row["relative_se"] for row in b["runs"]])
    ax_bias.errorbar(
        etas,
        100 * rel,
        yerr=200 * rse,
        fmt="o",
        color=COLORS["langevin"],
        mec="black",
        capsize=3,
        label="measured (±2 SE)",
    )
    e_line = np.linspace(0, etas.max() * 1.05, 20)
    c1, c2 = b["fit_c1_c2"]
    ax_bias.plot(
        e_line,
        100 * (c1 * e_line + c2 * e_line**2),
        "--",
        color="gray",
        label=f"weighted fit: bias = {c1:.2f}·η {c2:+.1f}·η²",
    )
    ax_bias.axhline(0, color=COLORS["theory"], lw=1.2, label="exact τ (η → 0)")
    ax_bias.set_xlabel("time step η")
    ax_bias.set_ylabel(r"$(\tau_{\rm measured} - \tau_{\rm exact})\,/\,\tau_{\rm exact}$  [%]")
    ax_bias.set_title(f"(e) Euler–Maruyama bias at ΔU/T = {b['barrier_over_T']:g}")
    ax_bias.set_xlim(0, etas.max() * 1.1)
    ax_bias.grid(alpha=0.3)
    ax_bias.legend(fontsize=9)

    # (f) Underdamped: turnover in friction.
    tv = data["turnover"]
    g = np.array([row["friction"] for row in tv["runs"]])
    m = np.array([row["mfpt"] for row in tv["runs"]])
    mse = np.array([row["se"] for row in tv["runs"]])
    T = tv["temperature"]
    g_fine = np.logspace(np.log10(g.min() / 2), np.log10(g.max() * 2), 200)
    kl = 1.0 / kramers_langer_rate(T, g_fine)
    ed = 1.0 / energy_diffusion_rate(T, g_fine)
    ax_turn.loglog(
        g_fine, kl, "-", color=COLORS["theory"], lw=1.6, label=r"Kramers–Langer $1/k_{KL}$ (high γ)"
    )
    ax_turn.loglog(
        g_fine,
        ed,
        "--",
        color="tab:purple",
        lw=1.6,
        label=r"energy diffusion $1/k_{ED}$, $k_{ED} \propto \gamma I(E_b)/T$ (low γ)",
    )
    mm = 1.0 / melnikov_meshkov_rate(T, g_fine)
    ax_turn.loglog(
        g_fine,
        mm,
        ":",
        color="tab:green",
        lw=2.0,
        label=r"Mel'nikov–Meshkov $1/(A(\Delta)\,k_{KL})$",
    )
    high = g_fine >= 2.0
    ax_turn.loglog(
        g_fine[high],
        g_fine[high] * tv["overdamped_exact"],
        "-.",
        color="gray",
        lw=1.4,
        label=r"Smoluchowski limit $\gamma\,\tau_{\rm exact}$ (overdamped)",
    )
    ax_turn.errorbar(
        g,
        m,
        yerr=2 * mse,
        fmt="o",
        color=COLORS["momentum"],
        mec="black",
        capsize=3,
        label="underdamped Langevin (±2 SE)",
    )
    # headroom above the data for the legend
    ax_turn.set_ylim(min(m.min(), kl.min()) / 2, max(m.max(), kl.max()) * 6)
    ax_turn.set_xlabel("friction γ  (M = 1)")
    ax_turn.set_ylabel("mean first-passage time τ(−1 → +1)")
    ax_turn.set_title(f"(f) Kramers turnover at ΔU/T = {tv['barrier_over_T']:g}")
    ax_turn.grid(alpha=0.3, which="both")
    ax_turn.legend(fontsize=9, loc="upper center")

    fig.suptitle("Escape over a barrier: Langevin dynamics against Kramers' theory", fontsize=14)
    fig.tight_layout()
    save_figure(fig, config, "kramers")
