r"""Annealed learning rates are simulated annealing: who ends in the global minimum's basin?

10⁴ particles start uniformly in the plotting box of 2-D Rastrigin and of the Müller–Brown
potential and run K steps (the same budget for every schedule) under

* a temperature schedule T_k at a fixed time step η (`langevin(lr=η, temperature=T_k)`),
* a learning-rate schedule η_k for SGD whose gradient carries Gaussian noise of variance σ²
  (`sgd(lr=η_k)` with `noise=landscape.gaussian(σ²)`): its temperature T_k = η_kσ²/2 falls
  with η_k and its clock Σ η_k slows down with it,

for constant, exponential (to 1% of the initial value), logarithmic (Geman–Geman,
T₀·log 2/log(k + 2)) and cosine (to 0) schedules from the same T₀ = η₀σ²/2 (`integrators.
schedules`). A particle is in the global basin if gradient descent from its final position
ends at the global minimum. At constant T the ensemble relaxes to the Boltzmann density,
so the fraction tends to the Boltzmann probability of the global basin,

.. math::
    P_T(\text{global}) = \int_{\text{basin}} e^{-U/T} \Big/ \int e^{-U/T},

computed on a grid; for every schedule we mark P at its final temperature, what infinitely
slow (adiabatic) cooling to T_K would give. Cooling as T_k = c/log(k + 2) with c at least the
depth of the deepest non-global well finds the global minimum with probability → 1
(Geman & Geman 1984; Hajek 1988), but only as k → ∞: at a finite budget it is the slowest.

References:
  S. Geman, D. Geman, IEEE Trans. PAMI 6 (1984) 721-741.
  B. Hajek, "Cooling schedules for optimal annealing", Math. Oper. Res. 13 (1988) 311-329.
  S. Kirkpatrick, C. D. Gelatt, M. P. Vecchi, Science 220 (1983) 671-680.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from .. import integrators as itg
from .. import landscape as ls
from ..integrators import schedules
from ._common import Config, save_figure, save_json
from .plotting import plot_landscape

DESCRIPTION = "LR annealing is simulated annealing: P(global basin) under four schedules"
ORDER = 24

SCHEDULES = ("constant", "exponential", "logarithmic", "cosine")
FAMILIES = ("temperature", "learning_rate")

# Per landscape: time step η₀, initial temperature T₀, steps K, and the gradient-descent
# quench that assigns a basin (step, steps, radius around the global minimum), and the grid
# box of the Boltzmann integral (larger than the plotting box where e^{−U/T} reaches out).
SETTINGS = {
    "rastrigin": {
        "landscape": lambda: ls.rastrigin(dim=2),
        "lr": 0.0015,  # η·U''(min) = 0.6: the Euler–Maruyama bias of basin weights is small
        "T0": 10.0,
        "steps": 2000,
        "depth": 19.3,  # Hajek's d*: from the minima next to 0 over the saddle at (±0.5, 0)
        "quench": (0.002, 400, 0.25),
        "box": ((-9.0, 9.0), (-9.0, 9.0)),
    },
    "muller_brown": {
        "landscape": lambda: ls.muller_brown(),
        "lr": 1e-4,  # η·U''(global minimum) = 0.41
        "T0": 40.0,
        "steps": 4000,
        "depth": 67.5,  # d*: from the minimum at (0.62, 0.03) over the saddle at (−0.82, 0.62)
        "quench": (2e-4, 1000, 0.2),
        "box": ((-3.0, 2.7), (-1.9, 3.5)),
    },
}


def schedule(name: str, init_value: float, steps: int):
    """The schedule `name` from `integrators.schedules`, starting at `init_value`."""
    if name == "constant":
        return schedules.constant(init_value)
    if name == "exponential":
        return schedules.exponential(init_value, decay_rate=0.01, decay_steps=steps)
    if name == "logarithmic":
        return schedules.logarithmic_cooling(init_value, offset=2.0)
    if name == "cosine":
        return schedules.cosine(init_value, decay_steps=steps)
    raise ValueError(f"schedule={name!r} is not one of {SCHEDULES}.")


def switched(index, init_value, steps: int):
    """`SCHEDULES[index]` as one schedule with a traced index (`lax.switch` over the four).

    Passing the index as data rather than a new closure per schedule lets one compiled
    simulation serve all four schedules. Every schedule is v₀ times a unit schedule, so
    `init_value` may be traced too (one compilation for T₀ and η₀).
    """
    dtype = jnp.result_type(float)

    def branch(f):
        return lambda count: jnp.asarray(f(count), dtype)

    branches = [branch(schedule(name, 1.0, steps)) for name in SCHEDULES]
    return lambda count: init_value * jax.lax.switch(index, branches, count)


@functools.partial(jax.jit, static_argnames=("steps",))
def _tabulate(index, init_value, *, steps):
    return jax.vmap(switched(index, init_value, steps))(jnp.arange(steps + 1))


def tabulate(name: str, init_value: float, steps: int) -> np.ndarray:
    """The schedule's values at k = 0 … K (K: the value after the last step)."""
    table = _tabulate(SCHEDULES.index(name), float(init_value), steps=steps)
    return np.asarray(table, dtype=float)


