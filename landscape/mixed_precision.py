r"""Mixed-precision losses with static loss scaling: compute in float16/bfloat16, step in float32.

`mixed_precision(loss_fn, compute_dtype, loss_scale)` returns a loss on float32 ("master")
parameters whose forward and backward passes run in `compute_dtype`:

.. math::
    \tilde\theta = \operatorname{cast}(\theta), \qquad
    \tilde L = L(\tilde\theta; \operatorname{cast}(x)), \qquad
    \nabla_\theta = \operatorname{float32}\!\Big(\tfrac{1}{S}\,
    \underbrace{\nabla_{\tilde\theta}(S\,\tilde L)}_{\text{computed in low precision}}\Big).

The value returned is the unscaled L̃ (so recorded losses are honest), but the cotangent
that enters the backward pass is S instead of 1: every intermediate gradient is S times
larger, so values below float16's smallest subnormal 2⁻²⁴ ≈ 6·10⁻⁸ (and the imprecise
subnormal range below 2⁻¹⁴ ≈ 6·10⁻⁵) are lifted into the normal range, and the float32
gradient is divided by S after the cast back. Too large an S overflows (float16's largest
value is 65504) and the gradient becomes inf; dynamic loss scaling (halve S on overflow,
double it after a run of finite steps) needs the scale in the optimizer state and is not
done here. bfloat16 has float32's exponent range, so its gradients do not underflow; it
loses precision (8 significant bits) instead.

References:
  P. Micikevicius et al., "Mixed precision training", ICLR 2018.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from .validate import check_float_dtype, check_positive

PyTree = Any


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _cast_unscale(x: jax.Array, dtype, scale: jax.Array) -> jax.Array:
    """Forward: x cast to `dtype`. Backward: the cotangent cast back to x's dtype, divided by S."""
    return x.astype(dtype)


def _cast_unscale_fwd(x, dtype, scale):
    return x.astype(dtype), (jnp.zeros((), x.dtype), scale)


def _cast_unscale_bwd(dtype, res, ct):
    like, scale = res
    return ct.astype(like.dtype) / scale.astype(like.dtype), jnp.zeros_like(scale)


_cast_unscale.defvjp(_cast_unscale_fwd, _cast_unscale_bwd)


@jax.custom_vjp
def _scale_cotangent(y: jax.Array, scale: jax.Array) -> jax.Array:
    """Forward: identity. Backward: the incoming cotangent times S (in y's dtype)."""
    return y


def _scale_cotangent_fwd(y, scale):
    return y, scale


def _scale_cotangent_bwd(scale, ct):
    # multiply in float32, round the product to the low precision once (as a scaled loss
    # would be): S·ct above 65504 overflows to inf in float16
    return (ct.astype(jnp.float32) * scale).astype(ct.dtype), jnp.zeros_like(scale)


_scale_cotangent.defvjp(_scale_cotangent_fwd, _scale_cotangent_bwd)


def cast_floating(tree: PyTree, dtype) -> PyTree:
    """Floating leaves of `tree` cast to `dtype`; integer leaves (labels) unchanged."""

    def cast(a):
        a = jnp.asarray(a)
        return a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a

    return jax.tree.map(cast, tree)


def mixed_precision(
    loss_fn: Callable[[PyTree, PyTree], jax.Array],
    compute_dtype,
    loss_scale: float = 1.0,
) -> Callable[[PyTree, PyTree], jax.Array]:
    """`loss_fn` run in `compute_dtype` on float32 master parameters, with static loss scaling.

    Args:
      loss_fn: `(params, batch) -> scalar`.
      compute_dtype: the dtype of the forward and backward pass (jnp.float16, jnp.bfloat16,
        or jnp.float32 for a reference run).
      loss_scale: S > 0 (a float, or a traced scalar: one compilation serves every S); the
        backward pass carries S·∇L, divided by S after the cast back
        to the parameters' dtype. Powers of two are exact; in float16 the loss's own scaled
        cotangent S must stay below 65504, so S <= 2¹⁵ for a scalar loss (a per-sample loss
        averaged outside, as in `from_loss`, carries S/B).

    Returns:
      `loss(params, batch)`: the unscaled loss L̃ in the parameters' dtype, whose gradient is
      the (unscaled) low-precision gradient in the parameters' dtype.
    """
    if not callable(loss_fn):
        raise TypeError(f"loss_fn={loss_fn!r} is not allowed: it must be loss_fn(params, batch).")
    check_positive("loss_scale", loss_scale)
    compute_dtype = check_float_dtype("compute_dtype", compute_dtype)

    def loss(params, batch):
        out_dtype = jnp.result_type(*jax.tree.leaves(params))
        scale = jnp.asarray(loss_scale, jnp.float32)
        low = jax.tree.map(lambda p: _cast_unscale(p, compute_dtype, scale), params)
        value = loss_fn(low, cast_floating(batch, compute_dtype))
        return _scale_cotangent(value, scale).astype(out_dtype)

    return loss
