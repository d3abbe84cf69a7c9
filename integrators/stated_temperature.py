r"""The temperature an optimizer and a gradient-noise model should run at, to leading order in η.

The continuum limit of each update, matched to overdamped or underdamped Langevin dynamics
(the `thermometer` module measures what a run really has):

- SGD / Langevin, θ ← θ − η(g + ξ) + √(2ηT)ξ′ with Cov ξ = C/B: T + η·tr C/(2Bd).
- heavy ball, m ← βm + g + ξ + σξ′, θ ← θ − ηm (σ² = 2T(1−β)/η, fluctuation–dissipation):
  T + η·tr C/(2Bd(1−β)), the gradient noise seen with the effective step η/(1−β); the
  same for Nesterov and for `underdamped_langevin` (η = dt²/M, β = 1 − γdt).
- BAOAB with exact gradients: its `temperature`.
- Adam with Gaussian gradient noise of per-coordinate variance c_i/B, in the regime where the
  noise dominates the second moment (v_i ≈ c_i/B, near a minimum): the preconditioned step
  η/(√v_i + ε) turns c_i/B into T_i = η(c_i/B)/(2(√(c_i/B) + ε)) ≈ η√(c_i/B)/2, the mean
  over coordinates reported. It grows as 1/√B, not 1/B: Adam's square-root scaling rule.
- optax's `noisy_sgd(α, eta, gamma)`, u = −α(g + N(0, σ_t²)), σ_t² = eta/(1+t)^gamma: a heat
  bath at T = α·σ_t²/2 (`noisy_sgd_temperature`).

References:
  S. Mandt, M. D. Hoffman, D. M. Blei, "Stochastic gradient descent as approximate Bayesian
  inference", JMLR 18 (2017). S. Malladi, K. Lyu, A. Panigrahi, S. Arora, "On the SDEs and
  scaling rules for adaptive gradient algorithms", NeurIPS 2022. A. Neelakantan et al.,
  "Adding gradient noise improves learning for very deep networks" (2015).
"""

from __future__ import annotations

import numpy as np

from ..landscape.validate import check_nonnegative
from ._base import Integrator
from .noise import Exact, Gaussian


def _value(hyper, step):
    return hyper(step) if callable(hyper) else hyper


def _noise_temperature(noise, lr, landscape, x):
    if noise is None or isinstance(noise, Exact):
        return 0.0
    if not hasattr(noise, "temperature"):
        raise ValueError(
            f"noise={noise!r} has no temperature(lr, landscape, x) method: the temperature of a "
            "custom gradient-noise model is not stated."
        )
    return np.asarray(noise.temperature(lr, landscape, x), dtype=float)


def _adam_temperature(hp: dict, noise) -> np.ndarray:
    if not isinstance(noise, Gaussian):
        raise ValueError(
            f"noise={noise!r}: the temperature of Adam is stated for Gaussian gradient noise "
            "(integrators.gaussian) only."
        )
    if np.any(np.asarray(_value(hp["temperature"], 0)) != 0):
        raise ValueError(
            f"temperature={hp['temperature']!r}: Adam's temperature argument adds position noise "
            "to a preconditioned drift, which does not make a Boltzmann density at that "
            "temperature; its temperature is not stated. Use temperature=0 with gradient noise."
        )
    cov = np.asarray(noise.covariance, dtype=float)
    per_coordinate = np.diag(cov) if noise.kind == "full" else np.atleast_1d(cov)
    var = per_coordinate / noise.batch_size
    lr, eps = np.asarray(hp["lr"], dtype=float), np.asarray(hp["eps"], dtype=float)
    scale = np.sqrt(var) + eps[..., None]
    return np.mean(lr[..., None] * var / (2 * scale), axis=-1)


