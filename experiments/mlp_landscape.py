r"""SGD, momentum and Adam paths of a digits MLP on their principal-component planes.

A 64-50-10 sigmoid network (the textbook one) is trained on the 8×8 digits with mini-batch
SGD, heavy-ball momentum and Adam by `integrators.train` (one `integrators.simulate` call per
optimizer, mini-batch noise from `landscape.minibatch`, parameters recorded every epoch).
For each optimizer:

* the loss on the plane of the first two principal components of its iterates, centred at the
  final point, with the projected path and, dashed, the contours of the quadratic (Hessian)
  model at that point: where they part, the map shows more than the local curvature;
* the honest view: the loss the path really had, L(θ_t), beside the loss the map shows
  under the projected point, and the distance of θ_t from the plane next to its distance
  from the centre, |θ_t − θ_c| (Σ_t d_t² = (1 − ρ₁ − ρ₂) Σ_t |θ_t − θ_c|² holds exactly);
* 1-D interpolations: initial → final parameters, and between the minima reached from two
  seeds (different initialisations) and from one initialisation with two batch orders, with
  the barrier max_α L − max(L_A, L_B), against the harmonic (second-order Taylor) models at
  the ends that are minima (each drawn on its own half of the segment; θ₀ is not a minimum,
  its model is kept in the JSON only).
"""

from __future__ import annotations

import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from .. import integrators as itg
from ..landscape import views
from ..landscape.data import digits
from ..landscape.mlp import mlp
from ._common import Config, fuse_for, save_figure, save_json
from ._views_plot import draw_slice, log_levels, loss_colorbar, quadratic_on
from .plotting import COLORS

DESCRIPTION = "digits MLP: SGD/momentum/Adam on the PCA plane, honest view, interpolation barriers"
ORDER = 52

SIZES = (64, 50, 10)
ACTIVATION = "sigmoid"
BATCH = 100
# Momentum has the same effective step as SGD, η/(1 − β) = 0.5 (the overdamped limit).
OPTIMIZERS = {
    "sgd": ("SGD", dict(lr=0.5)),
    "momentum": ("heavy ball", dict(lr=0.05, momentum=0.9)),
    "adam": ("Adam", dict(lr=0.01)),
}
# SGD is heavy ball with β = 0 (m = ∇L, θ ← θ − η m: the same update), so both run as one
# swept `momentum` integrator: one compiled program instead of two.
SWEPT = ("sgd", "momentum")
# Particles of each run: 0 = the path shown (seed s), 1 = another initialisation (seed s+1),
# 2 = the initialisation of particle 0 with its own batch order. Interpolation panels:
# (title, the two particles whose final points are joined or None for θ₀ → final).
PANELS = (
    ("init → final", None),
    ("two inits", (0, 1)),
    ("same init, two batch orders", (0, 2)),
)


def _describe(hyper: dict) -> str:
    text = f"η={hyper['lr']:g}"
    return text + (f", β={hyper['momentum']:g}" if "momentum" in hyper else "")


def _pick(tree, *index):
    return jax.tree.map(lambda a: a[index], tree)


class Run(NamedTuple):
    """One optimizer's three particles (see `PANELS`), as NumPy arrays."""

    positions: object  # pytree, leaves (3, epochs + 1, ...): parameters after every epoch
    epochs: np.ndarray  # (epochs + 1,) 0 … epochs
    test_accuracy: np.ndarray  # (3,) after the last epoch
    diverged: np.ndarray  # (3,) bool


def _as_run(result, *sweep_index) -> Run:
    """A `Run` of a `TrainResult`, of one member of its sweep axis if `sweep_index` is given."""
    numpy = lambda a: np.asarray(a)[sweep_index]  # noqa: E731  (NumPy: no compiled indexing)
    return Run(
        positions=jax.tree.map(numpy, result.trajectory.positions),
        epochs=np.asarray(result.epochs),
        test_accuracy=numpy(result.test_accuracy)[:, -1],
        diverged=numpy(result.diverged),
    )


