"""The textbook training loop on digits, made visible: epochs, validation, early stopping, L2.

Panel (a): a 64-32-10 tanh network trained with SGD (η = 0.1, batch 100) on digits split
into train / validation / test (stratified, fixed seed); the figure states the arithmetic
iterations = epochs × ⌊N/B⌋, draws the three loss curves and marks the epoch at which early
stopping (patience 10, min_delta 0.01 nats on the validation loss) froze the run and its
best epoch. Panel (b): overfitting: 100 training samples and a wide 64-256-10 network: the
training loss falls towards zero while the validation loss levels off or rises; the same
run with L2 weight decay λ = 1e-3 (the harmonic confining potential (λ/2)|W|² added to U)
and with early stopping. Panel (c): the problem is ill-posed: two seeds reach the same
training loss at parameters far apart (|θ₁ − θ₂| / |θ₁| against |U₁ − U₂| / U).
"""

from __future__ import annotations

import jax
import matplotlib.pyplot as plt
import numpy as np

from .. import integrators as itg
from ..integrators.training import init_params
from ..landscape.data import digits
from ..landscape.mlp import mlp
from ._common import Config, fuse_for, save_figure, save_json
from .plotting import COLORS

DESCRIPTION = "the training loop on digits: train/val/test curves, early stopping, overfitting, L2"
ORDER = 41
MIN_DELTA = 0.01  # nats: a smaller gain in validation loss is not an improvement
LAMBDA = 1e-3  # L2 weight decay of the overfitting run
LR_OVERFIT = 0.3


def settings(config: Config) -> dict:
    if config.quick:
        return {"epochs": 6, "overfit_epochs": 10, "patience": 2, "wide": 32}
    return {"epochs": 80, "overfit_epochs": 300, "patience": 10, "wide": 256}


def _flat(params):
    return np.concatenate(
        [np.asarray(a).reshape(a.shape[0], -1) for a in jax.tree.leaves(params)], 1
    )


def run(config: Config) -> dict:
    s = settings(config)
    key = jax.random.key(config.seed)
    data = digits(seed=config.seed).with_validation(0.2, seed=config.seed)
    batch = 100
    model = mlp((64, 32, 10), activation="tanh")
    rule = itg.early_stopping("val_loss", patience=s["patience"], min_delta=MIN_DELTA)

    def on_digits(stop):  # the same two-seed run, watched by a different rule
        return itg.train(
            model,
            data,
            itg.sgd(0.1),
            epochs=s["epochs"],
            batch_size=batch,
            seeds=2,
            key=key,
            early_stopping=stop,
            fuse=fuse_for(config),
        )

    main = on_digits(itg.early_stopping("val_loss", patience=None))
    stopped = on_digits(rule)
    small = data.subset(100, seed=config.seed)
    # the three overfitting runs share one initialisation (weight decay does not change it):
    # the key train() would split off for it, one compiled init instead of three
    p0 = init_params(mlp((64, s["wide"], 10), "tanh"), jax.random.split(key)[0], 1)
    over = {}
    for name, lam, r in (
        ("plain", 0.0, None),
        ("L2", LAMBDA, None),
        ("early stopping", 0.0, rule),
    ):
        wide = mlp((64, s["wide"], 10), activation="tanh", weight_decay=lam)
        res = itg.train(
            wide,
            small,
            itg.sgd(LR_OVERFIT),
            epochs=s["overfit_epochs"],
            batch_size=20,
            key=key,
            params=p0,
            params_per_seed=True,
            early_stopping=r,
            fuse=fuse_for(config),
        )
        over[name] = (lam, res)
    theta = _flat(main.final_params)
    loss = np.asarray(main.train_loss)[:, -1]
    dist = float(np.linalg.norm(theta[0] - theta[1]) / np.linalg.norm(theta[0]))
    dloss = float(abs(loss[0] - loss[1]) / loss.mean())
    out = {
        "n_train": data.n_train,
        "n_val": len(data.y_val),
        "n_test": len(data.y_test),
        "batch_size": batch,
        "iterations_per_epoch": main.iterations_per_epoch,
        "epochs": s["epochs"],
        "total_iterations": s["epochs"] * main.iterations_per_epoch,
        "stop_epoch_per_seed": np.asarray(stopped.stop_epoch),
        "best_epoch_per_seed": np.asarray(stopped.best_epoch),
        "best_val_loss_per_seed": [
            float(np.asarray(stopped.val_loss)[i, int(stopped.best_epoch[i])]) for i in range(2)
        ],
        "test_accuracy_at_stop": np.asarray(stopped.test_accuracy)[:, -1],
        "test_accuracy_uninterrupted": np.asarray(main.test_accuracy)[:, -1],
        "overfitting": {
            name: {
                "weight_decay": lam,
                "final_train_loss": float(res.train_loss[0, -1]),
                "final_val_loss": float(res.val_loss[0, -1]),
                "min_val_loss": float(np.min(res.val_loss[0])),
                "epoch_of_min_val_loss": int(np.argmin(res.val_loss[0])),
                "final_test_accuracy": float(res.test_accuracy[0, -1]),
                "stop_epoch": int(res.stop_epoch[0]),
            }
            for name, (lam, res) in over.items()
        },
        "two_seeds": {
            "final_train_loss": loss,
            "relative_loss_difference": dloss,
            "relative_parameter_distance": dist,
        },
    }
    _plot(main, stopped, over, out, config, s["wide"])
    save_json(out, config, "training_loop")
    return out


