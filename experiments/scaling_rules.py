r"""Scaling rules for the batch size on the digits MLP: linear for SGD, square root for Adam.

Batch B·κ for κ = 1, 2, 4, 8, loss against *epochs* (equal samples seen). SGD is the
Euler–Maruyama step of dθ = −∇L dt + √(η/B)·C^{1/2} dW with dt = η: the linear rule
η → κη keeps the drift per epoch and the temperature η/B, so the curves collapse (Goyal et
al. 2017; Smith & Le 2018); the square-root rule η → √κη does not. For Adam the stochastic
differential equation of Malladi et al. (2022) is kept by the square-root rule
η → √κ·η, 1 − β₁,₂ → κ(1 − β₁,₂), ε → ε/√κ, in the regime where the gradient noise
dominates the mean gradient; the linear rule η → κη (β, ε fixed) does not keep it.

All runs start from one network per seed, pretrained with Adam (`PRETRAIN` = 20 epochs at
batch 32), so that each seed's runs at every κ share their start. The base point is chosen in
the regime of Malladi et al.'s SDE: base batch B = 1, Adam η = 2·10⁻⁴ and 1 − β₁ = 0.01
(small), late in training. There Adam's v̂ ≈ ḡ² + σ²/B is dominated by the noise σ²/B, so
η/√v̂ ∝ η√B and the rule keeps the drift per epoch. Outside it the rule fails visibly: from
B = 2, η = 5·10⁻⁴, β₁ = 0.95 after 5 pretraining epochs (loss 1.15) the curves at larger κ
are systematically slower (z = 2.0, 4.9, 9.9 at κ = 2, 4, 8), because the mean-gradient part
ḡ² of v̂ does not shrink with 1/B and damps the larger-batch steps.

For each rule and κ > 1 the collapse is measured by

.. math::
    z_\kappa = \sqrt{\overline{(\bar L_\kappa(e) - \bar L_1(e))^2}}
    \Big/ \sqrt{\overline{\mathrm{SE}^2(e)}},\qquad
    \mathrm{SE}^2 = (s_\kappa^2 + s_1^2)/n,

the root-mean-square over epochs of the gap between the seed means against the standard
error of that gap (s the seed-to-seed standard deviation, n seeds): curves collapse when
z ≲ 4 (the gap is within 4 standard errors) and not when z ≫ 4. `gap_over_spread`, the gap
against the seed-to-seed spread s₁ itself, is reported too.

References:
  P. Goyal et al., "Accurate, large minibatch SGD: training ImageNet in 1 hour" (2017).
  S. L. Smith, Q. V. Le, "A Bayesian perspective on generalization and stochastic gradient
  descent", ICLR 2018.
  S. Malladi, K. Lyu, A. Panigrahi, S. Arora, "On the SDEs and scaling rules for adaptive
  gradient algorithms", NeurIPS 2022.
"""

from __future__ import annotations

import time

import jax
import matplotlib.pyplot as plt
import numpy as np

from .. import integrators as itg
from .. import landscape as ls
from ._common import Config, fuse_for, save_figure, save_json

DESCRIPTION = "batch scaling rules on the digits MLP: SGD linear, Adam square root (Malladi 2022)"
ORDER = 45

KAPPAS = (1, 2, 4, 8)
SGD_LR = 0.02
ADAM = {"lr": 2e-4, "b1": 0.99, "b2": 0.999, "eps": 1e-8}
PRETRAIN = 20  # epochs of Adam (η = 1e-3, batch 32) before the comparison
Z_COLLAPSE = 4.0  # a gap within 4 standard errors: the curves collapse


def settings(config: Config) -> dict:
    """Full: the figure. Quick: the small version that tests/test_scaling.py checks (5 programs)."""
    if config.quick:
        return {
            "sizes": (64, 16, 10), "batch": 1, "epochs": 2, "seeds": 6, "kappas": (1, 4),
            "pretrain": PRETRAIN,
        }  # fmt: skip
    return {
        "sizes": (64, 32, 10), "batch": 1, "epochs": 6, "seeds": 8, "kappas": KAPPAS,
        "pretrain": PRETRAIN,
    }  # fmt: skip


def sgd_rules(kappa: float, lr: float = SGD_LR):
    """SGD at batch κB with η scaled by the (linear, square-root) rules: one swept integrator."""
    return itg.sgd([kappa * lr, kappa**0.5 * lr])


def adam_rules(kappa: float, lr=ADAM["lr"], b1=ADAM["b1"], b2=ADAM["b2"], eps=ADAM["eps"]):
    """Adam at batch κB under (linear: η → κη; Malladi's square root): one swept integrator."""
    r = kappa**0.5
    return itg.adam(
        lr=[kappa * lr, r * lr],
        b1=[b1, 1 - kappa * (1 - b1)],
        b2=[b2, 1 - kappa * (1 - b2)],
        eps=[eps, eps / r],
    )