def _train(config: Config, epochs: int):
    """Three particles per optimizer (see `PANELS`); SGD and heavy ball in one swept call."""
    data = digits()
    model = mlp(SIZES, activation=ACTIVATION)
    init = jax.jit(model.init)  # one program for both seeds (half the compile of a vmap)
    inits = [jax.device_get(init(jax.random.key(config.seed + i))) for i in (0, 1)]
    x0 = jax.tree.map(lambda a, b: np.stack([a, b, a]), *inits)  # particles 0, 1, 2

    def train(optimizer):
        return itg.train(
            model,
            data,
            optimizer,
            epochs=epochs,
            batch_size=BATCH,
            seeds=3,
            key=jax.random.key(config.seed),
            params=x0,
            params_per_seed=True,
            record_positions=True,
            fuse=fuse_for(config),
        )

    swept = {k: [OPTIMIZERS[n][1].get(k, 0.0) for n in SWEPT] for k in ("lr", "momentum")}
    both = train(itg.momentum(**swept))
    runs = {name: _as_run(both, i) for i, name in enumerate(SWEPT)}
    runs["adam"] = _as_run(train(itg.get("adam", **OPTIMIZERS["adam"][1])))
    return data, model, runs, both.iterations_per_epoch


def _pca_panels(axes, name, result, loss_fn, grid_n):
    """Map with path, honest loss panel and distance panel for one optimizer."""
    label, hyper = OPTIMIZERS[name]
    color = COLORS[name]
    path = _pick(result.positions, 0)
    epochs_of = result.epochs
    plane = views.pca_plane(path)
    honest = views.honest_view(loss_fn, path, plane)
    sl = views.pca_slice(loss_fn, plane, n=grid_n, margin=0.15)
    model = views.restricted_quadratic(loss_fn, plane.center, plane.directions)
    coords = np.asarray(plane.coords)
    true_loss, map_loss = np.asarray(honest.true_loss), np.asarray(honest.plane_loss)
    dist, disp = np.asarray(plane.distance), np.asarray(plane.displacement)
    rho = np.asarray(plane.explained_variance)

    ax_map, ax_loss, ax_dist = axes
    levels = log_levels(np.asarray(sl.loss), n=18)
    filled = draw_slice(ax_map, sl, levels, model=model)
    loss_colorbar(ax_map, filled, levels)
    ax_map.plot(coords[:, 0], coords[:, 1], "-o", color=color, ms=3, lw=1.6, label="path")
    ax_map.plot(*coords[0], "s", color="white", mec="black", ms=9, label=r"start $\theta_0$")
    ax_map.plot(0, 0, "*", color="gold", mec="black", ms=15, label=r"end $\theta_c$")
    ax_map.plot([], [], "--", color="white", label="quadratic model")
    ax_map.set_xlabel(f"PC1 coordinate  (explained variance $\\rho_1$ = {rho[0]:.3f})")
    ax_map.set_ylabel(f"PC2 coordinate  ($\\rho_2$ = {rho[1]:.3f})")
    ax_map.set_title(f"{label} ({_describe(hyper)}): PCA plane")
    leg = ax_map.legend(fontsize=9, loc="upper left", framealpha=0.85)
    leg.get_frame().set_facecolor("0.9")

    ax_loss.semilogy(epochs_of, true_loss, "-", color=color, lw=2.0, label=r"true $L(\theta_t)$")
    ax_loss.semilogy(
        epochs_of,
        map_loss,
        "o",
        color="black",
        ms=4,
        mfc="none",
        label=r"map under the path $L(\theta_c + P(\theta_t-\theta_c))$",
    )
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("train loss L")
    gap = np.max(np.abs(true_loss - map_loss) / true_loss)
    ax_loss.set_title(f"honest view: loss along the path (largest gap {gap:.0%})")
    ax_loss.grid(alpha=0.3, which="both")
    ax_loss.legend(fontsize=9)

    shown = disp > 0  # the centre itself (distance 0) has no place on a log axis
    ax_dist.semilogy(
        epochs_of[shown],
        disp[shown],
        "-",
        color="0.55",
        lw=1.6,
        label=r"$|\theta_t - \theta_c|$ (to the centre)",
    )
    ax_dist.semilogy(
        epochs_of[shown], dist[shown], "-", color=color, lw=1.8, label=r"$d_t$ (off the plane)"
    )
    ax_dist.set_xlabel("epoch")
    ax_dist.set_ylabel("distance in parameter space")
    ax_dist.set_title(f"distance from the plane ($1-\\rho_1-\\rho_2$ = {1 - rho.sum():.3f})")
    ax_dist.grid(alpha=0.3, which="both")
    ax_dist.legend(fontsize=9)

    mask = disp > 0
    return {
        "explained_variance": rho,
        "explained_variance_pc1_pc2": float(rho.sum()),
        "max_distance_from_plane": float(dist.max()),
        "max_relative_distance": float(np.max(dist[mask] / disp[mask])),
        "start_distance_over_displacement": float(dist[0] / disp[0]),
        "true_loss_start": float(true_loss[0]),
        "map_loss_start": float(map_loss[0]),
        "max_abs_loss_gap": float(np.max(np.abs(true_loss - map_loss))),
        "max_rel_loss_gap": float(np.max(np.abs(true_loss - map_loss) / true_loss)),
        # the identity Σ d² = (1 − ρ₁ − ρ₂) Σ |Δ|², measured against its theory
        "sum_d2": float(np.sum(dist**2)),
        "sum_d2_theory": float((1 - rho.sum()) * np.sum(disp**2)),
        "final_train_loss": float(true_loss[-1]),
    }


