r"""Mini-batch noise is a heat bath whose temperature is set by η/B.

SGD with batch size B and step η is the Euler–Maruyama scheme, dt = η, of
dθ = −∇U dt + √(2T) dW with the (total) temperature

.. math::
    T = \frac{\eta}{2B}\,\operatorname{tr} C(\theta)\,\frac{N - B}{N - 1},

C the per-sample gradient covariance (`landscape.gradient_noise`). Runs with equal η/B share
T, and so share the stationary state: the same mean excess loss, the same loss fluctuation
and the same sharpness, whatever B. Near a minimum (U ≈ U* + ½δᵀHδ) the stationary
covariance Σ of SGD solves HΣ + ΣH = ηC/B (small η), so the excess loss is

.. math::
    \langle U \rangle - U^* = \tfrac12\operatorname{tr}(H\Sigma)
    = \frac{\eta\,\operatorname{tr}C}{4B} = T/2,

an equipartition law held against the measurement below (up to the finite-population factor
and the finite-step correction 1/(1 − ηλ/2) of each mode, which grows with η at fixed η/B).

Setting: a generated teacher–student regression (teacher 10-16-1 tanh, label noise σ = 0.5,
N = 2,000), student 10-32-1 tanh with squared loss. The student is first trained to a
minimum θ* with full-batch Adam then GD (two `simulate` calls); every SGD run starts from θ*.
One `integrators.train` call per batch size B sweeps the three η = (η/B)·B and runs 4 seeds
(shuffling only). Per epoch it records U, λ_max(H) (Lanczos) and tr C (all N per-sample
gradients); the stationary statistics are averages over the second half of the epochs and
the seeds.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from .. import integrators as itg
from ..landscape.curvature import sharpness
from ..landscape.data import teacher_student
from ..landscape.mlp import mlp
from ._common import Config, fuse_for, save_figure, save_json

DESCRIPTION = "runs with equal η/B share stationary loss, fluctuation, sharpness; T ∝ η/B"
ORDER = 42

RATIOS = (1 / 400, 1 / 200, 1 / 100)  # η/B
MARKERS = {4: "o", 8: "s", 16: "^"}


def settings(config: Config) -> dict:
    if config.quick:
        return {"n_train": 200, "batch_sizes": (4, 8), "epochs": 2, "seeds": 2, "pre": 50}
    return {"n_train": 2000, "batch_sizes": (4, 8, 16), "epochs": 20, "seeds": 4, "pre": 3000}


def _minimum(model, data, key, steps):
    """θ* by full-batch Adam then GD: two plain `simulate` runs with exact gradients."""
    U = itg.training_landscape(model, data)
    p0 = model.init(key)
    adam = itg.simulate(itg.adam(1e-2), U, p0, steps, record_every=steps, record_positions=False)
    gd = itg.simulate(
        itg.sgd(0.1), U, adam.final_state.params, steps, record_every=steps, record_positions=False
    )
    return U, gd.final_state.params, float(gd.loss[-1])


def run(config: Config) -> dict:
    s = settings(config)
    data = teacher_student(
        n_train=s["n_train"], n_test=500, sizes=(10, 16, 1), noise=0.5, seed=config.seed
    )
    model = mlp((10, 32, 1), activation="tanh", loss="mse")
    key = jax.random.key(config.seed)
    U, theta_star, u_star = _minimum(model, data, key, s["pre"])
    n = U.n_samples

    def trace_c(p):
        leaves = jax.tree.leaves(U.per_sample_grads(p))
        g = jnp.concatenate([a.reshape(n, -1) for a in leaves], axis=1)
        return jnp.sum(jnp.square(g - g.mean(axis=0))) / n

    metrics = {"sharpness": lambda p: sharpness(U.energy, p, k=10), "trace_C": trace_c}
    rows = []
    for b in s["batch_sizes"]:
        lrs = [r * b for r in RATIOS]
        res = itg.train(
            model,
            data,
            itg.sgd(lrs),
            epochs=s["epochs"],
            batch_size=b,
            seeds=s["seeds"],
            key=jax.random.fold_in(key, b),
            params=theta_star,
            metrics=metrics,
            fuse=fuse_for(config),
        )
        loss = np.asarray(res.train_loss)  # (ratio, seed, epoch)
        sharp = np.asarray(res.observed["sharpness"])
        trc = np.asarray(res.observed["trace_C"])
        late = slice(s["epochs"] // 2 + 1, None)
        fpc = (n - b) / (n - 1)
        for i, (ratio, lr) in enumerate(zip(RATIOS, lrs, strict=True)):
            temps = lr * trc[i, :, late] * fpc / (2 * b)
            rows.append(
                {
                    "batch_size": b,
                    "lr": lr,
                    "lr_over_b": ratio,
                    "excess_loss_mean": float(loss[i, :, late].mean() - u_star),
                    "excess_loss_stderr": _stderr(loss[i, :, late]),
                    "loss_fluctuation_std": float(loss[i, :, late].std(axis=1).mean()),
                    "sharpness_mean": float(sharp[i, :, late].mean()),
                    "sharpness_stderr": _stderr(sharp[i, :, late]),
                    "trace_C_mean": float(trc[i, :, late].mean()),
                    "temperature_mean": float(temps.mean()),
                    "temperature_stderr": _stderr(temps),
                    "diverged": int(np.asarray(res.diverged)[i].sum()),
                    "loss_curve_mean": loss[i].mean(axis=0),
                    "iterations_per_epoch": res.iterations_per_epoch,
                }
            )
    fit = _fit([r["lr_over_b"] for r in rows], [r["temperature_mean"] for r in rows])
    _plot(rows, fit, u_star, s, config)
    out = {
        "setting": {
            "task": "teacher-student regression, teacher 10-16-1 tanh, label noise 0.5",
            "student": "10-32-1 tanh, loss 0.5*(f - y)^2",
            "n_train": n,
            "epochs": s["epochs"],
            "seeds": s["seeds"],
            "stationary_window": "second half of the epochs",
        },
        "u_star": u_star,
        "fit_temperature_vs_lr_over_b": fit,
        "runs": rows,
    }
    save_json(out, config, "batch_temperature")
    return out


def _stderr(x: np.ndarray) -> float:
    """Standard error of the mean over seeds of the per-seed time averages."""
    per_seed = np.asarray(x).reshape(x.shape[0], -1).mean(axis=1)
    if per_seed.size < 2:
        return float("nan")
    return float(per_seed.std(ddof=1) / np.sqrt(per_seed.size))


def _fit(x, y) -> dict:
    """Least-squares line T = a·(η/B) + b, and R²."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    a, b = np.polyfit(x, y, 1)
    pred = a * x + b
    r2 = 1 - np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2)
    return {"slope": float(a), "intercept": float(b), "r2": float(r2)}