def _plot(main, stopped, over, out, config, wide):
    fig, (ax_a, ax_b, ax_c) = plt.subplots(1, 3, figsize=(17, 4.9))
    ep = main.epochs
    for name, arr, style in (
        ("train", main.train_loss, "-"),
        ("validation", main.val_loss, "--"),
        ("test", main.test_loss, ":"),
    ):
        ax_a.plot(ep, np.asarray(arr)[0], style, color=COLORS["sgd"], lw=1.6, label=f"{name} loss")
    e_stop, e_best = int(stopped.stop_epoch[0]), int(stopped.best_epoch[0])
    if e_stop > 0:
        ax_a.axvline(e_stop, color="crimson", lw=1.2, label=f"early stop (epoch {e_stop})")
    ax_a.axvline(e_best, color="gray", lw=1, ls="-.", label=f"best val. epoch {e_best}")
    ax_a.set_yscale("log")
    ax_a.set_xlabel("epoch")
    ax_a.set_ylabel("cross-entropy loss (nats)")
    ax_a.set_title("(a) 64-32-10 tanh, SGD η=0.1, seed 0")
    ax_a.text(
        0.03,
        0.04,
        f"N = {out['n_train']} train, B = {out['batch_size']}: ⌊N/B⌋ = "
        f"{out['iterations_per_epoch']} iterations/epoch\n"
        f"{out['epochs']} epochs × {out['iterations_per_epoch']} = "
        f"{out['total_iterations']} iterations\n"
        f"validation {out['n_val']}, test {out['n_test']} samples",
        transform=ax_a.transAxes,
        fontsize=8,
        va="bottom",
        bbox={"facecolor": "white", "alpha": 0.85, "lw": 0},
    )
    ax_a.legend(fontsize=8, loc="upper right")
    ax_a.grid(alpha=0.3, which="both")
    colors = {"plain": "#d62728", "L2": "#2ca02c", "early stopping": "#1f77b4"}
    # early stopping equals the plain run until it stops: drawn wide and pale underneath
    for name in ("early stopping", "L2", "plain"):
        lam, res = over[name]
        c = colors[name]
        lw, alpha = (4.5, 0.35) if name == "early stopping" else (1.4, 1.0)
        label = name if not lam else f"L2, λ={lam:g}"
        for arr, style, part in ((res.train_loss, "-", "train"), (res.val_loss, "--", "val.")):
            ax_b.plot(
                res.epochs,
                np.asarray(arr)[0],
                style,
                color=c,
                lw=lw,
                alpha=alpha,
                label=f"{label}: {part}",
            )
        if int(res.stop_epoch[0]) > 0:
            ax_b.axvline(int(res.stop_epoch[0]), color=c, lw=0.8, ls=":")
    ax_b.set_yscale("log")
    ax_b.set_xlabel("epoch")
    ax_b.set_ylabel("loss (nats; L2 run: U incl. (λ/2)|W|²)")
    ax_b.set_title(f"(b) overfitting: 100 train samples, 64-{wide}-10, B=20, η={LR_OVERFIT}")
    ax_b.legend(fontsize=7.5, loc="lower left")
    ax_b.grid(alpha=0.3, which="both")
    two = out["two_seeds"]
    for i, ls_ in enumerate(("-", "--")):
        ax_c.plot(ep, np.asarray(main.train_loss)[i], ls_, lw=1.5, label=f"seed {i}: train loss")
    ax_c.set_yscale("log")
    ax_c.set_xlabel("epoch")
    ax_c.set_ylabel("training loss (nats)")
    ax_c.set_title("(c) two seeds: equal loss, different parameters")
    ax_c.text(
        0.35,
        0.7,
        f"final |U₁ − U₂| / U = {two['relative_loss_difference']:.2g}\n"
        f"final |θ₁ − θ₂| / |θ₁| = {two['relative_parameter_distance']:.2f}",
        transform=ax_c.transAxes,
        fontsize=9,
        bbox={"facecolor": "white", "alpha": 0.85, "lw": 0},
    )
    ax_c.legend(fontsize=8)
    ax_c.grid(alpha=0.3, which="both")
    fig.suptitle(
        "The training loop on digits: epochs, validation, early stopping, overfitting", fontsize=12
    )
    fig.tight_layout()
    save_figure(fig, config, "training_loop")