def _taylor(loss_fn, pa, pb, alpha):
    """The harmonic models at both ends of the segment, as functions of α."""
    delta = jax.tree.map(lambda b, a: b - a, pb, pa)
    at_a = views.restricted_quadratic(loss_fn, pa, (delta,))
    at_b = views.restricted_quadratic(loss_fn, pb, (delta,))
    qa = quadratic_on(at_a, alpha[:, None])
    qb = quadratic_on(at_b, (alpha - 1)[:, None])
    return qa, qb, float(at_a[2][0, 0]), float(at_b[2][0, 0])


def _harmonic_barrier(qa, qb, alpha, loss_a, loss_b):
    """Barrier of the lower envelope min(q_A, q_B) of the two harmonic wells on [0, 1]."""
    inside = (alpha >= 0) & (alpha <= 1)
    return float(np.max(np.minimum(qa, qb)[inside]) - max(loss_a, loss_b))


def _half(q, alpha, near_a: bool, ylim):
    """A harmonic model drawn only on the half of the segment at its own end and inside ylim."""
    side = alpha <= 0.5 if near_a else alpha >= 0.5
    return np.where(side & (q > ylim[0]) & (q < ylim[1]), q, np.nan)  # NaN: gaps, no chords


def _plot_line(ax, alpha, line, qa, qb, name, ylim):
    """The measured line (heavy ball: markers, it lies on SGD) and, for SGD and Adam, the
    harmonic models at the ends that are minima (`qa` None: θ_A = θ₀ is not one)."""
    color = COLORS[name]
    loss = np.asarray(line.loss)
    if name == "momentum":
        ax.semilogy(alpha, loss, "o", color=color, ms=5, mfc="none", mew=1.3, zorder=4)
        return
    ax.semilogy(alpha, loss, "-", color=color, lw=2.2, zorder=3)
    for q, near_a in ((qa, True), (qb, False)):
        if q is None:
            continue
        ax.semilogy(alpha, _half(q, alpha, near_a, ylim), "--", color=color, lw=1.1, zorder=2)


def _legend_handles():
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=COLORS["sgd"], lw=2.2, label="SGD")]
    handles.append(
        Line2D(
            [],
            [],
            color=COLORS["momentum"],
            marker="o",
            ls="none",
            mfc="none",
            mew=1.3,
            label="heavy ball (same η/(1−β))",
        )
    )
    handles.append(Line2D([], [], color=COLORS["adam"], lw=2.2, label="Adam"))
    handles.append(
        Line2D([], [], color="black", ls="--", lw=1.1, label="2nd-order Taylor model at the minima")
    )
    return handles


