"""What the experiments draw, public: landscapes, paths, ensembles, loss bands, theory lines.

Compare optimizers on your own function without rewriting the contour code::

    import jax.numpy as jnp
    import matplotlib.pyplot as plt
    from optdyn import integrators as itg, landscape as ls
    from optdyn.experiments import plotting

    U = ls.rosenbrock()
    fig, (ax, ax_loss) = plt.subplots(1, 2, figsize=(10, 4))
    cs, label = plotting.plot_landscape(ax, U)
    traj = itg.simulate(itg.adam(lr=0.02), U, jnp.array([-1.5, 2.0]), 2000)
    plotting.plot_path(ax, traj.positions, color=plotting.COLORS["adam"], label="Adam")

Every function takes a Matplotlib `Axes` and returns what it drew, so a caller can add
legends, colour bars and limits as it likes. Arrays may be NumPy or JAX.
"""

from __future__ import annotations

import jax
import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402

# One colour per optimizer, the same in every figure (no yellow: it vanishes on white).
COLORS = {
    "sgd": "#1f77b4",
    "gd": "#1f77b4",
    "langevin": "#17becf",
    "momentum": "#d62728",
    "nesterov": "#ff7f0e",
    "adam": "#2ca02c",
    "adamw": "#98df8a",
    "rmsprop": "#9467bd",
    "adagrad": "#8c564b",
    "theory": "black",
}

# A dash pattern per optimizer, so that coinciding curves stay visible.
LINESTYLES = {
    "sgd": "-",
    "gd": "-",
    "langevin": "-",
    "momentum": "-",
    "nesterov": (0, (5, 2)),
    "adam": "-",
    "adamw": (0, (5, 2)),
    "rmsprop": (0, (1, 1.5)),
    "adagrad": (0, (3, 1, 1, 1)),
}


def energy_grid(landscape, n: int = 200, bounds=None):
    """U on an n×n grid over `bounds` (default: the landscape's plotting bounds).

    Returns:
        (X, Y, Z), each of shape (n, n): `np.meshgrid` coordinates and U(X, Y).
    """
    (x0, x1), (y0, y1) = (bounds if bounds is not None else landscape.bounds)[:2]
    xs, ys = np.linspace(x0, x1, n), np.linspace(y0, y1, n)
    X, Y = np.meshgrid(xs, ys)
    pts = np.stack([X.ravel(), Y.ravel()], axis=1)
    Z = np.asarray(jax.jit(jax.vmap(landscape.energy))(pts)).reshape(X.shape)
    return X, Y, Z


def _reference_energy(landscape, Z) -> float:
    """The true minimum U_min when the landscape knows it, else the grid's (never above it)."""
    known = getattr(landscape, "global_minimum", None)
    return float(known.value) if known is not None else float(Z.min())


def plot_landscape(
    ax,
    landscape,
    *,
    levels: int = 30,
    log: bool | None = None,
    n: int = 200,
    bounds=None,
    critical_points: bool = True,
):
    """Filled contours of a 2-D landscape with its known minima (★) and saddles (×) marked.

    With `log` the colours show log₁₀(U − U_min + ε), U_min the landscape's known global
    minimum (the grid's lowest value when it has none) and ε = 10⁻⁶·(max − min) on the grid;
    `log=None` picks log contours when U spans orders of magnitude (95th percentile above
    100× the median, both measured from U_min).

    Returns:
        (contour set, colour-bar label): pass them to `fig.colorbar(cs, ax=ax, label=label)`.
    """
    X, Y, Z = energy_grid(landscape, n, bounds)
    zmin = min(_reference_energy(landscape, Z), float(Z.min()))
    if log is None:
        log = (np.percentile(Z, 95) - zmin) > 100 * (np.percentile(Z, 50) - zmin + 1e-12)
    if log:
        shown = np.log10(Z - zmin + max(1e-6 * np.ptp(Z), 1e-12))
        label = r"$\log_{10}(U - U_{\min})$"
    else:
        shown, label = Z, r"$U(\theta)$"
    cs = ax.contourf(X, Y, shown, levels=levels, cmap="viridis", alpha=0.85)
    ax.contour(X, Y, shown, levels=levels, colors="white", linewidths=0.3, alpha=0.5)
    if critical_points:
        plot_critical_points(ax, landscape)
    (x0, x1), (y0, y1) = (bounds if bounds is not None else landscape.bounds)[:2]
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel(r"$\theta_1$")
    ax.set_ylabel(r"$\theta_2$")
    return cs, label


