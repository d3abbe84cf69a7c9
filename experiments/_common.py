"""Shared plumbing for experiments: configuration and atomic outputs.

The drawing helpers (landscape contours, paths, loss bands, theory lines) live in the public
`plotting` module.
"""

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


class Config(NamedTuple):
    """Settings every experiment receives."""

    quick: bool = False  # small, fast settings for smoke tests
    seed: int = 0  # random seed
    out: str = "figures"  # output folder
    formats: tuple[str, ...] = ("png",)  # figure formats


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
