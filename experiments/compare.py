r"""Fair optimizer comparisons: the same budget, starts and seeds, each learning rate tuned.

    python -m optdyn.experiments compare --landscape valley --optimizer gd \
        --optimizer momentum:momentum=0.669 --start=-8:8,-0.8:0.8 --steps 1000 --target 1e-10

The protocol (`compare`): every optimizer runs the same step budget from the same starts
with the same noise keys. Seeds 0..n_tune−1 tune its learning rate over a log grid; seeds
n_tune..n_tune+n_test−1 (held out) report it. The whole grid over all seeds is one `simulate`
call per optimizer (a learning-rate sweep over an ensemble: hyperparameters are data). The
tuned rate maximises the success rate on the tuning seeds, then minimises their median
steps to the target, then their median final loss. Held-out numbers: median steps to the
target with a percentile-bootstrap 95% interval (a fixed-seed NumPy generator), the success
rate, the final-loss quantiles and loss quantile bands over steps. The same seed gives the
same numbers: starts come from NumPy's PCG64, noise from JAX's Threefry.

The default run (`run`): GD, heavy ball at Polyak's β* = ((√κ−1)/(√κ+1))² and Adam on the
valley of condition number κ = 100. Optimally tuned GD contracts by ρ_GD = (κ−1)/(κ+1) per
step and heavy ball by ρ_HB = (√κ−1)/(√κ+1) (Polyak 1964), so the steps to a target scale as
1/ln(1/ρ): heavy ball is ≈ √κ = 10 times faster; the tuning panel draws the asymptotic
steps ln(U₀/target) / (2 ln 1/ρ(η)) of both from the Hessian's eigenvalues.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import jax
import matplotlib.pyplot as plt
import numpy as np

from .. import integrators as itg
from .. import landscape as ls
from ..landscape.validate import check_int, check_positive, check_real
from ._common import Config, save_figure, save_json
from ._protocol import median_interval, parse_optimizer, resolve_landscape, starts
from ._protocol import steps_to_target as _steps_to_target
from .animation import animate
from .plotting import COLORS, clip_to_box, plot_landscape

DESCRIPTION = (
    "fair comparison: GD vs heavy ball vs Adam, rates tuned on some seeds, shown on others"
)
ORDER = 95

KAPPA = 100.0
BETA_STAR = ((math.sqrt(KAPPA) - 1) / (math.sqrt(KAPPA) + 1)) ** 2
QUANTILES = (0.1, 0.5, 0.9)


def compare(
    landscape,
    optimizers,
    *,
    start,
    steps: int,
    target: float,
    lr_range=(1e-4, 1.0),
    n_lr: int = 16,
    tune_seeds: int = 16,
    test_seeds: int = 32,
    seed: int = 0,
    noise=None,
    record_every: int = 1,
    n_paths: int = 3,
) -> dict:
    """Compare optimizers fairly: same budget, starts and noise; rate tuned, then held out.

    Args:
      landscape: a `Landscape`, a name ("valley") or "module:function".
      optimizers: specs "name" or "name:key=value,..." (fixed hyperparameters, e.g.
        "momentum:momentum=0.9"), or a mapping label -> spec.
      start: a point (dim,) or a box ((low, high) per coordinate) the starts are drawn from.
      steps: the step budget of every optimizer.
      target: the loss U the optimizers must reach (U ≤ target counts as success).
      lr_range: (low, high) of the log-spaced learning-rate grid, or a mapping label -> range.
      n_lr: grid points.
      tune_seeds, test_seeds: seeds (particles) that tune the rate, and held-out seeds.
      seed: fixes the starts, the noise and the bootstrap.
      noise: a gradient-noise model for `simulate` (default exact gradients).
      record_every: record every k-th step (steps to target are then multiples of k).
      n_paths: held-out paths kept per optimizer for the figure.

    Returns:
      A dict: the settings, and per optimizer label its grid (`lrs`), the tuning curve, the
      tuned rate and the held-out summary (`median_steps`, `interval`, `success_rate`,
      `final_loss_quantiles`, `bands`, `paths`); `ranking` orders the labels by held-out
      median steps (then success rate).
    """
    U = resolve_landscape(landscape)
    steps = check_int("steps", steps)
    n_lr, tune_seeds, test_seeds = (
        check_int(k, v)
        for k, v in (("n_lr", n_lr), ("tune_seeds", tune_seeds), ("test_seeds", test_seeds))
    )
    check_real("target", target)
    specs = dict(optimizers) if isinstance(optimizers, dict) else {s: s for s in optimizers}
    if not specs:
        raise ValueError("optimizers=[] is not allowed: give at least one optimizer")
    parsed = {label: parse_optimizer(spec) for label, spec in specs.items()}
    dtype = np.float64 if jax.config.jax_enable_x64 else np.float32
    rng = np.random.default_rng(seed)
    x0 = starts(start, tune_seeds + test_seeds, U.dim, rng).astype(dtype)
    key = jax.random.key(seed)
    result = {
        "landscape": U.name,
        "start": np.asarray(start, float),
        "steps": steps,
        "target": target,
        "seed": seed,
        "tune_seeds": tune_seeds,
        "test_seeds": test_seeds,
        "record_every": record_every,
        "initial_loss_median": float(np.median(np.asarray(jax.vmap(U.energy)(x0)))),
        "optimizers": {},
    }
    tune, test = slice(0, tune_seeds), slice(tune_seeds, None)
    for label, (name, hyper) in parsed.items():
        low, high = lr_range[label] if isinstance(lr_range, dict) else lr_range
        check_positive("lr_range", low)
        if not high > low:
            raise ValueError(f"lr_range=({low}, {high}) for {label}: high must exceed low")
        lrs = np.geomspace(low, high, n_lr)
        opt = itg.get(name, lr=list(lrs), **hyper)
        traj = itg.simulate(opt, U, x0, steps, key, noise=noise, record_every=record_every)
        loss = np.asarray(traj.loss)  # (n_lr, seeds, records)
        hit = _steps_to_target(loss, traj.steps, target, traj.diverged_step)
        final = loss[..., -1]
        success = np.isfinite(hit[:, tune]).mean(1)
        median_tune = np.median(hit[:, tune], axis=1)
        median_final = np.median(final[:, tune], axis=1)
        best = int(np.lexsort((median_final, median_tune, -success))[0])
        med, lo, hi = median_interval(hit[best, test], np.random.default_rng(seed))
        bands = np.quantile(loss[best, test], QUANTILES, axis=0)
        result["optimizers"][label] = {
            "name": name,
            "hyperparameters": hyper,
            "lrs": lrs,
            "tuning": {
                "success_rate": success,
                "median_steps": median_tune,
                "median_final_loss": median_final,
            },
            "tuned_lr": float(lrs[best]),
            "median_steps": med,
            "interval": (lo, hi),
            "success_rate": float(np.isfinite(hit[best, test]).mean()),
            "final_loss_quantiles": dict(
                zip(map(str, QUANTILES), np.quantile(final[best, test], QUANTILES), strict=True)
            ),
            "bands": {
                "steps": np.asarray(traj.steps),
                **dict(zip(map(str, QUANTILES), bands, strict=True)),
            },
            "paths": np.asarray(traj.positions[best, test][:n_paths]),
        }
    result["ranking"] = sorted(
        result["optimizers"],
        key=lambda k: (
            result["optimizers"][k]["median_steps"],
            -result["optimizers"][k]["success_rate"],
        ),
    )
    return result


def contraction(lr, eigenvalues, momentum: float = 0.0) -> np.ndarray:
    """The asymptotic contraction per step of heavy ball (GD at momentum 0) on a quadratic:
    the largest root modulus of z² − (1 + β − ηλ)z + β over the Hessian's eigenvalues λ."""
    lr = np.asarray(lr, float)[..., None]
    b = 1 + momentum - lr * np.asarray(eigenvalues, float)
    disc = np.sqrt((b * b - 4 * momentum).astype(complex))
    roots = np.maximum(abs((b + disc) / 2), abs((b - disc) / 2))
    return roots.max(-1)


