"""The textbook two-layer network on digits, trained with SGD, heavy-ball momentum and Adam.

64 inputs → 50 sigmoid hidden units → 10 softmax outputs, cross-entropy, batch 100, lr 0.1
(Adam at its usual lr 1e-3: at 0.1 its normalised steps of ~η per coordinate are far too
large for this network). Each optimizer is one `integrators.train` call, i.e. one jitted
`simulate` scan over all epochs and all seeds; the figure shows train and test loss and
accuracy per epoch (mean over seeds, band = min..max) and the 95 % test-accuracy line.
"""

from __future__ import annotations

import time

import jax
import matplotlib.pyplot as plt
import numpy as np

from .. import integrators as itg
from ..landscape.data import digits
from ..landscape.mlp import mlp
from ._common import Config, fuse_for, save_figure, save_json
from .plotting import COLORS

DESCRIPTION = (
    "textbook 64-50-10 sigmoid MLP on digits: SGD, momentum, Adam, loss/accuracy per epoch"
)
ORDER = 40

OPTIMIZERS = {
    "sgd": ("SGD (η=0.1)", lambda: itg.sgd(0.1)),
    "momentum": ("heavy ball (η=0.1, β=0.9)", lambda: itg.momentum(0.1, 0.9)),
    "adam": ("Adam (η=1e-3)", lambda: itg.adam(1e-3)),
}
TARGET = 0.95  # test accuracy the textbook network reaches


def settings(config: Config) -> dict:
    if config.quick:
        return {"epochs": 3, "seeds": 2}
    return {"epochs": 250, "seeds": 4}


def train(name: str, data, epochs: int, seeds: int, key, fuse=None) -> itg.TrainResult:
    """The textbook network trained with `OPTIMIZERS[name]`: one `integrators.train` call."""
    model = mlp((64, 50, 10), activation="sigmoid", loss="cross_entropy")
    make = OPTIMIZERS[name][1]
    return itg.train(
        model, data, make(), epochs=epochs, batch_size=100, seeds=seeds, key=key, fuse=fuse
    )


def run(config: Config) -> dict:
    s = settings(config)
    data = digits()
    key = jax.random.key(config.seed)
    results, runs = {}, {}
    for name, (label, _) in OPTIMIZERS.items():
        start = time.perf_counter()
        res = train(name, data, s["epochs"], s["seeds"], key, fuse_for(config))
        jax.block_until_ready(res.train_loss)
        runs[name] = res
        test_acc = np.asarray(res.test_accuracy)
        results[name] = {
            "label": label,
            "final_test_accuracy_mean": float(test_acc[:, -1].mean()),
            "final_test_accuracy_per_seed": test_acc[:, -1],
            "final_train_accuracy_mean": float(np.asarray(res.train_accuracy)[:, -1].mean()),
            "final_train_loss_mean": float(np.asarray(res.train_loss)[:, -1].mean()),
            "final_test_loss_mean": float(np.asarray(res.test_loss)[:, -1].mean()),
            "first_epoch_reaching_95pct_test": _first_epoch(test_acc.mean(axis=0), TARGET),
            "reaches_95pct_test": bool(test_acc[:, -1].mean() >= TARGET),
            "diverged_runs": int(np.asarray(res.diverged).sum()),
            "wall_seconds": time.perf_counter() - start,
            "per_epoch": {
                "train_loss_mean": np.asarray(res.train_loss).mean(axis=0),
                "test_loss_mean": np.asarray(res.test_loss).mean(axis=0),
                "train_accuracy_mean": np.asarray(res.train_accuracy).mean(axis=0),
                "test_accuracy_mean": test_acc.mean(axis=0),
            },
        }
    _plot(runs, results, data, s, config)
    out = {
        "network": "64-50-10, sigmoid hidden, softmax cross-entropy, batch 100",
        "n_train": data.n_train,
        "n_test": int(data.x_test.shape[0]),
        "iterations_per_epoch": runs["sgd"].iterations_per_epoch,
        "epochs": s["epochs"],
        "seeds": s["seeds"],
        "target_test_accuracy": TARGET,
        "optimizers": results,
    }
    save_json(out, config, "mlp_training")
    return out


def _first_epoch(curve: np.ndarray, target: float):
    hits = np.flatnonzero(curve >= target)
    return int(hits[0]) if hits.size else None


def _band(ax, x, y, color, style="-"):
    ax.plot(x, y.mean(axis=0), style, color=color, lw=1.6)
    if y.shape[0] > 1:
        ax.fill_between(x, y.min(axis=0), y.max(axis=0), color=color, alpha=0.18, lw=0)


def _plot(runs, results, data, s, config):
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(12.5, 4.8))
    for name, res in runs.items():
        color, ep = COLORS[name], res.epochs
        _band(ax_loss, ep, np.asarray(res.train_loss), color)
        _band(ax_loss, ep, np.asarray(res.test_loss), color, "--")
        _band(ax_acc, ep, 100 * np.asarray(res.train_accuracy), color)
        _band(ax_acc, ep, 100 * np.asarray(res.test_accuracy), color, "--")
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("cross-entropy loss (nats)")
    ax_loss.set_title("loss per epoch")
    ax_loss.grid(alpha=0.3, which="both")
    # Two short legends instead of one entry per curve: colour = optimizer, style = data.
    by_optimizer = [
        plt.Line2D([], [], color=COLORS[n], lw=2, label=results[n]["label"]) for n in runs
    ]
    ax_loss.legend(handles=by_optimizer, fontsize=9.5, loc="upper right")
    ax_acc.axhline(100 * TARGET, color=COLORS["theory"], lw=1, ls=":")
    ax_acc.set_ylim(80, 100.5)
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy (%)")
    ax_acc.set_title("accuracy per epoch")
    ax_acc.grid(alpha=0.3)
    by_data = [
        plt.Line2D([], [], color="gray", lw=1.6, label="train"),
        plt.Line2D([], [], color="gray", lw=1.6, ls="--", label="test"),
        plt.Line2D([], [], color=COLORS["theory"], lw=1, ls=":", label="95 % target"),
    ]
    ax_acc.legend(handles=by_data, fontsize=9.5, loc="lower right")
    fig.suptitle(
        f"64-50-10 sigmoid MLP on digits ({data.n_train} train / {data.x_test.shape[0]} test, "
        f"batch 100, {res.iterations_per_epoch} steps per epoch): "
        f"mean of {s['seeds']} seeds, band min..max",
        fontsize=12,
    )
    fig.tight_layout()
    save_figure(fig, config, "mlp_training")
