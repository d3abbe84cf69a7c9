r"""Gradient-noise models: the heat bath of stochastic gradient descent.

A noise model turns the exact gradient of an ensemble into the noisy gradient an optimizer
sees. It is a frozen dataclass registered as a pytree: its numbers (a covariance) are the
leaves and what sets shapes or control flow (a batch size, a kind) is static, so a jitted
simulation compiles once per kind of model, not once per value. It has two pure methods:

    init(landscape, key, n_particles) -> state
    gradient(landscape, x, state, key) -> (grads, new_state)

where x is an ensemble of shape (n_particles, dim) and grads has the shape and dtype of x.
Each call draws the noise of the whole ensemble in one random call.

SGD with additive noise ξ of covariance C/B,

.. math::
    \theta_{t+1} = \theta_t - \eta\,(\nabla U(\theta_t) + \xi_t), \qquad
    \operatorname{Cov}\xi_t = C / B,

is the Euler–Maruyama discretisation, with time step η, of overdamped Langevin dynamics
dθ = −∇U dt + √(2T) dW at the temperature T = η C / (2B) per degree of freedom:
η ξ has covariance η² C/B = 2 T η. For isotropic C = σ² I this is exact, T = η σ²/(2B);
for anisotropic C we report the mean over coordinates, T = η tr(C)/(2 B dim).

References:
  S. Mandt, M. D. Hoffman, D. M. Blei, "Stochastic gradient descent as approximate Bayesian
  inference", JMLR 18 (2017) 1-35. Q. Li, C. Tai, W. E, "Stochastic modified equations and
  adaptive stochastic gradient algorithms", ICML (2017).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from ..landscape._base import Landscape
from ..landscape._dtype import like
from ..landscape.types import PRNGKey, PyTree, ScalarOrSchedule
from ..landscape.validate import check_int, check_nonnegative, check_real
from ._engine import prng
from ._engine.columns import ensemble_gradient


class NoiseModel(Protocol):
    """What the simulator calls: any object with these two methods is a noise model, a
    gradient estimator (blackjax's `grad_estimator`): `gradient` returns the gradient the
    step sees; a step that needs the force elsewhere gets the same estimator as `grad_fn`.

    Built-in models also give the temperature they set, with one signature for all:
    `temperature(lr, landscape=None, x=None)` (a mini-batch needs the landscape and a point,
    where the per-sample gradient covariance is taken; the others ignore them).
    """

    def init(self, landscape: Landscape, key: PRNGKey, n_particles: int) -> PyTree: ...

    def gradient(
        self, landscape: Landscape, x: PyTree, state: PyTree, key: PRNGKey
    ) -> tuple[PyTree, PyTree]: ...


def exact_gradient(landscape: Landscape, x: PyTree) -> PyTree:
    """∇U for every particle of the ensemble x (leading axis: particles).

    An (n, dim) array on an analytic landscape is differentiated coordinate by coordinate
    (`integrators._columns.ensemble_gradient`: one elementwise expression that XLA fuses into
    the step); anything else by `vmap(grad(U))`.
    """
    if landscape.dim is not None and isinstance(x, jax.Array) and x.shape[1:] == (landscape.dim,):
        grads = ensemble_gradient(landscape.energy, x)
        if grads is not None:
            return grads
    return jax.vmap(jax.grad(landscape.energy))(x)


def _flatten_ensemble(x: PyTree):
    """An ensemble pytree as one (n_particles, D) matrix, and the map back to the pytree.

    For an array x of shape (n_particles, dim) the matrix is x itself, so the noise of the
    whole ensemble is one `jax.random.normal(key, x.shape, x.dtype)` call.
    """
    leaves, treedef = jax.tree.flatten(x)
    n = leaves[0].shape[0]
    if len(leaves) == 1 and leaves[0].ndim == 2:
        return leaves[0], lambda m: jax.tree.unflatten(treedef, [m])
    sizes = [leaf.size // n for leaf in leaves]
    flat = jnp.concatenate([leaf.reshape(n, -1) for leaf in leaves], axis=1)

    def unflatten(m):
        parts = jnp.split(m, np.cumsum(sizes)[:-1], axis=1)
        pairs = zip(parts, leaves, strict=True)
        out = [p.reshape(leaf.shape).astype(leaf.dtype) for p, leaf in pairs]
        return jax.tree.unflatten(treedef, out)

    return flat, unflatten


def _schedule_or_value(fn, lr):
    """Apply `fn` to a learning rate, or compose it with a schedule `step -> lr`."""
    return (lambda step: fn(lr(step))) if callable(lr) else fn(lr)


@functools.partial(jax.tree_util.register_dataclass, data_fields=[], meta_fields=[])
@dataclasses.dataclass(frozen=True, eq=False)
class Exact:
    """The exact gradient: zero temperature, deterministic gradient descent."""

    def init(self, landscape: Landscape, key: PRNGKey, n_particles: int) -> tuple:
        """No state: `()`."""
        return ()

    def gradient(self, landscape: Landscape, x: PyTree, state: tuple, key: PRNGKey):
        """∇U(x) for every particle; `key` is unused."""
        return exact_gradient(landscape, x), state

    def temperature(self, lr: ScalarOrSchedule, landscape: Landscape | None = None, x=None):
        """T = 0 for any learning rate."""
        return _schedule_or_value(lambda _: 0.0, lr)


def exact() -> Exact:
    """The noise model without noise: grads = ∇U(x) for every particle."""
    return Exact()


@functools.partial(
    jax.tree_util.register_dataclass,
    data_fields=["covariance", "factor", "variance"],
    meta_fields=["batch_size", "kind"],
)
@dataclasses.dataclass(frozen=True, eq=False)
class Gaussian:
    """Additive Gaussian gradient noise of covariance C/B (built by `gaussian`).

    A pytree: `covariance`, `factor` and `variance` are leaves (a new σ² does not recompile a
    simulation), `batch_size` and `kind` static.

    Attributes:
      covariance: C as given: a scalar σ², a vector (diagonal) or a (dim, dim) matrix.
      batch_size: B, the noise covariance is C/B.
      kind: "isotropic", "diagonal" or "full".
      factor: S with S Sᵀ = C: √σ², √diag, or the Cholesky factor of C.
      variance: tr(C)/dim, the mean per-coordinate variance of one sample's gradient.
    """

    covariance: Any
    batch_size: int
    kind: str
    factor: Any
    variance: Any

    def init(self, landscape: Landscape, key: PRNGKey, n_particles: int) -> tuple:
        """No state: `()`."""
        return ()

    def gradient(self, landscape: Landscape, x: PyTree, state: tuple, key: PRNGKey):
        """∇U(x) + ξ for every particle, ξ ~ N(0, C/B) from one normal draw for the ensemble.

        A pytree ensemble is flattened to (n_particles, D) for the draw, so a full C is
        (D, D) over all parameters in `jax.tree.leaves` order.
        """
        flat, unflatten = _flatten_ensemble(x)
        if self.kind != "isotropic" and np.shape(self.factor)[0] != flat.shape[1]:
            raise ValueError(
                f"covariance has shape {np.shape(self.covariance)}: it does not match the "
                f"dimension {flat.shape[1]} of x."
            )
        z = prng.normal(key, flat.shape, flat.dtype)
        scale = like(self.factor, flat) / math.sqrt(self.batch_size)
        xi = z @ scale.T if self.kind == "full" else z * scale
        grads = jax.tree.map(jnp.add, exact_gradient(landscape, x), unflatten(xi))
        return grads, state

    def temperature(self, lr: ScalarOrSchedule, landscape: Landscape | None = None, x=None):
        """T = η tr(C) / (2 B dim) (η σ²/(2B) for isotropic C); a schedule if `lr` is one.
        `landscape` and `x` are accepted for the common signature and not needed."""
        return _schedule_or_value(lambda eta: eta * self.variance / (2 * self.batch_size), lr)


def _factor(cov: np.ndarray) -> np.ndarray:
    """Cholesky factor of a symmetric PSD matrix; a symmetric square root if it is singular."""
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        w, v = np.linalg.eigh(cov)
        return v * np.sqrt(np.clip(w, 0.0, None))


def gaussian(covariance, batch_size: int = 1) -> Gaussian:
    r"""Additive Gaussian gradient noise: the heat bath of SGD at temperature η tr(C)/(2B·dim).

    .. math::
        g = \nabla U(x) + \xi, \qquad \xi \sim \mathcal N(0, C/B)

    C is the covariance of a single sample's gradient and B the batch size. SGD with this
    gradient, θ ← θ − η g, is Euler–Maruyama for dθ = −∇U dt + √(2T) dW with
    T = η tr(C)/(2 B dim) per degree of freedom (exactly so for isotropic C = σ² I, where
    T = η σ²/(2B)); see `temperature`.

    Args:
      covariance: C: a scalar σ² >= 0 (isotropic), a vector of variances (diagonal) or a
        symmetric positive semi-definite (dim, dim) matrix (full, sampled with its
        Cholesky factor).
      batch_size: B >= 1.

    Returns:
      A `Gaussian` noise model.
    """
    batch_size = check_int("batch_size", batch_size)
    if isinstance(covariance, jax.core.Tracer):  # a sweep over σ²: checked on concrete values
        if jnp.ndim(covariance) != 0:
            raise ValueError("covariance: only a scalar σ² may be traced (swept under vmap).")
        return Gaussian(covariance, batch_size, "isotropic", jnp.sqrt(covariance), covariance)
    check_real("covariance", covariance)
    cov = np.asarray(covariance, dtype=np.float64)
    if cov.ndim == 0:
        check_nonnegative("covariance", covariance)
        return Gaussian(cov, batch_size, "isotropic", np.sqrt(cov), float(cov))
    if cov.ndim == 1 and cov.size:
        check_nonnegative("covariance", covariance)
        return Gaussian(cov, batch_size, "diagonal", np.sqrt(cov), float(cov.mean()))
    if cov.ndim != 2 or cov.shape[0] != cov.shape[1] or not cov.size:
        raise ValueError(
            f"covariance has shape {cov.shape}: it must be a scalar, a vector or a square matrix."
        )
    tol = 1e-10 * max(1.0, np.abs(cov).max())
    if not np.allclose(cov, cov.T, rtol=0.0, atol=tol):
        raise ValueError(f"covariance={covariance!r} is not symmetric.")
    smallest = np.linalg.eigvalsh(cov).min()
    if smallest < -tol:
        raise ValueError(
            f"covariance={covariance!r} is not positive semi-definite "
            f"(smallest eigenvalue {smallest:.3g})."
        )
    cov = 0.5 * (cov + cov.T)
    return Gaussian(cov, batch_size, "full", _factor(cov), float(np.trace(cov) / len(cov)))
