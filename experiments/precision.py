r"""The same training in float32, bfloat16 and float16: gradient underflow and loss scaling.

The textbook digits network (64-50-10, sigmoid, softmax cross-entropy, batch 100) is trained
with heavy-ball momentum (η = 0.1, β = 0.9) in mixed precision: float32 master weights, the
forward and backward pass in the compute dtype (`landscape.mixed_precision`). Three
`integrators.train` runs, one per compute dtype, keep the parameters of every epoch; one
compiled function then evaluates on a fixed batch of 100 training samples:

* the fraction of *activation gradients* ∂L/∂z_l (per sample, per layer: the backward
  signals a framework stores in the compute dtype) that are zero in low precision but not in
  float32, without and with a static loss scale S = 2¹⁰;
* the same for the weight gradients, and the relative error of the gradient against float32.

float16 has 5 exponent bits: a value below half its smallest subnormal, 2⁻²⁵ ≈ 3·10⁻⁸,
rounds to zero. As the network fits the data, p − onehot(y) of a well-classified sample and
with it every backward signal of that sample (times 1/B from the batch mean) drops below
that line: the prediction drawn beside the measurement is the fraction of float32 signals
with |δ| < 2⁻²⁵/S. Loss scaling multiplies every backward signal by S (then divides the
float32 gradient by S), lifting them above the line, until S·|δ| exceeds float16's largest
value 65504 and the gradient overflows. bfloat16 has float32's 8 exponent bits, so nothing
underflows (its few zeros are rounding, e.g. a softmax that rounds to one-hot), but only 8
significant bits: unit roundoff u = 2⁻⁸ against float16's 2⁻¹¹, hence a larger gradient error.

References:
  P. Micikevicius et al., "Mixed precision training", ICLR 2018 (their Fig. 3 is the
  activation-gradient histogram shown here for a small network).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from .. import integrators as itg
from ..integrators.training import init_params
from ..landscape.data import digits
from ..landscape.mixed_precision import cast_floating, mixed_precision
from ..landscape.mlp import ACTIVATIONS, MLP, cross_entropy, mlp
from ._common import Config, fuse_for, save_figure, save_json

DESCRIPTION = "float32 / bfloat16 / float16 training: gradient underflow and loss scaling"
ORDER = 43

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}
COLORS = {"float32": "#1f77b4", "bfloat16": "#2ca02c", "float16": "#d62728"}
SCALE = 2.0**10
F16_ZERO = 2.0**-25  # below this |x| rounds to 0 in float16 (half the smallest subnormal)
F16_SUBNORMAL = 2.0**-14  # smallest normal float16
F16_MAX = 65504.0
SCALES = 2.0 ** np.arange(0, 23, 2)


@dataclasses.dataclass(frozen=True)
class LowPrecision:
    """`model` computed in `dtype` on float32 master weights (what `train` needs)."""

    model: MLP
    dtype: str
    scale: float = 1.0

    def init(self, key, dtype=jnp.float32):
        return self.model.init(key, dtype)

    @property
    def loss_fn(self):
        return _loss(self.model, self.dtype, self.scale)

    def accuracy(self, params, batch):
        low = cast_floating(params, DTYPES[self.dtype])
        return self.model.accuracy(low, cast_floating(batch, DTYPES[self.dtype])).astype(
            jnp.float32
        )


_LOSSES: dict = {}


def _loss(model, dtype, scale):
    """One loss function object per (model, dtype, scale), so jit caches stay warm."""
    key = (model, dtype, scale)
    if key not in _LOSSES:
        _LOSSES[key] = mixed_precision(model.loss_fn, DTYPES[dtype], scale)
    return _LOSSES[key]


def activation_gradients(model: MLP, params, batch, dtype: str, scale: float = 1.0):
    """∂L/∂z_l for every sample and layer l (pre-activations, output logits last).

    Computed in `dtype` with static loss scale S (the values returned are divided by S, in
    float32): zero probes are added to every pre-activation and differentiated.
    """
    act = ACTIVATIONS[model.activation]
    n = batch["x"].shape[0]
    probes = [jnp.zeros((n, layer["b"].shape[0]), jnp.float32) for layer in params]

    def loss(tree, batch):
        h = batch["x"]
        for i, layer in enumerate(tree["params"]):
            z = h @ layer["w"] + layer["b"] + tree["probes"][i]
            h = act(z) if i < len(tree["params"]) - 1 else z
        return cross_entropy(h, batch["y"])

    f = mixed_precision(loss, DTYPES[dtype], scale)
    return jax.grad(f)({"params": params, "probes": probes}, batch)["probes"]


def _underflow(low, ref):
    """Fraction of entries that are zero in `low` but not in the float32 `ref`, per leaf."""
    return jnp.stack(
        [
            jnp.mean(((a == 0) & (b != 0)).astype(jnp.float32))
            for a, b in zip(jax.tree.leaves(low), jax.tree.leaves(ref), strict=True)
        ]
    )


def _stats(model: MLP, batch, dtype: str, p):
    """The observables of one compute dtype at float32 parameters `p`, on a fixed batch.

    One vector: k = 0..L−1 the activation-gradient underflow at S = 1, L..2L−1 at S = 2¹⁰,
    2L..3L−1 the prediction from float32, then the weight-gradient underflow (L) and the
    relative gradient error (one per leaf).
    """
    ref = activation_gradients(model, p, batch, "float32")
    plain = _underflow(activation_gradients(model, p, batch, dtype, 1.0), ref)
    scaled = _underflow(activation_gradients(model, p, batch, dtype, SCALE), ref)
    predicted = jnp.stack([jnp.mean((jnp.abs(d) < F16_ZERO) & (d != 0)) for d in ref])
    g_ref = jax.grad(model.loss_fn)(p, batch)
    g_low = jax.grad(_loss(model, dtype, 1.0))(p, batch)
    w_under = _underflow([la["w"] for la in g_low], [la["w"] for la in g_ref])
    err = [
        jnp.linalg.norm(a - b) / jnp.linalg.norm(b)
        for a, b in zip(jax.tree.leaves(g_low), jax.tree.leaves(g_ref), strict=True)
    ]
    return jnp.concatenate([plain, scaled, predicted, w_under, jnp.stack(err)])


def per_epoch_stats(model: MLP, batch, positions: dict) -> dict:
    """`_stats` of every run at its recorded parameters, `positions[dtype]` of shape
    (seeds, epochs + 1, ...): one compiled program for all dtypes (not one per run)."""

    @jax.jit
    def all_runs(positions):
        return {
            name: jax.vmap(jax.vmap(lambda p, name=name: _stats(model, batch, name, p)))(pos)
            for name, pos in positions.items()
        }

    return {k: np.asarray(v) for k, v in all_runs(positions).items()}


def settings(config: Config) -> dict:
    if config.quick:
        return {"epochs": 2, "seeds": 1}
    return {"epochs": 60, "seeds": 1}


def run(config: Config) -> dict:
    s = settings(config)
    data = digits()
    model = mlp((64, 50, 10), activation="sigmoid")
    batch = jax.tree.map(jnp.asarray, {"x": data.x_train[:100], "y": data.y_train[:100]})
    key = jax.random.key(config.seed)
    params0 = init_params(model, jax.random.fold_in(key, 1), s["seeds"])  # same start for all
    runs = {}
    for name in DTYPES:
        runs[name] = itg.train(
            LowPrecision(model, name),
            data,
            itg.momentum(0.1, 0.9),
            epochs=s["epochs"],
            batch_size=100,
            seeds=s["seeds"],
            key=key,
            params=params0,
            params_per_seed=True,
            record_positions=True,
            fuse=fuse_for(config),
        )
    final16 = jax.tree.map(lambda a: a[0], runs["float16"].final_params)
    ref = jax.jit(lambda p: activation_gradients(model, p, batch, "float32"))(final16)
    ref = [np.asarray(d) for d in ref]
    sweep = _scale_sweep(model, final16, batch, ref)
    hist = {"float32": ref}
    summary = {}
    n_layers = len(model.sizes) - 1
    stats = per_epoch_stats(model, batch, {n: r.trajectory.positions for n, r in runs.items()})
    for name, res in runs.items():
        st = stats[name]  # (seeds, epochs + 1, 4L + leaves)
        L = n_layers
        plain, scaled, pred = st[..., :L], st[..., L : 2 * L], st[..., 2 * L : 3 * L]
        summary[name] = {
            "final_test_accuracy_mean": float(np.asarray(res.test_accuracy)[:, -1].mean()),
            "final_train_loss_mean": float(np.asarray(res.train_loss)[:, -1].mean()),
            "act_underflow_final": plain[:, -1].mean(axis=0),
            "act_underflow_scaled_final": scaled[:, -1].mean(axis=0),
            "act_underflow_predicted_final": pred[:, -1].mean(axis=0),
            "weight_grad_underflow_final": st[:, -1, 3 * L : 4 * L].mean(axis=0),
            "grad_relative_error_final": st[:, -1, 4 * L :].mean(axis=0),
            "per_epoch": {
                "train_loss": np.asarray(res.train_loss).mean(axis=0),
                "test_accuracy": np.asarray(res.test_accuracy).mean(axis=0),
                "act_underflow": plain.mean(axis=0),
                "act_underflow_scaled": scaled.mean(axis=0),
                "act_underflow_predicted": pred.mean(axis=0),
                "grad_relative_error": st[:, :, 4 * L :].mean(axis=0),
            },
        }
    _plot(runs, summary, hist, sweep, s, config)
    out = {
        "setting": {
            "network": "64-50-10 sigmoid, softmax cross-entropy, batch 100",
            "optimizer": "heavy ball, lr 0.1, momentum 0.9",
            "mixed_precision": "float32 master weights; forward and backward in the dtype",
            "probe_batch": "first 100 training samples",
            "layers": "activation gradients of the hidden pre-activation, then of the logits",
            "loss_scale": SCALE,
            "epochs": s["epochs"],
            "seeds": s["seeds"],
        },
        "float16_limits": {"zero_below": F16_ZERO, "min_normal": F16_SUBNORMAL, "max": F16_MAX},
        "runs": summary,
        "scale_sweep_at_final_float16_params": sweep,
    }
    save_json(out, config, "precision")
    return out


def _scale_sweep(model, params, batch, ref) -> dict:
    """At fixed parameters: float16 activation-gradient underflow and overflow against S.

    `ref` holds the float32 activation gradients at `params`.
    """
    rows = {"scale": SCALES, "underflow": [], "nonfinite": [], "predicted": []}
    sweep = jax.jit(  # every S in one compiled call: the scale is a traced argument
        jax.vmap(lambda S: activation_gradients(model, params, batch, "float16", S))
    )
    lows = [np.asarray(d) for d in sweep(jnp.asarray(SCALES, jnp.float32))]
    # forward-pass floor: softmax outputs that float16 already rounds to 0 (p < 2⁻²⁵) or to 1
    # (1 − p < 2⁻¹²) give a logit gradient p − onehot(y) of exactly 0 whatever S is
    p = np.asarray(jax.jit(lambda q: jax.nn.softmax(model.apply(q, batch["x"])))(params))
    onehot = np.eye(p.shape[1], dtype=bool)[np.asarray(batch["y"])]
    floor = np.where(onehot, 1 - p < 2.0**-12, p < F16_ZERO)
    rows["softmax_floor"] = float(np.mean(floor))
    for j, scale in enumerate(SCALES):
        low = [d[j] for d in lows]
        rows["underflow"].append(
            [float(np.mean((a == 0) & (b != 0))) for a, b in zip(low, ref, strict=True)]
        )
        rows["nonfinite"].append([float(np.mean(~np.isfinite(a))) for a in low])
        rows["predicted"].append(
            [float(np.mean((np.abs(b) * scale < F16_ZERO) & (b != 0))) for b in ref]
        )
    return {k: np.asarray(v) for k, v in rows.items()}


LAYER_NAMES = ("hidden ∂L/∂z₁", "logits ∂L/∂z₂")
LAYER_STYLES = ("-", "--")  # first layer, second layer: one line style per layer everywhere
UNIT_ROUNDOFF = {"bfloat16": 8, "float16": 11}  # u = 2⁻ᵖ, p significant bits (half an ulp of 1)
LEGEND_FONT = 8.5


def _two_legends(ax, entries, loc, style_loc, layer_labels=("hidden", "logits")):
    """One short legend for colours, one for the layer line styles (no entry per curve)."""
    ax.add_artist(ax.legend(handles=entries, fontsize=LEGEND_FONT, loc=loc, framealpha=0.9))
    styles = [
        plt.Line2D([], [], color="gray", ls=ls, lw=1.4, label=label)
        for label, ls in zip(layer_labels, LAYER_STYLES, strict=True)
    ]
    ax.legend(handles=styles, fontsize=LEGEND_FONT, loc=style_loc, title="layer", framealpha=0.9)


def _plot_training(ax, runs, summary):
    """Loss of the three dtypes on one axis; markers keep the coinciding curves visible."""
    f32 = np.asarray(runs["float32"].train_loss).mean(axis=0)
    ep = runs["float32"].epochs
    every = max(1, len(ep) // 12)
    marks = {"float32": (None, 0), "bfloat16": ("o", 0), "float16": ("x", every // 2)}
    worst = 0.0
    for name, res in runs.items():
        loss = np.asarray(res.train_loss).mean(axis=0)
        worst = max(worst, float(np.max(np.abs(loss / f32 - 1))))
        marker, offset = marks[name]
        acc = 100 * summary[name]["final_test_accuracy_mean"]
        line = {"lw": 3.0, "alpha": 0.45} if marker is None else {"lw": 0, "ms": 6, "mfc": "none"}
        ax.plot(
            ep,
            loss,
            color=COLORS[name],
            marker=marker,
            markevery=(offset, every),
            label=f"{name}: final test accuracy {acc:.1f} %",
            **line,
        )
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (nats, float32 evaluation)")
    ax.set_title(f"the three dtypes train alike (losses within {100 * worst:.1f} %)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=LEGEND_FONT + 0.5)


def _plot_gradient_error(ax, runs, summary):
    """‖g − g₃₂‖/‖g₃₂‖ of the two weight matrices per epoch, beside each unit roundoff."""
    ep = runs["float16"].epochs
    entries = []
    for name, bits in UNIT_ROUNDOFF.items():
        err = summary[name]["per_epoch"]["grad_relative_error"]
        for leaf, ls in zip((1, 3), LAYER_STYLES, strict=True):  # leaves b₁ W₁ b₂ W₂
            ax.plot(ep[1:], err[1:, leaf], ls, color=COLORS[name], lw=1.5)
        ax.axhline(2.0**-bits, color=COLORS[name], ls=":", lw=1.3)
        entries.append(
            plt.Line2D([], [], color=COLORS[name], lw=1.5, label=f"{name} (dotted: u = 2⁻{bits})")
        )
    final = {n: summary[n]["grad_relative_error_final"][[1, 3]].mean() for n in UNIT_ROUNDOFF}
    ax.set_yscale("log", base=2)
    ax.set_xlabel("epoch")
    ax.set_ylabel(r"$\|g - g_{32}\|\,/\,\|g_{32}\|$  (weight gradients)")
    ax.set_title(
        f"gradient error against float32: bfloat16 {final['bfloat16'] / final['float16']:.0f}× "
        "float16"
    )
    ax.grid(alpha=0.3, which="both")
    _two_legends(ax, entries, "lower right", "upper left", ("W₁", "W₂"))


def _plot_underflow(ax, summary, ep):
    """Activation gradients that are 0 in low precision but not in float32, per epoch."""
    per = summary["float16"]["per_epoch"]
    curves = (
        (per["act_underflow"], COLORS["float16"], 1.6, "float16, S = 1"),
        (per["act_underflow_predicted"], "black", 0.9, "predicted: float32 |δ| < 2⁻²⁵"),
        (per["act_underflow_scaled"], "#ff9896", 1.6, "float16, S = 2¹⁰"),
        (
            summary["bfloat16"]["per_epoch"]["act_underflow"],
            COLORS["bfloat16"],
            1.2,
            "bfloat16: rounding, not underflow",
        ),
    )
    for values, color, lw, _ in curves:
        for layer, ls in enumerate(LAYER_STYLES):
            ax.plot(ep, 100 * values[:, layer], ls, color=color, lw=lw)
    entries = [plt.Line2D([], [], color=c, lw=max(lw, 1.4), label=t) for _, c, lw, t in curves]
    ax.set_xlabel("epoch")
    ax.set_ylabel("activation gradients flushed to 0 (%)")
    ax.set_title("float16 underflow grows as the fit improves")
    ax.grid(alpha=0.3)
    _two_legends(ax, entries, "upper left", "center left")


def _plot_histogram(ax, values, layer):
    vals = np.abs(values).ravel()
    vals = vals[vals > 0]
    logs = np.log2(vals)
    bins = np.arange(np.floor(logs.min()) - 1, np.ceil(np.log2(SCALE * vals.max())) + 2, 1.0)
    ax.hist(logs, bins=bins, color=COLORS["float32"], alpha=0.6, label="float32 values |δ|")
    ax.hist(
        logs + np.log2(SCALE),
        bins=bins,
        histtype="step",
        color="#ff7f0e",
        lw=1.5,
        label="scaled S·|δ|, S = 2¹⁰",
    )
    ax.axvline(np.log2(F16_ZERO), color="black", ls="--", lw=1.2, label="2⁻²⁵: float16 → 0")
    ax.axvline(
        np.log2(F16_SUBNORMAL), color="gray", ls=":", lw=1.2, label="2⁻¹⁴: float16 subnormal below"
    )
    under = np.mean(vals < F16_ZERO)
    ax.set_xlabel("log₂ |∂L/∂z|  (per sample, batch of 100, end of float16 run)")
    ax.set_ylabel("count")
    ax.set_title(f"{LAYER_NAMES[layer]}: {100 * under:.1f} % below 2⁻²⁵")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=LEGEND_FONT, loc="upper left")


def _plot_sweep(ax, sweep):
    """Underflow and overflow of float16 against the static loss scale S."""
    x = np.log2(sweep["scale"])
    nonfinite = sweep["nonfinite"]
    same = bool(np.array_equal(nonfinite[:, 0], nonfinite[:, 1]))
    for layer, ls in enumerate(LAYER_STYLES):
        ax.plot(x, 100 * sweep["underflow"][:, layer], ls + "o", color=COLORS["float16"], ms=4)
        ax.plot(x, 100 * sweep["predicted"][:, layer], ls, color="black", lw=0.9)
        if not same or layer == 0:
            ax.plot(x, 100 * nonfinite[:, layer], ls + "s", color="#9467bd", ms=4)
    ax.axhline(100 * sweep["softmax_floor"], color="gray", ls=":", lw=1.2)
    overflow = "overflow (inf/NaN)" + (": both layers, identical" if same else "")
    entries = [
        plt.Line2D([], [], color=COLORS["float16"], marker="o", ms=4, label="underflow"),
        plt.Line2D([], [], color="black", lw=0.9, label="predicted: S·|δ₃₂| < 2⁻²⁵"),
        plt.Line2D([], [], color="#9467bd", marker="s", ms=4, label=overflow),
        plt.Line2D([], [], color="gray", ls=":", label="floor: float16 softmax p rounds to 0 or 1"),
    ]
    ax.set_xlabel("log₂ S (static loss scale)")
    ax.set_ylabel("activation gradients (%)")
    ax.set_title("loss scaling at the final float16 parameters")
    ax.grid(alpha=0.3)
    _two_legends(ax, entries, "center left", "center right")


def _plot(runs, summary, hist, sweep, s, config):
    fig, axes = plt.subplots(2, 3, figsize=(16, 9))
    (ax_train, ax_err, ax_under), (ax_h1, ax_h2, ax_sweep) = axes
    _plot_training(ax_train, runs, summary)
    _plot_gradient_error(ax_err, runs, summary)
    _plot_underflow(ax_under, summary, runs["float16"].epochs)
    for ax, layer in ((ax_h1, 0), (ax_h2, 1)):
        _plot_histogram(ax, hist["float32"][layer], layer)
    _plot_sweep(ax_sweep, sweep)
    fig.suptitle(
        "Mixed precision on the digits MLP 64-50-10 (float32 master weights, compute in the "
        f"dtype; heavy ball η = 0.1, β = 0.9; {s['seeds']} seed(s))",
        fontsize=12,
    )
    fig.tight_layout()
    save_figure(fig, config, "precision")
