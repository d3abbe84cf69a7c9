r"""The noisy quadratic model (Zhang et al. 2019): exact recursions for the expected loss.

U(θ) = ½ Σ_i h_i θ_i², the gradient seen is Hθ + ξ with Cov ξ = H/B (mini-batch noise whose
covariance is the Hessian, as for a well-specified model near its minimum). Every
coordinate evolves on its own, and its second moments follow exact linear recursions:

SGD preconditioned by P = H^{−γ} (γ = 0: plain SGD), θ ← θ − ηp(hθ + ξ), a = E[θ²]:

.. math::
    a_{t+1} = (1 - \eta p h)^2 a_t + \eta^2 p^2 h / B .

Heavy ball, m ← βm + hθ + ξ, θ ← θ − ηm, on (a, b, c) = (E[θ²], E[θm], E[m²]) with
s = h/B:

.. math::
    c' = \beta^2 c + h^2 a + 2\beta h b + s,\quad
    b' = h(1-\eta h)a + \beta(1 - 2\eta h) b - \eta\beta^2 c - \eta s,\quad
    a' = (1-\eta h)^2 a - 2\eta\beta(1-\eta h) b + \eta^2\beta^2 c + \eta^2 s .

The expected loss is E[U_t] = ½ Σ_i h_i a_{i,t}.

References:
  G. Zhang, L. Li, Z. Nado, J. Martens, S. Sachdeva, G. E. Dahl, C. J. Shallue, R. Grosse,
  "Which algorithmic choices matter at which batch sizes? Insights from a noisy quadratic
  model", NeurIPS 2019.
"""

from __future__ import annotations

import numpy as np


def sgd_loss(h, theta0, lr, batch_size, steps: int, gamma: float = 0.0) -> np.ndarray:
    """E[U_t], t = 0..steps, for SGD preconditioned by H^(−γ); `lr` may be an array (*lr,).

    Returns an array (*lr, steps + 1).
    """
    h, lr = np.asarray(h, float), np.asarray(lr, float)[..., None]
    p = h**-gamma
    contraction = (1 - lr * p * h) ** 2
    source = lr**2 * p**2 * h / batch_size
    a = np.broadcast_to(np.asarray(theta0, float) ** 2, contraction.shape).copy()
    out = np.empty(lr.shape[:-1] + (steps + 1,))
    for t in range(steps + 1):
        out[..., t] = 0.5 * np.sum(h * a, axis=-1)
        a = contraction * a + source
    return out


def momentum_loss(h, theta0, lr, beta: float, batch_size, steps: int) -> np.ndarray:
    """E[U_t], t = 0..steps, for heavy ball (the 3×3 recursion per coordinate)."""
    h, lr = np.asarray(h, float), np.asarray(lr, float)[..., None]
    s = h / batch_size
    a = np.broadcast_to(np.asarray(theta0, float) ** 2, (lr * h).shape).copy()
    b, c = np.zeros_like(a), np.zeros_like(a)
    out = np.empty(lr.shape[:-1] + (steps + 1,))
    for t in range(steps + 1):
        out[..., t] = 0.5 * np.sum(h * a, axis=-1)
        c_new = beta**2 * c + h**2 * a + 2 * beta * h * b + s
        b_new = h * (1 - lr * h) * a + beta * (1 - 2 * lr * h) * b - lr * beta**2 * c - lr * s
        a = (1 - lr * h) ** 2 * a - 2 * lr * beta * (1 - lr * h) * b + lr**2 * beta**2 * c
        a = a + lr**2 * s
        b, c = b_new, c_new
    return out


def steps_to_target(loss: np.ndarray, target: float) -> np.ndarray:
    """The first t with loss[..., t] <= target; NaN where it is never reached."""
    below = np.asarray(loss) <= target
    first = np.argmax(below, axis=-1).astype(float)
    return np.where(below.any(axis=-1), first, np.nan)
