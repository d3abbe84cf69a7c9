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
  both ends.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from .. import integrators as itg
from ..landscape import views
from ..landscape.data import digits
from ..landscape.mlp import mlp
from ._common import Config, save_figure, save_json
from ._views_plot import draw_slice, log_levels, loss_colorbar
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
# Particles of each run: 0 = the path shown (seed s), 1 = another initialisation (seed s+1),
# 2 = the initialisation of particle 0 with its own batch order. Interpolation panels:
# (title, the two particles whose final points are joined or None for θ₀ → final, legend).
PANELS = (
    ("init → final", None, "upper right"),
    ("two inits", (0, 1), "lower center"),
    ("same init, two batch orders", (0, 2), "center"),
)


def _describe(hyper: dict) -> str:
    text = f"η={hyper['lr']:g}"
    return text + (f", β={hyper['momentum']:g}" if "momentum" in hyper else "")


def _pick(tree, *index):
    return jax.tree.map(lambda a: a[index], tree)


def _train(config: Config, epochs: int):
    """Three particles per optimizer (see `PANELS`), one `integrators.train` call each."""
    data = digits()
    model = mlp(SIZES, activation=ACTIVATION)
    keys = jnp.stack([jax.random.key(config.seed), jax.random.key(config.seed + 1)])
    inits = jax.jit(jax.vmap(model.init))(keys)  # seeds s and s + 1, one compilation
    x0 = jax.tree.map(lambda a: a[jnp.array([0, 1, 0])], inits)
    runs = {}
    for name, (_, hyper) in OPTIMIZERS.items():
        runs[name] = itg.train(
            model,
            data,
            itg.get(name, **hyper),
            epochs=epochs,
            batch_size=BATCH,
            seeds=3,
            key=jax.random.key(config.seed),
            params=x0,
            params_per_seed=True,
            record_positions=True,
        )
    return data, model, runs


def _pca_panels(axes, name, result, loss_fn, grid_n):
    """Map with path, honest loss panel and distance panel for one optimizer."""
    label, hyper = OPTIMIZERS[name]
    color = COLORS[name]
    path = _pick(result.trajectory.positions, 0)
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
    ax_map.plot(coords[:, 0], coords[:, 1], "-o", color=color, ms=2.5, lw=1.4, label="path")
    ax_map.plot(*coords[0], "s", color="white", mec="black", ms=8, label="start θ₀")
    ax_map.plot(0, 0, "*", color="gold", mec="black", ms=14, label="end θ_c")
    ax_map.plot([], [], "--", color="white", label="quadratic model at θ_c")
    ax_map.set_xlabel(f"PC1 coordinate  (ρ₁ = {rho[0]:.3f})")
    ax_map.set_ylabel(f"PC2 coordinate  (ρ₂ = {rho[1]:.3f})")
    ax_map.set_title(f"{label} ({_describe(hyper)}): PCA plane")
    leg = ax_map.legend(fontsize=7, loc="lower right", framealpha=0.8)
    leg.get_frame().set_facecolor("0.85")

    ax_loss.semilogy(epochs_of, true_loss, "-", color=color, lw=1.8, label="true L(θ_t)")
    ax_loss.semilogy(
        epochs_of, map_loss, "--", color="black", lw=1.3, label="map under path L(θ_c + Pθ_t)"
    )
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("train loss L")
    ax_loss.set_title("honest view: loss along the path")
    ax_loss.grid(alpha=0.3, which="both")
    ax_loss.legend(fontsize=8)

    shown = disp > 0  # the centre itself (distance 0) has no place on a log axis
    ax_dist.semilogy(
        epochs_of[shown], disp[shown], "-", color="0.55", lw=1.6, label="|θ_t − θ_c| (to centre)"
    )
    ax_dist.semilogy(
        epochs_of[shown], dist[shown], "-", color=color, lw=1.8, label="d_t (off the plane)"
    )
    ax_dist.set_xlabel("epoch")
    ax_dist.set_ylabel("distance in parameter space")
    ax_dist.set_title(f"distance of θ_t from the plane (1 − ρ₁ − ρ₂ = {1 - rho.sum():.3f})")
    ax_dist.grid(alpha=0.3, which="both")
    ax_dist.legend(fontsize=8)

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
    qa = np.asarray(views.quadratic_value(at_a, alpha[:, None]))
    qb = np.asarray(views.quadratic_value(at_b, (alpha - 1)[:, None]))
    return qa, qb, float(at_a[2][0, 0]), float(at_b[2][0, 0])


