r"""Escaping saddles: time to leave x² − y² and the monkey saddle against offset and temperature.

Escape time = the first step k with ‖θ_k − θ_saddle‖_∞ > R, measured by the simulator's
divergence detector (`bound=R`, `Trajectory.diverged_step`), for ensembles of 10⁴ particles.
From (0, ε) on U = x² − y² the stable x stays ≈ 0, so this is |y_k| > R.

Theory on the saddle U = x² − y² (curvature −λ along y, λ = 2): every scheme is linear,
z_{k+1} = A z_k + b ξ_k, and the unstable coordinate grows as y_k ≈ μ₊^k (a + s Z) with μ₊
the largest eigenvalue of A (`_damping_theory.growing_mode`). So

.. math::
    t_{GD} = \left\lceil \frac{\log(R/\varepsilon)}{\log(1 + \eta\lambda)} \right\rceil,
    \qquad
    \langle t \rangle = \mathbb E_Z\left[\left\lfloor
        \frac{\log(R/|a + sZ|)}{\log \mu_+}\right\rfloor + 1\right]

with a = ε, s² = 2ηT/((1+ηλ)² − 1) for Langevin/SGD at temperature T (Gaussian gradient
noise of variance σ² is the same at T = ησ²/2: the noisy curve against ε uses it, and one
point against T checks it on the thermal curve), and a, s from the 2×2 matrix for heavy
ball.

On the monkey saddle U = x³ − 3xy² = r³cos 3φ gradient flow keeps r³ sin 3φ fixed, so from
(0, ε) the time to radius r is (1/3ε)∫_{ε/r}^1 du/√(1−u⁶) ≈ 1.21/(3ε): polynomial, not
logarithmic, in 1/ε. With noise alone (start at 0) overdamped Langevin on a cubic has the
single time scale T^{−1/3}.

Adam's step is η·m̂/√v̂ per coordinate, blind to the scale of the gradient (while |g| ≫ its
ε), so the escape count hardly depends on ε; were every step exactly η it would be
(R − ε)/η. While |g| grows along the way, m̂ (β₁ = 0.9: the last ≈10 gradients) runs ahead
of √v̂ (β₂ = 0.999: the root mean square of all of them), |m̂|/√v̂ climbs above 1 and the
mean step exceeds η (`adam_mean_step`), so Adam escapes in fewer than R/η steps.
"""

from __future__ import annotations

import math
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
from scipy import integrate, optimize, special

from .. import integrators as itg
from .. import landscape as ls
from . import _damping_theory as th
from ._common import Config, fuse_for, save_figure, save_json
from .animation import animate_run
from .plotting import COLORS

DESCRIPTION = "saddle escape time vs offset ε and temperature T: GD, SGD, momentum, Adam"
ORDER = 11

RADIUS = 1.0  # escape radius R (max norm), the simulator's `bound`
LR = 0.1  # η of GD / SGD / heavy ball
BETA = 0.9  # heavy-ball momentum
ADAM_LR = 0.02  # η of Adam: its escape takes ≈ R/η = 50 steps
LAM = 2.0  # |negative curvature| of x² − y² along y

SETTINGS = {
    "saddle": {
        "landscape": ls.saddle,
        "eps": np.logspace(-7, -1, 7),
        "temperatures": np.logspace(-10, -2, 5),
        "noisy_temperature": 1e-8,  # T = ησ²/2 of SGD with Gaussian gradient noise
        "steps": {"sgd": 200, "momentum": 100, "adam": 100},  # budgets: all particles escape
    },
    "monkey_saddle": {
        "landscape": ls.monkey_saddle,
        "eps": np.geomspace(0.02, 0.5, 6),
        "temperatures": np.logspace(-4.5, -1.5, 4),
        "noisy_temperature": 10**-3.5,
        "steps": {"sgd": 1200, "momentum": 400, "adam": 150},
    },
}


# ----------------------------------------------------------------------------- theory


def _gauss_expect(fn, n: int = 50_000) -> float:
    """E[fn(Z)], Z ~ N(0, 1), on n equal-probability quantiles (fn may be discontinuous)."""
    z = special.ndtri((np.arange(n) + 0.5) / n)
    return float(np.mean(fn(z)))


def linear_escape_mean(growth: float, amplitude: float, noise: float, radius: float) -> float:
    """⟨first k with μ₊^k |a + sZ| > R⟩ = E[⌊log(R/|a + sZ|)/log μ₊⌋ + 1] (≥ 1)."""
    log_mu = math.log(growth)

    def steps(z):
        y = np.abs(amplitude + noise * z)
        with np.errstate(divide="ignore"):
            k = np.floor(np.log(radius / y) / log_mu) + 1
        return np.maximum(k, 1)

    return _gauss_expect(steps)


