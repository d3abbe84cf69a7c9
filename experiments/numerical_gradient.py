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
        return {"n_h": 8, "coords": 4, "samples": 32}
    return {"n_h": 36, "coords": 48, "samples": 512}


def _problems(s: dict, seed: int):
    """(name, label, f(x) for a dtype, x for a dtype, coordinates or None)."""
    data = digits()
    model = mlp((64, 50, 10), activation="sigmoid")
    batch = {"x": data.train["x"][: s["samples"]], "y": data.train["y"][: s["samples"]]}
    n = model.n_params
    coords = np.sort(np.random.default_rng(seed).choice(n, s["coords"], replace=False))
    # one float32 initialisation (a jitted program), cast to each dtype
    init = jax.jit(lambda k: model.init(k, jnp.float32))
    p32 = jax.tree.map(np.asarray, init(jax.random.key(seed)))
    U = rosenbrock()
    return [
        (
            "rosenbrock",
            "Rosenbrock at (−1.2, 1)",
            lambda x: U(x),
            lambda dt: np.array([-1.2, 1.0], dt),
            None,
        ),
        (
            "mlp",
            f"digits MLP 64-50-10 ({s['coords']} of {n} parameters, {s['samples']} samples)",
            lambda p: model.loss_fn(p, batch),
            lambda dt: jax.tree.map(lambda a: a.astype(dt), p32),
            coords,
        ),
    ]


def _measure(f, x, hs, h_check, coords) -> dict:
    """Relative errors ‖g_num − ∇U‖/‖∇U‖ over hs for both schemes, and of central
    differences at h_check (one jitted program, in x's dtype)."""

    @jax.jit
    def run(hs, h_check):  # x a constant of the program, as g_num is usually computed
        flat = ravel_pytree(jax.grad(f)(x))[0]
        g = flat if coords is None else flat[coords]

        def error(h, scheme):
            num = fd_gradient(f, x, h, scheme, coordinates=coords)
            num = ravel_pytree(num)[0] if coords is None else num
            return jnp.linalg.norm(num - g) / jnp.linalg.norm(g)

        out = {k: jax.vmap(lambda h, k=k: error(h, k))(hs) for k in SCHEMES}
        out["check"] = error(h_check, "central")
        return out

    return jax.tree.map(np.asarray, run(hs, h_check))


def _model(f, x64, hs, h_check, coords, dtype) -> dict:
    """The error model of both schemes over hs (and central at h_check), its Taylor
    constants evaluated in float64, the round-off with ε of `dtype` (one jitted program)."""
    with jax.enable_x64(True):

        @jax.jit
        def run(x64, hs, h_check):
            out = {
                k: finite_difference_error(f, x64, hs, k, coordinates=coords, dtype=dtype)
                for k in SCHEMES
            }
            check = finite_difference_error(
                f, x64, h_check, "central", coordinates=coords, dtype=dtype
            )
            return out, check.total

        h64 = jnp.asarray(hs, jnp.float64)
        return jax.tree.map(np.asarray, run(x64, h64, jnp.float64(h_check)))


def _entry(f, x, x64, hs, coords, dtype) -> dict:
    """Measured and predicted errors over hs, and the backprop check at h = ε^{1/3}."""
    h_check = default_step(dtype, "central")
    measured = _measure(f, x, jnp.asarray(hs, dtype), jnp.asarray(h_check, dtype), coords)
    models, predicted_check = _model(f, x64, hs, h_check, coords, dtype)
    out = {}
    for scheme in SCHEMES:
        m, model = measured[scheme], models[scheme]
        total = model.truncation + model.roundoff
        i, j = int(np.argmin(m)), int(np.argmin(total))
        out[scheme] = {
            "relative_error": m,
            "model_truncation": model.truncation,
            "model_roundoff": model.roundoff,
            "measured_best_h": float(hs[i]),
            "measured_best_error": float(m[i]),
            "predicted_best_h": float(hs[j]),
            "predicted_best_error": float(total[j]),
        }
    if coords is not None:
        out["backprop_check"] = {
            "h": h_check,
            "measured_relative_error": float(measured["check"]),
            "predicted_relative_error": float(predicted_check),
        }
    return out


def run(config: Config) -> dict:
    s = settings(config)
    results = {}
    for name, label, f, make_x, coords in _problems(s, config.seed):
        results[name] = {"label": label}
        for dname, dt in DTYPES.items():
            eps = float(jnp.finfo(dt).eps)
            hs = np.logspace(np.log10(eps) + 1, -0.5, s["n_h"])
            x_np = make_x(dt)  # NumPy arrays: casts compile nothing
            with jax.enable_x64(dname == "float64"):  # the CLI runs in JAX's default float32
                x = jax.tree.map(jnp.asarray, x_np)
                assert jax.tree.leaves(x)[0].dtype == dt
            with jax.enable_x64(True):
                x64 = jax.tree.map(lambda a: jnp.asarray(a.astype(np.float64)), x_np)
            with jax.enable_x64(dname == "float64"):
                entry = {"eps": eps, "h": hs, **_entry(f, x, x64, hs, coords, dt)}
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
            for power, text in ((1 / 2, r"$\varepsilon^{1/2}$"), (1 / 3, r"$\varepsilon^{1/3}$")):
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
                ax.set_ylabel(r"relative error $\|g_{\rm num} - \nabla U\| / \|\nabla U\|$")
            if "backprop_check" in entry:
                c = entry["backprop_check"]
                ax.text(
                    0.03,
                    0.04,
                    f"backprop vs central at $h = \\varepsilon^{{1/3}}$ = {c['h']:.1e}:\n"
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
        r"round-off (slope −1); best $h$ near $\varepsilon^{1/2}$ and $\varepsilon^{1/3}$",
        fontsize=11.5,
    )
    fig.tight_layout()