def _stated(integrator: Integrator, hp: dict, noise, landscape, x):
    name = integrator.name
    if name in ("sgd", "langevin"):
        return hp["temperature"] + _noise_temperature(noise, hp["lr"], landscape, x)
    if name in ("momentum", "nesterov", "underdamped_langevin"):
        if name == "underdamped_langevin":
            lr = np.asarray(hp["dt"], dtype=float) ** 2 / hp["mass"]
            beta = 1 - np.asarray(hp["friction"], dtype=float) * np.asarray(hp["dt"], dtype=float)
        else:
            lr, beta = hp["lr"], np.asarray(hp["momentum"], dtype=float)
        return hp["temperature"] + _noise_temperature(noise, lr, landscape, x) / (1 - beta)
    if name == "baoab":
        if not (noise is None or isinstance(noise, Exact)):
            raise ValueError(
                f"noise={noise!r}: BAOAB evaluates the force twice per step, and the temperature "
                "its gradient noise adds is not stated; use exact gradients."
            )
        return hp["temperature"]
    if name in ("adam", "adamw"):
        return _adam_temperature(hp, noise)
    if name == "optax":
        raise ValueError(
            "optimizer is an optax transformation: its temperature cannot be read from it. For "
            "optax.noisy_sgd(learning_rate, eta, gamma) use noisy_sgd_temperature."
        )
    raise ValueError(
        f"optimizer={name!r}: no stated temperature. It is stated for sgd, langevin, momentum, "
        "nesterov, underdamped_langevin, baoab, adam and adamw."
    )


def stated_temperature(optimizer: Integrator, noise=None, *, landscape=None, x=None):
    r"""The temperature `optimizer` with gradient-noise model `noise` should run at.

    SGD with noise of covariance C/B: T + η·tr C/(2Bd); heavy ball: T + η·tr C/(2Bd(1−β));
    Adam with Gaussian noise: mean_i η(c_i/B)/(2(√(c_i/B) + ε)); BAOAB: T (see the module
    docstring for each derivation). These are continuum values: at a finite step the
    thermometers read the discretisation's own temperature (T/(1 − ηk/2) on a harmonic well
    for SGD).

    Args:
      optimizer: an optdyn `Integrator` (a sweep gives one value per setting).
      noise: the gradient-noise model of the run (`gaussian`, `minibatch`, ...); None or
        `exact()` for exact gradients.
      landscape: the landscape, needed by a mini-batch model (the per-sample gradient
        covariance is taken at `x`).
      x: the point of that covariance.

    Returns:
      A float (or an array over a sweep); a function `step -> T` if a hyperparameter is a
      schedule.
    """
    if not isinstance(optimizer, Integrator):
        raise ValueError(
            f"optimizer={optimizer!r} is not an optdyn Integrator. For optax.noisy_sgd use "
            "noisy_sgd_temperature(learning_rate, eta, gamma)."
        )
    hp = dict(optimizer.hyperparams or {})
    if any(callable(v) for v in hp.values()):
        return lambda step: _stated(
            optimizer, {k: _value(v, step) for k, v in hp.items()}, noise, landscape, x
        )
    hp = {k: np.asarray(v, float) if isinstance(v, list | tuple) else v for k, v in hp.items()}
    result = np.asarray(_stated(optimizer, hp, noise, landscape, x), dtype=float)
    return float(result) if result.ndim == 0 else result


def noisy_sgd_temperature(learning_rate, eta: float = 0.01, gamma: float = 0.55):
    r"""The temperature of optax's `noisy_sgd(learning_rate, eta, gamma)`: T = α·σ_t²/2.

    optax adds N(0, σ_t²), σ_t² = eta/(1+t)^gamma, to the gradient before the step
    u = −α(g + N(0, σ_t²)): Euler–Maruyama with dt = α and √(2αT) = α·σ_t, so T = α·σ_t²/2.
    With gamma = 0 the variance, and so the temperature, is constant.

    Args:
      learning_rate: α > 0, a number or a schedule `t -> α`.
      eta: the initial noise variance σ₀² >= 0 (optax's `eta`).
      gamma: the decay exponent >= 0 of the variance (optax's default 0.55).

    Returns:
      A float when gamma = 0 and α is a number; otherwise a function `t -> T_t`.
    """
    check_nonnegative("eta", eta)
    check_nonnegative("gamma", gamma)
    if not callable(learning_rate):
        check_nonnegative("learning_rate", learning_rate)
        if gamma == 0:
            return float(learning_rate) * float(eta) / 2
    return lambda t: _value(learning_rate, t) * eta / (1 + t) ** gamma / 2