@functools.cache
def landscape(name: str) -> ls.Landscape:
    """Each landscape built once (the jitted runners compile once per landscape object)."""
    return SETTINGS[name]["landscape"]()


@functools.partial(
    jax.jit, static_argnames=("init_value", "lr", "sigma2", "name", "family", "steps", "fuse")
)
def _anneal(index, x0, key, *, init_value, lr, sigma2, name, family, steps, fuse=None):
    """Final positions under schedule `SCHEDULES[index]` of the temperature or of η.

    `fuse` goes to `simulate` (0 for the smoke run: a program that compiles ~3x faster)."""
    U = landscape(name)
    at = switched(index, init_value, steps)
    if family == "temperature":
        opt, noise = itg.langevin(lr=lr, temperature=at), None
    else:
        opt, noise = itg.sgd(lr=at), itg.gaussian(sigma2)
    traj = itg.simulate(opt, U, x0, steps, key, noise=noise, record=False, fuse=fuse)
    return traj.final_state.params


@functools.partial(jax.jit, static_argnames=("lr", "name", "steps", "fuse"))
def _quench(x, *, lr, name, steps, fuse=None):
    traj = itg.simulate(itg.sgd(lr=lr), landscape(name), x, steps, record_every=steps, fuse=fuse)
    return traj.final_state.params, traj.diverged_step, traj.loss[:, 0]


