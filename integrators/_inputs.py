"""The checks `simulate` runs on its arguments before any compute, and the split of an
integrator's hyperparameters into traced data and static choices."""

from __future__ import annotations

import functools
import os
import weakref

import jax
import jax.numpy as jnp
import numpy as np

from .. import landscape as ls
from ..landscape._base import Landscape
from ..landscape.types import Static
from ..landscape.validate import check_energy_output, check_key, check_unit_interval
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


def prepare_x0(x0, landscape: Landscape, ensemble: bool | None, bound: float = np.inf):
    """Return (x0 with a leading particle axis, whether the input was an ensemble).

    A Python list or tuple of numbers is an array; an empty ensemble, and a concrete x0 with
    a coordinate that is not finite or beyond ±`bound`, are refused (they would diverge at
    step 0 and every record would hold them)."""
    if isinstance(x0, list | tuple) and _numbers(x0):
        x0 = np.asarray(x0, dtype=float)
    leaves = jax.tree_util.tree_leaves(x0)
    if not leaves:
        raise ValueError("x0 is empty: give the starting position(s) as an array or pytree.")
    for a in leaves:
        if not isinstance(a, jax.Array | np.ndarray | np.generic | int | float):
            raise TypeError(
                f"x0 holds a {type(a).__name__} ({a!r}); it must be an array (or a pytree of "
                "arrays) of real numbers."
            )
        if not jnp.issubdtype(jnp.result_type(a), jnp.number) or jnp.iscomplexobj(a):
            raise TypeError(f"x0 has dtype {jnp.result_type(a)}; it must hold real numbers.")

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
        if sizes == {0}:
            shape = jnp.shape(leaves[0])
            raise ValueError(f"x0 has shape {shape}: an ensemble needs at least one particle.")
    else:
        x0 = _map(lambda a: a[None], x0)
    _check_finite_x0(x0, bound)
    return x0, is_ensemble


def _numbers(values) -> bool:
    """A non-empty, possibly nested list of Python or NumPy numbers."""
    if isinstance(values, list | tuple):
        return len(values) > 0 and all(_numbers(v) for v in values)
    return isinstance(values, int | float | np.number) and not isinstance(values, bool)


@jax.jit
def _within(x0, bound):
    """Whether every coordinate of every particle is finite and inside [−bound, bound]."""
    ok = [jnp.all(jnp.abs(a) <= bound) for a in jax.tree_util.tree_leaves(x0)]
    return functools.reduce(jnp.logical_and, ok)


def _check_finite_x0(x0, bound: float) -> None:
    """Refuse a concrete x0 with a NaN, an inf or a coordinate beyond ±bound (one fused
    reduction and one boolean read back; a traced x0 is checked by the divergence test)."""
    leaves = jax.tree_util.tree_leaves(x0)
    if any(isinstance(a, jax.core.Tracer) for a in leaves):
        return
    if _checked_before(leaves, bound):
        return
    within = _within(x0, bound)
    if isinstance(within, jax.core.Tracer):  # under eval_shape: unknowable
        return
    if bool(within):
        _remember_checked(leaves, bound)
        return
    for i, a in enumerate(leaves):
        bad = ~(np.abs(np.asarray(a)) <= bound)
        if bad.any():
            where = tuple(int(j) for j in np.argwhere(bad)[0])
            value = float(np.asarray(a)[where])
            leaf = f" leaf {i}," if len(leaves) > 1 else ""
            raise ValueError(
                f"x0 has{leaf} element {where[1:] if len(where) > 1 else where} of particle "
                f"{where[0]} = {value:g}: every starting coordinate must be finite and within "
                f"±bound={bound:g} (a particle beyond it counts as diverged)."
            )


# The last x0 found finite and within its bound: a loop of calls on the same (immutable)
# array skips the reduction and its read-back (a third of a short run's overhead).
_last_checked: list = [None, None]  # [weak references to x0's leaves, bound]


def _checked_before(leaves, bound: float) -> bool:
    refs, last_bound = _last_checked
    if refs is None or len(refs) != len(leaves) or bound < last_bound:
        return False
    return all(ref() is a for ref, a in zip(refs, leaves, strict=True))


