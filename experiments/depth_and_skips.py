r"""A deep plain sigmoid MLP against the same network with skip connections.

Both networks have 16 hidden sigmoid layers of width 32 on the 8×8 digits and start from the
*same* parameters; the residual one adds its input to every hidden layer of equal width,
h ← h + σ(hW + b). Shown:

* the gradient norm of every layer's weights, |∂L/∂W_l|, at initialisation and after
  training with mini-batch SGD, against the mean-field prediction of backpropagation
  (Schoenholz et al. 2017; Yang & Schoenholz 2017): with γ_l = ∂L/∂h_l,

  .. math::
      |\gamma_{l-1}|^2 = |\gamma_l|^2 \,(r_l + \chi_l), \qquad
      \chi_l = \frac{\lVert W_l\rVert_F^2}{n_l}\,\langle \sigma'(z_l)^2\rangle, \qquad
      |\partial L/\partial W_l| \propto \lVert h_{l-1}\rVert\,
      \langle\sigma'(z_l)^2\rangle^{1/2}\,|\gamma_l|,

  r_l = 1 for a residual layer and 0 for a plain one; the forward statistics are measured
  and the prediction is anchored at the last hidden layer. It is drawn for the hidden
  layers 2 … depth: the first layer's input is the standardised image, whose zero mean makes
  the batch average Σ_i x_iᵀδ_i / N cancel in a way the per-sample estimate |h||δ| does not
  see (the hidden sigmoid outputs share a mean ≈ ½ and add up). For sigmoid, σ' <= 1/4 and
  χ ≈ 0.05, so a plain network's gradient shrinks ~4-5× per layer (vanishing gradients),
  while r_l + χ_l >= 1 keeps the residual one's from vanishing;
* the training loss per epoch, against the loss of a network that ignores its input,
  H(y) = −Σ_c p_c ln p_c (the label entropy, ≈ ln 10): the plain network sits on it;
* 2-D slices of both landscapes at the trained parameters in filter-normalised random
  directions (Li et al. 2018), with the quadratic (Hessian) model dashed, and the 1-D cut
  b = 0 through both.
"""

from __future__ import annotations

import time
from functools import partial

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FormatStrFormatter

from .. import integrators as itg
from ..landscape import views
from ..landscape.data import digits
from ..landscape.mlp import ACTIVATIONS, hidden_activations, mlp
from ._common import Config, fuse_for, save_figure, save_json
from ._views_plot import draw_slice, log_levels, loss_colorbar

DESCRIPTION = "deep plain vs residual sigmoid MLP: per-layer gradient norms, 2-D loss slices"
ORDER = 55

DEPTH = 16  # hidden layers
WIDTH = 32
ACTIVATION = "sigmoid"
BATCH = 64
LR = 0.1
COLORS = {"plain": "#9467bd", "residual": "#ff7f0e"}
LABELS = {"plain": "plain", "residual": "residual (skip connections)"}


def _layer_norms(grads) -> np.ndarray:
    """|∂L/∂W_l| for every layer l (weights only), shape (n_layers,)."""
    return np.array([np.linalg.norm(np.asarray(layer["w"], dtype=float)) for layer in grads])


@partial(jax.jit, static_argnames=("model",))
def _full_batch_gradient(model, params, batch):
    return jax.grad(model.loss_fn)(params, batch)


def layer_gradients(model, params, train) -> dict:
    """Measured |∂L/∂W_l| on the full batch `train` and the mean-field prediction (layers 2 …).

    One compiled gradient per `model` (hashable): the init and trained stages share it.
    """
    measured = _layer_norms(_full_batch_gradient(model, params, train))
    return {
        "grad_norm": measured,
        "mean_field": _mean_field(params, train["x"], model.residual, measured),
    }


@partial(jax.jit, static_argnames=("residual",))
def _forward_stats(params, x, residual: bool):
    """⟨σ'(z_l)²⟩ and the rms norm of each hidden layer's input h_{l−1}, in one compiled call.

    A private helper: it needs the pre-activations z_l, which `landscape.mlp` does not return,
    so they are rebuilt from the hidden representations h_l of `hidden_activations`.
    """
    act = ACTIVATIONS[ACTIVATION]
    x = jnp.asarray(x, dtype=jnp.result_type(params[0]["w"]))
    hs = [x, *hidden_activations(params, x, ACTIVATION, residual)]  # h_0 … h_{L−1}
    d2, h_rms = [], []
    for i in range(len(params) - 1):
        z = hs[i] @ params[i]["w"] + params[i]["b"]
        d2.append(jnp.mean(jax.grad(lambda z: jnp.sum(act(z)))(z) ** 2))
        h_rms.append(jnp.sqrt(jnp.mean(jnp.sum(hs[i] ** 2, axis=1))))
    return jnp.stack(d2), jnp.stack(h_rms)


