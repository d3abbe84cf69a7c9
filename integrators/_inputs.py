"""The checks `simulate` runs on its arguments before any compute, and the split of an
integrator's hyperparameters into traced data and static choices."""

from __future__ import annotations

import functools
import weakref

import jax
import jax.numpy as jnp
import numpy as np

from .. import landscape as ls
from ..landscape._base import Landscape
from ..landscape.types import Static
from ._base import Integrator, _is_number, _is_sweep_value
from .noise import Exact
from .optax_bridge import from_optax

_map = jax.tree_util.tree_map


@functools.cache
def default_noise() -> Exact:
    """The default noise model, `Exact()`: one instance, so that `traced_arg` finds it in its
    cache on every call without a noise model."""
    return Exact()


def as_integrator(optimizer) -> Integrator:
    if isinstance(optimizer, Integrator):
        return optimizer
    if hasattr(optimizer, "init") and hasattr(optimizer, "update"):
        return from_optax(optimizer)
    raise ValueError(
        f"optimizer={optimizer!r} is not an optdyn Integrator or an optax "
        "GradientTransformation; build one with e.g. integrators.momentum(lr=1e-3)."
    )


def as_landscape(landscape) -> Landscape:
    if isinstance(landscape, Landscape):
        return landscape
    if isinstance(landscape, str):
        return ls.get(landscape)
    if callable(landscape):
        return ls.from_function(landscape)
    raise ValueError(
        f"landscape={landscape!r} is not a Landscape, a landscape name or an energy function."
    )


def prepare_x0(x0, landscape: Landscape, ensemble: bool | None):
    """Return (x0 with a leading particle axis, whether the input was an ensemble)."""
    leaves = jax.tree_util.tree_leaves(x0)
    if not leaves:
        raise ValueError("x0 is empty: give the starting position(s) as an array or pytree.")

    def to_float(a):
        if isinstance(a, jax.Array) and jnp.issubdtype(a.dtype, jnp.inexact):
            return a  # no eager op: a simulate call costs ~0.15 ms of Python and dispatch
        a = jnp.asarray(a)
        return a if jnp.issubdtype(a.dtype, jnp.inexact) else a.astype(jnp.result_type(float))

    x0 = _map(to_float, x0)
    dim = landscape.dim
    if dim is not None:
        if not isinstance(x0, jax.Array) or x0.ndim not in (1, 2) or x0.shape[-1] != dim:
            shape = getattr(x0, "shape", type(x0).__name__)
            raise ValueError(
                f"x0 has shape {shape}, but landscape {landscape.name!r} has dimension {dim}: "
                f"give shape ({dim},) for one particle or (n, {dim}) for an ensemble of n."
            )
        is_ensemble = x0.ndim == 2 if ensemble is None else ensemble
        if ensemble is not None and ensemble != (x0.ndim == 2):
            raise ValueError(f"ensemble={ensemble} does not fit x0 of shape {x0.shape}.")
    else:
        is_ensemble = bool(ensemble)
    if is_ensemble:
        sizes = {jnp.shape(a)[0] if jnp.ndim(a) else None for a in leaves}
        if len(sizes) != 1 or None in sizes:
            raise ValueError(
                "ensemble x0 needs the same leading particle axis on every leaf; got sizes "
                f"{sizes}."
            )
        return x0, True
    return _map(lambda a: a[None], x0), False


def split_hyperparams(integrator: Integrator):
    """Hyperparameters are data: numbers (Python, NumPy or JAX scalars, tracers included) and
    1-D sweeps are traced leaves, so `simulate` runs under `jit`, `vmap` and `grad` over them
    and a new value does not recompile. Static: schedules, flags, and an exact Python or
    NumPy zero, which specialises the program (T = 0 draws no random numbers)."""
    dynamic, static = {}, {}
    for name, value in (integrator.hyperparams or {}).items():
        if isinstance(value, jax.Array) and value.ndim == 1:  # keeps its sharding
            dynamic[name] = value.astype(jnp.result_type(float))
        elif _is_sweep_value(value):
            dynamic[name] = jnp.asarray(np.asarray(value, dtype=float))
        elif _is_number(value):
            if value != 0:
                dynamic[name] = value  # traced by jit as is (a Python number: weakly typed)
            else:
                static[name] = value
        elif isinstance(value, jax.Array | np.ndarray) and np.ndim(value) == 0:
            dynamic[name] = value  # a JAX or NumPy scalar, or a tracer of jit/vmap/grad
        else:
            static[name] = value
    return dynamic, tuple(sorted(static.items(), key=lambda kv: kv[0]))


def check_stream(stream) -> tuple:
    """`{name: accumulator}` as a sorted tuple of pairs (hashable: a static jit argument)."""
    if stream is None:
        return ()
    if not isinstance(stream, dict):
        raise ValueError(f"stream={stream!r} must be a dict {{name: accumulator}}.")
    for name, acc in stream.items():
        if not all(callable(getattr(acc, f, None)) for f in ("init", "update", "finalize")):
            raise ValueError(
                f"stream[{name!r}]={acc!r} is not an accumulator: it needs init(x), "
                "update(acc, x, step) and finalize(acc), as integrators.streaming.Accumulator."
            )
    return tuple(sorted(stream.items(), key=lambda kv: kv[0]))


@jax.tree_util.register_pytree_node_class
class _Opaque:
    """A pytree without leaves around an object that is not one (a user's noise model): jit
    compiles once per distinct object (`Static`), and inside the trace unflattening gives
    the object itself."""

    def __init__(self, obj):
        self.obj = obj

    def tree_flatten(self):
        return (), Static(self.obj)

    @classmethod
    def tree_unflatten(cls, aux, children):
        return aux.value


_TRACED_ARGS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
"""`traced_arg` per landscape or noise-model object: a repeated call with the same objects
costs no flattening (a `simulate` call is ~0.5 ms of Python and dispatch on a 2-core CPU)."""


def traced_arg(obj):
    """`obj` as a dynamic argument of the jitted runner: a pytree of numbers (a built-in
    noise model, a landscape's `compute_view`) as it is, its numbers traced; any other object
    (one that is not a pytree, or has leaves that are not numbers) wrapped in `_Opaque`."""
    try:
        return _TRACED_ARGS[obj]
    except (KeyError, TypeError, ValueError):  # not seen, or not usable as a weak key
        pass
    numbers = (jax.Array, np.ndarray, np.generic, float, int, complex)
    if not all(isinstance(a, numbers) for a in jax.tree_util.tree_leaves(obj)):
        out = _Opaque(obj)
    else:
        out = obj.compute_view() if isinstance(obj, Landscape) else obj
    try:
        _TRACED_ARGS[obj] = out
    except (TypeError, ValueError):  # not weakly referenceable or not hashable: computed per call
        pass
    return out