def _remember_checked(leaves, bound: float) -> None:
    if all(isinstance(a, jax.Array) for a in leaves):  # immutable (a NumPy array is not)
        _last_checked[:] = [[weakref.ref(a) for a in leaves], bound]
    else:
        _last_checked[:] = [None, None]


def check_mesh(mesh, axis: str):
    """A `jax.sharding.Mesh` with an axis named `axis`."""
    if not isinstance(mesh, jax.sharding.Mesh):
        raise TypeError(
            f"mesh={mesh!r} is not allowed: it must be a jax.sharding.Mesh with an axis "
            f"{axis!r}, e.g. integrators.sharding.particle_mesh() (the default)."
        )
    if axis not in mesh.axis_names:
        raise ValueError(
            f"mesh has axes {mesh.axis_names}: it needs an axis named {axis!r} "
            "(integrators.sharding.particle_mesh(devices) builds one)."
        )
    return mesh


def check_observe(observe) -> tuple:
    """`{name: fn}` as a sorted tuple of pairs (a static jit argument)."""
    if observe is None:
        return ()
    if not isinstance(observe, dict):
        raise TypeError(f"observe={observe!r} must be a dict {{name: fn(params)}}.")
    for name, fn in observe.items():
        if not isinstance(name, str):
            raise TypeError(f"observe key {name!r} must be a string (the observable's name).")
        if not callable(fn):
            raise TypeError(
                f"observe[{name!r}]={fn!r} is not allowed: it must be a function fn(params) "
                "of one particle's parameters."
            )
    return tuple(sorted(observe.items()))


# ----------------------------------------------------------------- hyperparameter schedules

_NONNEGATIVE = ("lr", "temperature", "friction", "weight_decay", "eps_root", "initial_scale")
_POSITIVE = ("dt", "mass", "eps")
_UNIT = ("momentum", "b1", "b2", "decay")
_SCHEDULES: dict = {}
"""(name, schedule, steps, dtype) -> the first bad step and value, or None."""


def check_hyperparams(integrator: Integrator, steps: int, dtype) -> None:
    """Evaluate every schedule over the run's steps 0..steps−1 on the host (vectorised, in
    chunks of `_CHUNK` steps, cached) and refuse the first step where a learning rate,
    temperature, ... is negative or not finite; refuse a constant in [0, 1) that rounds to
    1 in `dtype`."""
    for name, value in (integrator.hyperparams or {}).items():
        if name in _UNIT and not callable(value) and not isinstance(value, jax.core.Tracer):
            if isinstance(value, jax.Array | np.ndarray | int | float | np.number | list):
                check_unit_interval(name, value, dtype)
        if not callable(value) or isinstance(value, type):
            continue
        rule = "finite"
        if name in _NONNEGATIVE:
            rule = "finite and >= 0"
        elif name in _POSITIVE:
            rule = "finite and > 0"
        elif name in _UNIT:
            rule = f"in [0, 1) (below 1 in {np.dtype(dtype).name})"
        bad = _first_bad(name, value, steps, np.dtype(dtype))
        if bad is not None:
            k, v = bad
            raise ValueError(
                f"{name}={value!r}: the schedule gives {v:g} at step {k}; {name} must be "
                f"{rule} at every step of the run (0..{steps - 1})."
            )


_CHUNK = 1 << 20


def _allowed(name: str, values: np.ndarray, dtype) -> np.ndarray:
    ok = np.isfinite(values)
    if name in _NONNEGATIVE:
        ok &= values >= 0
    elif name in _POSITIVE:
        ok &= values > 0
    elif name in _UNIT:
        ok &= (values >= 0) & (values.astype(dtype) < 1)
    return ok