def asymptotic_steps(lr, eigenvalues, momentum, initial_loss, target) -> np.ndarray:
    """ln(U₀/target) / (2 ln 1/ρ(η)): the steps to the target at the asymptotic rate ρ."""
    rho = contraction(lr, eigenvalues, momentum)
    with np.errstate(divide="ignore"):
        return np.where(rho < 1, math.log(initial_loss / target) / (2 * np.log(1 / rho)), np.inf)


def table(result: dict) -> str:
    """The comparison as a plain-text table (held-out seeds)."""
    rows = [
        f"{result['landscape']}: {result['steps']} steps, target U ≤ {result['target']:g}, "
        f"rate tuned on {result['tune_seeds']} seeds, reported on {result['test_seeds']} held-out",
        f"{'optimizer':<28} {'tuned lr':>9} {'median steps [95% CI]':>26} {'success':>8} "
        f"{'final U q10 / q50 / q90':>30}",
    ]
    for label in result["ranking"]:
        r = result["optimizers"][label]
        lo, hi = r["interval"]
        q = list(r["final_loss_quantiles"].values())
        steps = f"{r['median_steps']:g} [{lo:g}, {hi:g}]"
        rows.append(
            f"{label:<28} {r['tuned_lr']:>9.3g} {steps:>26} {r['success_rate']:>8.0%} "
            f"{q[0]:>9.2e} / {q[1]:.2e} / {q[2]:.2e}"
        )
    return "\n".join(rows)


