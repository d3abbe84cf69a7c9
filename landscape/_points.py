"""Building `Point`s from hard-coded coordinates and from closed forms."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ._base import Point


def point(x: Iterable[float], value: float, kind: str) -> Point:
    """A `Point` with plain Python floats (hashable, printable, JAX-independent)."""
    return Point(tuple(float(v) for v in np.ravel(x)), float(value), kind)


def signature_kind(eigenvalues: np.ndarray, minimum_kind: str = "global") -> str:
    """Classify a non-degenerate stationary point by the signs of its Hessian's eigenvalues."""
    if np.all(eigenvalues > 0):
        return minimum_kind
    if np.all(eigenvalues < 0):
        return "maximum"
    return "saddle"
