"""Numerical gradients: the error of forward and central differences against the step h.

On an analytic potential (Rosenbrock at the classic start (−1.2, 1)) and on the textbook
64-50-10 sigmoid MLP on digits (cross-entropy, a sample of its parameters), in float32 and
float64, the relative error ‖g_num − ∇U‖/‖∇U‖ against `jax.grad` is measured over h and
drawn with the error model of `landscape.finite_difference_error`: truncation (h/2)‖∂²U‖
(slope 1) or (h²/6)‖∂³U‖ (slope 2), plus round-off ~ε|U|/h (slope −1). Their sum is
smallest near h ~ ε^{1/2} (forward) and ε^{1/3} (central). The MLP's backprop gradient is
then checked against central differences at h = ε^{1/3}, the measured relative error
against the predicted one. Both dtypes see the same network (float32 initial weights, cast);
the model's Taylor constants are evaluated in float64, its round-off uses the dtype's ε. It
keeps the leading Taylor term only, so where h is no longer small (h ≳ 0.05 on the MLP)
higher-order terms show.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from jax.flatten_util import ravel_pytree

from ..landscape.classic import rosenbrock
from ..landscape.data import digits
from ..landscape.mlp import mlp
from ..landscape.numerical_gradient import default_step, finite_difference_error
from ..landscape.numerical_gradient import numerical_gradient as fd_gradient
from ._common import Config, save_figure, save_json
from .plotting import COLORS

DESCRIPTION = "finite-difference gradients: error against h, truncation vs round-off, checks"
ORDER = 45

SCHEMES = {"forward": ("forward differences", COLORS["sgd"]), "central": ("central", "#d62728")}
DTYPES = {"float32": jnp.float32, "float64": jnp.float64}


def settings(config: Config) -> dict:
    if config.quick:
        return {"n_h": 10, "coords": 8, "samples": 64}
    return {"n_h": 36, "coords": 48, "samples": 512}


def _problems(s: dict, seed: int):
    """(name, label, f(x) for a dtype, x for a dtype, coordinates or None)."""
    data = digits()
    model = mlp((64, 50, 10), activation="sigmoid")
    batch = {"x": data.train["x"][: s["samples"]], "y": data.train["y"][: s["samples"]]}
    key = jax.random.key(seed)
    n = model.n_params
    coords = np.sort(np.random.default_rng(seed).choice(n, s["coords"], replace=False))
    U = rosenbrock()
    return [
        (
            "rosenbrock",
            "Rosenbrock at (−1.2, 1)",
            lambda x: U(x),
            lambda dt: jnp.array([-1.2, 1.0], dt),
            None,
        ),
        (
            "mlp",
            f"digits MLP 64-50-10 ({s['coords']} of {n} parameters, {s['samples']} samples)",
            lambda p: model.loss_fn(p, batch),
            lambda dt: jax.tree.map(lambda a: a.astype(dt), model.init(key, jnp.float32)),
            coords,
        ),
    ]


def _scan(f, x, x64, hs, coords) -> dict:
    """Measured and predicted relative errors over hs for both schemes (one jit each)."""
    flat = ravel_pytree(jax.grad(f)(x))[0]
    g = flat if coords is None else flat[coords]
    out = {}
    for scheme in SCHEMES:

        @jax.jit
        def errors(hs, scheme=scheme):
            num = jax.vmap(lambda h: fd_gradient(f, x, h, scheme, coordinates=coords))(hs)
            if coords is None:
                num = jax.vmap(lambda a: ravel_pytree(a)[0])(num)
            return jnp.linalg.norm(num - g, axis=1) / jnp.linalg.norm(g)

        measured = np.asarray(errors(hs))
        model = _model(f, x, x64, hs, scheme, coords)
        total = np.asarray(model.total)
        i, j = int(np.argmin(measured)), int(np.argmin(total))
        out[scheme] = {
            "relative_error": measured,
            "model_truncation": np.asarray(model.truncation),
            "model_roundoff": np.asarray(model.roundoff),
            "measured_best_h": float(hs[i]),
            "measured_best_error": float(measured[i]),
            "predicted_best_h": float(hs[j]),
            "predicted_best_error": float(total[j]),
        }
    return out


def _model(f, x, x64, h, scheme, coords):
    """The error model with the Taylor constants evaluated in float64, ε of x's dtype."""
    dtype = jax.tree.leaves(x)[0].dtype
    with jax.enable_x64(True):
        h = jnp.asarray(h, jnp.float64)
        return finite_difference_error(f, x64, h, scheme, coordinates=coords, dtype=dtype)


