"""The statistics and parsing behind `compare`: steps to a target, bootstrap intervals, specs."""

from __future__ import annotations

import importlib

import numpy as np

from .. import integrators as itg
from .. import landscape as ls
from ..landscape.validate import check_real


def steps_to_target(loss, steps, target: float, diverged_step) -> np.ndarray:
    """The first recorded step at which U ≤ `target` (inf where never, or only after diverging).

    Args:
      loss: `(..., n_records)` recorded losses.
      steps: `(n_records,)` the step of each record.
      target: the target loss.
      diverged_step: `(...)` the step of divergence, -1 if never.

    Returns:
      float `(...)`: the step, or inf.
    """
    loss, steps = np.asarray(loss), np.asarray(steps)
    hit = loss <= target
    first = np.where(hit.any(-1), steps[np.argmax(hit, axis=-1)], np.inf)
    div = np.asarray(diverged_step)
    return np.where((div >= 0) & (first > div), np.inf, first)


def median_interval(values, rng: np.random.Generator, level: float = 0.95, n_boot: int = 2000):
    """The median of `values` (inf counts as a failure) and its percentile-bootstrap interval.

    Returns:
      (median, low, high); inf where more than half of the (resampled) runs failed.
    """
    values = np.asarray(values, float)
    draws = rng.integers(0, values.size, (n_boot, values.size))
    medians = np.sort(values[draws], axis=1)[:, (values.size - 1) // 2]
    tail = (1 - level) / 2
    low, high = np.quantile(medians, [tail, 1 - tail], method="inverted_cdf")
    return float(np.sort(values)[(values.size - 1) // 2]), float(low), float(high)


def parse_optimizer(spec: str) -> tuple[str, dict]:
    """ "momentum:momentum=0.9,temperature=0" -> ("momentum", {"momentum": 0.9, ...}).

    The learning rate is tuned by `compare`, so `lr` may not be fixed here.
    """
    name, _, rest = spec.partition(":")
    hyper = {}
    for item in filter(None, (s.strip() for s in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq:
            raise ValueError(f"optimizer {spec!r}: {item!r} is not key=value")
        try:
            hyper[key.strip()] = float(value)
        except ValueError:
            raise ValueError(f"optimizer {spec!r}: {key}={value!r} is not a number") from None
    if "lr" in hyper:
        raise ValueError(f"optimizer {spec!r}: lr is tuned by compare; give --lr-range instead")
    itg.get(name.strip(), lr=1.0, **hyper)  # a misspelt name or argument fails here
    return name.strip(), hyper


def resolve_landscape(spec) -> ls.Landscape:
    """A `Landscape` from a landscape, a name ("valley", "rosenbrock") or "module:function"
    (a function of no arguments returning a `Landscape`, or an energy to wrap)."""
    if isinstance(spec, ls.Landscape):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"landscape={spec!r}: give a Landscape, a name or 'module:function'")
    if ":" not in spec:
        return ls.get(spec)
    module, _, attr = spec.partition(":")
    try:
        obj = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"landscape={spec!r}: cannot load it ({err})") from None
    if isinstance(obj, ls.Landscape):
        return obj
    result = obj()
    if not isinstance(result, ls.Landscape):
        raise TypeError(f"landscape={spec!r}: {attr}() returned {type(result).__name__}")
    return result


def starts(start, n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """n starting points: a point (dim,) repeated, or uniform in a box ((low, high) per axis)."""
    a = np.asarray(start, float)
    check_real("start", a)
    if a.shape == (dim,):
        return np.broadcast_to(a, (n, dim)).copy()
    if a.shape == (dim, 2) and np.all(a[:, 0] <= a[:, 1]):
        return rng.uniform(a[:, 0], a[:, 1], (n, dim))
    raise ValueError(
        f"start of shape {a.shape} is not allowed: give a point ({dim},) or a box "
        f"({dim}, 2) of (low, high) pairs"
    )