def _mean_field(params, x, residual: bool, measured: np.ndarray) -> np.ndarray:
    """The mean-field prediction of |∂L/∂W_l| for hidden layers 2 … depth, anchored at the last."""
    d2, h_rms = (np.asarray(v, dtype=float) for v in _forward_stats(params, x, residual))
    n_hidden = len(params) - 1
    log_gamma = np.zeros(n_hidden)  # log |γ_i|, γ_i = ∂L/∂h_{i+1}, relative to the last
    for i in range(n_hidden - 2, -1, -1):
        w = np.asarray(params[i + 1]["w"], dtype=float)
        chi = np.sum(w**2) / w.shape[1] * d2[i + 1]
        skip = residual and w.shape[0] == w.shape[1]  # layer i+1 adds its input
        log_gamma[i] = log_gamma[i + 1] + 0.5 * np.log(float(skip) + chi)
    pred = np.exp(log_gamma) * h_rms * np.sqrt(d2)
    return (pred * measured[n_hidden - 1] / pred[-1])[1:]


def _label_entropy(labels: np.ndarray) -> float:
    p = np.bincount(labels) / len(labels)
    p = p[p > 0]
    return float(-np.sum(p * np.log(p)))


def run(config: Config) -> dict:
    start = time.perf_counter()
    epochs = 1 if config.quick else 12
    grid_n = 7 if config.quick else 21
    depth = 4 if config.quick else DEPTH  # tests check the gradient physics at depth 8
    data = digits()
    train = jax.tree.map(jnp.asarray, data.train)
    sizes = (data.n_features,) + (WIDTH,) * depth + (data.n_outputs,)
    key = jax.random.key(config.seed)
    params0 = jax.jit(mlp(sizes, ACTIVATION).init)(key)  # the same start for both networks
    entropy = _label_entropy(np.asarray(data.y_train))

    results = {}
    for kind in ("plain", "residual"):
        model = mlp(sizes, ACTIVATION, residual=kind == "residual")
        run_ = itg.train(
            model,
            data,
            itg.sgd(LR),
            epochs=epochs,
            batch_size=BATCH,
            key=key,
            params=params0,
            fuse=fuse_for(config),
        )
        final = jax.tree.map(lambda a: np.asarray(a)[0], run_.final_params)
        loss_fn = lambda p, model=model: model.loss_fn(p, train)  # noqa: E731
        stages = {
            stage: layer_gradients(model, params, train)
            for stage, params in (("init", params0), ("trained", final))
        }
        sl = views.random_slice(loss_fn, final, jax.random.fold_in(key, 7), n=grid_n, chunk=64)
        results[kind] = {
            "stages": stages,
            "train_loss": np.asarray(run_.train_loss[0]),
            "test_accuracy": np.asarray(run_.test_accuracy[0]),
            "slice": sl,
            "quadratic": views.restricted_quadratic(loss_fn, final, sl.directions),
            "epochs": run_.epochs,
        }

    _gradient_figure(config, results, entropy, epochs, depth)
    _slice_figure(config, results)

    out = {
        "network": {"sizes": sizes, "activation": ACTIVATION, "depth": depth},
        "training": {"optimizer": "sgd", "lr": LR, "batch_size": BATCH, "epochs": epochs},
        "label_entropy": entropy,
        "runtime_s": time.perf_counter() - start,
    }
    for kind, r in results.items():
        g0 = r["stages"]["init"]["grad_norm"]
        out[kind] = {
            **{
                stage: {
                    "grad_norm_per_layer": s["grad_norm"],
                    "mean_field_prediction_layers_2_to_depth": s["mean_field"],
                    "first_over_last_hidden": float(s["grad_norm"][0] / s["grad_norm"][depth - 1]),
                }
                for stage, s in r["stages"].items()
            },
            "decay_per_layer_at_init": float((g0[0] / g0[depth - 1]) ** (1 / (depth - 1))),
            "train_loss_per_epoch": r["train_loss"],
            "test_accuracy_per_epoch": r["test_accuracy"],
            "slice": {
                "a": r["slice"].a,
                "b": r["slice"].b,
                "loss": r["slice"].loss,
                "hessian_in_plane": r["quadratic"][2],
            },
        }
    save_json(out, config, "depth_and_skips")
    return out