def _interpolation_figure(config, runs, loss_fn, n_alpha):
    fig, axes = plt.subplots(1, 3, figsize=(16.5, 5.4))
    out = {}
    for ax, (title, pair) in zip(axes, PANELS, strict=True):
        alpha = (
            np.linspace(-0.2, 1.3, n_alpha) if pair is None else np.linspace(-0.25, 1.25, n_alpha)
        )
        curves = []
        for name, result in runs.items():
            positions = result.positions
            if pair is None:
                pa, pb = _pick(positions, 0, 0), _pick(positions, 0, -1)
            else:
                pa, pb = (_pick(positions, i, -1) for i in pair)
            line = views.interpolate(loss_fn, pa, pb, alpha)
            qa, qb, ka, kb = _taylor(loss_fn, pa, pb, alpha)
            la, lb = float(line.loss_a), float(line.loss_b)
            out.setdefault(title, {})[name] = {
                "barrier": float(line.barrier),
                "alpha_peak": float(line.alpha_peak),
                "loss_a": la,
                "loss_b": lb,
                "distance": float(line.distance),
                "curvature_a": ka,  # ΔᵀH(θ_A)Δ
                "curvature_b": kb,  # ΔᵀH(θ_B)Δ
                "alpha": alpha,
                "loss": np.asarray(line.loss),
            }
            if pair is not None:  # both ends are minima: two harmonic wells
                out[title][name]["harmonic_barrier"] = _harmonic_barrier(qa, qb, alpha, la, lb)
            curves.append((name, line, qa, qb))
        values = np.concatenate([np.asarray(c[1].loss) for c in curves])
        ylim = (0.5 * values.min(), 2.0 * values.max())
        for name, line, qa, qb in curves:
            _plot_line(ax, alpha, line, None if pair is None else qa, qb, name, ylim)
        for edge in (0, 1):
            ax.axvline(edge, color="0.6", lw=0.8, ls=":")
        if pair is not None:
            text = "\n".join(
                f"{OPTIMIZERS[n][0]}: $\\Delta L^\\ddagger$ = {float(c.barrier):.2g}, "
                f"$|\\theta_B-\\theta_A|$ = {float(c.distance):.3g}"
                for n, c, _, _ in curves
            )
            box = dict(facecolor="white", edgecolor="0.7", alpha=0.9)
            y, va = (0.03, "bottom") if pair == (0, 1) else (0.5, "center")  # where no line is
            ax.text(0.5, y, text, transform=ax.transAxes, ha="center", va=va, fontsize=9, bbox=box)
        ax.set_ylim(*ylim)
        ax.set_xlim(alpha[0], alpha[-1])
        ax.set_xlabel(r"$\alpha$   ($\theta = (1-\alpha)\,\theta_A + \alpha\,\theta_B$)")
        ax.set_ylabel(r"train loss $L(\theta)$")
        where = (
            r"$\theta_A = \theta_0$, $\theta_B$ = final"
            if pair is None
            else r"$\theta_A$, $\theta_B$ = final points"
        )
        ax.set_title(f"{title}  ({where})", fontsize=11)
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(handles=_legend_handles(), fontsize=9.5, loc="upper right")
    fig.suptitle(
        r"Linear interpolation of the digits-MLP loss; barrier "
        r"$\Delta L^\ddagger = \max_{[0,1]} L - \max(L_A, L_B)$ between end points",
        fontsize=12,
    )
    fig.tight_layout()
    save_figure(fig, config, "mlp_landscape_interpolation")
    return out


def run(config: Config) -> dict:
    start = time.perf_counter()
    epochs = 2 if config.quick else 30
    grid_n = 9 if config.quick else 31
    n_alpha = 9 if config.quick else 61
    data, model, runs, per_epoch = _train(config, epochs)
    train = jax.tree.map(jnp.asarray, data.train)
    loss_fn = lambda p: model.loss_fn(p, train)  # noqa: E731  one object: compiled once

    fig, axes = plt.subplots(3, 3, figsize=(16.5, 14.0))
    summary = {}
    for col, (name, result) in enumerate(runs.items()):
        summary[name] = _pca_panels(axes[:, col], name, result, loss_fn, grid_n)
        summary[name]["test_accuracy"] = result.test_accuracy
        summary[name]["hyperparameters"] = OPTIMIZERS[name][1]
        summary[name]["diverged"] = result.diverged
    fig.suptitle(
        f"Digits MLP {'-'.join(map(str, SIZES))} ({ACTIVATION}, batch {BATCH}, {epochs} "
        "epochs): paths on their principal-component planes, and what the planes hide",
        fontsize=13,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.975))
    save_figure(fig, config, "mlp_landscape_pca")

    interpolation = _interpolation_figure(config, runs, loss_fn, n_alpha)
    data_out = {
        "network": {"sizes": SIZES, "activation": ACTIVATION, "n_params": model.n_params},
        "batch_size": BATCH,
        "epochs": epochs,
        "iterations_per_epoch": per_epoch,
        "pca": summary,
        "interpolation": interpolation,
        "runtime_s": time.perf_counter() - start,
    }
    save_json(data_out, config, "mlp_landscape")
    return data_out