def plot_critical_points(ax, landscape, *, legend: bool = True) -> list:
    """Mark the landscape's known minima (★), saddles (×) and maxima (▲); one legend entry each."""
    drawn = []
    for i, p in enumerate(landscape.minima):
        (line,) = ax.plot(
            *np.asarray(p.x)[:2],
            marker="*",
            ms=13,
            color="gold",
            mec="black",
            mew=0.8,
            ls="none",
            label="minimum" if (i == 0 and legend) else None,
            zorder=6,
        )
        drawn.append(line)
    seen = set()
    for p in landscape.saddles:
        kind = "maximum" if p.kind == "maximum" else "saddle"
        (line,) = ax.plot(
            *np.asarray(p.x)[:2],
            marker="^" if kind == "maximum" else "X",
            ms=10,
            color="white",
            mec="black",
            mew=0.8,
            ls="none",
            label=kind if (kind not in seen and legend) else None,
            zorder=6,
        )
        seen.add(kind)
        drawn.append(line)
    return drawn


def clip_to_box(positions, bounds):
    """The path up to and including its first point outside `bounds` ((x0, x1), (y0, y1)).

    Returns:
        (positions kept, index of the first point outside or None if it never left).
    """
    pos = np.asarray(positions)
    (xa, xb), (ya, yb) = bounds[:2]
    outside = (pos[:, 0] < xa) | (pos[:, 0] > xb) | (pos[:, 1] < ya) | (pos[:, 1] > yb)
    if not outside.any():
        return pos, None
    left = int(np.argmax(outside))
    return pos[: left + 1], left


def plot_path(
    ax,
    positions,
    *,
    color,
    label: str | None = None,
    bounds=None,
    end_marker: str | None = "o",
    **kwargs,
):
    """One trajectory θ_k (shape (steps, ≥2)) as a line with its last point marked.

    With `bounds` the path is cut one step after it leaves the box, so nothing is drawn off
    the axes. Extra keyword arguments go to `ax.plot` (`ls`, `lw`, `zorder`, ...).

    Returns:
        The `Line2D` of the path.
    """
    pos = np.asarray(positions)
    if bounds is not None:
        pos, _ = clip_to_box(pos, bounds)
    kwargs.setdefault("lw", 1.6)
    (line,) = ax.plot(pos[:, 0], pos[:, 1], color=color, label=label, **kwargs)
    if end_marker is not None:
        ax.plot(
            pos[-1, 0],
            pos[-1, 1],
            end_marker,
            color=color,
            mec="black",
            ms=6,
            zorder=kwargs.get("zorder", 2) + 0.1,
        )
    return line


def plot_ensemble(ax, positions, *, color, label: str | None = None, max_paths: int = 50, **kw):
    """An ensemble: faint paths (shape (n, steps, ≥2), as `Trajectory.positions`) or a point
    cloud (shape (n, ≥2)).

    At most `max_paths` paths are drawn (the first ones); a cloud is drawn whole.

    Returns:
        The artist carrying the label (a `Line2D` or a `PathCollection`).
    """
    pos = np.asarray(positions)
    if pos.ndim == 2:
        kw.setdefault("s", 6)
        kw.setdefault("alpha", 0.5)
        return ax.scatter(pos[:, 0], pos[:, 1], color=color, label=label, lw=0, **kw)
    kw.setdefault("lw", 0.6)
    kw.setdefault("alpha", 0.35)
    shown = pos[:max_paths]
    lines = ax.plot(shown[..., 0].T, shown[..., 1].T, color=color, **kw)
    lines[0].set_label(label)
    return lines[0]


def plot_loss_bands(
    ax,
    steps,
    losses,
    *,
    color,
    label: str | None = None,
    quantiles: tuple[float, float] = (0.1, 0.9),
    **kwargs,
):
    """Loss against step for an ensemble: the median line and a shaded quantile band.

    Args:
        steps: shape (T,).
        losses: shape (n, T), one row per particle (as `Trajectory.loss`); NaNs are skipped.
        quantiles: the band's lower and upper quantile (default the 10–90% band).

    Returns:
        (median line, band `PolyCollection`).
    """
    steps = np.asarray(steps)
    losses = np.asarray(losses)
    if losses.ndim == 1:
        losses = losses[None, :]
    lo, hi = quantiles
    if not 0.0 <= lo < hi <= 1.0:
        raise ValueError(f"quantiles must satisfy 0 <= lower < upper <= 1; got {quantiles!r}")
    q = np.nanquantile(losses, [lo, 0.5, hi], axis=0)
    kwargs.setdefault("lw", 1.6)
    (line,) = ax.plot(steps, q[1], color=color, label=label, **kwargs)
    band = ax.fill_between(steps, q[0], q[2], color=color, alpha=0.2, lw=0)
    return line, band


def theory_line(ax, x, y, *, label: str | None = None, color="black", ls="--", **kwargs):
    """A closed-form prediction: a thin dashed line drawn above the data (zorder 5).

    Returns:
        The `Line2D`.
    """
    kwargs.setdefault("lw", 1.3)
    kwargs.setdefault("zorder", 5)
    (line,) = ax.plot(np.asarray(x), np.asarray(y), color=color, ls=ls, label=label, **kwargs)
    return line