def sgd_mode(lr: float, eps: float, temperature: float = 0.0) -> dict:
    """y_{k+1} = (1 + ηλ) y_k + √(2ηT) ξ_k: the unstable mode of GD / Langevin on x² − y²."""
    a = np.array([[1.0 + lr * LAM]])
    return th.growing_mode(a, np.array([eps]), np.array([math.sqrt(2 * lr * temperature)]))


def momentum_mode(lr: float, beta: float, eps: float, temperature: float = 0.0) -> dict:
    """Heavy ball on (y, m): m' = βm − λy + σξ, y' = y − ηm', σ² = 2T(1 − β)/η."""
    a = np.array([[1.0 + lr * LAM, -lr * beta], [-LAM, beta]])
    sigma = math.sqrt(2 * temperature * (1 - beta) / lr)
    return th.growing_mode(a, np.array([eps, 0.0]), sigma * np.array([-lr, 1.0]))


def momentum_steps(eps: float) -> float:
    """log(R/a)/log μ₊: heavy ball's deterministic escape from (0, ε) on x² − y²."""
    mode = momentum_mode(LR, BETA, eps)
    return math.log(RADIUS / mode["amplitude"]) / math.log(mode["growth"])


def gd_steps_saddle(lr: float, eps):
    """t = log(R/ε)/log(1 + ηλ), the continuous form of the GD count on x² − y²."""
    return np.log(RADIUS / np.asarray(eps)) / math.log(1 + lr * LAM)


MONKEY_INTEGRAL = integrate.quad(lambda u: 1 / math.sqrt(1 - u**6), 0, 1)[0]


def gd_steps_monkey(lr: float, eps: float) -> float:
    """Gradient-flow time from (0, ε) to ‖θ‖_∞ = R on x³ − 3xy², in steps of η.

    Along the flow r³ sin 3φ = −ε³, i.e. φ(r) = 60° + arcsin((ε/r)³)/3, and
    dt = dr/(3r²√(1 − (ε/r)⁶)) gives t(r) = (1/3ε)∫_{ε/r}^1 du/√(1 − u⁶).
    """

    def sup_norm(r):
        phi = math.pi / 3 + math.asin(min(1.0, (eps / r) ** 3)) / 3
        return r * max(abs(math.cos(phi)), abs(math.sin(phi))) - RADIUS

    r_exit = optimize.brentq(sup_norm, eps, 10 * RADIUS + 10 * eps)
    t = integrate.quad(lambda u: 1 / math.sqrt(1 - u**6), eps / r_exit, 1, limit=200)[0]
    return t / (3 * eps) / lr


# ----------------------------------------------------------------------------- simulation


def _escape(opt, U, x0, steps, key, noise=None, fuse=None) -> np.ndarray:
    """First step with ‖θ‖_∞ > R for every particle (−1: not within `steps`).

    `fuse=0` (quick runs) checks every step: a program about half the size of the fused
    one, so it compiles in about half the time; `diverged_step` is exact either way.
    """
    traj = itg.simulate(
        opt,
        U,
        x0,
        steps,
        key,
        noise=noise,
        bound=RADIUS,
        record_every=steps,
        record_positions=False,
        fuse=fuse,
    )
    return np.asarray(traj.diverged_step)


def _stats(first: np.ndarray) -> dict:
    """Mean, s.d., standard error and escaped fraction of first-passage steps (−1 = none)."""
    done = first[first >= 0].astype(float)
    if done.size == 0:
        nan = float("nan")
        return {"mean": nan, "sd": nan, "se": nan, "escaped": 0.0, "max": -1}
    return {
        "mean": float(done.mean()),
        "sd": float(done.std()),
        "se": float(done.std() / math.sqrt(done.size)),
        "escaped": float(done.size / first.size),
        "max": int(done.max()),
    }


def _start(eps: np.ndarray, n_each: int, n_saddle: int) -> jax.Array:
    """n_each particles at (0, ε) for every ε, block after block, then n_saddle at (0, 0):
    shape (len(eps)·n_each + n_saddle, 2) (built in NumPy: no eager JAX op to compile)."""
    y = np.r_[np.repeat(np.asarray(eps, float), n_each), np.zeros(n_saddle)]
    return jnp.asarray(np.stack([np.zeros(len(y)), y], axis=1))


