"""Shared plumbing for experiments: configuration and atomic outputs.

The drawing helpers (landscape contours, paths, loss bands, theory lines) live in the public
`plotting` module.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


class Config(NamedTuple):
    """Settings every experiment receives."""

    quick: bool = False  # small, fast settings for smoke tests
    seed: int = 0  # random seed
    out: str = "figures"  # output folder
    formats: tuple[str, ...] = ("png",)  # figure formats
    animate: bool = False  # also write GIF (and MP4 with ffmpeg) animations


def fuse_for(config: Config) -> int | None:
    """The `fuse` a run passes to `simulate` and `train`: quick runs check divergence after
    every step (0: a smaller program that compiles in about half the time; `diverged_step`
    is exact either way), full runs take the engine's plan (None)."""
    return 0 if config.quick else None


# XLA options for smoke runs: a `--quick` run spends most of its time compiling (LLVM's
# optimisation passes and XLA's fusion emitters), not running. Measured on `all --quick`,
# one process, 2-core AMD EPYC: XLA compile 196 s -> 72 s, wall 293 s -> 184 s; the programs
# run about 2x slower, which tiny runs do not feel. The results are the same up to rounding
# (fused multiply-adds, subnormals), so a quick run's numbers may differ from an optimised
# run's in the last digits.
FAST_COMPILE_XLA_FLAGS = (
    "--xla_backend_optimization_level=0",
    "--xla_cpu_use_fusion_emitters=false",
)


def compile_fast(environ=os.environ) -> bool:
    """Ask XLA for fast compilation (`FAST_COMPILE_XLA_FLAGS`, added to XLA_FLAGS; a flag
    the user already set there is kept as given). XLA reads XLA_FLAGS once, when JAX starts
    its backend: returns False, changing nothing, if that has happened in this process.
    Processes spawned afterwards inherit the flags."""
    try:
        from jax._src import xla_bridge

        if xla_bridge.backends_are_initialized():
            return False
    except (ImportError, AttributeError):  # a JAX without it: set the flags anyway
        pass
    flags = environ.get("XLA_FLAGS", "").split()
    given = {flag.split("=")[0] for flag in flags}
    flags += [flag for flag in FAST_COMPILE_XLA_FLAGS if flag.split("=")[0] not in given]
    environ["XLA_FLAGS"] = " ".join(flags)
    return True


# Temporary files are named `.optdyn-tmp.<target>.<random>` next to their target, so a run
# killed between writing and renaming leaves a file the next write to that target removes.
TMP_PREFIX = ".optdyn-tmp."
STALE_SECONDS = 60.0  # a temporary file this old belongs to no running write (ours take ~1 s)

# Significant digits kept in the JSON: more than any figure or caption claims, few enough that
# float-level differences between two runs on one machine do not show.
JSON_DIGITS = 4
# Keys whose values depend on the run (wall-clock times), kept out of the written JSON so that
# re-rendering leaves a clone's `git status` clean; `run` still returns them.
RUN_DEPENDENT_KEYS = frozenset({"runtime_s", "wall_seconds"})


def _file_mode() -> int:
    """The mode a plain `open(path, "w")` gives a new file: 0o666 less the umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _remove_stale_temporaries(path: Path) -> None:
    """Remove temporary files of `path` left by a killed run (older than STALE_SECONDS)."""
    now = time.time()
    for stale in path.parent.glob(f"{TMP_PREFIX}{path.name}.*"):
        try:
            if now - stale.stat().st_mtime > STALE_SECONDS:
                stale.unlink()
        except FileNotFoundError:  # another process got there first
            pass


def _atomic_write(path: Path, write) -> None:
    """Write through a temporary file in the same folder, then rename: whole or nothing.

    The file gets the umask's normal mode (0644 under umask 022); the temporary file is
    removed if `write` fails, and a later write to the same path removes one left by a
    killed run.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{TMP_PREFIX}{path.name}.")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


# Metadata that would differ between runs or versions (software version, dates): left out,
# so two renders of the same numbers are byte-identical.
_NO_METADATA = {
    "png": {"Software": None},
    "pdf": {"Creator": None, "Producer": None, "CreationDate": None},
    "svg": {"Creator": None, "Date": None},
}


# Raster resolution: the gallery's figures, and a smoke run's (--quick) at half the pixels
# per side, which renders in about a third of the time.
DPI = 130
QUICK_DPI = 65


def save_figure(fig, config: Config, name: str) -> list[Path]:
    """Save `fig` as `<out>/<name>.<fmt>` for every requested format; close it.

    The files carry no run-dependent bytes (no version or date in the metadata, a fixed SVG
    hash salt), so the same numbers give the same files.
    """
    paths = []
    dpi = QUICK_DPI if config.quick else DPI
    for fmt in config.formats:
        path = Path(config.out) / f"{name}.{fmt}"

        def write(tmp, fmt=fmt):
            with matplotlib.rc_context({"svg.hashsalt": "optdyn"}):
                fig.savefig(
                    tmp, format=fmt, dpi=dpi, bbox_inches="tight", metadata=_NO_METADATA[fmt]
                )

        _atomic_write(path, write)
        paths.append(path)
    plt.close(fig)
    return paths


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items() if k not in RUN_DEPENDENT_KEYS}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # numpy and jax arrays and scalars
        return _jsonable(np.asarray(value).tolist())
    if isinstance(value, float):
        if not np.isfinite(value):
            return None  # JSON has no NaN/inf
        return float(f"{value:.{JSON_DIGITS}g}")
    return value


def save_json(data: dict, config: Config, name: str) -> Path:
    """Write the numbers behind a figure to `<out>/<name>.json` (whole or not at all).

    Floats keep JSON_DIGITS significant digits and the RUN_DEPENDENT_KEYS (timings) are left
    out, so re-rendering on one machine reproduces the file byte for byte.
    """
    path = Path(config.out) / f"{name}.json"
    text = json.dumps(_jsonable(data), indent=2, sort_keys=False)
    _atomic_write(path, lambda tmp: Path(tmp).write_text(text + "\n"))
    return path