def _first_bad(name: str, schedule, steps: int, dtype) -> tuple[int, float] | None:
    """(first step, value) where the schedule breaks `name`'s rule, or None."""
    key = (name, schedule, steps, dtype)
    try:
        return _SCHEDULES[key]
    except (KeyError, TypeError):
        pass
    out = None
    for start in range(0, steps, _CHUNK):
        count = jnp.arange(start, min(start + _CHUNK, steps), dtype=jnp.int32)
        try:
            values = jax.vmap(schedule)(count)
        except Exception as err:  # noqa: BLE001 - the user's schedule, named
            raise ValueError(
                f"{name}={schedule!r}: the schedule cannot be evaluated on the step count "
                f"(an int32 scalar): {type(err).__name__}: {err}"
            ) from err
        if isinstance(values, jax.core.Tracer):
            return None  # it closes over a traced value (simulate under jit)
        values = np.asarray(values, dtype=np.float64)
        if values.shape != count.shape:
            raise ValueError(
                f"{name}={schedule!r}: the schedule returns shape {values.shape[1:]} per "
                "step; it must return a scalar."
            )
        ok = _allowed(name, values, dtype)
        if not ok.all():
            k = int(np.argmin(ok))
            out = (start + k, float(values[k]))
            break
    try:
        _SCHEDULES[key] = out
        while len(_SCHEDULES) > 64:
            _SCHEDULES.pop(next(iter(_SCHEDULES)))
    except TypeError:  # unhashable schedule: evaluated per call
        pass
    return out


# ------------------------------------------------------------------------- energies

_ENERGIES: set = set()
"""Structural keys (landscape pytree structure, leaf shapes, particle shapes) already
checked: like jit's cache, a landscape that differs only in its numbers is not traced again."""


def check_landscape_energy(traced_landscape, x0, ensemble_axis: bool = True) -> None:
    """The energy takes one particle and returns a real scalar (`jax.eval_shape`: traced
    once per structure, nothing computed)."""
    x_leaves, x_def = jax.tree_util.tree_flatten(x0)
    particle = (x_def, tuple((a.shape[1:], a.dtype) for a in x_leaves))
    last_ref, last_particle = _last_energy
    if last_ref is not None and last_ref() is traced_landscape and last_particle == particle:
        return  # the same landscape object on particles of the same structure
    one = _map(lambda a: jax.ShapeDtypeStruct(a.shape[1:], a.dtype), x0)
    leaves, treedef = jax.tree_util.tree_flatten(traced_landscape)
    x_leaves, x_def = jax.tree_util.tree_flatten(one)
    key = (
        treedef,
        tuple((jnp.shape(a), jnp.result_type(a)) for a in leaves),
        x_def,
        tuple((a.shape, a.dtype) for a in x_leaves),
    )
    if key in _ENERGIES:
        _remember_energy(traced_landscape, particle)
        return
    shape = jax.tree.map(lambda a: a.shape, one)
    try:
        out = jax.eval_shape(lambda land, x: land.energy(x), traced_landscape, one)
    except Exception as err:  # noqa: BLE001 - the user's energy, named
        kind = TypeError if isinstance(err, TypeError) else ValueError
        raise kind(
            f"landscape: its energy cannot be evaluated as energy(x) on one particle x of "
            f"shape {shape}: {type(err).__name__}: {err}"
        ) from err
    check_energy_output("landscape energy", out, f"one particle x of shape {shape}")
    _ENERGIES.add(key)
    _remember_energy(traced_landscape, particle)


# The last landscape object whose energy was checked, and the particle structure: a loop of
# calls on one landscape skips flattening it to build the structural key.
_last_energy: list = [None, None]


def _remember_energy(traced_landscape, particle) -> None:
    try:
        _last_energy[:] = [weakref.ref(traced_landscape), particle]
    except TypeError:  # not weakly referenceable: the structural key is built every call
        _last_energy[:] = [None, None]


# -------------------------------------------------------------------------- training


