"""Regression with outliers: the absolute error is robust, the squared error is not.

scikit-learn's bundled diabetes data (442 patients, 10 features, disease progression one
year on), a linear model f(x) = xW + b trained full-batch with Adam. A tenth of the training
targets are corrupted by +6 standard deviations (one-sided, as data-entry errors). The pull
of a sample on the weights is ∂ℓ/∂f: f − y for the squared error, a spring that grows with
the residual so the outliers drag the fit; sign(f − y) for the absolute error, a constant
force, so an outlier pulls no harder than any other sample (the fit moves to a conditional
median); Huber in between. Measured on the clean test targets, against the squared-error fit
to uncorrupted data.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import norm

from .. import integrators as itg
from ..integrators.training import init_params
from ..landscape.data import Dataset, split, standardize
from ..landscape.mlp import mlp
from ._common import Config, fuse_for, save_figure, save_json
from .plotting import COLORS

DESCRIPTION = "diabetes regression with outliers: MSE vs MAE vs Huber on clean test data"
ORDER = 46

OUTLIER_FRACTION = 0.1
OUTLIER_SHIFT = 6.0  # in standard deviations of the target
RUNS = {  # name: (label, loss, corrupted training targets)
    "mse_clean": ("MSE, clean data (reference)", "mse", False),
    "mse": ("MSE (½r²), 10% outliers", "mse", True),
    "smooth_l1": ("Huber δ=1σ, 10% outliers", "smooth_l1", True),
    "mae": ("MAE (|r|), 10% outliers", "mae", True),
}
RUN_COLORS = {
    "mse_clean": COLORS["theory"],
    "mse": COLORS["sgd"],
    "smooth_l1": COLORS["adam"],
    "mae": "#d62728",
}


def settings(config: Config) -> dict:
    return {"epochs": 150 if config.quick else 1500, "lr": 0.05}


def _data(seed: int) -> tuple[Dataset, Dataset, float, float, np.ndarray]:
    """(clean, corrupted) standardised data sets, the target mean and std, outlier mask."""
    import sklearn.datasets

    x, y = sklearn.datasets.load_diabetes(return_X_y=True)
    x_tr, y_tr, x_te, y_te = split(x.astype(np.float32), y.astype(np.float32), 0.3, seed)
    x_tr, x_te, _, _ = standardize(x_tr, x_te)
    mu, sd = float(y_tr.mean()), float(y_tr.std())
    y_tr, y_te = ((y_tr - mu) / sd)[:, None], ((y_te - mu) / sd)[:, None]
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(y_tr), bool)
    mask[rng.choice(len(y_tr), int(round(OUTLIER_FRACTION * len(y_tr))), replace=False)] = True
    corrupted = y_tr + OUTLIER_SHIFT * mask[:, None]
    clean = Dataset("diabetes", x_tr, y_tr, x_te, y_te, 0, {})
    return clean, clean._replace(y_train=corrupted.astype(np.float32)), mu, sd, mask


def run(config: Config) -> dict:
    s = settings(config)
    clean, corrupted, mu, sd, mask = _data(config.seed)
    key = jax.random.key(config.seed)
    results, preds = {}, {}
    # one initialisation for the four runs (the loss does not change it): the key train()
    # would split off for it, one compiled init instead of three
    p0 = init_params(mlp((clean.n_features, 1)), jax.random.split(key)[0], 1)
    for name, (label, loss, dirty) in RUNS.items():
        data = corrupted if dirty else clean
        model = mlp((clean.n_features, 1), loss=loss)
        res = itg.train(
            model,
            data,
            itg.adam(s["lr"]),
            epochs=s["epochs"],
            batch_size=data.n_train,
            key=key,
            params=p0,
            params_per_seed=True,
            fuse=fuse_for(config),
        )
        params = jax.tree.map(lambda a: a[0], res.final_params)
        pred = np.asarray(model.apply(params, jnp.asarray(clean.x_test)))[:, 0] * sd + mu
        truth = clean.y_test[:, 0] * sd + mu
        preds[name] = pred
        results[name] = {
            "label": label,
            "clean_test_mae": float(np.mean(np.abs(pred - truth))),
            "clean_test_rmse": float(np.sqrt(np.mean((pred - truth) ** 2))),
            "mean_test_bias": float(np.mean(pred - truth)),
            "final_train_loss": float(np.asarray(res.train_loss)[0, -1]),
            "final_grad_norm": float(np.asarray(res.grad_norm)[0, -1]),
        }
    truth = clean.y_test[:, 0] * sd + mu
    # the intercept's shift, predicted: the mean of the corrupted targets moves by p·Δ (MSE);
    # their median by s_r·Φ⁻¹(1/(2(1 − p))) for Gaussian residuals of std s_r (MAE), s_r the
    # clean fit's test RMSE
    s_r = results["mse_clean"]["clean_test_rmse"]
    predicted = {
        "mse": OUTLIER_FRACTION * OUTLIER_SHIFT * sd,
        "mae": s_r * float(norm.ppf(0.5 / (1 - OUTLIER_FRACTION))),
    }
    for name, bias in predicted.items():
        results[name]["predicted_bias"] = bias
    out = {
        "data": "sklearn load_diabetes, 70/30 split, features standardised",
        "n_train": clean.n_train,
        "n_test": int(clean.x_test.shape[0]),
        "outliers": {
            "fraction": OUTLIER_FRACTION,
            "shift_in_target_std": OUTLIER_SHIFT,
            "target_std": sd,
            "count": int(mask.sum()),
        },
        "model": "linear f(x) = xW + b, full-batch Adam",
        **s,
        "runs": results,
    }
    _plot(results, preds, truth, out, sd, config)
    save_json(out, config, "regression_losses")
    return out


def _plot(results, preds, truth, out, sd, config: Config) -> None:
    fig, (ax_fit, ax_bar) = plt.subplots(1, 2, figsize=(12.5, 4.9))
    lo, hi = truth.min() - 10, truth.max() + 10
    ax_fit.plot([lo, hi], [lo, hi], "-", color="0.6", lw=1, label="perfect prediction")
    for name in ("mse", "mae", "mse_clean"):
        ax_fit.plot(
            truth,
            preds[name],
            "o",
            ms=3.5,
            alpha=0.75,
            color=RUN_COLORS[name],
            label=results[name]["label"],
        )
    ax_fit.set_xlabel("true disease progression (clean test targets)")
    ax_fit.set_ylabel("predicted disease progression")
    ax_fit.set_title("clean test set: MSE is dragged up by the outliers, MAE is not", fontsize=10)
    ax_fit.grid(alpha=0.3)
    ax_fit.legend(fontsize=8, loc="upper left")
    names = list(RUNS)
    maes = [results[n]["clean_test_mae"] for n in names]
    bias = [results[n]["mean_test_bias"] for n in names]
    bars = ax_bar.bar(range(len(names)), maes, color=[RUN_COLORS[n] for n in names], alpha=0.85)
    for b, name, m, d in zip(bars, names, maes, bias, strict=True):
        text = f"MAE {m:.1f}\nbias {d:+.1f}"
        if "predicted_bias" in results[name]:
            text += f"\n(theory {results[name]['predicted_bias']:+.1f})"
        ax_bar.text(b.get_x() + b.get_width() / 2, m, text, ha="center", va="bottom", fontsize=8)
    ax_bar.set_xticks(
        range(len(names)), [RUNS[n][0].replace(", ", ",\n") for n in names], fontsize=8
    )
    ax_bar.set_ylabel("mean absolute error on clean test targets")
    ax_bar.set_ylim(0, 1.25 * max(maes))
    ax_bar.set_title("clean-test error (disease-progression units) and mean bias", fontsize=10)
    ax_bar.grid(alpha=0.3, axis="y")
    o = out["outliers"]
    fig.suptitle(
        f"Linear regression on diabetes ({out['n_train']} train / {out['n_test']} test), "
        f"{o['count']} training targets shifted by +{o['shift_in_target_std']:.0f}σ "
        f"(σ = {sd:.0f}); {out['epochs']} full-batch Adam steps",
        fontsize=11,
    )
    fig.tight_layout()
    save_figure(fig, config, "regression_losses")