def run_landscape(name: str, config: Config) -> dict:
    s = SETTINGS[name]
    U = s["landscape"]()
    n = 1000 if config.quick else 10_000
    eps = s["eps"][::2] if config.quick else s["eps"]
    temps = s["temperatures"][::2] if config.quick else s["temperatures"]
    steps = s["steps"]
    keys = jax.random.split(jax.random.key(config.seed), 4)
    n_eps = len(eps)
    fuse = fuse_for(config)

    # 1.-3. Noise alone (start at the saddle): SGD, heavy ball and Adam against T, each run
    # carrying one deterministic particle per ε too (its T = 0 row: GD, heavy ball, Adam).
    x0 = _start(eps, 1, n)
    sweep = [0.0, *map(float, temps)]
    runs = (  # (name at T = 0, name at T > 0, integrator)
        ("gd", "sgd", itg.sgd(LR, temperature=sweep)),
        ("momentum", "momentum", itg.momentum(LR, BETA, temperature=sweep)),
        ("adam", "adam", itg.adam(ADAM_LR, temperature=sweep)),
    )
    out = {"eps": eps, "temperatures": temps, "n_particles": n, "steps": steps}
    for i, (cold, hot, opt) in enumerate(runs):
        first = _escape(opt, U, x0, steps[hot], keys[i], fuse=fuse)
        out[f"{cold}_vs_eps"] = [_stats(first[0, j : j + 1]) for j in range(n_eps)]
        out[f"{hot}_vs_T"] = [_stats(f[n_eps:]) for f in first[1:]]

    # 4. SGD with Gaussian gradient noise of variance σ² = 2T_A/η (temperature T_A = ησ²/2):
    # n particles per ε and n at the saddle (the check against the thermal SGD above).
    t_a = s["noisy_temperature"]
    noise = itg.gaussian(2 * t_a / LR)
    x0 = _start(eps, n, n)
    first = _escape(itg.sgd(LR), U, x0, steps["sgd"], keys[3], noise=noise, fuse=fuse)
    first = first.reshape(n_eps + 1, n)
    out["sgd_vs_eps"] = {
        "temperature": t_a,
        "variance": 2 * t_a / LR,
        "stats": [_stats(f) for f in first[:n_eps]],
    }
    out["sgd_gaussian_noise"] = {"temperature": t_a, "variance": 2 * t_a / LR, **_stats(first[-1])}
    out["theory"] = _theory(name, eps, temps, t_a)
    return out


def _theory(name: str, eps, temps, t_a: float) -> dict:
    adam = RADIUS / ADAM_LR
    if name == "saddle":
        gd = gd_steps_saddle(LR, eps)
        sgd_eps = [_linear(sgd_mode(LR, e, t_a)) for e in eps]
        sgd_t = [_linear(sgd_mode(LR, 0.0, t)) for t in temps]
        mom_eps = [momentum_steps(e) for e in eps]
        mom_t = [_linear(momentum_mode(LR, BETA, 0.0, t)) for t in temps]
        return {
            "gd_vs_eps": gd,
            "gd_exact_steps": np.ceil(gd),
            "sgd_vs_eps": sgd_eps,
            "sgd_vs_T": sgd_t,
            "momentum_vs_eps": mom_eps,
            "momentum_growth": momentum_mode(LR, BETA, 1.0)["growth"],
            "momentum_vs_T": mom_t,
            "adam": adam,
        }
    return {
        "gd_vs_eps": [gd_steps_monkey(LR, e) for e in eps],
        "gd_small_eps_limit": [MONKEY_INTEGRAL / (3 * e * LR) for e in eps],
        "adam": adam,
    }


def _linear(mode: dict) -> float:
    return linear_escape_mean(mode["growth"], mode["amplitude"], mode["noise"], RADIUS)


def power_law_slope(x, y) -> float:
    """Least-squares slope of log y against log x."""
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


# ----------------------------------------------------------------------------- figure

MARKERS = {"gd": "o", "sgd": "D", "momentum": "s", "adam": "^"}


def _series(stats: list[dict], key: str = "mean") -> np.ndarray:
    return np.array([st[key] for st in stats])


def _errorbar(ax, x, stats, name):
    mean, sd = _series(stats), _series(stats, "sd")
    ax.errorbar(
        x, mean, yerr=sd, fmt=MARKERS[name], color=COLORS[name], ms=7, mfc="none", capsize=3, lw=1.2
    )


def adam_mean_step(r: dict) -> float:
    """Adam's mean step in units of η at the smallest ε: (R − ε)/(k·η), k its escape step."""
    return float((RADIUS - r["eps"][0]) / (r["adam_vs_eps"][0]["mean"] * ADAM_LR))


def _plain_log_y(ax) -> None:
    """Log axes labelled with plain numbers, no minor labels (steps are counts)."""
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_minor_formatter(plt.NullFormatter())
    ax.yaxis.set_major_locator(mticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))