def check_train_inputs(model, train, params, params_per_seed: bool, seeds: int, dtype, key):
    """`train`'s checks of the model against the data, before anything is compiled: the data
    are arrays with one sample axis; the model's loss takes (params, batch) and returns a
    scalar; its input size is the data's number of features; it has an output per class
    (integer labels). Shapes only (`jax.eval_shape`); the labels are read on the host.
    Returns the random key (default `jax.random.key(0)`)."""
    key = jax.random.key(0) if key is None else check_key("key", key)
    loss_fn = getattr(model, "loss_fn", model)
    if not callable(loss_fn):
        raise TypeError(
            f"model={model!r} is not allowed: it must be an MLP (landscape.mlp) or a loss "
            "function loss_fn(params, batch)."
        )
    leaves = jax.tree_util.tree_leaves(train)
    if not leaves or not all(isinstance(a, jax.Array | np.ndarray) for a in leaves):
        raise TypeError(
            "data must be a landscape.Dataset or a pytree of arrays with a leading sample "
            f"axis; got {type(train).__name__} with leaves {[type(a).__name__ for a in leaves]}."
        )
    sizes = {a.shape[0] if a.ndim else None for a in leaves}
    if len(sizes) != 1 or None in sizes or 0 in sizes:
        raise ValueError(
            f"data: every array needs the same leading sample axis of length >= 1; found "
            f"{sorted(sizes, key=str)}."
        )
    if params is None:
        if not hasattr(model, "init"):
            raise ValueError("params is required when `model` is a bare loss function.")
        struct = jax.eval_shape(lambda k: model.init(k, dtype), jax.random.key(0))
    else:  # one seed's parameters
        cut = 1 if params_per_seed else 0
        shapes = {jnp.shape(a)[0] if jnp.ndim(a) else None for a in jax.tree.leaves(params)}
        if params_per_seed and shapes != {seeds}:
            raise ValueError(
                f"params_per_seed=True needs a leading axis of size seeds={seeds} on every "
                f"leaf of params; found {sorted(shapes, key=str)}."
            )
        struct = _map(
            lambda a: jax.ShapeDtypeStruct(jnp.shape(a)[cut:], jnp.result_type(a)), params
        )
    batch = _map(lambda a: jax.ShapeDtypeStruct((2,) + a.shape[1:], a.dtype), train)
    x = train.get("x") if isinstance(train, dict) else None
    n_in = getattr(model, "sizes", (None,))[0]
    if x is not None and n_in is not None and np.prod(x.shape[1:]) != n_in:
        raise ValueError(
            f"model takes {n_in} inputs (sizes={model.sizes}), but the data have "
            f"{int(np.prod(x.shape[1:]))} features per sample (x of shape {x.shape}): build "
            f"the model with sizes=({int(np.prod(x.shape[1:]))}, ...)."
        )
    y = train.get("y") if isinstance(train, dict) else None
    if x is not None and y is not None and hasattr(model, "apply"):
        _check_outputs(model, struct, batch, y)
    try:
        out = jax.eval_shape(loss_fn, struct, batch)
    except Exception as err:  # noqa: BLE001 - the model on the data, named
        raise ValueError(
            f"model and data do not fit: loss_fn(params, batch) fails on a batch of the "
            f"data (shapes {jax.tree.map(lambda a: a.shape, batch)}): "
            f"{type(err).__name__}: {err}"
        ) from err
    check_energy_output("model's loss_fn(params, batch)", out, "a batch of the data")
    return key


def _check_outputs(model, struct, batch, y) -> None:
    """The model's outputs against the labels (one per class) or the regression targets."""
    try:
        logits = jax.eval_shape(model.apply, struct, batch["x"])
    except Exception as err:  # noqa: BLE001 - the model on the data, named
        raise ValueError(
            f"model and data do not fit: model.apply(params, x) fails on inputs x of shape "
            f"{batch['x'].shape}: {type(err).__name__}: {err}"
        ) from err
    n_out = logits.shape[-1] if logits.shape else 1
    if not jnp.issubdtype(jnp.result_type(y), jnp.integer):
        width = y.shape[-1] if y.ndim > 1 else 1
        if n_out != width:
            raise ValueError(
                f"model has {n_out} outputs, but the data's regression targets have {width} "
                f"per sample (y of shape {y.shape}): build the model with sizes=(..., {width})."
            )
        return
    n_classes = int(np.max(np.asarray(y))) + 1
    if n_out < n_classes:
        raise ValueError(
            f"model has {n_out} outputs, but the data have {n_classes} classes (labels up to "
            f"{n_classes - 1}): the last layer needs one output per class, e.g. "
            f"sizes=(..., {n_classes})."
        )


