"""The `Integrator` pair of pure functions and the machinery shared by every integrator.

An integrator is built by a factory that closes over its hyperparameters (as an optax
`GradientTransformation` or a jax-md `(init_fn, apply_fn)` pair):

    opt = momentum(lr=1e-2, momentum=0.9)
    state = opt.init(params)                  # state.params is the position θ
    state = opt.step(state, grads, key)       # grads = ∇L(state.params)

A splitting that needs the force somewhere else than at the old position (BAOAB, velocity
Verlet) declares `needs_grad_fn=True` and is called as `step(state, grads, key, grad_fn)`,
where `grad_fn(params)` evaluates the same gradient estimator (exact, Gaussian-noised or the
same mini-batch) at any other position. `simulate` hands it over; by hand, pass e.g.
`grad_fn=lambda p: jax.grad(loss)(p, batch)`.

`step` only does elementwise arithmetic on the pytree, so the same integrator steps one
particle or a whole ensemble stacked along a leading axis with one step count, one bias
correction and one random call per leaf.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..landscape.types import PRNGKey, PyTree
from ..landscape.validate import check_choice, check_sweep_shape


class Integrator(NamedTuple):
    """A time-stepping scheme for dθ = −∇L dt (+ noise), as a pair of pure functions.

    Attributes:
      init: `init(params) -> state`; every state has fields `params` and `count`.
      step: `step(state, grads, key) -> state`, one step with `grads = ∇L(state.params)`;
        `key` feeds the thermal noise (unused at zero temperature). With `needs_grad_fn`,
        `step(state, grads, key, grad_fn)`, `grad_fn(params) -> grads` the gradient
        estimator, for splittings that evaluate the force more than once per step.
      velocity: `velocity(state) -> pytree`, the physical velocity v of an underdamped
        integrator (None for overdamped and adaptive ones); kinetic energy is ½·mass·|v|².
      mass: the particle mass m used for the kinetic energy.
      name: the factory's name, e.g. "momentum".
      hyperparams: the arguments the factory was called with (for sweeps and repr).
      factory: the factory itself; `factory(**hyperparams)` rebuilds this integrator.
      needs_grad_fn: whether `step` takes the gradient estimator `grad_fn` as its fourth
        argument (it evaluates the force at a new position within the step).
      elementwise: a promise that `step` treats every leaf coordinate by coordinate (no
        reshapes, norms or matrix products across coordinates) and draws its noise with
        `normal_like` (independent across leaves). Then the engine may hold an (n, dim)
        ensemble as dim separate arrays, which fuses several steps into one loop. The
        default, False, is always correct: the step then sees the arrays as given.
    """

    init: Callable[[PyTree], Any]
    step: Callable[[Any, PyTree, PRNGKey], Any]
    velocity: Callable[[Any], PyTree] | None = None
    mass: float = 1.0
    name: str = ""
    hyperparams: dict | None = None
    factory: Callable[..., Integrator] | None = None
    needs_grad_fn: bool = False
    elementwise: bool = False

    @property
    def sweep_size(self) -> int | None:
        """The number of hyperparameter settings swept in one call, or None."""
        return _sweep_size(self.hyperparams or {})

    def with_hyperparams(self, **changes) -> Integrator:
        """The same integrator with some hyperparameters replaced (validated again)."""
        if self.factory is None:
            raise ValueError(f"integrator {self.name!r} has no factory to rebuild it from.")
        return self.factory(**{**(self.hyperparams or {}), **changes})


def _is_sweep_value(value) -> bool:
    if isinstance(value, list | tuple) and value and all(_is_number(v) for v in value):
        return True
    return isinstance(value, np.ndarray | jax.Array) and np.ndim(value) == 1


def _is_number(value) -> bool:
    return isinstance(value, int | float | np.number) and not isinstance(value, bool)


def _sweep_size(hyperparams: dict) -> int | None:
    sizes = {name: len(v) for name, v in hyperparams.items() if _is_sweep_value(v)}
    if not sizes:
        return None
    if len(set(sizes.values())) > 1:
        raise ValueError(
            "swept hyperparameters must have equal lengths (they are zipped, not crossed); "
            f"got lengths {sizes}. For a grid, build it with numpy.meshgrid and ravel."
        )
    return next(iter(sizes.values()))


# The names other libraries use for our hyperparameters (optax, PyTorch, Keras).
_ALIASES = {
    "learning_rate": "lr",
    "step_size": "lr",
    "beta": "momentum",
    "beta1": "b1",
    "beta_1": "b1",
    "beta2": "b2",
    "beta_2": "b2",
    "epsilon": "eps",
    "T": "temperature",
    "temp": "temperature",
    "gamma": "friction",
    "rho": "decay",
    "alpha": "decay",
    "wd": "weight_decay",
}


def integrator_factory(fn: Callable[..., Integrator]) -> Callable[..., Integrator]:
    """Decorate an integrator factory: record its hyperparameters and support sweeps.

    A hyperparameter given as a list or 1-D array of numbers is *swept*: the returned
    integrator acts on a stack of k parameter sets (a leading axis of size k on every leaf of
    params, grads and state), the i-th set stepped with the i-th value, via `jax.vmap`.
    Several swept hyperparameters must have equal length and are zipped.
    """
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def factory(*args, **kwargs) -> Integrator:
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as err:
            names = list(signature.parameters)
            unknown = [k for k in kwargs if k not in names]
            if unknown:
                alias = _ALIASES.get(unknown[0])
                if alias in names:
                    raise ValueError(
                        f"{fn.__name__}() argument {unknown[0]!r} is not known. Did you mean "
                        f"{alias!r}? Allowed: {', '.join(map(repr, names))}."
                    ) from None
                check_choice(f"{fn.__name__}() argument", unknown[0], names)
            raise ValueError(f"{fn.__name__}(): {err}") from None
        bound.apply_defaults()
        hyperparams = dict(bound.arguments)
        for name, value in hyperparams.items():
            check_sweep_shape(name, value)
        size = _sweep_size(hyperparams)
        if size is None:
            integrator = fn(**hyperparams)
            return integrator._replace(
                name=integrator.name or fn.__name__, hyperparams=hyperparams, factory=factory
            )
        swept = {k: v for k, v in hyperparams.items() if _is_sweep_value(v)}
        fixed = {k: v for k, v in hyperparams.items() if k not in swept}
        if not any(isinstance(v, jax.core.Tracer) for v in swept.values()):
            swept = {k: np.asarray(v, dtype=float) for k, v in swept.items()}
            for i in range(size):  # validate every swept value once, on concrete numbers
                fn(**fixed, **{k: v[i].item() for k, v in swept.items()})
        template = fn(**fixed, **{k: v[0] for k, v in swept.items()})
        return _swept(fn, fixed, swept, template)._replace(
            name=template.name or fn.__name__, hyperparams=hyperparams, factory=factory
        )

    return factory


def _swept(fn, fixed: dict, swept: dict, template: Integrator) -> Integrator:
    def build(values):
        return fn(**fixed, **values)

    def init(params):
        return jax.vmap(lambda v, p: build(v).init(p))(swept, params)

    def step(state, grads, key, grad_fn=None):
        keys = jax.random.split(key, len(next(iter(swept.values()))))
        # grad_fn maps one member's ensemble; the vmap batches it over the sweep
        extra = (grad_fn,) if template.needs_grad_fn else ()
        return jax.vmap(lambda v, s, g, k: build(v).step(s, g, k, *extra))(
            swept, state, grads, keys
        )

    velocity = None
    if template.velocity is not None:

        def velocity(state):
            return jax.vmap(lambda v, s: build(v).velocity(s))(swept, state)

    return Integrator(
        init,
        step,
        velocity,
        template.mass,
        needs_grad_fn=template.needs_grad_fn,
        elementwise=template.elementwise,
    )


# ----------------------------------------------------------------------------- helpers


def value_at(hyper, count: jax.Array, like: jax.Array) -> jax.Array:
    """A hyperparameter (constant or schedule `count -> value`) at `count`, in `like`'s dtype."""
    value = hyper(count) if callable(hyper) else hyper
    return jnp.asarray(value, dtype=jnp.result_type(like))


def is_zero(value) -> bool:
    """True only for a concrete constant zero, so the work it multiplies can be skipped."""
    return _is_number(value) and value == 0


def zeros_like(tree: PyTree) -> PyTree:
    return jax.tree_util.tree_map(jnp.zeros_like, tree)


def step_count() -> jax.Array:
    """The initial step counter: an int32 scalar zero."""
    return jnp.zeros([], jnp.int32)


def increment(count: jax.Array) -> jax.Array:
    """count + 1, saturating at the int32 maximum (as optax's `safe_increment`)."""
    return jnp.where(count < jnp.iinfo(jnp.int32).max, count + 1, count)