def _theory_line(ax, x, y, name, label, ls="-", lw=1.4):
    ax.plot(x, y, ls, color=COLORS[name], lw=lw, label=label)


def _plot_offset(ax, name: str, r: dict) -> None:
    """Escape step against the offset ε: GD, heavy ball, Adam at T = 0, SGD with gradient noise."""
    eps, th_ = r["eps"], r["theory"]
    fine = np.geomspace(eps[0], eps[-1], 60)
    _errorbar(ax, eps, r["gd_vs_eps"], "gd")
    _errorbar(ax, eps, r["momentum_vs_eps"], "momentum")
    _errorbar(ax, eps, r["adam_vs_eps"], "adam")
    _errorbar(ax, eps, r["sgd_vs_eps"]["stats"], "sgd")
    t_a = r["sgd_vs_eps"]["temperature"]
    if name == "saddle":
        _theory_line(ax, fine, gd_steps_saddle(LR, fine), "gd", "GD: log(R/ε)/log(1+ηλ)")
        _theory_line(
            ax,
            fine,
            [momentum_steps(e) for e in fine],
            "momentum",
            f"heavy ball: log(R/a)/log μ₊, μ₊ = {th_['momentum_growth']:.2f}",
        )
        _theory_line(
            ax,
            fine,
            [_linear(sgd_mode(LR, e, t_a)) for e in fine],
            "sgd",
            f"SGD (T = {t_a:.0e}): E⌊log(R/|ε + sZ|)/log(1+ηλ)⌋ + 1",
            ls="--",
        )
        top = max(st["mean"] + st["sd"] for st in r["sgd_vs_eps"]["stats"] + r["gd_vs_eps"])
        ax.set_ylim(0, 1.5 * top)
    else:
        _theory_line(
            ax,
            fine,
            [gd_steps_monkey(LR, e) for e in fine],
            "gd",
            "GD: gradient flow (1/3εη)∫du/√(1−u⁶)",
        )
        _theory_line(
            ax,
            fine,
            MONKEY_INTEGRAL / (3 * fine * LR),
            "gd",
            f"GD, R → ∞: {MONKEY_INTEGRAL:.3f}/(3εη) ∝ 1/ε",
            ls=":",
            lw=1.1,
        )
        ax.set_yscale("log")
        ax.set_ylim(3, None)
    k, step = r["adam_vs_eps"][0]["mean"], adam_mean_step(r)
    _theory_line(
        ax,
        fine,
        (RADIUS - fine) / ADAM_LR,
        "adam",
        f"Adam if every step were η: (R − ε)/η;\nmeasured at ε = {eps[0]:.2g}: {k:.0f} steps, "
        f"mean step {step:.2f}η",
        "-.",
    )
    ax.set_xscale("log")
    if name != "saddle":
        ax.set_xticks([0.02, 0.05, 0.1, 0.2, 0.5], ["0.02", "0.05", "0.1", "0.2", "0.5"])
        _plain_log_y(ax)
    ax.set_xlabel("initial offset ε (start at (0, ε))")
    ax.legend(fontsize=9.5, loc="upper right" if name == "saddle" else "lower left")


def _plot_temperature(ax, name: str, r: dict) -> None:
    """Escape step from the saddle point itself against the temperature T."""
    temps, th_ = r["temperatures"], r["theory"]
    _errorbar(ax, temps, r["sgd_vs_T"], "sgd")
    _errorbar(ax, temps, r["momentum_vs_T"], "momentum")
    _errorbar(ax, temps, r["adam_vs_T"], "adam")
    g = r["sgd_gaussian_noise"]
    ax.errorbar(
        g["temperature"],
        g["mean"],
        yerr=g["sd"],
        fmt="*",
        color="black",
        ms=14,
        mfc="gold",
        capsize=3,
        zorder=5,
    )
    fine_t = np.geomspace(temps[0], temps[-1], 40)
    if name == "saddle":
        _theory_line(
            ax,
            fine_t,
            [_linear(sgd_mode(LR, 0.0, t)) for t in fine_t],
            "sgd",
            "SGD: E⌊log(R/|sZ|)/log(1+ηλ)⌋ + 1, s² = 2ηT/((1+ηλ)²−1)",
        )
        _theory_line(
            ax,
            fine_t,
            [_linear(momentum_mode(LR, BETA, 0.0, t)) for t in fine_t],
            "momentum",
            "heavy ball: the same for the growing mode of its 2×2 map",
        )
        ax.set_ylim(0, 1.45 * max(st["mean"] + st["sd"] for st in r["sgd_vs_T"]))
    else:
        mean = _series(r["sgd_vs_T"])
        pref = float(np.exp(np.mean(np.log(mean) + np.log(temps) / 3)))
        _theory_line(
            ax,
            fine_t,
            pref * fine_t ** (-1 / 3),
            "sgd",
            rf"SGD: $\propto T^{{-1/3}}$ (Langevin on a cubic); fitted slope "
            f"{power_law_slope(temps, mean):.3f}",
        )
        ax.set_yscale("log")
    ax.axhline(
        th_["adam"], color=COLORS["adam"], lw=1.4, ls="-.", label="Adam if every step were η: R/η"
    )
    ax.set_xscale("log")
    if name != "saddle":
        _plain_log_y(ax)
    ax.set_xlabel("temperature T (start exactly at the saddle, ε = 0)")
    ax.legend(fontsize=9.5, loc="upper right")


