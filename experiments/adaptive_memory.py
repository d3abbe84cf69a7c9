r"""Adam as an adaptive-step integrator: the memory of its time step.

Adam, RMSprop and AdaGrad are gradient flow with a per-coordinate time step read off a
memory of squared gradients,

.. math::
    \Delta t_{k,i} = \frac{\eta}{\sqrt{\hat v_{k,i}} + \epsilon}, \qquad
    v_{k+1} = \beta_2 v_k + (1 - \beta_2)\, g_k^2 \;\;(\text{Adam, RMSprop}), \qquad
    G_{k+1} = G_k + g_k^2 \;\;(\text{AdaGrad}).

When the gradient scale drops suddenly at step k₀ (here the loss is multiplied by 10⁻³), the
new squared gradients are 10⁻⁶ of the old and the moving average forgets the old scale as

.. math::
    v_k \simeq v_{k_0}\, \beta_2^{\,k - k_0} = v_{k_0}\, e^{-(k - k_0)/\tau}, \qquad
    \tau = -1/\ln\beta_2 \approx 1/(1 - \beta_2)

(β₂ = 0.987: τ = 76.4 steps), so Δt grows back as e^{(k−k₀)/2τ}. AdaGrad's sum never
forgets: after one huge early gradient g_s its step stays η/√(G₀ + g_s²) for good, while
RMSprop's recovers once ρ^k·(1 − ρ)·g_s² has fallen below the current g².

The runs are init/step loops of the library's integrators under `jax.lax.scan`, reading the
integrator state (`AdamState.nu`, `RMSpropState.nu`, `AdaGradState.sum_of_squares`) at every
step; the gradient is the valley's, scaled, with Gaussian gradient noise from
`landscape.gaussian` for the Adam runs (so v̂ settles to the per-coordinate gradient variance).

References:
  D. P. Kingma, J. Ba, ICLR 2015. J. Duchi, E. Hazan, Y. Singer, JMLR 12 (2011) 2121-2159.
  T. Tieleman, G. Hinton, COURSERA Neural Networks for ML, Lecture 6.5 (2012).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

from .. import integrators as itg
from .. import landscape as ls
from ._common import Config, save_figure, save_json
from .plotting import COLORS, plot_landscape

DESCRIPTION = "Adam's step-size memory: v̂ forgets over −1/ln β₂ steps; AdaGrad never forgets"
ORDER = 26

DROP = 1e-3  # loss multiplied by DROP at step k₀ (squared gradients by DROP²)
BETA2 = (0.9, 0.95, 0.987, 0.995, 0.999)
NOISE = (0.01, 1.0)  # per-coordinate gradient-noise variances of the Adam runs
LR = 1e-3


@functools.cache
def valley() -> ls.Landscape:
    """The ill-conditioned valley κ = 100, built once (one compilation per runner)."""
    return ls.valley(condition_number=100.0)


def decay_time(beta2: float) -> float:
    """The memory of an exponential moving average, τ = −1/ln β₂ (≈ 1/(1 − β₂))."""
    return -1.0 / math.log(beta2)


def _scan(opt, noise, x0, scales, key, second_moment):
    """Run `opt` from x0 (n, dim) with gradients scales[k]·(∇U + ξ); record every step.

    Returns positions (K+1, n, dim), loss U(θ) (K+1, n) and the second-moment state (K+1, n,
    dim) read by `second_moment(state)`.
    """
    U = valley()
    energy = jax.vmap(U.energy)
    noise_state = noise.init(U, key, x0.shape[0])

    def body(state, inputs):
        k, scale = inputs
        k_noise, k_step = jax.random.split(jax.random.fold_in(key, k))
        grads, _ = noise.gradient(U, state.params, noise_state, k_noise)
        state = opt.step(state, scale * grads, k_step)
        return state, (state.params, energy(state.params), second_moment(state))

    state = opt.init(x0)
    first = (x0, energy(x0), second_moment(state))
    ks = jnp.arange(scales.shape[0], dtype=jnp.int32)
    _, rec = jax.lax.scan(body, state, (ks, scales))
    return jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a[None], b]), first, rec)


@functools.cache
def _runner(kind: str):
    """A jitted runner per integrator kind (compiled once; hyperparameters fixed)."""
    if kind == "adam":
        opt = itg.adam(lr=LR, b1=0.9, b2=list(BETA2), eps=1e-8)  # one particle per β₂
        noise, moment = itg.gaussian(list(NOISE)), (lambda s: s.nu)
    elif kind == "rmsprop":
        opt, noise, moment = itg.rmsprop(lr=0.01, decay=0.9), itg.exact(), (lambda s: s.nu)
    elif kind == "adagrad":
        opt = itg.adagrad(lr=0.01, initial_accumulator_value=0.1)
        noise, moment = itg.exact(), (lambda s: s.sum_of_squares)
    else:
        raise ValueError(f"kind={kind!r} is not 'adam', 'rmsprop' or 'adagrad'.")
    return jax.jit(functools.partial(_scan, opt, noise, second_moment=moment))


def fit_decay_time(nu: np.ndarray, k0: int, beta2: float, window: float = 3.0) -> float:
    """Fit log v_k = a − (k − k₀)/τ over k − k₀ ∈ [0, window·τ_theory]; return τ."""
    n = min(int(window * decay_time(beta2)), len(nu) - k0 - 1)
    k = np.arange(n + 1)
    slope = np.polyfit(k, np.log(nu[k0 : k0 + n + 1]), 1)[0]
    return float(-1.0 / slope)


def adam_drop(k0: int, after: int, key) -> dict:
    """Adam (one particle per β₂) on the noisy valley; the loss drops by DROP at step k₀."""
    U = valley()
    start = np.array([0.5 * U.bounds[0][1], 0.5 * U.bounds[1][1]])
    x0 = jnp.asarray(np.tile(start, (len(BETA2), 1)), dtype=jnp.result_type(float))
    scales = jnp.where(jnp.arange(k0 + after) < k0, 1.0, DROP).astype(x0.dtype)
    pos, loss, nu = _runner("adam")(x0, scales, key)
    return {"positions": np.asarray(pos), "loss": np.asarray(loss), "nu": np.asarray(nu)}


def spike_runs(steps: int, spike: float, key) -> dict:
    """AdaGrad and RMSprop on the exact valley, with and without a spike×gradient at step 0."""
    U = valley()
    x0 = jnp.asarray([[0.9 * U.bounds[0][0], 0.6 * U.bounds[1][1]]], dtype=jnp.result_type(float))
    out = {}
    for kind in ("adagrad", "rmsprop"):
        for label, first in (("spike", spike), ("no spike", 1.0)):
            scales = jnp.ones(steps, x0.dtype).at[0].set(first)
            pos, loss, moment = _runner(kind)(x0, scales, key)
            out[(kind, label)] = {
                "positions": np.asarray(pos)[:, 0],
                "loss": np.asarray(loss)[:, 0],
                "moment": np.asarray(moment)[:, 0],
            }
    return out


def run(config: Config) -> dict:
    key = jax.random.key(config.seed)
    k0, after = (1500, 1500) if config.quick else (5000, 4000)
    adam = adam_drop(k0, after, jax.random.fold_in(key, 0))
    fits = []
    for j, b2 in enumerate(BETA2):
        for i in range(2):
            nu = adam["nu"][:, j, i]
            fits.append(
                {
                    "beta2": b2,
                    "coordinate": i,
                    "tau_theory": decay_time(b2),
                    "one_over_one_minus_beta2": 1.0 / (1.0 - b2),
                    "tau_fit": fit_decay_time(nu, k0, b2),
                    "nu_at_drop": float(nu[k0]),
                }
            )
    for f in fits:
        f["relative_error"] = f["tau_fit"] / f["tau_theory"] - 1.0

    spike_steps = 400 if config.quick else 2000
    spike = 1e3
    spikes = spike_runs(spike_steps, spike, jax.random.fold_in(key, 1))
    U = valley()
    g0 = np.asarray(jax.grad(U.energy)(jnp.asarray(spikes[("adagrad", "spike")]["positions"][0])))
    theory = _spike_theory(g0, spike)
    summary = {
        f"{kind}/{label}": {
            "final_loss": float(r["loss"][-1]),
            "loss_at_100": float(r["loss"][min(100, spike_steps)]),
        }
        for (kind, label), r in spikes.items()
    }
    data = {
        "landscape": "valley, condition number 100",
        "drop": {"factor": DROP, "k0": k0, "lr": LR, "noise_variances": NOISE, "fits": fits},
        "spike": {
            "factor": spike,
            "steps": spike_steps,
            "first_gradient": g0,
            **theory,
            "runs": summary,
        },
    }
    _plot(data, adam, spikes, config)
    save_json(data, config, "adaptive_memory")
    return data


def _spike_theory(g0: np.ndarray, spike: float) -> dict:
    """AdaGrad's frozen step after the spike and RMSprop's recovery step (ρ = 0.9)."""
    g_s2 = (spike * g0) ** 2
    rho = 0.9
    # RMSprop's memory of the spike, ρ^k (1 − ρ) g_s², falls to the unspiked g₀² after k*.
    k_star = np.log((1 - rho) * spike**2) / -np.log(rho)
    return {
        "adagrad_step_after_spike": 0.01 / np.sqrt(0.1 + g_s2),
        "adagrad_step_without_spike": 0.01 / np.sqrt(0.1 + g0**2),
        "rmsprop_recovery_steps": float(k_star),
    }


def _plot(data, adam, spikes, config) -> None:
    fig, axes = plt.subplots(2, 3, figsize=(18, 10.5))
    (ax_dt, ax_v, ax_fit), (ax_loss, ax_step, ax_path) = axes
    k0 = data["drop"]["k0"]
    j = BETA2.index(0.987)
    nu = adam["nu"][:, j, :]
    k = np.arange(nu.shape[0])
    b2 = BETA2[j]
    nu_hat = nu / (1 - b2 ** np.maximum(k, 1))[:, None]
    colors = ["tab:blue", "tab:red"]
    for i in range(2):
        dt = LR / (np.sqrt(nu_hat[:, i]) + 1e-8)
        ax_dt.semilogy(
            k[1:],
            dt[1:],
            color=colors[i],
            lw=1.4,
            label=rf"$\Delta t_{i}$ (gradient-noise variance {NOISE[i]:g})",
        )
        after = k[k0:]
        ax_dt.semilogy(
            after,
            LR / np.sqrt(nu_hat[k0, i] * b2 ** (after - k0)),
            "--",
            color="black",
            lw=1.0,
            label=r"$\eta/\sqrt{\hat v_{k_0}\,\beta_2^{k-k_0}}$ (memory fades)" if i == 0 else None,
        )
    for i in range(2):
        ax_dt.axhline(
            LR / (DROP * math.sqrt(NOISE[i])),
            color=colors[i],
            ls=":",
            lw=1.0,
            label=r"new steady state $\eta/(10^{-3}\sigma_i)$" if i == 0 else None,
        )
    ax_dt.axvline(k0, color="gray", ls="-.", lw=1.0, label=rf"$k_0$: loss $\times$ {DROP:g}")
    ax_dt.set_ylim(0.3 * LR / math.sqrt(NOISE[1]), 5 * LR / (DROP * math.sqrt(NOISE[0])))
    ax_dt.set_xlabel("step k")
    ax_dt.set_ylabel(r"effective time step $\Delta t_i = \eta/(\sqrt{\hat v_i} + \epsilon)$")
    ax_dt.set_title(f"(a) Adam (β₂ = {b2:g}) on the noisy valley: per-coordinate steps")
    ax_dt.set_xlim(k0 - 1500, k0 + 1500)
    ax_dt.grid(alpha=0.3, which="both")
    ax_dt.legend(fontsize=8.5, loc="upper left")

    n_show = 700
    cmap = plt.get_cmap("plasma")  # stops at orange: no yellow on white
    for jj, b in enumerate(BETA2):
        c = cmap(0.75 * jj / (len(BETA2) - 1))
        v = adam["nu"][k0 : k0 + n_show + 1, jj, 1]
        n = np.arange(v.size)
        ax_v.semilogy(n, v / v[0], color=c, lw=1.8, label=f"β₂ = {b:g}")
        ax_v.semilogy(n, b**n, "--", color="black", lw=0.9)
    ax_v.plot([], [], "--", color="black", lw=0.9, label=r"theory $\beta_2^{k-k_0}$")
    ax_v.set_ylim(1e-6, 2)
    ax_v.set_xlabel("steps since the drop, k − k₀")
    ax_v.set_ylabel(r"$v_k / v_{k_0}$ (Adam's second moment, coordinate 1)")
    ax_v.set_title("(b) the second moment forgets the old scale geometrically")
    ax_v.grid(alpha=0.3, which="both")
    ax_v.legend(fontsize=8.5)

    fits = data["drop"]["fits"]
    tt = np.array([f["tau_theory"] for f in fits])
    tf = np.array([f["tau_fit"] for f in fits])
    line = np.logspace(np.log10(tt.min() / 1.5), np.log10(tt.max() * 1.5), 20)
    ax_fit.loglog(
        line, line, color=COLORS["theory"], lw=1.2, label=r"$\tau_{\rm fit} = -1/\ln\beta_2$"
    )
    ax_fit.loglog(
        line,
        line + 0.5,
        ":",
        color="gray",
        lw=1.2,
        label=r"$1/(1-\beta_2) \approx -1/\ln\beta_2 + \frac{1}{2}$",
    )
    # coordinate 0: large open circles around coordinate 1's small squares (they coincide)
    for i, marker, ms in ((0, "o", 12), (1, "s", 5)):
        sel = np.array([f["coordinate"] == i for f in fits])
        ax_fit.loglog(
            tt[sel],
            tf[sel],
            marker,
            color=colors[i],
            mfc="none" if i == 0 else colors[i],
            mec=colors[i] if i == 0 else "black",
            mew=1.8 if i == 0 else 1.0,
            ms=ms,
            ls="none",
            label=f"fit, coordinate {i}",
        )
    for f in fits:
        if f["coordinate"] == 0:
            ax_fit.annotate(
                f"β₂ = {f['beta2']:g}: {f['tau_fit']:.1f} vs {f['tau_theory']:.1f}",
                (f["tau_theory"], f["tau_fit"]),
                xytext=(8, -12),
                textcoords="offset points",
                fontsize=8,
            )
    ax_fit.set_xlim(tt.min() / 1.6, tt.max() * 25)  # room for the labels right of the points
    ax_fit.set_xlabel("−1/ln β₂  (steps)")
    ax_fit.set_ylabel("fitted decay time of v after the drop  (steps)")
    ax_fit.set_title("(c) fitted memory against −1/ln β₂")
    ax_fit.grid(alpha=0.3, which="both")
    ax_fit.legend(fontsize=8.5, loc="upper left")

    sp = data["spike"]
    for kind in ("adagrad", "rmsprop"):
        for label, ls_ in (("spike", "-"), ("no spike", "--")):
            r = spikes[(kind, label)]
            ax_loss.semilogy(
                r["loss"],
                ls_,
                color=COLORS[kind],
                lw=1.6,
                label=f"{'AdaGrad' if kind == 'adagrad' else 'RMSprop'}, {label}",
            )
    ax_loss.axvline(
        sp["rmsprop_recovery_steps"],
        color=COLORS["rmsprop"],
        ls=":",
        label=rf"RMSprop forgets the spike: $k^*$ = {sp['rmsprop_recovery_steps']:.0f}",
    )
    ax_loss.set_xlabel("step k")
    ax_loss.set_ylabel(r"loss $U(\theta_k)$")
    ax_loss.set_title(f"(d) one gradient ×{sp['factor']:g} at step 0: AdaGrad stalls")
    ax_loss.grid(alpha=0.3, which="both")
    ax_loss.legend(fontsize=8.5)

    steps = np.arange(sp["steps"] + 1)
    for kind, eta, eps in (("adagrad", 0.01, 1e-7), ("rmsprop", 0.01, 1e-8)):
        r = spikes[(kind, "spike")]
        dt = eta / np.sqrt(r["moment"][:, 0] + eps)
        name = (
            r"AdaGrad $\eta/\sqrt{G + \epsilon}$"
            if kind == "adagrad"
            else r"RMSprop $\eta/\sqrt{v + \epsilon}$"
        )
        ax_step.semilogy(
            steps[1:], dt[1:], color=COLORS[kind], lw=3.5, alpha=0.7, label=f"{name}, spike"
        )
    every = steps[1::100]  # theory as sparse markers, so AdaGrad's line stays visible under it
    ax_step.semilogy(
        every,
        np.full(every.shape, sp["adagrad_step_after_spike"][0]),
        "x",
        color="black",
        ms=6,
        label=r"$\eta/\sqrt{G_0 + g_s^2}$: AdaGrad's frozen step",
    )
    rho = 0.9
    g_s2 = (sp["factor"] * np.asarray(sp["first_gradient"][0])) ** 2
    kk = steps[1 : int(sp["rmsprop_recovery_steps"]) + 10]
    ax_step.semilogy(
        kk,
        0.01 / np.sqrt((1 - rho) * g_s2 * rho ** (kk - 1)),
        ":",
        color="black",
        lw=1.2,
        label=r"$\eta/\sqrt{(1-\rho)\,g_s^2\,\rho^{k-1}}$: RMSprop forgets",
    )
    ax_step.set_xlabel("step k")
    ax_step.set_ylabel("effective time step of coordinate 0")
    ax_step.set_title("(e) the time step after the spike: a memory that fades or not")
    ax_step.grid(alpha=0.3, which="both")
    ax_step.legend(fontsize=8.5)

    plot_landscape(ax_path, valley())
    for kind in ("adagrad", "rmsprop"):
        p = spikes[(kind, "spike")]["positions"]
        ax_path.plot(
            p[:, 0],
            p[:, 1],
            "-",
            color=COLORS[kind],
            lw=1.8,
            zorder=5 if kind == "adagrad" else 4,
            label="AdaGrad, spike (stuck near the start)"
            if kind == "adagrad"
            else "RMSprop, spike",
        )
    ax_path.plot(
        *spikes[("adagrad", "spike")]["positions"][0],
        "s",
        color="white",
        mec="black",
        ms=8,
        label="start",
        zorder=3,
    )
    end = spikes[("adagrad", "spike")]["positions"][-1]
    ax_path.plot(*end[:2], "o", color=COLORS["adagrad"], mec="white", ms=7, zorder=7)
    ax_path.annotate(
        f"AdaGrad after {sp['steps']} steps",
        end[:2],
        xytext=(25, 25),
        textcoords="offset points",
        color="white",
        fontsize=9,
        arrowprops=dict(arrowstyle="->", color="white"),
    )
    ax_path.set_title(f"(f) paths on the valley over {sp['steps']} steps")
    ax_path.legend(fontsize=8.5, loc="lower right")

    fig.suptitle(
        "Adaptive optimizers as adaptive-step integrators: the memory of the time step", fontsize=14
    )
    fig.tight_layout()
    save_figure(fig, config, "adaptive_memory")
