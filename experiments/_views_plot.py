"""Drawing helpers shared by the landscape-view experiments (mlp_landscape, depth_and_skips)."""

from __future__ import annotations

import numpy as np

from ..landscape import views


def log_levels(values: np.ndarray, n: int = 16, top_percentile: float = 97.0) -> np.ndarray:
    """n log-spaced contour levels from the smallest finite value to a high percentile."""
    finite = values[np.isfinite(values) & (values > 0)]
    lo, hi = np.min(finite), np.percentile(finite, top_percentile)
    return np.geomspace(lo, max(hi, 1.0001 * lo), n)


def quadratic_on(model, coords) -> np.ndarray:
    """L₀ + gᵀc + ½ cᵀHc of a `views.restricted_quadratic` model at coefficients c (n, K).

    `views.quadratic_value` in NumPy: plotting code then compiles no XLA program per shape.
    """
    value, grad, hessian = (np.asarray(m, dtype=float) for m in model)
    c = np.asarray(coords, dtype=float)
    return value + c @ grad + 0.5 * np.einsum("nk,kl,nl->n", c, hessian, c)


def draw_slice(ax, sl: views.Slice, levels: np.ndarray, *, model=None, cmap="viridis"):
    """Filled log-contours of a `Slice`; dashed white contours of a quadratic model on top.

    Args:
      ax: matplotlib axes.
      sl: the slice (loss of shape (n_b, n_a)).
      levels: contour levels of the loss (positive, increasing).
      model: optional (L₀, g, H) of `views.restricted_quadratic` at the slice's centre, with
        the slice's directions; its contours at the same levels are the theory.

    Returns:
      The filled-contour mappable (for a colour bar).
    """
    a, b = np.asarray(sl.a), np.asarray(sl.b)
    loss = np.asarray(sl.loss, dtype=float)
    shown = np.ma.masked_invalid(np.log10(np.clip(loss, levels[0], None)))
    filled = ax.contourf(a, b, shown, levels=np.log10(levels), cmap=cmap, extend="max")
    ax.contour(a, b, shown, levels=np.log10(levels), colors="white", linewidths=0.3, alpha=0.5)
    if model is not None:
        A, B = np.meshgrid(a, b)
        coords = np.stack([A.ravel(), B.ravel()], axis=1)
        quad = quadratic_on(model, coords).reshape(A.shape)
        quad = np.ma.masked_where(~np.isfinite(quad) | (quad <= 0), quad)
        if quad.count() and np.ma.max(quad) > levels[0]:
            ax.contour(
                a,
                b,
                np.ma.log10(quad),
                levels=np.log10(levels),
                colors="white",
                linewidths=0.9,
                linestyles="--",
            )
    return filled


def loss_colorbar(ax, filled, levels: np.ndarray, label: str = "train loss L (log scale)"):
    """A colour bar for `draw_slice` with ticks at round loss values (1, 2, 5 × 10ᵏ)."""
    import matplotlib.pyplot as plt

    lo, hi = levels[0], levels[-1]
    decades = np.arange(np.floor(np.log10(lo)), np.ceil(np.log10(hi)) + 1)
    nice = np.array([m * 10.0**k for k in decades for m in (1, 2, 5)])
    ticks = nice[(nice >= lo) & (nice <= hi)]
    if len(ticks) < 3:
        ticks = np.geomspace(lo, hi, 4)
    cbar = plt.colorbar(filled, ax=ax, shrink=0.9, ticks=np.log10(ticks))
    cbar.ax.set_yticklabels([f"{t:.3g}" for t in ticks])
    cbar.set_label(label)
    return cbar
