"""Shared plumbing for experiments: configuration, atomic outputs, landscape plots."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import NamedTuple

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

# One colour per optimizer, the same in every figure.
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


class Config(NamedTuple):
    """Settings every experiment receives."""

    quick: bool = False  # small, fast settings for smoke tests
    seed: int = 0  # random seed
    out: str = "figures"  # output folder
    formats: tuple[str, ...] = ("png",)  # figure formats
    animate: bool = False  # also write GIF (and MP4 with ffmpeg) animations


def _atomic_write(path: Path, write) -> None:
    """Write through a temporary file in the same folder, then rename: whole or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def save_figure(fig, config: Config, name: str) -> list[Path]:
    """Save `fig` as `<out>/<name>.<fmt>` for every requested format; close it."""
    paths = []
    for fmt in config.formats:
        path = Path(config.out) / f"{name}.{fmt}"
        _atomic_write(
            path, lambda tmp, fmt=fmt: fig.savefig(tmp, format=fmt, dpi=130, bbox_inches="tight")
        )
        paths.append(path)
    plt.close(fig)
    return paths


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # numpy and jax arrays and scalars
        return _jsonable(np.asarray(value).tolist())
    if isinstance(value, float) and not np.isfinite(value):
        return None  # JSON has no NaN/inf
    return value


def save_json(data: dict, config: Config, name: str) -> Path:
    """Write the numbers behind a figure to `<out>/<name>.json` (whole or not at all)."""
    path = Path(config.out) / f"{name}.json"
    text = json.dumps(_jsonable(data), indent=2, sort_keys=False)
    _atomic_write(path, lambda tmp: Path(tmp).write_text(text + "\n"))
    return path


def energy_grid(landscape, n: int = 200):
    """U on an n×n grid over the landscape's plotting bounds: (X, Y, Z)."""
    import jax

    (x0, x1), (y0, y1) = landscape.bounds[:2]
    xs, ys = np.linspace(x0, x1, n), np.linspace(y0, y1, n)
    X, Y = np.meshgrid(xs, ys)
    pts = np.stack([X.ravel(), Y.ravel()], axis=1)
    Z = np.asarray(jax.jit(jax.vmap(landscape.energy))(pts)).reshape(X.shape)
    return X, Y, Z


def plot_landscape(ax, landscape, *, levels: int = 30, log: bool | None = None, n: int = 200):
    """Filled contours of a 2-D landscape with its known minima (★) and saddles (×) marked."""
    X, Y, Z = energy_grid(landscape, n)
    zmin = Z.min()
    if log is None:
        log = (np.percentile(Z, 95) - zmin) > 100 * (np.percentile(Z, 50) - zmin + 1e-12)
    if log:
        shown = np.log10(Z - zmin + max(1e-6 * np.ptp(Z), 1e-12))
        label = f"log₁₀(U − U_min), U_min = {zmin:.3g}"
    else:
        shown, label = Z, "U"
    cs = ax.contourf(X, Y, shown, levels=levels, cmap="viridis", alpha=0.85)
    ax.contour(X, Y, shown, levels=levels, colors="white", linewidths=0.3, alpha=0.5)
    for i, p in enumerate(landscape.minima):
        ax.plot(
            *p.x[:2],
            marker="*",
            ms=13,
            color="gold",
            mec="black",
            mew=0.8,
            ls="none",
            label="minimum" if i == 0 else None,
            zorder=5,
        )
    for i, p in enumerate(landscape.saddles):
        marker = "^" if p.kind == "maximum" else "X"
        ax.plot(
            *p.x[:2],
            marker=marker,
            ms=10,
            color="white",
            mec="black",
            mew=0.8,
            ls="none",
            label=("maximum" if p.kind == "maximum" else "saddle") if i == 0 else None,
            zorder=5,
        )
    (x0, x1), (y0, y1) = landscape.bounds[:2]
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel("θ₁")
    ax.set_ylabel("θ₂")
    return cs, label