def _gradient_figure(config, results, entropy, epochs, depth):
    fig, axes = plt.subplots(1, 3, figsize=(17, 5.0))
    for ax, stage, title in (
        (axes[0], "init", "at initialisation"),
        (axes[1], "trained", f"after {epochs} epoch{'s' * (epochs > 1)} of SGD"),
    ):
        for kind, r in results.items():
            s = r["stages"][stage]
            layers = np.arange(1, len(s["grad_norm"]) + 1)
            ax.semilogy(layers, s["grad_norm"], "o", color=COLORS[kind], ms=6, label=LABELS[kind])
            ax.semilogy(
                layers[1:depth],
                s["mean_field"],
                "--",
                color=COLORS[kind],
                lw=1.3,
                label=f"mean-field backprop ({kind})",
            )
        ax.axvline(depth + 0.5, color="0.6", ls=":", lw=0.9)
        ax.text(depth + 0.6, 0.5, "output\nlayer", transform=ax.get_xaxis_transform(), fontsize=8)
        ax.set_xlabel(r"layer $l$ (1 = input side)")
        ax.set_ylabel(r"$|\partial L/\partial W_l|$ (full training set)")
        ax.set_title(f"gradient norm per layer, {title}")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=9, loc="lower right")
    ax = axes[2]
    for kind, r in results.items():
        acc = r["test_accuracy"][-1]
        ax.plot(
            r["epochs"],
            r["train_loss"],
            "-o",
            color=COLORS[kind],
            ms=5,
            zorder=3,
            label=f"{LABELS[kind]} (test acc. {acc:.0%})",
        )
    # drawn wide and pale beneath the curves: the plain network's loss lies on it
    ax.axhline(entropy, color="0.75", lw=6, zorder=1, label=f"no-input loss H(y) = {entropy:.3f}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("train loss L")
    ax.set_title(f"training (SGD, η = {LR:g}, batch {BATCH})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9.5)
    fig.suptitle(
        f"{depth} hidden {ACTIVATION} layers of width {WIDTH}, same start: vanishing "
        "gradients without skip connections",
        fontsize=13,
    )
    fig.tight_layout()
    save_figure(fig, config, "depth_and_skips_gradients")


def _slice_figure(config, results):
    fig, axes = plt.subplots(1, 3, figsize=(18, 5.2), gridspec_kw={"width_ratios": [1, 1, 0.9]})
    for ax, (kind, r) in zip(axes[:2], results.items(), strict=True):
        # each map has its own levels (the plain one varies by a few per cent only); the cut
        # on the right compares the two on one scale
        loss = np.asarray(r["slice"].loss)
        levels = log_levels(loss, n=18, top_percentile=100.0)
        filled = draw_slice(ax, r["slice"], levels, model=r["quadratic"])
        loss_colorbar(ax, filled, levels)
        ax.plot(0, 0, "*", color="gold", mec="black", ms=13, label="trained θ*")
        ax.plot([], [], "--", color="white", label="quadratic model at θ*")
        leg = ax.legend(fontsize=9, loc="lower right")
        leg.get_frame().set_facecolor("0.85")
        ax.set_xlabel("a (filter-normalised direction δ₁)")
        ax.set_ylabel("b (filter-normalised direction δ₂)")
        ax.set_title(
            f"{LABELS[kind]}: L(θ* + aδ₁ + bδ₂) from {loss.min():.3g} to {loss.max():.3g}",
            fontsize=11,
        )
    ax = axes[2]
    for kind, r in results.items():
        sl = r["slice"]
        a = np.asarray(sl.a)
        row = np.asarray(sl.loss)[len(sl.b) // 2]
        ax.semilogy(a, row, "-o", color=COLORS[kind], ms=3, label=LABELS[kind])
        value, grad, hess = r["quadratic"]
        quad = float(value) + a * float(grad[0]) + 0.5 * a**2 * float(hess[0, 0])
        keep = quad > 0
        ax.semilogy(
            a[keep], quad[keep], "--", color=COLORS[kind], lw=1.2, label=f"quadratic model ({kind})"
        )
    ax.set_xlabel("a (b = 0)")
    ax.set_ylabel("train loss L (log scale)")
    ax.yaxis.set_major_formatter(FormatStrFormatter("%.3g"))
    ax.yaxis.set_minor_formatter(FormatStrFormatter("%.3g"))
    ax.set_title("cut through θ* along δ₁, both on one scale", fontsize=11)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=9)
    fig.suptitle(
        "Loss landscapes of the deep plain and residual MLPs at their trained parameters "
        "(Li et al. 2018 filter normalisation, biases not perturbed)",
        fontsize=12,
    )
    fig.tight_layout()
    save_figure(fig, config, "depth_and_skips_slices")
