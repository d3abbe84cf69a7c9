r"""The Hessian eigenvalue density of a digits MLP, at initialisation and during training.

A 64-32-10 sigmoid network (2,410 parameters) trained with SGD (η = 0.1, batch 32). At
chosen epochs the full-training-set Hessian's spectrum is estimated by stochastic Lanczos
quadrature (`landscape.hessian_density`, Ghorbani et al. 2019), its largest eigenvalues by
Lanczos (`landscape.lanczos`) and its trace by Hutchinson's estimator; the exact `eigh`
spectrum of the same Hessian (2,410 Hessian-vector products) is drawn beneath as the check.

Outliers (Papyan 2019: about one per class, C − 1 = 9 for a softmax over C = 10 classes,
whose Hessian has rank C − 1 per sample) are counted as the eigenvalues above the widest
relative gap λ_j/λ_{j+1} among the top 2C; a count is reported as separated when that gap
exceeds `GAP` (the bulk's neighbouring eigenvalues differ by a few percent).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from jax.flatten_util import ravel_pytree

from .. import integrators as itg
from .. import landscape as ls
from ..landscape.spectrum import SpectralDensity
from ._common import Config, fuse_for, save_figure, save_json
from .plotting import COLORS

DESCRIPTION = "Hessian eigenvalue density of a digits MLP by stochastic Lanczos quadrature"
ORDER = 44

CLASSES = 10
GAP = 2.0  # a top-2C gap ratio above this separates outliers from the bulk


def settings(config: Config) -> dict:
    if config.quick:
        return {"sizes": (64, 8, 10), "epochs": (0, 1), "probes": 4, "steps": 30}
    return {"sizes": (64, 32, 10), "epochs": (0, 2, 30), "probes": 10, "steps": 80}


def outliers(top: np.ndarray, classes: int = CLASSES) -> tuple[int, float]:
    """(count above the widest ratio gap among the top 2C eigenvalues, that gap ratio)."""
    top = np.sort(np.asarray(top))[::-1][: 2 * classes + 1]
    positive = top[top > 0]
    ratios = positive[:-1] / positive[1:]
    j = int(np.argmax(ratios))
    return j + 1, float(ratios[j])


def _measure(loss, s):
    """One jitted program: (SLQ density, Lanczos top 2C+1, Hutchinson trace, exact Hessian)."""

    def measure(params, key):
        k_slq, k_top, k_tr = jax.random.split(key, 3)
        flat, unravel = ravel_pytree(params)
        return (
            ls.hessian_density(loss, params, k_slq, s["probes"], s["steps"]),
            ls.lanczos(loss, params, k_top, k=s["steps"], n_eigs=2 * CLASSES + 1),
            ls.hutchinson_trace(loss, params, k_tr, n_samples=64),
            jax.hessian(lambda x: loss(unravel(x)))(flat),
        )

    return jax.jit(measure)


def spectrum_at(measure, params, key) -> dict:
    """SLQ density, Lanczos top eigenvalues, Hutchinson trace and the exact spectrum."""
    density, top, (trace, trace_se), hessian = measure(params, key)
    top = np.asarray(top)
    exact = np.linalg.eigvalsh(np.asarray(hessian, dtype=np.float64))
    count, gap = outliers(top)
    return {
        "density": SpectralDensity(density.nodes, density.weights, int(exact.size)),
        "top": top,
        "exact": exact,
        "trace": float(trace),
        "trace_se": float(trace_se),
        "exact_trace": float(exact.sum()),
        "slq_trace": float(ls.spectral_moment(density, 1)[0]) * density.dim,
        "slq_second_moment": float(ls.spectral_moment(density, 2)[0]),
        "exact_second_moment": float(np.mean(exact**2)),
        "outliers": count,
        "gap_ratio": gap,
        "separated": bool(gap > GAP),
        "lanczos_top_rel_error": float(abs(top[0] - exact[-1]) / exact[-1]),
    }


def run(config: Config) -> dict:
    s = settings(config)
    data = ls.digits()
    model = ls.mlp(s["sizes"], activation="sigmoid")
    key = jax.random.key(config.seed)
    res = itg.train(
        model,
        data,
        itg.sgd(0.1),
        epochs=max(s["epochs"]),
        batch_size=32,
        seeds=1,
        key=key,
        record_positions=True,
        fuse=fuse_for(config),
    )
    batch = jax.tree.map(jnp.asarray, data.train)
    measure = _measure(lambda p: model.loss_fn(p, batch), s)
    snaps = {}
    for epoch in s["epochs"]:
        params = jax.tree.map(lambda a, e=epoch: a[0, e], res.trajectory.positions)
        snaps[epoch] = spectrum_at(measure, params, jax.random.fold_in(key, epoch))
        snaps[epoch]["train_loss"] = float(res.train_loss[0, epoch])
        snaps[epoch]["test_accuracy"] = float(res.test_accuracy[0, epoch])
    _plot(snaps, s, config)
    out = {
        "network": f"{'-'.join(map(str, s['sizes']))} sigmoid, softmax cross-entropy",
        "parameters": snaps[0]["density"].dim,
        "optimizer": "SGD, lr 0.1, batch 32",
        "probes": s["probes"],
        "lanczos_steps": s["steps"],
        "gap_threshold": GAP,
        "epochs": {
            str(e): {k: v for k, v in snap.items() if k not in ("density", "exact", "top")}
            | {"top_eigenvalues": snap["top"], "exact_top_eigenvalues": snap["exact"][::-1][:21]}
            for e, snap in snaps.items()
        },
    }
    save_json(out, config, "hessian_spectrum")
    return out


def _plot(snaps, s, config):
    fig, axes = plt.subplots(1, len(snaps), figsize=(5.2 * len(snaps), 4.6), squeeze=False)
    for ax, (epoch, snap) in zip(axes[0], snaps.items(), strict=True):
        exact = snap["exact"]
        lo, hi = exact[0], exact[-1]
        pad = 0.05 * (hi - lo)
        grid = np.linspace(lo - pad, hi + pad, 1200)
        sigma = (hi - lo) / 150
        phi = np.asarray(ls.smoothed_density(snap["density"], grid, sigma))
        bins = np.linspace(lo - pad, hi + pad, 120)
        ax.hist(exact, bins=bins, density=True, color="0.75", label="exact eigh (histogram)")
        ax.plot(grid, phi, color=COLORS["sgd"], lw=1.5, label="SLQ density (Gaussian-smoothed)")
        n_out = snap["outliers"]
        top = np.sort(snap["top"])[::-1][:n_out]
        ax.plot(
            top,
            np.full(n_out, 0.62),
            "v",
            color="red",
            ms=6,
            transform=ax.get_xaxis_transform(),
            label="Lanczos eigenvalues above the widest gap (outliers where separated)",
        )
        status = "separated" if snap["separated"] else "no clear gap"
        ax.text(
            0.97,
            0.97,
            f"{n_out} above the widest gap\n"
            rf"($\lambda_{{{n_out}}}/\lambda_{{{n_out + 1}}}$ = {snap['gap_ratio']:.2f}: "
            f"{status})\ntr H: Hutchinson {snap['trace']:.2f} ± {snap['trace_se']:.2f}, "
            f"exact {snap['exact_trace']:.2f}",
            transform=ax.transAxes,
            ha="right",
            va="top",
            fontsize=9,
            bbox={"facecolor": "white", "alpha": 0.85, "lw": 0},
        )
        ax.set_yscale("log")
        ax.set_ylim(max(phi.max() * 1e-6, 1e-4), phi.max() * 30)
        ax.set_xlabel("Hessian eigenvalue λ")
        ax.set_ylabel("spectral density φ(λ)")
        ax.set_title(
            f"epoch {epoch}: train loss {snap['train_loss']:.3f}, "
            f"test acc. {100 * snap['test_accuracy']:.1f} %",
            fontsize=10,
        )
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(
        handles, labels, loc="lower center", ncol=3, fontsize=10, bbox_to_anchor=(0.5, -0.08)
    )
    fig.suptitle(
        f"Hessian spectrum of a {'-'.join(map(str, s['sizes']))} sigmoid MLP on digits "
        f"({snaps[0]['density'].dim} parameters; SLQ: {s['probes']} probes × {s['steps']} "
        f"Lanczos steps)",
        fontsize=12,
    )
    fig.tight_layout()
    save_figure(fig, config, "hessian_spectrum")