def _color(label: str, name: str, i: int) -> str:
    return COLORS.get(name, plt.cm.tab10(i % 10))


def _exit_point(kept, box) -> np.ndarray:
    """Where the last segment of `kept` (inside, then outside) crosses the box's edge."""
    a, b = np.asarray(kept[-2, :2], float), np.asarray(kept[-1, :2], float)
    t = 1.0
    for k, (low, high) in enumerate(box):
        for edge in (low, high):
            if (b[k] - edge) * (a[k] - edge) < 0:
                t = min(t, (edge - a[k]) / (b[k] - a[k]))
    return a + t * (b - a)


def plot(result: dict, landscape, config: Config, name: str, theory: dict | None = None):
    """Paths of a few held-out seeds, loss quantile bands and the tuning curves."""
    U = resolve_landscape(landscape)
    fig, (ax_path, ax_loss, ax_tune) = plt.subplots(1, 3, figsize=(17, 5.2))
    if U.dim == 2:
        cs, clabel = plot_landscape(ax_path, U)
        fig.colorbar(cs, ax=ax_path, label=clabel, shrink=0.85)
    else:
        ax_path.set_xlabel("θ₁")
        ax_path.set_ylabel("θ₂")
    offset = U.global_minimum.value if U.global_minimum is not None else 0.0
    target = result["target"] - offset
    box = (ax_path.get_xlim(), ax_path.get_ylim())
    left_box = False
    for i, (label, r) in enumerate(result["optimizers"].items()):
        color = _color(label, r["name"], i)
        for j, path in enumerate(r["paths"]):
            # a path is drawn up to where it first leaves the view, that point marked ▲
            kept, out = clip_to_box(path, box) if U.dim == 2 else (path, None)
            ax_path.plot(
                kept[:, 0],
                kept[:, 1],
                "-",
                color=color,
                lw=1.3,
                alpha=0.9,
                label=f"{label} (η = {r['tuned_lr']:.3g})" if j == 0 else None,
            )
            if out is not None and len(kept) > 1:
                left_box = True
                ax_path.plot(
                    *_exit_point(kept, box), "^", color=color, mec="black", ms=7, clip_on=False
                )
            ax_path.plot(*path[0, :2], "s", color="white", mec="black", ms=6)
        band = r["bands"]
        q = [np.maximum(band[str(k)] - offset, 1e-300) for k in QUANTILES]
        ax_loss.fill_between(band["steps"], q[0], q[2], color=color, alpha=0.25, lw=0)
        ax_loss.plot(band["steps"], q[1], color=color, lw=1.8, label=f"{label}: median, 10–90%")
        tune = r["tuning"]
        reached = np.isfinite(tune["median_steps"])
        shown = np.where(reached, tune["median_steps"], np.nan)
        ax_tune.plot(r["lrs"], shown, "o-", color=color, ms=4, lw=1.4, label=label)
        ax_tune.plot(
            r["lrs"][~reached], np.full((~reached).sum(), result["steps"]), "x", color=color, ms=6
        )
        if np.isfinite(r["median_steps"]):
            ax_tune.plot(r["tuned_lr"], r["median_steps"], "*", color=color, mec="black", ms=15)
    if U.dim == 2:
        ax_path.set_xlim(box[0])
        ax_path.set_ylim(box[1])
    if theory:
        for label, (lrs, k) in theory.items():
            ax_tune.plot(
                lrs,
                k,
                "--",
                color=COLORS["theory"],
                lw=1.0,
                label="asymptotic rate ln(U₀/target)/(2 ln 1/ρ(η))"
                if label == next(iter(theory))
                else None,
            )
    cut = ", ▲ leaves the view" if left_box else ""
    ax_path.set_title(f"{len(r['paths'])} held-out paths each (□ start{cut})")
    ax_path.legend(fontsize=8, loc="upper left", framealpha=0.85)
    ax_loss.axhline(target, color="black", ls=":", lw=1, label="target")
    ax_loss.set_yscale("log")
    top = max(np.max(r["bands"][str(QUANTILES[-1])]) for r in result["optimizers"].values())
    ax_loss.set_ylim(abs(target) * 1e-3 if target else None, 10 * (top - offset))
    ax_loss.set_xlabel("step k")
    ax_loss.set_ylabel("U(θ) − U_min" if offset else "U(θ)")
    ax_loss.set_title(f"loss on {result['test_seeds']} held-out seeds at the tuned rate")
    ax_loss.grid(alpha=0.3, which="both")
    ax_loss.legend(fontsize=8)
    ax_tune.axhline(
        result["steps"],
        color="gray",
        ls=":",
        lw=1,
        label="budget (× : median run never reached the target)",
    )
    ax_tune.set_xscale("log")
    ax_tune.set_yscale("log")
    ax_tune.set_xlabel("learning rate η")
    ax_tune.set_ylabel("median steps to target (tuning seeds)")
    ax_tune.set_title(f"tuning on {result['tune_seeds']} seeds (★ tuned, held-out median)")
    ax_tune.grid(alpha=0.3, which="both")
    ax_tune.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2)
    fig.suptitle(
        f"Fair comparison on {U.name}: same {result['steps']}-step budget, starts and seeds; "
        f"target U ≤ {result['target']:g}",
        fontsize=13,
    )
    fig.tight_layout()
    return save_figure(fig, config, name)


