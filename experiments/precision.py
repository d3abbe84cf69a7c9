r"""The same training in float32, bfloat16 and float16: gradient underflow and loss scaling.

The textbook digits network (64-50-10, sigmoid, softmax cross-entropy, batch 100) is trained
with heavy-ball momentum (η = 0.1, β = 0.9) in mixed precision: float32 master weights, the
forward and backward pass in the compute dtype (`landscape.mixed_precision`). Three
`integrators.train` runs, one per compute dtype, record per epoch on a fixed batch of 100
training samples:

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
value 65504 and the gradient overflows. bfloat16 has float32's 8 exponent bits (no
underflow here) but 8 significant bits, hence a larger rounding error.

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
from ._common import Config, save_figure, save_json

DESCRIPTION = "float32 / bfloat16 / float16 training: gradient underflow and loss scaling"
ORDER = 43

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}
COLORS = {"float32": "#1f77b4", "bfloat16": "#2ca02c", "float16": "#d62728"}
STYLES = {
    "float32": {"lw": 3.0, "alpha": 0.5},
    "bfloat16": {"lw": 1.5, "ls": "--"},
    "float16": {"lw": 1.5, "ls": ":"},
}
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


def _metrics(model: MLP, batch, dtype: str) -> dict:
    """Per-epoch observables on a fixed batch, evaluated at the run's own parameters.

    One function (one float32 reference pass) returns every number, to keep the compiled
    scan small: `precision[k]` with k = 0..L−1 the activation-gradient underflow at S = 1,
    L..2L−1 at S = 2¹⁰, 2L..3L−1 the prediction from float32, then the weight-gradient
    underflow (L) and relative gradient error (one per leaf).
    """

    def stats(p):
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

    return {"precision": stats}


def settings(config: Config) -> dict:
    if config.quick:
        return {"epochs": 6, "seeds": 1}
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
            metrics=_metrics(model, batch, name),
        )
    final16 = jax.tree.map(lambda a: a[0], runs["float16"].final_params)
    ref = jax.jit(lambda p: activation_gradients(model, p, batch, "float32"))(final16)
    ref = [np.asarray(d) for d in ref]
    sweep = _scale_sweep(model, final16, batch, ref)
    hist = {"float32": ref}
    summary = {}
    n_layers = len(model.sizes) - 1
    for name, res in runs.items():
        st = np.asarray(res.observed["precision"])  # (seeds, epochs + 1, 5L + leaves)
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


def _plot(runs, summary, hist, sweep, s, config):
    fig, axes = plt.subplots(2, 3, figsize=(16, 9))
    (ax_loss, ax_acc, ax_under), (ax_h1, ax_h2, ax_sweep) = axes
    for name, res in runs.items():
        c = COLORS[name]
        ep = res.epochs
        style = STYLES[name]
        ax_loss.plot(ep, np.asarray(res.train_loss).mean(axis=0), color=c, label=name, **style)
        ax_acc.plot(
            ep, 100 * np.asarray(res.test_accuracy).mean(axis=0), color=c, label=name, **style
        )
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("training loss (nats, float32 evaluation)")
    ax_loss.set_title("training loss (the three curves coincide)")
    ax_loss.grid(alpha=0.3, which="both")
    ax_loss.legend(fontsize=9)
    ax_acc.set_ylim(80, 100)
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("test accuracy (%)")
    ax_acc.set_title("test accuracy (axis from 80 %)")
    ax_acc.grid(alpha=0.3)
    ax_acc.legend(fontsize=9, loc="lower right")

    per = summary["float16"]["per_epoch"]
    ep = runs["float16"].epochs
    for layer, style in zip(range(2), ("-", "--"), strict=True):
        name = LAYER_NAMES[layer]
        ax_under.plot(
            ep,
            100 * per["act_underflow"][:, layer],
            style,
            color=COLORS["float16"],
            lw=1.6,
            label=f"float16, S = 1: {name}",
        )
        ax_under.plot(
            ep,
            100 * per["act_underflow_predicted"][:, layer],
            style,
            color="black",
            lw=0.9,
            label=f"predicted P(|δ₃₂| < 2⁻²⁵): {name}",
        )
        ax_under.plot(
            ep,
            100 * per["act_underflow_scaled"][:, layer],
            style,
            color="#ff9896",
            lw=1.6,
            label=f"float16, S = 2¹⁰: {name}",
        )
        bf = summary["bfloat16"]["per_epoch"]["act_underflow"][:, layer]
        ax_under.plot(
            ep, 100 * bf, style, color=COLORS["bfloat16"], lw=1.2, label=f"bfloat16: {name}"
        )
    ax_under.set_xlabel("epoch")
    ax_under.set_ylabel("activation gradients flushed to 0 (%)")
    ax_under.set_title("underflow during float16 training")
    ax_under.grid(alpha=0.3)
    ax_under.legend(fontsize=6.8)

    for ax, layer in ((ax_h1, 0), (ax_h2, 1)):
        vals = np.abs(hist["float32"][layer]).ravel()
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
            np.log2(F16_SUBNORMAL),
            color="gray",
            ls=":",
            lw=1.2,
            label="2⁻¹⁴: float16 subnormal below",
        )
        under = np.mean(vals < F16_ZERO)
        ax.set_xlabel("log₂ |∂L/∂z|  (per sample, batch of 100, end of float16 run)")
        ax.set_ylabel("count")
        ax.set_title(f"{LAYER_NAMES[layer]}: {100 * under:.1f} % below 2⁻²⁵")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7.5, loc="upper left")

    x = np.log2(sweep["scale"])
    for layer, style in zip(range(2), ("-", "--"), strict=True):
        ax_sweep.plot(
            x,
            100 * sweep["underflow"][:, layer],
            style + "o",
            color=COLORS["float16"],
            ms=4,
            label=f"underflow: {LAYER_NAMES[layer]}",
        )
        ax_sweep.plot(
            x,
            100 * sweep["predicted"][:, layer],
            style,
            color="black",
            lw=0.9,
            label=f"predicted P(S·|δ₃₂| < 2⁻²⁵): {LAYER_NAMES[layer]}",
        )
        ax_sweep.plot(
            x,
            100 * sweep["nonfinite"][:, layer],
            style + "s",
            color="#9467bd",
            ms=4,
            label=f"overflow (inf/NaN): {LAYER_NAMES[layer]}",
        )
    ax_sweep.axhline(
        100 * sweep["softmax_floor"],
        color="gray",
        ls=":",
        lw=1.2,
        label="forward floor: float16 softmax p rounds to 0 or 1",
    )
    ax_sweep.set_xlabel("log₂ S (static loss scale)")
    ax_sweep.set_ylabel("activation gradients (%)")
    ax_sweep.set_title("loss scaling at the final float16 parameters")
    ax_sweep.grid(alpha=0.3)
    ax_sweep.legend(fontsize=6.8)
    fig.suptitle(
        "Mixed precision on the digits MLP 64-50-10 (float32 master weights, compute in the "
        f"dtype; heavy ball η = 0.1, β = 0.9; {s['seeds']} seed(s))",
        fontsize=12,
    )
    fig.tight_layout()
    save_figure(fig, config, "precision")