def quench(
    name: str, x, batch: int = 10_000, fuse: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Gradient descent from each position x (n, 2): (ends at the global minimum, U(x)).

    Positions go through in batches of `batch` (padded), so calls share one compilation.
    """
    lr, steps, radius = SETTINGS[name]["quench"]
    x = np.asarray(x)
    target = np.asarray(landscape(name).global_minimum.x)
    basin, energy = [], []
    for start in range(0, len(x), batch):
        part = x[start : start + batch]
        padded = np.concatenate([part, np.repeat(part[:1], batch - len(part), 0)])
        end, diverged, u = _quench(jnp.asarray(padded), lr=lr, name=name, steps=steps, fuse=fuse)
        hit = np.linalg.norm(np.asarray(end) - target, axis=1) < radius
        basin.append((hit & (np.asarray(diverged) < 0))[: len(part)])
        energy.append(np.asarray(u, dtype=float)[: len(part)])
    return np.concatenate(basin), np.concatenate(energy)


def in_global_basin(name: str, x, fuse: int | None = None) -> np.ndarray:
    """Whether gradient descent from each position x (n, 2) ends at the global minimum."""
    return quench(name, x, batch=len(x), fuse=fuse)[0]


@functools.cache
def _basin_grid(name: str, n: int = 200, batch: int = 10_000, fuse: int | None = None):
    """U and the global-basin indicator on an n×n grid over the Boltzmann box."""
    (x0, x1), (y0, y1) = SETTINGS[name]["box"]
    X, Y = np.meshgrid(np.linspace(x0, x1, n), np.linspace(y0, y1, n))
    pts = np.stack([X.ravel(), Y.ravel()], axis=1).astype(jnp.result_type(float))
    basin, energy = quench(name, pts, batch, fuse)
    return energy, basin


def boltzmann_global_probability(
    name: str, temperature: float, grid: int = 200, batch: int = 10_000, fuse: int | None = None
) -> float:
    """P_T(global basin) = Σ_basin e^{−U/T} / Σ e^{−U/T} on a grid×grid grid (1 at T = 0).

    The grid is quenched in batches of `batch` positions (use the ensemble size, to share
    the ensemble's compilation).
    """
    energy, basin = _basin_grid(name, grid, batch, fuse)
    if temperature <= 0:
        return 1.0
    w = np.exp(-(energy - energy.min()) / temperature)
    return float(w[basin].sum() / w.sum())


def initial_ensemble(name: str, n: int, key) -> jax.Array:
    """n particles uniform in the plotting box."""
    bounds = np.asarray(landscape(name).bounds)
    u = jax.random.uniform(key, (n, 2), dtype=jnp.result_type(float))
    return bounds[:, 0] + u * (bounds[:, 1] - bounds[:, 0])


def run_landscape(
    name: str, n: int, steps: int, key, grid: int = 200, fuse: int | None = None
) -> tuple[dict, dict]:
    """Every schedule of both families on `name` from one uniform start; `fuse` as `_anneal`."""
    s = SETTINGS[name]
    lr, T0 = s["lr"], s["T0"]
    sigma2 = 2.0 * T0 / lr  # T = η σ² / 2 (B = 1) equals T₀ at η = η₀
    k_x0, k_run = jax.random.split(key)
    x0 = initial_ensemble(name, n, k_x0)
    results, finals = {}, {}
    for i, sched in enumerate(SCHEDULES):
        # A constant learning rate is a constant temperature T₀ = η₀σ²/2: one run serves both.
        for j, family in enumerate(FAMILIES[:1] if sched == "constant" else FAMILIES):
            init = T0 if family == "temperature" else lr
            table = tabulate(sched, init, steps)
            xf = _anneal(
                i,
                x0,
                jax.random.fold_in(k_run, 10 * i + j),
                init_value=init,
                lr=lr,
                sigma2=sigma2,
                name=name,
                family=family,
                steps=steps,
                fuse=fuse,
            )
            p = float(in_global_basin(name, xf, fuse).mean())
            T_final = float(table[-1]) * (1.0 if family == "temperature" else T0 / lr)
            results[f"{sched}/{family}"] = {
                "schedule": sched,
                "family": "both" if sched == "constant" else family,
                "p_global": p,
                "se": float(np.sqrt(p * (1 - p) / n)),
                "final_temperature": T_final,
                "boltzmann_at_final_T": boltzmann_global_probability(name, T_final, grid, n, fuse),
                # elapsed Langevin time Σ η_k: the lr schedules also slow the clock
                "clock": float(steps * lr if family == "temperature" else table[:-1].sum()),
            }
            finals[(sched, family)] = np.asarray(xf)
    return {
        "landscape": name,
        "n": n,
        "steps": steps,
        "lr0": lr,
        "T0": T0,
        "sigma2": sigma2,
        "boltzmann_at_T0": boltzmann_global_probability(name, T0, grid, n, fuse),
        "boltzmann_grid": grid,
        # Hajek: T_k = c/log(k + 2) converges iff c >= d*; our logarithmic schedule has
        # c = T₀·log 2, below d*, and c >= d* would start hotter still.
        "hajek_depth": s["depth"],
        "log_schedule_c": T0 * float(np.log(2.0)),
        "runs": results,
    }, finals


def run(config: Config) -> dict:
    # quick: small programs (fuse 0 compiles ~3x faster) and a coarse Boltzmann grid
    n, grid, fuse = (1000, 40, 0) if config.quick else (10_000, 200, None)
    key = jax.random.key(config.seed)
    data, finals = {}, {}
    for i, name in enumerate(SETTINGS):
        steps = SETTINGS[name]["steps"] // (10 if config.quick else 1)
        data[name], finals[name] = run_landscape(
            name, n, steps, jax.random.fold_in(key, i), grid=grid, fuse=fuse
        )
    _plot(data, finals, config)
    save_json(data, config, "annealing")
    return data


LABELS = {
    "temperature": r"temperature schedule $T_k$ (fixed $\eta$)",
    "learning_rate": r"learning-rate schedule $\eta_k$ (SGD, $T_k = \eta_k\sigma^2/2$)",
}
TITLES = {"rastrigin": "Rastrigin", "muller_brown": "Müller–Brown"}
FAMILY_COLORS = {"temperature": "tab:orange", "learning_rate": "tab:blue"}


def _plot(data: dict, finals: dict, config: Config) -> None:
    fig, axes = plt.subplots(
        2, 3, figsize=(18, 10.5), gridspec_kw={"width_ratios": [1.0, 1.15, 1.1]}
    )
    for row, (name, d) in zip(axes, data.items(), strict=True):
        ax_s, ax_b, ax_x = row
        title = TITLES.get(name, name)
        steps, T0 = d["steps"], d["T0"]
        k = np.arange(steps + 1)
        for sched, c in zip(
            SCHEDULES, ["black", "tab:red", "tab:green", "tab:purple"], strict=True
        ):
            label = sched
            if sched == "logarithmic":
                label = r"logarithmic $c/\log(k+2)$"
            ax_s.plot(k, tabulate(sched, T0, steps), color=c, lw=1.6, label=label)
        # Hajek: logarithmic cooling converges iff c ≥ d*, the depth of the deepest local well
        ax_s.text(
            0.97,
            0.55,
            rf"logarithmic: $c = {d['log_schedule_c']:.1f} < d^* \approx {d['hajek_depth']:g}$",
            transform=ax_s.transAxes,
            ha="right",
            fontsize=10,
            color="tab:green",
        )
        ax_s.set_xlabel("step k")
        ax_s.set_ylabel(r"temperature $T_k$  ($= \eta_k\sigma^2/2$ for the $\eta$ schedules)")
        ax_s.set_title(f"{title}: schedules from T₀ = {T0:g} over K = {steps} steps")
        ax_s.set_ylim(-0.04 * T0, 1.45 * T0)  # the legend sits above the curves
        ax_s.grid(alpha=0.3)
        ax_s.legend(fontsize=9.5, loc="upper right", ncol=2)

        width = 0.38
        for i, sched in enumerate(SCHEDULES):
            for j, family in enumerate(FAMILIES):
                r = d["runs"].get(f"{sched}/{family}")
                if r is None:
                    continue
                both = r["family"] == "both"
                pos = i if both else i + (j - 0.5) * width
                color = "gray" if both else FAMILY_COLORS[family]
                label = None
                if i == 1:
                    label = LABELS[family] + " (±2 SE)"
                elif both:
                    label = "constant: η₀ and T₀ = η₀σ²/2 are one process"
                ax_b.bar(
                    pos,
                    r["p_global"],
                    width,
                    yerr=2 * r["se"],
                    capsize=3,
                    color=color,
                    alpha=0.85,
                    label=label,
                )
                ax_b.plot(
                    pos,
                    r["boltzmann_at_final_T"],
                    "_",
                    color="black",
                    ms=22,
                    mew=2.2,
                    label="Boltzmann P(global basin) at the schedule's final T" if both else None,
                )
                ax_b.text(
                    pos,
                    (r["p_global"] + 2 * r["se"]) * 1.08 + 0.005,
                    f"{r['p_global']:.3f}",
                    ha="center",
                    fontsize=7.5,
                )
        xs = np.arange(len(SCHEDULES))
        ax_b.set_xticks(xs, SCHEDULES)
        ax_b.set_ylabel("P(end in the global minimum's basin)")
        p_max = max(r["p_global"] for r in d["runs"].values())
        if p_max < 0.2:  # Rastrigin: small probabilities beside Boltzmann values near 1
            p_min = min(r["p_global"] for r in d["runs"].values())
            ax_b.set_yscale("log")
            ax_b.set_ylim(max(1e-4, p_min / 3), 4.0)
        else:
            ax_b.set_ylim(0, 1.3)
        ax_b.set_title(f"{title}: N = {d['n']:,} particles, equal budgets of {steps} steps")
        ax_b.grid(alpha=0.3, axis="y", which="both")
        ax_b.legend(fontsize=8, loc="upper left")

        # Müller–Brown's wells sit 100s below walls of 1000s: log contours show them.
        cs, clabel = plot_landscape(ax_x, landscape(name), log=name == "muller_brown")
        fig.colorbar(cs, ax=ax_x, label=clabel, shrink=0.85)
        shown = 1500
        pts = finals[name][("constant", "temperature")][:shown]
        ax_x.scatter(
            pts[:, 0],
            pts[:, 1],
            s=5,
            color="white",
            edgecolor="none",
            alpha=0.7,
        )
        ax_x.scatter(
            [],
            [],
            s=20,
            color="white",
            edgecolor="black",
            label=f"end points, constant T = {d['T0']:g} (first {shown})",
        )
        # Cosine cooling ends at T = 0, on the minima: one ring per minimum, area ∝ count,
        # hollow and under the minimum markers, so no ring hides a minimum.
        ends = np.round(finals[name][("cosine", "temperature")], 2)
        where, counts = np.unique(ends, axis=0, return_counts=True)
        keep = counts >= 0.002 * counts.sum()
        ax_x.scatter(
            where[keep, 0],
            where[keep, 1],
            s=900 * counts[keep] / counts.sum(),
            facecolor="none",
            edgecolor="tab:red",
            linewidths=2.0,
            zorder=5,
        )
        ax_x.scatter(
            [],
            [],
            s=60,
            facecolor="none",
            edgecolor="tab:red",
            linewidths=2.0,
            label="end points, cosine T → 0 (ring area ∝ fraction)",
        )
        ax_x.set_title(f"{title}: where particles end (constant vs cosine T)")
        ax_x.legend(fontsize=8, loc="upper right" if name == "rastrigin" else "lower left")
    fig.suptitle(
        "Annealing: learning-rate decay is simulated annealing "
        "(logarithmic cooling finds the global minimum only as k → ∞)",
        fontsize=13,
    )
    fig.tight_layout()
    save_figure(fig, config, "annealing")
