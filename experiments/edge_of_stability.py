r"""Edge of stability: full-batch training drives the sharpness to the stability limit.

Full-batch gradient descent at step η is stable on a quadratic only while λ_max(H) < 2/η.
On a network the sharpness λ_max first rises (progressive sharpening) until it reaches
2/η, then hovers there while the loss keeps falling, non-monotonically (Cohen et al. 2021).
The same holds with the threshold of each method: heavy-ball momentum
(m ← βm + g, θ ← θ − ηm) is stable for λ < (2 + 2β)/η; Adam's *preconditioned* sharpness
λ_max(P̃⁻¹H), P̃ = (1 − β₁ᵗ)·diag(√v̂ + ε), settles at (2 + 2β₁)/((1 − β₁)η) (Cohen et al.
2022; see `landscape.curvature.adam_preconditioner`).

Setting: 1,000 digits, a 64-32-32-10 tanh MLP with squared loss ½‖f − onehot(y)‖² (as in
Cohen et al. 2021), float32. GD and momentum are one `integrators.simulate` run (heavy ball
with β = 0 is GD) with η and β swept in one call and λ_max (Lanczos, 10 Hessian-vector
products) recorded by `observe=`. Adam's preconditioner lives in its optimizer state, which
`simulate` does not pass to observables, so the Adam runs step `integrators.adam`'s own
`step` in a `lax.scan` with exact full-batch gradients (the same arithmetic; only the
recording differs).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from .. import integrators as itg
from ..landscape.curvature import adam_preconditioned_sharpness, sharpness
from ..landscape.data import digits
from ..landscape.mlp import from_loss, mlp
from ._common import Config, save_figure, save_json
from .plotting import COLORS

DESCRIPTION = "full-batch GD, momentum, Adam: sharpness rises toward 2/η, (2+2β)/η, 38/η"
ORDER = 41

LANCZOS_STEPS = 10


def settings(config: Config) -> dict:
    if config.quick:
        return {"n_train": 100, "steps": 40, "record_every": 10, "sizes": (64, 8, 10)}
    return {"n_train": 1000, "steps": 2000, "record_every": 50, "sizes": (64, 32, 32, 10)}


METHODS = {
    "gd": {"lrs": [0.25, 0.35, 0.5], "beta": 0.0},
    "momentum": {"lrs": [0.3, 0.4, 0.6], "beta": 0.9},
    "adam": {"lrs": [3e-3, 5e-3, 1e-2], "beta": 0.9},
}


def threshold(method: str, lr: float, beta: float) -> float:
    """The stability limit of the (preconditioned) sharpness for each method."""
    if method == "gd":
        return 2 / lr
    if method == "momentum":
        return (2 + 2 * beta) / lr
    return (2 + 2 * beta) / ((1 - beta) * lr)


def _adam(U, p0, s):
    """Full-batch Adam for every lr at once (swept integrator), recording λ_max(P̃⁻¹H)."""
    lrs = METHODS["adam"]["lrs"]
    b1 = METHODS["adam"]["beta"]
    opt = itg.adam(lrs, b1=b1)
    grad = jax.vmap(jax.grad(U.energy))
    k = len(lrs)
    key = jax.random.key(0)

    def precond_sharp(state):
        # λ_max(P̃⁻¹H) with P̃ = ηP: adam_preconditioner with lr = 1 gives P̃ itself
        return jax.vmap(
            lambda st: adam_preconditioned_sharpness(U.energy, st, 1.0, b1=b1, k=LANCZOS_STEPS)
        )(state)

    @jax.jit
    def run(p0):
        state = opt.init(jax.tree.map(lambda a: jnp.broadcast_to(a, (k,) + a.shape), p0))

        def chunk(state, _):
            state = jax.lax.fori_loop(
                0, s["record_every"], lambda i, st: opt.step(st, grad(st.params), key), state
            )
            return state, (jax.vmap(U.energy)(state.params), precond_sharp(state))

        _, (loss, sharp) = jax.lax.scan(chunk, state, None, length=s["steps"] // s["record_every"])
        return loss.T, sharp.T

    loss, sharp = run(p0)
    loss0 = np.full((k, 1), float(U.energy(p0)))
    return np.concatenate([loss0, np.asarray(loss)], 1), np.asarray(sharp)


def problem(s: dict, seed: int):
    """The full-batch landscape U (squared loss on `n_train` digits) and the start θ₀."""
    data = digits().subset(s["n_train"], seed=seed)
    model = mlp(s["sizes"], activation="tanh", loss="mse")
    U = from_loss(model.loss_fn, data.train, name="digits_mse")
    return U, model.init(jax.random.key(seed))


def simulate(U, p0, s: dict, key) -> dict:
    """GD and heavy ball over every η of `METHODS`, in one `simulate` call: GD is heavy ball
    with β = 0 (m = g), so both are one swept `integrators.momentum` (one compiled program).

    Returns {method: (steps, loss, λ_max, diverged_step)}, each array (runs, records); a
    diverged run is frozen, and its records from then on are NaN.
    """
    methods = ("gd", "momentum")
    lrs = [lr for m in methods for lr in METHODS[m]["lrs"]]
    betas = [METHODS[m]["beta"] for m in methods for _ in METHODS[m]["lrs"]]
    traj = itg.simulate(
        itg.momentum(lrs, betas),
        U,
        p0,
        s["steps"],
        key,
        record_every=s["record_every"],
        record_positions=False,
        observe={"sharpness": lambda p: sharpness(U.energy, p, k=LANCZOS_STEPS)},
    )
    steps_rec = np.arange(0, s["steps"] + 1, s["record_every"])
    loss, sharp = np.asarray(traj.loss), np.asarray(traj.observed["sharpness"])
    div = np.asarray(traj.diverged_step)
    for i in range(len(div)):
        if div[i] >= 0:
            cut = steps_rec >= div[i]
            loss[i, cut], sharp[i, cut] = np.nan, np.nan
    out, start = {}, 0
    for m in methods:
        rows = slice(start, start + len(METHODS[m]["lrs"]))
        out[m] = (steps_rec, loss[rows], sharp[rows], div[rows])
        start = rows.stop
    return out


def run(config: Config) -> dict:
    s = settings(config)
    U, p0 = problem(s, config.seed)
    key = jax.random.key(config.seed)
    steps_rec = np.arange(0, s["steps"] + 1, s["record_every"])

    curves = simulate(U, p0, s, key)
    a_loss, a_sharp = _adam(U, p0, s)
    k = len(METHODS["adam"]["lrs"])  # P̃ is undefined before the first step (v = 0): NaN there
    a_sharp = np.concatenate([np.full((k, 1), np.nan), a_sharp], axis=1)
    curves["adam"] = (steps_rec, a_loss, a_sharp, np.full(k, -1))

    summary = {}
    for method, (steps, loss, sharp, div) in curves.items():
        beta = METHODS[method]["beta"]
        rows = []
        late = steps >= steps[-1] // 2  # the second half of training
        for i, lr in enumerate(METHODS[method]["lrs"]):
            thr = threshold(method, lr, beta)
            late_vals = sharp[i, late]
            late_vals = late_vals[np.isfinite(late_vals)]
            mean = float(late_vals.mean()) if late_vals.size else None
            rows.append(
                {
                    "lr": lr,
                    "threshold": thr,
                    "late_sharpness_mean": mean,
                    "late_sharpness_std": float(late_vals.std()) if late_vals.size else None,
                    "late_ratio_to_threshold": None if mean is None else mean / thr,
                    "max_sharpness": float(np.nanmax(sharp[i, 1:])),
                    "initial_sharpness": float(sharp[i, 0]) if method != "adam" else None,
                    "final_loss": float(loss[i, np.isfinite(loss[i])][-1]),
                    "diverged_step": int(div[i]),
                }
            )
        summary[method] = {"beta": beta, "runs": rows}
    _plot(curves, s, config, summary)
    out = {
        "setting": {
            "n_train": s["n_train"],
            "sizes": s["sizes"],
            "activation": "tanh",
            "loss": "0.5*|f - onehot(y)|^2, mean over samples",
            "steps": s["steps"],
            "record_every": s["record_every"],
            "lanczos_steps": LANCZOS_STEPS,
            "late": "mean over records in the second half of training",
        },
        "methods": summary,
        "curves": {m: {"steps": c[0], "loss": c[1], "sharpness": c[2]} for m, c in curves.items()},
    }
    save_json(out, config, "edge_of_stability")
    return out


TITLES = {
    "gd": ("gradient descent", r"$\lambda_{\max}(H)$", "2/η"),
    "momentum": ("heavy-ball momentum, β = 0.9", r"$\lambda_{\max}(H)$", "(2+2β)/η"),
    "adam": (
        "Adam, β₁ = 0.9",
        r"$\lambda_{\max}(\tilde P^{-1}H)$, "
        r"$\tilde P = (1-\beta_1^t)\,\mathrm{diag}(\sqrt{\hat v}+\epsilon)$",
        "(2+2β₁)/((1−β₁)η)",
    ),
}


NAMES = {"gd": "GD", "momentum": "heavy ball", "adam": "Adam"}


def _caption(summary) -> str:
    """What the late ratios show: how many runs settle at their limit, which stop short."""
    runs = [(m, r) for m, v in summary.items() for r in v["runs"]]
    near = sum(abs(r["late_ratio_to_threshold"] - 1) <= 0.05 for _, r in runs)
    short = [
        f"{NAMES[m]} at η = {r['lr']:g} at {r['late_ratio_to_threshold']:.2f}×"
        for m, r in runs
        if r["late_ratio_to_threshold"] < 0.95
    ]
    peak = max(r["max_sharpness"] / r["threshold"] for _, r in runs)
    text = f"late mean of sharpness/limit within 5% of 1 in {near} of {len(runs)} runs"
    if 0 < len(short) <= 3:
        text += "; below it: " + ", ".join(short)
    elif short:  # too many to name on one line: count them and give the lowest
        low = min(r["late_ratio_to_threshold"] for _, r in runs)
        text += f"; {len(short)} runs below 0.95× (lowest {low:.2f}×)"
    return text + f"; highest peak {peak:.2f}× the limit"


# Three learning rates per method: dark to light, none pale enough to vanish on white.
LR_COLORS = ("#3b0f70", "#b5367a", "#e8850e")


def _plot(curves, s, config, summary):
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.4), sharex=True)
    for col, (method, (steps, loss, sharp, _)) in enumerate(curves.items()):
        title, ylabel, theory = TITLES[method]
        ax_s, ax_l = axes[0, col], axes[1, col]
        lrs = METHODS[method]["lrs"]
        for i, lr in enumerate(lrs):
            color = LR_COLORS[i % len(LR_COLORS)]
            thr = threshold(method, lr, METHODS[method]["beta"])
            run = summary[method]["runs"][i]
            late, peak = run["late_ratio_to_threshold"], run["max_sharpness"] / thr
            ok = np.isfinite(sharp[i])
            ax_s.plot(
                steps[ok],
                sharp[i, ok],
                "-",
                color=color,
                lw=1.5,
                label=f"η = {lr:g}: late {late:.2f}×, peak {peak:.2f}× limit",
            )
            ax_s.axhline(thr, color=color, ls="--", lw=1.2)
            ok = np.isfinite(loss[i])
            ax_l.plot(steps[ok], loss[i, ok], "-", color=color, lw=1.4, label=f"η = {lr:g}")
        ax_s.plot([], [], "--", color=COLORS["theory"], label=f"limit {theory} (dashed)")
        ax_s.set_title(title)
        ax_s.set_ylabel(ylabel)
        ax_s.grid(alpha=0.3)
        ax_s.legend(fontsize=8, loc="lower right", framealpha=0.9)
        ax_s.set_ylim(0, None)
        ax_l.set_yscale("log")
        ax_l.set_xlabel("step")
        ax_l.set_ylabel("training loss U(θ)")
        ax_l.grid(alpha=0.3, which="both")
        ax_l.legend(fontsize=8)
    fig.suptitle(
        f"Edge of stability on {s['n_train']} digits, MLP {'-'.join(map(str, s['sizes']))} "
        "tanh, squared loss, full batch: sharpness (top) and loss (bottom)\n" + _caption(summary),
        fontsize=11,
    )
    fig.tight_layout()
    save_figure(fig, config, "edge_of_stability")
