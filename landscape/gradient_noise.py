r"""The mini-batch heat bath measured at a point: per-sample gradient covariance and temperature.

At parameters θ of a finite-sum loss U = (1/N)Σᵢ ℓᵢ the per-sample gradients gᵢ = ∇ℓᵢ(θ)
have mean ∇U and covariance

.. math::
    C(\theta) = \frac1N \sum_{i=1}^N (g_i - \bar g)(g_i - \bar g)^\top .

A batch of B samples drawn with replacement has gradient noise of covariance C/B (times the
finite-population factor (N − B)/(N − 1) without replacement). SGD θ ← θ − η g_B is then
the Euler–Maruyama step, dt = η, of dθ = −∇U dt + √(2T) dW with a diffusion matrix
ηC/(2B); its total temperature (summed over the D coordinates) is

.. math::
    T = \frac{\eta\,\operatorname{tr} C}{2B}\;\Big(\times\frac{N-B}{N-1}\Big),

which depends on η and B only through η/B (Mandt et al. 2017; Jastrzębski et al. 2017).
`landscape.Minibatch.temperature` reports the same quantity per coordinate (T / D).

References:
  S. Mandt, M. D. Hoffman, D. M. Blei, "Stochastic gradient descent as approximate Bayesian
  inference", JMLR 18 (2017). S. Jastrzębski, Z. Kenton, D. Arpit, N. Ballas, A. Fischer,
  Y. Bengio, A. Storkey, "Three factors influencing minima in SGD", arXiv:1711.04623 (2017).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from .finite_sum import FiniteSum
from .validate import check_int, check_nonnegative


class GradientNoise(NamedTuple):
    """Statistics of the per-sample gradients at one point (see the module docstring).

    Attributes:
      trace: tr C, the total per-sample gradient variance.
      top_eigenvalues: the largest eigenvalues of C, descending, shape (n_eigs,).
      mean_gradient_norm: |ḡ| = |∇U(θ)|.
      n_samples: N.
      dim: D, the number of parameters.
    """

    trace: jax.Array
    top_eigenvalues: jax.Array
    mean_gradient_norm: jax.Array
    n_samples: int
    dim: int


def gradient_covariance(landscape: FiniteSum, params, n_eigs: int = 5) -> GradientNoise:
    """tr C and the top eigenvalues of C at `params` from all N per-sample gradients.

    The eigenvalues come from the smaller of the two Gram matrices, (1/N)G_cG_cᵀ (N×N) or
    (1/N)G_cᵀG_c (D×D), G_c the centred N×D matrix of per-sample gradients; memory N·D.

    Args:
      landscape: a `FiniteSum` (e.g. from `landscape.mlp.from_loss`).
      params: one point θ (a pytree without a particle axis).
      n_eigs: number of top eigenvalues (<= min(N, D)).

    Returns:
      A `GradientNoise`.
    """
    if not isinstance(landscape, FiniteSum):
        raise ValueError(
            f"landscape={getattr(landscape, 'name', landscape)!r} is not allowed: the gradient "
            "covariance needs a finite sum (see `landscape.mlp.from_loss`)."
        )
    n_eigs = check_int("n_eigs", n_eigs)
    leaves = jax.tree.leaves(landscape.per_sample_grads(params))
    g = jnp.concatenate([leaf.reshape(landscape.n_samples, -1) for leaf in leaves], axis=1)
    n, d = g.shape
    if n_eigs > min(n, d):
        raise ValueError(f"n_eigs={n_eigs} is not allowed: it must be <= min(N, D) = {min(n, d)}.")
    mean = jnp.mean(g, axis=0)
    gc = g - mean
    gram = gc @ gc.T / n if n <= d else gc.T @ gc / n
    eigs = jnp.linalg.eigvalsh(gram)[::-1][:n_eigs]
    trace = jnp.sum(jnp.square(gc)) / n
    return GradientNoise(trace, eigs, jnp.linalg.norm(mean), n, d)


def minibatch_temperature(
    lr, batch_size: int, trace, n_samples: int | None = None, replace: bool = False
):
    r"""T = η tr C / (2B), times (N − B)/(N − 1) without replacement when N is given.

    Args:
      lr: η >= 0 (a float or array: broadcasts).
      batch_size: B >= 1.
      trace: tr C (e.g. `gradient_covariance(...).trace`).
      n_samples: N; with `replace=False` the finite-population factor is applied.
      replace: batches drawn with replacement (no finite-population factor).

    Returns:
      The total temperature T (summed over coordinates; divide by D for per coordinate).
    """
    check_nonnegative("lr", lr)
    batch_size = check_int("batch_size", batch_size)
    fpc = 1.0
    if n_samples is not None and not replace:
        n_samples = check_int("n_samples", n_samples)
        fpc = (n_samples - batch_size) / (n_samples - 1) if n_samples > 1 else 0.0
    return lr * trace * fpc / (2 * batch_size)