def _default_settings(config: Config) -> dict:
    return dict(
        landscape=ls.valley(condition_number=KAPPA),
        optimizers={
            "GD": "gd",
            f"heavy ball (β* = {BETA_STAR:.3f})": f"momentum:momentum={BETA_STAR}",
            "Adam": "adam",
        },
        start=[(-8.0, 8.0), (-0.8, 0.8)],
        steps=200 if config.quick else 1000,
        target=1e-10,
        lr_range={
            "GD": (0.05, 3.0),
            f"heavy ball (β* = {BETA_STAR:.3f})": (0.05, 10.0),
            "Adam": (1e-3, 3.0),
        },
        n_lr=8 if config.quick else 32,
        tune_seeds=8 if config.quick else 16,
        test_seeds=16 if config.quick else 48,
        seed=config.seed,
    )


def run(config: Config) -> dict:
    settings = _default_settings(config)
    result = compare(**settings)
    U = settings["landscape"]
    eig = np.linalg.eigvalsh(np.asarray(jax.hessian(U.energy)(np.zeros(U.dim))))
    theory = {}
    for label, spec in settings["optimizers"].items():
        name, hyper = parse_optimizer(spec)
        if name in ("gd", "momentum"):
            lrs = np.geomspace(*settings["lr_range"][label], 400)
            theory[label] = (
                lrs,
                asymptotic_steps(
                    lrs,
                    eig,
                    hyper.get("momentum", 0.0),
                    result["initial_loss_median"],
                    settings["target"],
                ),
            )
    print(table(result))
    plot(result, settings["landscape"], config, "compare", theory)
    save_json(result, config, "compare")
    _animate(result, settings["landscape"], config, "compare")
    return result


def _pairs(text: str) -> list[tuple[float, float]] | list[float]:
    """ "-8:8,-0.8:0.8" -> a box; "1,2" -> a point."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    if all(":" in t for t in items):
        return [tuple(float(v) for v in t.split(":")) for t in items]
    return [float(t) for t in items]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m optdyn.experiments compare",
        description="Compare optimizers fairly: same budget, starts and seeds; each learning "
        "rate tuned on some seeds and reported on held-out seeds.",
    )
    p.add_argument("--landscape", default="valley", help="a name or module:function")
    p.add_argument(
        "--optimizer",
        action="append",
        required=True,
        help="name[:key=value,...], repeat per optimizer (e.g. momentum:momentum=0.9)",
    )
    p.add_argument("--start", required=True, help="a point '1,2' or a box '-1:1,-2:2'")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--target", type=float, required=True, help="success: U <= target")
    p.add_argument("--lr-range", default="1e-4:1", help="low:high of the rate grid")
    p.add_argument("--n-lr", type=int, default=16)
    p.add_argument("--seeds", default="16,32", help="tuning,held-out seeds (default 16,32)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="figures")
    p.add_argument("--name", default="compare_cli", help="output name (default compare_cli)")
    p.add_argument("--animate", action="store_true", help="also write an animation")
    return p


def main(argv: list[str] | None = None) -> int:
    """`python -m optdyn.experiments compare ...`: print the table, write figure and JSON."""
    args = _parser().parse_args(argv)
    try:
        low, high = (float(v) for v in args.lr_range.split(":"))
        tune, test = (int(v) for v in args.seeds.split(","))
        config = Config(seed=args.seed, out=args.out, animate=args.animate)
        result = compare(
            args.landscape,
            args.optimizer,
            start=_pairs(args.start),
            steps=args.steps,
            target=args.target,
            lr_range=(low, high),
            n_lr=args.n_lr,
            tune_seeds=tune,
            test_seeds=test,
            seed=args.seed,
        )
    except (ValueError, TypeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(table(result))
    plot(result, args.landscape, config, args.name)
    save_json(result, config, args.name)
    _animate(result, args.landscape, config, args.name)
    return 0


def _animate(result: dict, landscape, config: Config, name: str) -> None:
    if not config.animate:
        return
    paths = {label: r["paths"] for label, r in result["optimizers"].items()}
    colors = {
        label: _color(label, r["name"], i)
        for i, (label, r) in enumerate(result["optimizers"].items())
    }
    animate(paths, resolve_landscape(landscape), Path(config.out) / f"{name}.gif", colors=colors)