def collapse(curves: dict) -> dict:
    """z_κ and gap/spread for each κ > 1 against κ = 1; curves[κ] is (seeds, epochs + 1)."""
    ref = np.asarray(curves[min(curves)])[:, 1:]
    n = ref.shape[0]
    out = {}
    for kappa, c in curves.items():
        if kappa == min(curves):
            continue
        c = np.asarray(c)[:, 1:]
        gap = np.sqrt(np.mean((c.mean(0) - ref.mean(0)) ** 2))
        se = np.sqrt(np.mean((c.var(0, ddof=1) + ref.var(0, ddof=1)) / n))
        spread = np.sqrt(np.mean(ref.var(0, ddof=1)))
        out[kappa] = {"z": float(gap / se), "gap": float(gap), "gap_over_spread": gap / spread}
    return out


def scaling_curves(model, data, s: dict, key, fuse=None) -> dict:
    """Train loss per epoch {optimizer: {rule: {κ: (seeds, epochs + 1)}}}, one call per κ."""
    start = itg.train(
        model,
        data,
        itg.adam(1e-3),
        epochs=s["pretrain"],
        batch_size=32,
        seeds=s["seeds"],
        key=key,
        fuse=fuse,
    ).final_params
    curves = {"sgd": {"linear": {}, "sqrt": {}}, "adam": {"linear": {}, "sqrt": {}}}
    run_key = jax.random.fold_in(key, 1)
    for kappa in s["kappas"]:
        for name, make in (("sgd", sgd_rules), ("adam", adam_rules)):
            res = itg.train(
                model,
                data,
                make(kappa),
                epochs=s["epochs"],
                batch_size=s["batch"] * kappa,
                seeds=s["seeds"],
                key=run_key,
                params=start,
                params_per_seed=True,
                fuse=fuse,
            )
            loss = np.asarray(res.train_loss)  # (2 rules, seeds, epochs + 1)
            curves[name]["linear"][kappa], curves[name]["sqrt"][kappa] = loss[0], loss[1]
    return curves


def run(config: Config) -> dict:
    s = settings(config)
    data = ls.digits()
    model = ls.mlp(s["sizes"], activation="sigmoid")
    t0 = time.perf_counter()
    curves = scaling_curves(model, data, s, jax.random.key(config.seed), fuse_for(config))
    stats = {
        name: {rule: collapse(c) for rule, c in rules.items()} for name, rules in curves.items()
    }
    out = {
        "network": f"{'-'.join(map(str, s['sizes']))} sigmoid, softmax cross-entropy",
        "base_batch": s["batch"],
        "kappas": s["kappas"],
        "epochs": s["epochs"],
        "seeds": s["seeds"],
        "pretrain_epochs_adam_batch32": s["pretrain"],
        "sgd_base": {"lr": SGD_LR},
        "adam_base": ADAM,
        "z_collapse_threshold": Z_COLLAPSE,
        "collapse": stats,
        "collapses": {
            name: {
                rule: bool(max(v["z"] for v in st.values()) < Z_COLLAPSE)
                for rule, st in rules.items()
            }
            for name, rules in stats.items()
        },
        "mean_train_loss": {
            name: {rule: {k: c.mean(0) for k, c in cs.items()} for rule, cs in rules.items()}
            for name, rules in curves.items()
        },
        "wall_seconds": time.perf_counter() - t0,
    }
    _plot(curves, stats, s, config)
    save_json(out, config, "scaling_rules")
    return out


TITLES = {
    ("sgd", "linear"): "SGD, linear rule η → κη",
    ("sgd", "sqrt"): "SGD, square-root rule η → √κ η",
    ("adam", "linear"): "Adam, linear rule η → κη",
    ("adam", "sqrt"): "Adam, Malladi rule η → √κ η, 1−β → κ(1−β), ε → ε/√κ",
}


def _plot(curves, stats, s, config):
    fig, axes = plt.subplots(2, 2, figsize=(12.5, 8.6), sharex=True)
    colors = plt.cm.viridis(np.linspace(0.0, 0.85, len(s["kappas"])))
    for (name, rule), ax in zip(TITLES, axes.ravel(), strict=True):
        for kappa, color in zip(s["kappas"], colors, strict=True):
            c = curves[name][rule][kappa]
            ep = np.arange(c.shape[1])
            mean, sd = c.mean(0), c.std(0, ddof=1)
            z = "" if kappa == 1 else f", z = {stats[name][rule][kappa]['z']:.1f}"
            ax.plot(ep, mean, "-o", ms=3, color=color, label=f"B = {s['batch'] * kappa}{z}")
            ax.fill_between(ep, mean - sd, mean + sd, color=color, alpha=0.15, lw=0)
        worst = max(v["z"] for v in stats[name][rule].values())
        verdict = "collapse" if worst < Z_COLLAPSE else "no collapse"
        ax.set_title(f"{TITLES[(name, rule)]}\n{verdict}: max z = {worst:.1f}", fontsize=10)
        ax.set_yscale("log")
        ax.set_ylabel("training loss (nats)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8, title="batch (z: gap in SEs)", title_fontsize=8)
    for ax in axes[1]:
        ax.set_xlabel(f"epoch (after {s['pretrain']} pretraining epochs)")
    fig.suptitle(
        f"Batch scaling rules, {'-'.join(map(str, s['sizes']))} sigmoid MLP on digits: "
        f"B = {s['batch']}·κ, mean ± sd over {s['seeds']} seeds; curves collapse when the "
        f"gap is within {Z_COLLAPSE:.0f} SE",
        fontsize=11,
    )
    fig.tight_layout()
    save_figure(fig, config, "scaling_rules")
