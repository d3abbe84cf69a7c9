r"""Per-sample losses ℓ(f, y), averaged over the batch: the potential a network's weights feel.

Every loss maps outputs f of shape (N, n_out) (logits or predictions) and targets y to the
scalar (1/N)Σᵢ ℓ(fᵢ, yᵢ); its gradient ∂ℓ/∂f is the force on the output layer, and its shape
decides how hard an outlier pulls:

- `mse`: ½‖f − y‖², pull f − y (a spring: grows with the residual);
- `mae`: Σ_j |f_j − y_j|, pull sign(f − y) (bounded: robust to outliers);
- `smooth_l1` (Huber, δ): ½r² for |r| ≤ δ, else δ(|r| − δ/2), pull clip(r, −δ, δ);
- `cross_entropy`: −log softmax(f)_y, pull softmax(f) − onehot(y);
- `binary_cross_entropy`: log(1 + e^z) − y·z for logit z, pull σ(z) − y;
- `hinge`: Σ_{j≠y} max(0, 1 + f_j − f_y) (n_out ≥ 2) or max(0, 1 − s·f), s = 2y − 1
  (n_out = 1), pull ±1 on the outputs that violate the margin, zero beyond it.

Regression losses take float targets of the outputs' shape (integer class labels become
one-hot targets); classification losses take integer labels (binary: 0/1).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .validate import check_positive


def _targets(outputs: jax.Array, targets: jax.Array) -> jax.Array:
    """Float targets of `outputs`' shape and dtype; integer labels become one-hot."""
    targets = jnp.asarray(targets)
    if jnp.issubdtype(targets.dtype, jnp.integer):
        targets = jax.nn.one_hot(targets, outputs.shape[-1], dtype=outputs.dtype)
    return jnp.asarray(targets, outputs.dtype).reshape(outputs.shape)


def _mean_over_batch(per_coordinate: jax.Array) -> jax.Array:
    return jnp.mean(jnp.sum(per_coordinate, axis=-1))


def mse(outputs: jax.Array, targets: jax.Array) -> jax.Array:
    """Squared error: mean over the batch of ½‖f − y‖² (a harmonic spring to each target)."""
    return 0.5 * _mean_over_batch(jnp.square(outputs - _targets(outputs, targets)))


def mae(outputs: jax.Array, targets: jax.Array) -> jax.Array:
    """Absolute error: mean over the batch of Σ_j |f_j − y_j| (a constant-force pull, so an
    outlier pulls no harder than any other sample: the median, not the mean, minimises it)."""
    return _mean_over_batch(jnp.abs(outputs - _targets(outputs, targets)))


def smooth_l1(outputs: jax.Array, targets: jax.Array, delta: float = 1.0) -> jax.Array:
    r"""Huber loss (smooth L1) with threshold δ = `delta` > 0, mean over the batch of Σ_j:

    .. math::
        \ell(r) = \begin{cases} \tfrac12 r^2 & |r| \le \delta \\
        \delta\,(|r| - \tfrac12\delta) & |r| > \delta \end{cases}, \qquad r = f - y,

    a spring near the target and a constant force δ beyond it (optax's `huber_loss`; PyTorch's
    `smooth_l1_loss` is this divided by δ).

    References:
      Huber, "Robust estimation of a location parameter", Ann. Math. Stat. 35 (1964).
    """
    check_positive("delta", delta)
    r = jnp.abs(outputs - _targets(outputs, targets))
    d = jnp.asarray(delta, r.dtype)
    return _mean_over_batch(jnp.where(r <= d, 0.5 * r * r, d * (r - 0.5 * d)))


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy −log softmax(logits)_y over the batch (integer labels)."""
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, labels[..., None].astype(jnp.int32), axis=-1))


def binary_cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    r"""Mean binary cross-entropy from logits z, labels y ∈ {0, 1} (or probabilities):

    .. math::
        \ell = -y\log\sigma(z) - (1-y)\log(1-\sigma(z)) = \max(z, 0) - yz + \log(1 + e^{-|z|}),

    the right-hand form finite for any z (no log 0). Logits of shape (N,) or (N, 1).
    """
    z = logits.reshape(logits.shape[0], -1) if logits.ndim else logits
    y = jnp.asarray(labels, z.dtype).reshape(z.shape)
    return _mean_over_batch(jnp.maximum(z, 0) - y * z + jnp.log1p(jnp.exp(-jnp.abs(z))))


def hinge(outputs: jax.Array, labels: jax.Array) -> jax.Array:
    r"""Mean hinge loss over the batch (a support vector machine's), integer labels.

    One output (binary, y ∈ {0, 1}, s = 2y − 1): ℓ = max(0, 1 − s·f). Several outputs
    (multiclass, Weston–Watkins): ℓ = Σ_{j≠y} max(0, 1 + f_j − f_y). Zero force once every
    sample is beyond the margin: the weights stop, as a particle in a flat-bottomed well.

    References:
      Weston & Watkins, "Support vector machines for multi-class pattern recognition",
      ESANN 1999.
    """
    labels = jnp.asarray(labels).astype(jnp.int32)
    if outputs.ndim == 1 or outputs.shape[-1] == 1:
        f = outputs.reshape(labels.shape)
        s = (2 * labels - 1).astype(f.dtype)
        return jnp.mean(jnp.maximum(0, 1 - s * f))
    f_y = jnp.take_along_axis(outputs, labels[..., None], axis=-1)
    margins = jnp.maximum(0, 1 + outputs - f_y)
    margins = jnp.where(jax.nn.one_hot(labels, outputs.shape[-1], dtype=bool), 0, margins)
    return _mean_over_batch(margins)


LOSSES = {
    "cross_entropy": cross_entropy,
    "mse": mse,
    "mae": mae,
    "smooth_l1": smooth_l1,
    "binary_cross_entropy": binary_cross_entropy,
    "hinge": hinge,
}
"""Losses by name, as `mlp(..., loss=name)` takes them."""
