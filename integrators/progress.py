"""Progress bars for long `simulate` and `train` calls, updated from inside the jitted scan.

The compiled scan reports the steps it has done through `jax.debug.callback`, about
`UPDATES` times per call at most (a `lax.cond` on the step skips the callback in between),
and a tqdm bar on the host adds them up; it is filled when the call returns. With
`progress=False` nothing is compiled in: the scan is the same program as without this module.

    itg.set_progress_default(True)      # what `python -m optdyn.experiments` does on a TTY
    itg.simulate(..., progress=None)    # None: use that default (False unless set; also
                                        # OPTDYN_PROGRESS=1 in the environment)
"""

from __future__ import annotations

import functools
import os

import jax
from tqdm.auto import tqdm

UPDATES = 100  # callbacks per call, about, at most: ~25 µs of CPU each

_DEFAULT = {"on": os.environ.get("OPTDYN_PROGRESS", "").strip().lower() in ("1", "true", "yes")}
_BAR: dict = {}  # the bar of the running call (one at a time: the host callback finds it here)


def set_progress_default(on: bool) -> None:
    """Whether `simulate`/`train` called with `progress=None` show a bar (default False)."""
    if not isinstance(on, bool):
        raise TypeError(f"on={on!r} is not allowed: give True or False.")
    _DEFAULT["on"] = on


def resolve(progress: bool | None) -> bool:
    """The effective setting: `progress`, or the module default when it is None."""
    if progress is None:
        return _DEFAULT["on"]
    if not isinstance(progress, bool):
        raise TypeError(f"progress={progress!r} is not allowed: give True, False or None.")
    return progress


def stride(steps: int) -> int:
    """Steps between two updates of a call of `steps` steps."""
    return max(-(-steps // UPDATES), 1)


def _advance(steps: int) -> None:
    bar = _BAR.get("bar")
    if bar is not None:  # callbacks may arrive in any order: they only add up
        bar.update(min(steps, bar.total - bar.n))


def tick(t0, length: int, every: int) -> None:
    """Inside the scan, after steps t0 .. t0 + `length` (t0 traced, `length` static): move
    the host's bar. A chunk of `every` steps or more reports its length; a shorter one
    reports `every` steps when it crosses a multiple of `every` (a `lax.cond`).

    The callbacks take no traced argument: JAX moves each argument back to a device array
    before calling, which made a callback cost ~170 µs of CPU against ~25 µs without one
    (2-core AMD EPYC, measured under load)."""
    if length >= every:
        jax.debug.callback(functools.partial(_advance, length))
        return
    jax.lax.cond(
        (t0 + length) // every > t0 // every,
        lambda: jax.debug.callback(functools.partial(_advance, every)),
        lambda: None,
    )


class Bar:
    """A context manager: the tqdm bar of one call of `total` steps from step `start`."""

    def __init__(self, on: bool, total: int, start: int, desc: str):
        self.on, self.total, self.start, self.desc = on, total, start, desc

    def __enter__(self):
        if self.on:
            _BAR.update(bar=tqdm(total=self.total, desc=self.desc, unit="step"), start=self.start)
        return self

    def wait(self, tree):
        """Block until `tree` is computed (so the bar closes at 100 %), when the bar is on."""
        return jax.block_until_ready(tree) if self.on else tree

    def __exit__(self, *exc):
        bar = _BAR.pop("bar", None)
        _BAR.pop("start", None)
        if bar is not None:
            if exc[0] is None:  # steps after the last reported multiple of the stride
                bar.update(bar.total - bar.n)
            bar.close()
        return False
