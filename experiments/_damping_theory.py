r"""Linear theory of gradient descent, heavy-ball and Nesterov momentum on a quadratic.

Shared by the `damping`, `valley`, `stability` and `saddle_escape` experiments. On one
eigen-direction U = ½λθ² (λ may be negative: a saddle direction) heavy ball
θ_{k+1} = θ_k − ηλθ_k + β(θ_k − θ_{k−1}) is the linear map on (θ_k, θ_{k−1})

.. math::
    A_{HB} = \begin{pmatrix} 1 + \beta - \eta\lambda & -\beta \\ 1 & 0 \end{pmatrix}, \qquad
    A_{N} = \begin{pmatrix} (1 + \beta)(1 - \eta\lambda) & -\beta(1 - \eta\lambda) \\
    1 & 0 \end{pmatrix}

(Nesterov), with characteristic polynomial μ² − tμ + d. The error contracts per step by
the spectral radius ρ(A) = max |μ|; heavy ball is stable iff 0 < ηλ < 2(1 + β), Nesterov
iff 0 < ηλ < 2(1 + β)/(1 + 2β).

References:
  B. T. Polyak, "Some methods of speeding up the convergence of iteration methods", USSR
  Comput. Math. Math. Phys. 4 (1964) 1-17.
"""

from __future__ import annotations

import math

import numpy as np


def heavy_ball_matrix(eta_lam: float, beta: float) -> np.ndarray:
    """A_HB = [[1 + β − ηλ, −β], [1, 0]], acting on (θ_k, θ_{k−1})."""
    return np.array([[1.0 + beta - eta_lam, -beta], [1.0, 0.0]])


def nesterov_matrix(eta_lam: float, beta: float) -> np.ndarray:
    """A_N = [[(1 + β)(1 − ηλ), −β(1 − ηλ)], [1, 0]], acting on (θ_k, θ_{k−1})."""
    c = 1.0 - eta_lam
    return np.array([[(1.0 + beta) * c, -beta * c], [1.0, 0.0]])


def _trace_det(eta_lam, beta, nesterov: bool):
    eta_lam, beta = np.asarray(eta_lam, float), np.asarray(beta, float)
    if nesterov:
        return (1.0 + beta) * (1.0 - eta_lam), beta * (1.0 - eta_lam)
    return 1.0 + beta - eta_lam, beta + 0.0 * eta_lam


def roots(eta_lam, beta, nesterov: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The two eigenvalues μ± = (t ± √(t² − 4d))/2 of A_HB (or A_N), elementwise, complex."""
    t, d = _trace_det(eta_lam, beta, nesterov)
    disc = np.sqrt((t * t - 4.0 * d).astype(complex))
    return (t + disc) / 2.0, (t - disc) / 2.0


def spectral_radius(eta_lam, beta, nesterov: bool = False) -> np.ndarray:
    """ρ = max |μ±|: the asymptotic contraction (or growth, > 1) factor per step."""
    plus, minus = roots(eta_lam, beta, nesterov)
    return np.maximum(np.abs(plus), np.abs(minus))


def critical_beta(eta_lam: float) -> float:
    """The β of the double root (critical damping) of heavy ball: β_c = (1 − √(ηλ))²."""
    return (1.0 - math.sqrt(eta_lam)) ** 2


def polyak(mu: float, L: float) -> dict:
    """Polyak's optimal heavy ball on curvatures [μ, L].

    η* = 4/(√L + √μ)², β* = ((√κ − 1)/(√κ + 1))², rate ρ* = √β* = (√κ − 1)/(√κ + 1).
    """
    kappa = L / mu
    rate = (math.sqrt(kappa) - 1.0) / (math.sqrt(kappa) + 1.0)
    return {"lr": 4.0 / (math.sqrt(L) + math.sqrt(mu)) ** 2, "momentum": rate**2, "rate": rate}


def gd_rate(mu: float, L: float) -> float:
    """Gradient descent at η = 2/(L + μ) contracts every direction by (κ − 1)/(κ + 1)."""
    return (L - mu) / (L + mu)


def steps_to_tolerance(rate: float, tol: float) -> float:
    """k with ρ^{2k} = tol: steps for U (∝ θ²) to fall by `tol` at the per-step rate ρ."""
    return math.log(tol) / (2.0 * math.log(rate))


def growing_mode(matrix: np.ndarray, z0: np.ndarray, kick: np.ndarray | None = None) -> dict:
    r"""Growth of the unstable mode of z_{k+1} = A z_k + b ξ_k, ξ_k ~ N(0, 1) i.i.d.

    With μ₊ the largest eigenvalue (> 1), u its right eigenvector scaled to u₀ = 1 and w its
    left one, the first coordinate grows as z_{k,0} ≈ μ₊^k (a + s Z), Z ~ N(0, 1):

    .. math::
        a = \frac{w \cdot z_0}{w \cdot u}, \qquad
        s^2 = \frac{(w \cdot b)^2}{(w \cdot u)^2}\sum_{j \ge 0} \mu_+^{-2(j+1)}
            = \frac{(w \cdot b)^2}{(w \cdot u)^2 (\mu_+^2 - 1)}.

    Args:
      matrix: A, shape (n, n), with a real dominant eigenvalue μ₊ > 1.
      z0: the initial state, shape (n,).
      kick: b, how one standard normal enters each coordinate (None: no noise).

    Returns:
      {"growth": μ₊, "amplitude": a, "noise": s}.
    """
    vals, right = np.linalg.eig(matrix)
    i = int(np.argmax(vals.real))
    mu = float(vals[i].real)
    u = right[:, i].real / right[0, i].real
    lvals, left = np.linalg.eig(matrix.T)
    w = left[:, int(np.argmax(lvals.real))].real
    wu = float(w @ u)
    s = 0.0 if kick is None else abs(float(w @ kick)) / abs(wu) / math.sqrt(mu * mu - 1.0)
    return {"growth": mu, "amplitude": float(w @ z0) / wu, "noise": s}