def _plot(results: dict, config: Config) -> None:
    fig, axes = plt.subplots(2, 2, figsize=(14.5, 11.5))
    for row, (name, r) in enumerate(results.items()):
        title = "U = x² − y²" if name == "saddle" else "monkey saddle U = x³ − 3xy²"
        _plot_offset(axes[row, 0], name, r)
        _plot_temperature(axes[row, 1], name, r)
        axes[row, 0].set_title(f"{title}: escape time against the offset ε")
        axes[row, 1].set_title(f"{title}: escape by noise alone")
        for ax in axes[row]:
            ax.set_ylabel(f"escape step k (first ‖θₖ‖∞ > R = {RADIUS:g})")
            ax.grid(alpha=0.3, which="both")
    n = results["saddle"]["n_particles"]
    marker = dict(ls="none", ms=8, mfc="none", mew=1.3)
    handles = [
        plt.Line2D([], [], marker=MARKERS["gd"], color=COLORS["gd"], **marker),
        plt.Line2D([], [], marker=MARKERS["momentum"], color=COLORS["momentum"], **marker),
        plt.Line2D([], [], marker=MARKERS["adam"], color=COLORS["adam"], **marker),
        plt.Line2D([], [], marker=MARKERS["sgd"], color=COLORS["sgd"], **marker),
        plt.Line2D([], [], marker="*", color="black", mfc="gold", ls="none", ms=13),
        plt.Line2D([], [], color="gray", lw=1.4),
    ]
    labels = [
        f"GD (η = {LR:g}), T = 0",
        f"heavy ball (η = {LR:g}, β = {BETA:g})",
        f"Adam (η = {ADAM_LR:g})",
        f"SGD (η = {LR:g}): Langevin at T (right), gradient noise σ² = 2T/η (left); "
        f"mean ± s.d. of {n} particles",
        "SGD with Gaussian gradient noise σ² = 2T/η at the same T as the thermal points",
        "lines: theory (closed forms, in each panel's legend)",
    ]
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=10.5, frameon=False)
    fig.suptitle(
        "Saddle escape: GD needs log(1/ε) steps on x² − y² and ∝ 1/ε on the monkey saddle; "
        "noise acts as an offset;\nAdam's count hardly depends on ε and is below R/η: while "
        "|g| grows, m̂ (last ≈10 steps) runs ahead of √v̂ (all steps), so its mean step exceeds η",
        fontsize=12.5,
    )
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    save_figure(fig, config, "saddle_escape")


def run(config: Config) -> dict:
    results = {name: run_landscape(name, config) for name in SETTINGS}
    _plot(results, config)
    monkey = results["monkey_saddle"]
    results["monkey_saddle"]["sgd_vs_T_slope"] = power_law_slope(
        monkey["temperatures"], _series(monkey["sgd_vs_T"])
    )
    for r in results.values():
        r["adam_mean_step_over_lr"] = adam_mean_step(r)
    data = {
        "escape": "first step k with max(|x_k|, |y_k|) > R (simulate(bound=R).diverged_step)",
        "radius": RADIUS,
        "lr": LR,
        "momentum": BETA,
        "adam_lr": ADAM_LR,
        **results,
    }
    save_json(data, config, "saddle_escape")
    if config.animate:  # particles at the saddle, kicked by the heat bath (T = 0.01)
        hot = {
            "SGD": itg.sgd(LR, temperature=0.01),
            "heavy ball": itg.momentum(LR, BETA, temperature=0.01),
            "Adam": itg.adam(ADAM_LR, temperature=0.01),
        }
        animate_run(
            hot,
            ls.saddle(),
            jnp.zeros((6, 2)),
            120,
            Path(config.out) / "saddle_escape.gif",
            jax.random.key(config.seed),
            bound=1.9,
        )
    return data