def _plot(rows, fit, u_star, s, config):
    fig, axes = plt.subplots(2, 2, figsize=(13, 9.5))
    (ax_curve, ax_loss), (ax_sharp, ax_temp) = axes
    cmap = plt.get_cmap("plasma")
    colors = {r: cmap(0.15 + 0.6 * i / (len(RATIOS) - 1)) for i, r in enumerate(RATIOS)}
    styles = {b: ls for b, ls in zip(s["batch_sizes"], ("-", "--", ":"), strict=False)}
    for r in rows:
        c, b = colors[r["lr_over_b"]], r["batch_size"]
        curve = np.asarray(r["loss_curve_mean"]) - u_star
        ep = np.arange(curve.size)
        ok = curve > 0
        ax_curve.plot(
            ep[ok],
            curve[ok],
            styles[b],
            color=c,
            lw=1.3,
        )
    ax_curve.set_yscale("log")
    ax_curve.set_xlabel("epoch")
    ax_curve.set_ylabel(r"$U(\theta) - U^*$  (mean over seeds)")
    ax_curve.set_title("excess training loss per epoch")
    ax_curve.grid(alpha=0.3, which="both")
    # Two short legends instead of one per run: colour = η/B, line style = B.
    by_ratio = [
        plt.Line2D([], [], color=colors[r], lw=2, label=f"η/B = 1/{1 / r:.0f}") for r in RATIOS
    ]
    by_batch = [
        plt.Line2D([], [], color="gray", ls=styles[b], lw=1.3, label=f"B = {b}")
        for b in s["batch_sizes"]
    ]
    first = ax_curve.legend(handles=by_ratio, fontsize=8.5, loc="upper left", ncol=3)
    ax_curve.add_artist(first)
    ax_curve.legend(handles=by_batch, fontsize=8.5, loc="lower left", ncol=3)
    ax_curve.set_ylim(None, 2.5 * max(np.nanmax(r["loss_curve_mean"]) - u_star for r in rows))

    xs = np.array(RATIOS)
    for b in s["batch_sizes"]:
        sel = [r for r in rows if r["batch_size"] == b]
        x = [r["lr_over_b"] for r in sel]
        kw = dict(marker=MARKERS.get(b, "o"), ls="none", ms=7, mfc="none", label=f"B = {b}")
        ax_loss.errorbar(
            x, [r["excess_loss_mean"] for r in sel], [r["excess_loss_stderr"] for r in sel], **kw
        )
        ax_sharp.errorbar(
            x, [r["sharpness_mean"] for r in sel], [r["sharpness_stderr"] for r in sel], **kw
        )
        ax_temp.errorbar(
            x, [r["temperature_mean"] for r in sel], [r["temperature_stderr"] for r in sel], **kw
        )
    t_half = [0.5 * r["temperature_mean"] for r in rows]
    ax_loss.plot(
        [r["lr_over_b"] for r in rows], t_half, "k_", ms=16, mew=1.5, label="theory T/2 (per run)"
    )
    ax_loss.set_xscale("log")
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("η/B")
    ax_loss.set_ylabel(r"$\langle U\rangle - U^*$  (stationary)")
    ax_loss.set_title(r"excess loss against equipartition $\langle U\rangle - U^* = T/2$")
    ratio_text = []
    for r in RATIOS:
        q = [row["excess_loss_mean"] / (0.5 * row["temperature_mean"]) for row in rows]
        q = [v for v, row in zip(q, rows, strict=True) if row["lr_over_b"] == r]
        ratio_text.append(f"η/B = 1/{1 / r:.0f}: {min(q):.2f}–{max(q):.2f}")
    ax_loss.text(
        0.97,
        0.04,
        "measured / (T/2), over B:\n" + "\n".join(ratio_text),
        transform=ax_loss.transAxes,
        ha="right",
        va="bottom",
        fontsize=8.5,
        bbox=dict(facecolor="white", alpha=0.9, edgecolor="0.8"),
    )
    ax_loss.grid(alpha=0.3, which="both")
    ax_loss.legend(fontsize=8)

    ax_sharp.set_xscale("log")
    for ax in (ax_loss, ax_sharp):  # one labelled tick per ratio
        ax.set_xticks(list(RATIOS), [f"1/{1 / r:.0f}" for r in RATIOS])
        ax.set_xticks([], minor=True)
        ax.set_xlim(RATIOS[0] / 1.4, RATIOS[-1] * 1.4)
    ax_sharp.set_xlabel("η/B")
    ax_sharp.set_ylabel(r"$\lambda_{\max}(H)$  (stationary)")
    spread = max(
        np.ptp(v) / np.mean(v)
        for v in ([r["sharpness_mean"] for r in rows if r["lr_over_b"] == q] for q in RATIOS)
    )
    ax_sharp.set_title(f"sharpness set by η/B (B moves it by ≤ {100 * spread:.1f} %)")
    ax_sharp.grid(alpha=0.3, which="both")
    ax_sharp.legend(fontsize=8)

    grid = np.linspace(0, xs.max() * 1.1, 50)
    ax_temp.plot(
        grid,
        fit["slope"] * grid + fit["intercept"],
        "k-",
        lw=1,
        label=(
            f"linear fit: T = {fit['slope']:.3g}·η/B {fit['intercept']:+.2g} (R² = {fit['r2']:.4f})"
        ),
    )
    ax_temp.set_xlabel("η/B")
    ax_temp.set_ylabel(r"$T = \eta\,\mathrm{tr}\,C\,(N-B)\,/\,(2B(N-1))$")
    ax_temp.set_title("measured temperature against η/B")
    ax_temp.set_xlim(0, None)
    ax_temp.set_ylim(0, None)
    ax_temp.grid(alpha=0.3)
    ax_temp.legend(fontsize=7.5, loc="upper left")
    fig.suptitle(
        "Mini-batch SGD as a heat bath: teacher–student regression, "
        f"N = {rows[0]['iterations_per_epoch'] * rows[0]['batch_size']}, "
        f"{s['seeds']} seeds, stationary averages over epochs {s['epochs'] // 2 + 1}–{s['epochs']}",
        fontsize=12,
    )
    fig.tight_layout()
    save_figure(fig, config, "batch_temperature")