def _check(f, x, x64, coords, dtype) -> dict:
    """Backprop against central differences at h = ε^{1/3}: measured and predicted error."""
    h = default_step(dtype, "central")
    flat = ravel_pytree(jax.grad(f)(x))[0][coords]
    num = jax.jit(lambda x: fd_gradient(f, x, h, "central", coordinates=coords))(x)
    measured = float(jnp.linalg.norm(num - flat) / jnp.linalg.norm(flat))
    predicted = float(_model(f, x, x64, h, "central", coords).total)
    return {"h": h, "measured_relative_error": measured, "predicted_relative_error": predicted}


def run(config: Config) -> dict:
    s = settings(config)
    results = {}
    for name, label, f, make_x, coords in _problems(s, config.seed):
        results[name] = {"label": label}
        for dname, dt in DTYPES.items():
            eps = float(jnp.finfo(dt).eps)
            hs = np.logspace(np.log10(eps) + 1, -0.5, s["n_h"])
            with jax.enable_x64(dname == "float64"):  # the CLI runs in JAX's default float32
                x = make_x(dt)
                assert jax.tree.leaves(x)[0].dtype == dt
            with jax.enable_x64(True):
                x64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), x)
            with jax.enable_x64(dname == "float64"):
                entry = {"eps": eps, "h": hs, **_scan(f, x, x64, jnp.asarray(hs, dt), coords)}
                if coords is not None:
                    entry["backprop_check"] = _check(f, x, x64, coords, dt)
            results[name][dname] = entry
    out = {
        "theory": {
            "forward": "(h/2)|d2U| (slope 1) + sqrt(2n) eps|U|/h, over |grad U|; h* ~ eps^(1/2)",
            "central": "(h^2/6)|d3U| (slope 2) + sqrt(n/2) eps|U|/h, over |grad U|; h* ~ eps^(1/3)",
        },
        "settings": s,
        "problems": results,
    }
    _plot(results)
    save_figure(plt.gcf(), config, "numerical_gradient")
    save_json(out, config, "numerical_gradient")
    return out


def _plot(results: dict) -> None:
    fig, axes = plt.subplots(2, 2, figsize=(12.5, 9.0), sharex="col")
    for row, res in enumerate(results.values()):
        for col, dname in enumerate(DTYPES):
            ax, entry = axes[row, col], res[dname]
            hs, eps = np.asarray(entry["h"]), entry["eps"]
            for scheme, (label, color) in SCHEMES.items():
                e = entry[scheme]
                ax.loglog(
                    hs, e["relative_error"], "o", ms=3.5, color=color, label=f"{label}: measured"
                )
                total = e["model_truncation"] + e["model_roundoff"]
                ax.loglog(hs, total, "-", lw=1.2, color=color, alpha=0.8, label=f"{label}: model")
                ax.loglog(hs, e["model_truncation"], ":", lw=1.0, color=color)
            ax.loglog(hs, entry["central"]["model_roundoff"], ":", lw=1.0, color=COLORS["theory"])
            for power, text in ((1 / 2, "ε^½"), (1 / 3, "ε^⅓")):
                ax.axvline(eps**power, color="0.5", lw=0.8, ls="--")
                ax.text(
                    eps**power,
                    0.97,
                    f" {text}",
                    transform=ax.get_xaxis_transform(),
                    va="top",
                    fontsize=8,
                )
            ax.set_ylim(
                max(1e-17, 0.1 * np.min([entry[k]["relative_error"].min() for k in SCHEMES])), 10
            )
            ax.set_title(f"{res['label']}, {dname}", fontsize=9.5)
            ax.grid(alpha=0.3, which="both")
            if row == 1:
                ax.set_xlabel("step h (parameter units)")
            if col == 0:
                ax.set_ylabel("relative error ‖g_num − ∇U‖ / ‖∇U‖")
            if "backprop_check" in entry:
                c = entry["backprop_check"]
                ax.text(
                    0.03,
                    0.04,
                    f"backprop vs central at h = ε^⅓ = {c['h']:.1e}:\n"
                    f"measured {c['measured_relative_error']:.1e}, "
                    f"predicted {c['predicted_relative_error']:.1e}",
                    transform=ax.transAxes,
                    fontsize=8,
                    bbox={"facecolor": "white", "alpha": 0.85, "lw": 0},
                )
    axes[0, 0].plot([], [], ":", color="0.3", label="truncation alone (slopes 1, 2)")
    axes[0, 0].plot([], [], ":", color=COLORS["theory"], label="round-off ε|U|/h (central)")
    axes[0, 0].legend(fontsize=7.5, loc="lower left")
    fig.suptitle(
        "Finite-difference gradients: truncation (slope 1 forward, 2 central) against "
        "round-off (slope −1); best h near ε^½ and ε^⅓",
        fontsize=11.5,
    )
    fig.tight_layout()
