"""Animated trajectories: particles rolling on the contour map, trails, a step counter and
the loss filling in beside it, written as a GIF (Pillow) and as MP4 when ffmpeg is present.

    from optdyn.experiments.animation import animate
    animate(traj, ls.rosenbrock(), "figures/rosenbrock.gif")
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import jax
import matplotlib.pyplot as plt
import numpy as np
from matplotlib import animation as mpl_animation

from .. import integrators as itg
from ..landscape.validate import check_int
from .plotting import plot_landscape


def _groups(traj) -> dict[str, np.ndarray]:
    """{label: positions (particles, records, 2)} from a Trajectory, an array or a mapping."""
    items = traj.items() if isinstance(traj, dict) else [("", traj)]
    groups = {}
    for label, t in items:
        pos = np.asarray(t.positions if isinstance(t, itg.Trajectory) else t)
        if pos.ndim < 2 or pos.shape[-1] != 2:
            raise ValueError(
                f"trajectory {label!r} of shape {pos.shape}: animate draws 2-D positions "
                "(..., records, 2)"
            )
        groups[str(label)] = pos.reshape(-1, *pos.shape[-2:])
    return groups


def _write_whole(path: Path, write) -> None:
    """Write through a temporary file of the same suffix, then rename; mode from the umask."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def animate(
    traj,
    landscape,
    path,
    *,
    steps=None,
    colors: dict | None = None,
    frames: int = 60,
    fps: int = 12,
    trail: int = 15,
    dpi: int = 60,
    mp4: bool | None = None,
) -> list[Path]:
    """Animate 2-D trajectories on `landscape` and write them to `path` (a .gif).

    Args:
      traj: a `Trajectory` (one particle, an ensemble or a sweep), an array of positions
        `(..., records, 2)`, or a mapping label -> either (one colour per label).
      landscape: the 2-D `Landscape` drawn underneath.
      path: the GIF to write; an MP4 beside it when ffmpeg is on the PATH.
      steps: the step of each record (default `traj.steps`, else 0, 1, 2, ...).
      colors: label -> colour (default matplotlib's cycle).
      frames: the most frames (records are subsampled evenly; the last record is shown).
      fps: frames per second.
      trail: records of trail drawn behind each particle.
      dpi: resolution (60 keeps a GIF well under 3 MB).
      mp4: write the MP4 (default: when ffmpeg is present).

    Returns:
      The paths written.
    """
    frames = check_int("frames", frames, minimum=2)
    groups = _groups(traj)
    n_rec = next(iter(groups.values())).shape[1]
    if steps is None:
        single = next(iter(traj.values())) if isinstance(traj, dict) else traj
        steps = single.steps if isinstance(single, itg.Trajectory) else np.arange(n_rec)
    steps = np.asarray(steps)
    shown = np.unique(np.linspace(0, n_rec - 1, min(frames, n_rec)).round().astype(int))
    energy = jax.jit(jax.vmap(jax.vmap(landscape.energy)))
    offset = landscape.global_minimum.value if landscape.global_minimum is not None else 0.0
    losses = {k: np.asarray(energy(v)) - offset for k, v in groups.items()}

    fig, (ax, ax_loss) = plt.subplots(1, 2, figsize=(9, 4), gridspec_kw={"width_ratios": [1.1, 1]})
    plot_landscape(ax, landscape)
    colors = dict(colors or {})
    artists = []
    for i, (label, pos) in enumerate(groups.items()):
        color = colors.setdefault(label, plt.cm.tab10(i % 10))
        trails = [ax.plot([], [], "-", color=color, lw=1.2, alpha=0.8)[0] for _ in pos]
        dots = ax.plot([], [], "o", color=color, mec="black", ms=5, label=label or None)[0]
        curve = ax_loss.plot([], [], color=color, lw=1.6, label=f"{label} median".strip())[0]
        artists.append((pos, losses[label], trails, dots, curve))
    counter = ax.text(
        0.02,
        0.96,
        "",
        transform=ax.transAxes,
        va="top",
        fontsize=10,
        bbox=dict(facecolor="white", alpha=0.8, lw=0),
    )
    every = np.concatenate([np.median(v, axis=0) for v in losses.values()])
    positive = every[every > 0]
    if positive.size and positive.max() / positive.min() > 100:
        ax_loss.set_yscale("log")
        ax_loss.set_ylim(positive.min() / 2, positive.max() * 2)
    else:
        pad = 0.05 * np.ptp(every) + 1e-12
        ax_loss.set_ylim(every.min() - pad, every.max() + pad)
    ax_loss.set_xlim(steps[0], steps[-1])
    ax_loss.set_xlabel("step k")
    ax_loss.set_ylabel("U(θ) − U_min" if landscape.global_minimum is not None else "U(θ)")
    ax_loss.grid(alpha=0.3, which="both")
    if any(groups):
        ax.legend(fontsize=7, loc="lower right", framealpha=0.85)
        ax_loss.legend(fontsize=7)
    fig.tight_layout()

    def draw(frame):
        r = shown[frame]
        for pos, loss, trails, dots, curve in artists:
            for line, p in zip(trails, pos, strict=True):
                line.set_data(p[max(0, r - trail) : r + 1, 0], p[max(0, r - trail) : r + 1, 1])
            dots.set_data(pos[:, r, 0], pos[:, r, 1])
            curve.set_data(steps[: r + 1], np.median(loss[:, : r + 1], axis=0))
        counter.set_text(f"step {int(steps[r])}")

    movie = mpl_animation.FuncAnimation(fig, draw, frames=len(shown), blit=False)
    path = Path(path)
    written = [path]
    _write_whole(
        path, lambda tmp: movie.save(tmp, writer=mpl_animation.PillowWriter(fps=fps), dpi=dpi)
    )
    if mp4 if mp4 is not None else shutil.which("ffmpeg"):
        mp4_path = path.with_suffix(".mp4")
        writer = mpl_animation.FFMpegWriter(fps=fps)
        _write_whole(mp4_path, lambda tmp: movie.save(tmp, writer=writer, dpi=dpi))
        written.append(mp4_path)
    plt.close(fig)
    return written


def animate_run(
    optimizers: dict, landscape, x0, steps: int, path, key=None, **kwargs
) -> list[Path]:
    """Simulate each optimizer (label -> `Integrator`) from `x0` and animate them together.

    Args:
      optimizers: label -> integrator (one colour each).
      landscape, x0, steps, key: as `simulate` (records are kept for at most 60 frames).
      path: the GIF to write.
      **kwargs: other `simulate` arguments (e.g. `bound`).
    """
    every = max(1, steps // 60)
    trajs = {
        label: itg.simulate(opt, landscape, x0, steps, key, record_every=every, **kwargs)
        for label, opt in optimizers.items()
    }
    return animate(trajs, landscape, path)