def _harmonic_barrier(qa, qb, alpha, loss_a, loss_b):
    """Barrier of the lower envelope min(q_A, q_B) of the two harmonic wells on [0, 1]."""
    inside = (alpha >= 0) & (alpha <= 1)
    return float(np.max(np.minimum(qa, qb)[inside]) - max(loss_a, loss_b))


def _plot_line(ax, alpha, line, qa, qb, color, label, ylim, lw):
    ax.semilogy(alpha, np.asarray(line.loss), "-", color=color, lw=lw, label=label, alpha=0.9)
    for q in (qa, qb):
        keep = (q > ylim[0]) & (q < ylim[1])
        ax.semilogy(alpha[keep], q[keep], "--", color=color, lw=0.9, alpha=0.8)


def _interpolation_figure(config, runs, loss_fn, n_alpha):
    fig, axes = plt.subplots(1, 3, figsize=(16.5, 4.9))
    out = {}
    for ax, (title, pair, legend_at) in zip(axes, PANELS, strict=True):
        alpha = (
            np.linspace(-0.2, 1.3, n_alpha) if pair is None else np.linspace(-0.25, 1.25, n_alpha)
        )
        curves = []
        for name, result in runs.items():
            positions = result.trajectory.positions
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
            label = OPTIMIZERS[name][0]
            if pair is not None:
                label += (
                    f": barrier {float(line.barrier):.3g}, |θ_B − θ_A| = {float(line.distance):.3g}"
                )
            lw = 3.4 if name == "sgd" else 1.8  # heavy ball (same η/(1 − β)) lies on SGD
            _plot_line(ax, alpha, line, qa, qb, COLORS[name], label, ylim, lw)
        ax.plot([], [], "--", color="black", lw=0.9, label="2nd-order Taylor models at the ends")
        ax.axvline(0, color="0.6", lw=0.8, ls=":")
        ax.axvline(1, color="0.6", lw=0.8, ls=":")
        ax.set_ylim(*ylim)
        ax.set_xlabel("α   (θ = (1 − α) θ_A + α θ_B)")
        ax.set_ylabel("train loss L(θ)")
        where = "θ_A = θ₀, θ_B = final" if pair is None else "θ_A, θ_B = final points"
        ax.set_title(f"{title}  ({where})", fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7.5, loc=legend_at)
    fig.suptitle(
        "Linear interpolation of the digits-MLP loss: the barrier max L − max(L_A, L_B) "
        "between minima",
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
    data, model, runs = _train(config, epochs)
    train = jax.tree.map(jnp.asarray, data.train)
    loss_fn = lambda p: model.loss_fn(p, train)  # noqa: E731  one object: compiled once

    fig, axes = plt.subplots(3, 3, figsize=(16.5, 14.0))
    summary = {}
    for col, (name, result) in enumerate(runs.items()):
        summary[name] = _pca_panels(axes[:, col], name, result, loss_fn, grid_n)
        summary[name]["test_accuracy"] = np.asarray(result.test_accuracy[:, -1])
        summary[name]["hyperparameters"] = OPTIMIZERS[name][1]
        summary[name]["diverged"] = np.asarray(result.diverged)
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
        "iterations_per_epoch": runs["sgd"].iterations_per_epoch,
        "pca": summary,
        "interpolation": interpolation,
        "runtime_s": time.perf_counter() - start,
    }
    save_json(data_out, config, "mlp_landscape")
    return data_out