# ---------------------------------------------------------------------------- memory

MEMORY_FRACTION = 0.5
"""Recorded outputs may take at most this fraction of the memory of the device (of the
host's physical memory on CPU); the environment variable OPTDYN_MEMORY_LIMIT (bytes)
overrides the limit."""


def memory_limit() -> int:
    """The bytes that `simulate`'s recorded outputs may take (see `MEMORY_FRACTION`)."""
    env = os.environ.get("OPTDYN_MEMORY_LIMIT")
    if env:
        try:
            return int(float(env))
        except ValueError:
            raise ValueError(
                f"OPTDYN_MEMORY_LIMIT={env!r} is not allowed: it must be a number of bytes."
            ) from None
    return int(MEMORY_FRACTION * _device_memory())


@functools.cache
def _device_memory() -> int:
    try:
        stats = jax.devices()[0].memory_stats() or {}
    except Exception:  # noqa: BLE001 - a backend without memory statistics
        stats = {}
    if stats.get("bytes_limit"):
        return int(stats["bytes_limit"])
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_memory(x0, n_records: int, batch: int, record_positions: bool, observe) -> None:
    """Refuse, before anything is allocated, records larger than `memory_limit()`: `batch`
    particles (sweep × ensemble) × `n_records` × (loss, grad_norm, kinetic energy, the
    positions, the observables, evaluated with `jax.eval_shape`)."""
    if not n_records:
        return
    one = _map(lambda a: jax.ShapeDtypeStruct(a.shape[1:], a.dtype), x0)
    x_leaves = jax.tree_util.tree_leaves(one)
    itemsize = max(np.dtype(a.dtype).itemsize for a in x_leaves)
    per_particle = 3 * itemsize
    if record_positions:
        per_particle += sum(np.prod(a.shape, dtype=int) * a.dtype.itemsize for a in x_leaves)
    for name, fn in observe:
        per_particle += _observed_bytes(name, fn, one)
    total = int(n_records) * int(batch) * int(per_particle)
    limit = memory_limit()
    if total > limit:
        raise ValueError(
            f"the recorded outputs would take {_size(total)} ({n_records} records x {batch} "
            f"particles x {per_particle} bytes), more than the {_size(limit)} allowed "
            f"({MEMORY_FRACTION:.0%} of the memory, or OPTDYN_MEMORY_LIMIT). Record less: "
            "record_every=k (every k-th step), record_positions=False, record=False (final "
            "state only), or stream= statistics accumulated inside the scan."
        )


_OBSERVED: dict = {}
"""(fn, particle structure) -> bytes of one record of the observable."""


def _observed_bytes(name: str, fn, one) -> int:
    leaves, treedef = jax.tree_util.tree_flatten(one)
    key = (fn, treedef, tuple((a.shape, a.dtype) for a in leaves))
    try:
        return _OBSERVED[key]
    except (KeyError, TypeError):
        pass
    try:
        out = jax.eval_shape(fn, one)
    except Exception as err:  # noqa: BLE001 - the user's observable, named
        kind = TypeError if isinstance(err, TypeError) else ValueError
        raise kind(
            f"observe[{name!r}]={fn!r} cannot be evaluated as fn(params) on one particle: "
            f"{type(err).__name__}: {err}"
        ) from err
    size = sum(
        int(np.prod(a.shape, dtype=int)) * np.dtype(a.dtype).itemsize
        for a in jax.tree_util.tree_leaves(out)
    )
    try:
        _OBSERVED[key] = size
        while len(_OBSERVED) > 256:
            _OBSERVED.pop(next(iter(_OBSERVED)))
    except TypeError:
        pass
    return size


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.3g} {unit}" if unit != "B" else f"{n} B"
        n /= 1000
    return f"{n} B"


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
