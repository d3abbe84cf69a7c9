r"""Curvature of a loss on any pytree: Hessian-vector products, top eigenvalues, trace.

Nothing here forms the Hessian. Everything is built on the Hessian-vector product

.. math::
    H v = \frac{d}{d\epsilon}\nabla L(\theta + \epsilon v)\Big|_{\epsilon=0},

one forward-over-reverse pass (`jax.jvp` of `jax.grad`, about the cost of two gradients).
The *sharpness* λ_max(H) is what sets the stability of gradient descent: on a quadratic,
GD with step η diverges along an eigendirection with η λ > 2 (Cohen et al. 2021: during
training λ_max rises to 2/η and hovers there, the "edge of stability").

For an adaptive method θ ← θ − P⁻¹ m the relevant quantity is the *preconditioned*
sharpness λ_max(P⁻¹H) (Cohen et al. 2022), computed here from the symmetric operator
P^{-1/2} H P^{-1/2}, which has the same eigenvalues.

Every function is pure and jittable (`lax.fori_loop`), works in the parameters' dtype, and
takes `loss`, a function `params -> scalar` (e.g. `lambda p: model.loss_fn(p, batch)` or a
landscape's `energy`).

References:
  J. Cohen, S. Kaur, Y. Li, J. Z. Kolter, A. Talwalkar, "Gradient descent on neural networks
  typically occurs at the edge of stability", ICLR 2021.
  J. Cohen, B. Ghorbani, S. Krishnan, N. Agarwal, S. Medapati, M. Badura, D. Suo,
  D. Cardoze, Z. Nado, G. E. Dahl, J. Gilmer, "Adaptive gradient methods at the edge of
  stability", arXiv:2207.14484 (2022).
  C. Lanczos, "An iteration method for the solution of the eigenvalue problem of linear
  differential and integral operators", J. Res. Nat. Bur. Standards 45 (1950).
  M. F. Hutchinson, "A stochastic estimator of the trace of the influence matrix for
  Laplacian smoothing splines", Commun. Stat. Simul. Comput. 18 (1989).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from .validate import check_choice, check_energy, check_int, check_key

PyTree = Any
LossFn = Callable[[PyTree], jax.Array]


def hvp(loss: LossFn, params: PyTree, v: PyTree) -> PyTree:
    """The Hessian-vector product H(θ)v of `loss` at `params`, shaped like `params`."""
    return jax.jvp(jax.grad(loss), (params,), (v,))[1]


def _flat_operator(loss: LossFn, params: PyTree, scale: PyTree | None = None):
    """v ↦ S H S v on flat vectors (S = diag(scale), default I), and the flat dimension."""
    check_energy("loss", loss, params)
    flat, unravel = ravel_pytree(params)
    grad_flat = lambda x: ravel_pytree(jax.grad(loss)(unravel(x)))[0]  # noqa: E731
    s = None if scale is None else ravel_pytree(scale)[0].astype(flat.dtype)

    def matvec(v):
        u = v if s is None else s * v
        hu = jax.jvp(grad_flat, (flat,), (u,))[1]
        return hu if s is None else s * hu

    return matvec, flat


def _unit(key, flat):
    check_key("key", key)
    v = jax.random.normal(key, flat.shape, flat.dtype)
    return v / jnp.linalg.norm(v)


def power_iteration(
    loss: LossFn,
    params: PyTree,
    key: jax.Array,
    iters: int = 20,
    scale: PyTree | None = None,
) -> tuple[jax.Array, PyTree]:
    r"""The eigenvalue of H largest in magnitude, and its eigenvector, by power iteration.

    .. math::
        v_{k+1} = H v_k / \|H v_k\|, \qquad \lambda \approx v_k^\top H v_k

    The error shrinks like (|λ₂|/|λ₁|)^k; prefer `lanczos` when the top eigenvalues are close,
    and note that a negative eigenvalue of larger magnitude than λ_max wins here.

    Args:
      loss: `params -> scalar`.
      params: the point θ (any pytree).
      key: random key of the start vector.
      iters: number of Hessian-vector products (>= 1).
      scale: optional pytree s shaped like params: use the operator diag(s) H diag(s).

    Returns:
      (λ, v): the Rayleigh quotient and the unit eigenvector as a pytree like params.
    """
    iters = check_int("iters", iters)
    matvec, flat = _flat_operator(loss, params, scale)
    v = _unit(key, flat)

    def body(_, v):
        w = matvec(v)
        return w / jnp.maximum(jnp.linalg.norm(w), jnp.finfo(w.dtype).tiny)

    v = jax.lax.fori_loop(0, iters, body, v)
    return jnp.vdot(v, matvec(v)), ravel_pytree(params)[1](v)


def lanczos_tridiagonal(matvec, v0: jax.Array, k: int):
    """k Lanczos steps with full re-orthogonalisation: (alphas, betas, basis V of shape (k, D))."""
    dim = v0.shape[0]
    V = jnp.zeros((k + 1, dim), v0.dtype).at[0].set(v0 / jnp.linalg.norm(v0))
    zero = jnp.zeros((), v0.dtype)

    def body(j, carry):
        V, alphas, betas = carry
        w = matvec(V[j])
        alpha = jnp.vdot(w, V[j])
        mask = (jnp.arange(k + 1) <= j).astype(w.dtype)[:, None]
        for _ in range(2):  # classical Gram–Schmidt twice: orthogonal to working precision
            w = w - (mask * V).T @ ((mask * V) @ w)
        beta = jnp.linalg.norm(w)
        ok = beta > 1e3 * jnp.finfo(w.dtype).eps * jnp.maximum(jnp.abs(alpha), 1)
        V = V.at[j + 1].set(jnp.where(ok, w / jnp.where(ok, beta, 1), 0))
        return V, alphas.at[j].set(alpha), betas.at[j].set(jnp.where(ok, beta, zero))

    init = (V, jnp.zeros(k, v0.dtype), jnp.zeros(k, v0.dtype))
    V, alphas, betas = jax.lax.fori_loop(0, k, body, init)
    return alphas, betas[:-1], V[:k]


def lanczos(
    loss: LossFn,
    params: PyTree,
    key: jax.Array,
    k: int = 20,
    n_eigs: int = 1,
    scale: PyTree | None = None,
) -> jax.Array:
    r"""The n_eigs algebraically largest eigenvalues of H, by k steps of Lanczos.

    Lanczos builds an orthonormal Krylov basis V of span{v, Hv, …, H^{k−1}v} in which H is
    the tridiagonal T = VᵀHV; the extreme eigenvalues (Ritz values) of T converge to those of
    H after far fewer products than power iteration needs (the rate depends on the gap
    relative to the spectral spread, and k = 20 gives the top few of a network's Hessian to a
    few digits). Full re-orthogonalisation keeps V orthonormal in float32.

    Args:
      loss: `params -> scalar`.
      params: the point θ (any pytree).
      key: random key of the start vector.
      k: Krylov dimension (Hessian-vector products), capped at the number of parameters.
      n_eigs: how many of the top Ritz values to return (<= k).
      scale: optional pytree s: use diag(s) H diag(s) (see `preconditioned_sharpness`).

    Returns:
      The top `n_eigs` Ritz values, in descending order, shape (n_eigs,).
    """
    k, n_eigs = check_int("k", k), check_int("n_eigs", n_eigs)
    matvec, flat = _flat_operator(loss, params, scale)
    k = min(k, flat.shape[0])
    if n_eigs > k:
        raise ValueError(f"n_eigs={n_eigs} is not allowed: it must be <= k={k}.")
    alphas, betas, _ = lanczos_tridiagonal(matvec, _unit(key, flat), k)
    T = jnp.diag(alphas) + jnp.diag(betas, 1) + jnp.diag(betas, -1)
    return jnp.linalg.eigvalsh(T)[::-1][:n_eigs]


def top_eigenvalues(
    loss: LossFn,
    params: PyTree,
    key: jax.Array,
    n_eigs: int = 1,
    method: str = "lanczos",
    iters: int = 20,
) -> jax.Array:
    """The top Hessian eigenvalues by "lanczos" (any n_eigs) or "power" (n_eigs = 1 only)."""
    check_choice("method", method, ("lanczos", "power"))
    if method == "power":
        if n_eigs != 1:
            raise ValueError(f"n_eigs={n_eigs} is not allowed with method='power': use lanczos.")
        return power_iteration(loss, params, key, iters)[0][None]
    return lanczos(loss, params, key, iters, n_eigs)


def sharpness(loss: LossFn, params: PyTree, key: jax.Array | None = None, k: int = 20):
    """λ_max(H), the sharpness, by k Lanczos steps (a scalar in the params' dtype)."""
    key = jax.random.key(0) if key is None else key
    return lanczos(loss, params, key, k, 1)[0]


def hutchinson_trace(
    loss: LossFn, params: PyTree, key: jax.Array, n_samples: int = 64
) -> tuple[jax.Array, jax.Array]:
    r"""Hutchinson's estimate of tr H and its standard error.

    .. math::
        \operatorname{tr} H = \mathbb E_z[z^\top H z], \qquad z_i = \pm 1 \text{ (Rademacher)},

    unbiased, with variance 2 Σ_{i≠j} H_ij² per sample (zero for a diagonal H).

    Args:
      loss: `params -> scalar`.
      params: the point θ.
      key: random key of the probe vectors.
      n_samples: number of probes (>= 2), one Hessian-vector product each.

    Returns:
      (estimate, standard error of the mean over probes).
    """
    n_samples = check_int("n_samples", n_samples, minimum=2)
    check_key("key", key)
    matvec, flat = _flat_operator(loss, params)
    z = jax.random.rademacher(key, (n_samples,) + flat.shape, flat.dtype)
    quad = jax.lax.map(lambda zi: jnp.vdot(zi, matvec(zi)), z)
    return jnp.mean(quad), jnp.std(quad, ddof=1) / jnp.sqrt(jnp.asarray(n_samples, quad.dtype))


def preconditioned_sharpness(
    loss: LossFn,
    params: PyTree,
    preconditioner: PyTree,
    key: jax.Array | None = None,
    k: int = 20,
) -> jax.Array:
    r"""λ_max(P⁻¹H) for a diagonal preconditioner P (a pytree of its diagonal, like params).

    P⁻¹H is similar to the symmetric P^{-1/2} H P^{-1/2}, whose top eigenvalue Lanczos finds.
    A method θ ← θ − P⁻¹∇L (with EMA momentum β₁: θ ← θ − P⁻¹m, m ← β₁m + (1−β₁)g) is stable
    on a quadratic iff λ_max(P⁻¹H) < 2 (< (2+2β₁)/(1−β₁)).

    Args:
      loss: `params -> scalar`.
      params: the point θ.
      preconditioner: the diagonal of P, positive, shaped like params.
      key: random key of the Lanczos start vector.
      k: Lanczos steps.
    """
    key = jax.random.key(0) if key is None else key
    scale = jax.tree.map(lambda p: 1 / jnp.sqrt(p), preconditioner)
    return lanczos(loss, params, key, k, 1, scale=scale)[0]


def adam_preconditioner(state, lr, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8):
    r"""Adam's preconditioner P_t as defined by Cohen et al. (2022), eq. (2):

    .. math::
        P_t = (1 - \beta_1^t)\,\operatorname{diag}\!\big(\sqrt{\hat v_t} + \epsilon\big)/\eta,
        \qquad \hat v_t = v_t / (1 - \beta_2^t),

    so that Adam's update is exactly θ_{t+1} = θ_t − P_t⁻¹ m_t with the *un-corrected* first
    moment m_t = β₁m_{t−1} + (1−β₁)g_t (the bias correction of m sits in P_t). With this P,
    Adam on a quadratic is stable iff λ_max(P⁻¹H) < (2 + 2β₁)/(1 − β₁) (= 38 for β₁ = 0.9),
    i.e. λ_max(P̃⁻¹H) < (2 + 2β₁)/((1 − β₁)η) with P̃ = ηP.

    Args:
      state: an `integrators.AdamState` (its `nu` and `count`; eps_root is taken as 0).
      lr: η, the learning rate the state was produced with.
      b1, b2, eps: Adam's β₁, β₂, ε.

    Returns:
      The diagonal of P_t, a pytree like `state.params`.
    """
    t = jnp.maximum(state.count, 1)

    def diag(v):
        tt = t.astype(v.dtype)
        v_hat = v / (1 - jnp.asarray(b2, v.dtype) ** tt)
        return (1 - jnp.asarray(b1, v.dtype) ** tt) * (jnp.sqrt(v_hat) + eps) / lr

    return jax.tree.map(diag, state.nu)


def adam_preconditioned_sharpness(
    loss: LossFn,
    state,
    lr,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    key: jax.Array | None = None,
    k: int = 20,
) -> jax.Array:
    """λ_max(P_t⁻¹H) at Adam's current point, P_t from `adam_preconditioner`.

    Compare with the stability threshold (2 + 2β₁)/(1 − β₁) (Cohen et al. 2022).
    """
    precond = adam_preconditioner(state, lr, b1, b2, eps)
    return preconditioned_sharpness(loss, state.params, precond, key, k)
