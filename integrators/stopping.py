r"""Early stopping: a member of the ensemble that stops improving is frozen, like a diverged one.

Training watches a validation metric m_e after every epoch e. The member's best score
improves when m_e < m* − δ ("min"; m_e > m* + δ for "max"); after `patience` records in a
row without improvement the member stops: its parameters are frozen where they are (the
particle is taken out of the heat bath, exactly as a diverged particle is frozen) while the
other seeds and swept values of the same jitted scan go on. The parameters of the best
record are kept (`StopState.best_params`): the early-stopped model is θ(e*), not θ(e).

Physically, stopping at e* is a limit on the time the particle spends in the landscape,
and so on how far it can travel from its start: for a quadratic loss, gradient descent
stopped at time t behaves like the minimum of U + (1/2ηt)|θ − θ₀|², an L2 (harmonic)
confinement of strength 1/(ηt) [Bishop 1995; Goodfellow et al. 2016, §7.8].

The rule is checked at every record of `simulate` (every epoch in `train`), inside the
scan: `simulate(..., stop=EarlyStopping(...))`, `train(..., early_stopping=...)`.

References:
  C. M. Bishop, "Regularization and complexity control in feed-forward networks" (1995).
  L. Prechelt, "Early stopping — but when?", Neural Networks: Tricks of the Trade (1998).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from ..landscape.validate import check_choice, check_int, check_nonnegative

_map = jax.tree_util.tree_map


class EarlyStopping(NamedTuple):
    """An early-stopping rule (hashable: it is static in the compiled scan).

    Attributes:
      metric: the recorded quantity watched: "loss", "grad_norm" or an `observe` name
        (in `train`: "val_loss", "val_accuracy", "test_loss", ...).
      patience: records (epochs) without improvement before the member stops; None never
        stops and only tracks the best record.
      min_delta: δ >= 0, the least change that counts as an improvement.
      mode: "min" (losses) or "max" (accuracies).
    """

    metric: str = "val_loss"
    patience: int | None = 10
    min_delta: float = 0.0
    mode: str = "min"


def early_stopping(
    metric: str = "val_loss",
    patience: int | None = 10,
    min_delta: float = 0.0,
    mode: str | None = None,
) -> EarlyStopping:
    """A checked `EarlyStopping` rule; `mode` defaults to "max" for accuracies, else "min"."""
    if not isinstance(metric, str):
        raise TypeError(f"metric={metric!r} is not allowed: give the name of a recorded metric.")
    if patience is not None:
        patience = check_int("patience", patience)
    check_nonnegative("min_delta", min_delta)
    mode = ("max" if "accuracy" in metric else "min") if mode is None else mode
    check_choice("mode", mode, ("min", "max"))
    return EarlyStopping(metric, patience, float(min_delta), mode)


class StopState(NamedTuple):
    """What the rule carries through the scan; every field has the batch axes `(*batch,)`."""

    best: jax.Array  # best score so far, signed so that lower is better (−m for "max")
    best_step: jax.Array  # int32: absolute step of the best record
    wait: jax.Array  # int32: records since the last improvement
    stopped_step: jax.Array  # int32: step at which the member stopped, or −1
    best_params: Any  # the parameters at the best record (batch axes on every leaf)


def _signed(rule: EarlyStopping, value):
    s = -value if rule.mode == "max" else value
    return jnp.where(jnp.isfinite(s), s, jnp.inf)  # a non-finite score is never an improvement


def init(rule: EarlyStopping, value, params, t) -> StopState:
    """The state at the first record (step t): that record is the best so far."""
    best = _signed(rule, value)
    step = jnp.full(best.shape, t, jnp.int32)
    return StopState(best, step, jnp.zeros_like(step), jnp.full_like(step, -1), params)


def update(rule: EarlyStopping, state: StopState, value, params, t, alive):
    """One record at step t: returns (new state, members that stop now)."""
    s = _signed(rule, value)
    improved = alive & (s < state.best - jnp.asarray(rule.min_delta, s.dtype))

    def keep_best(new, old):
        where = improved.reshape(improved.shape + (1,) * (new.ndim - improved.ndim))
        return jnp.where(where, new, old)

    wait = jnp.where(improved, 0, jnp.where(alive, state.wait + 1, state.wait))
    if rule.patience is None:
        halt = jnp.zeros_like(alive)
    else:
        halt = alive & (wait >= rule.patience)
    new = StopState(
        best=jnp.where(improved, s, state.best),
        best_step=jnp.where(improved, t, state.best_step),
        wait=wait,
        stopped_step=jnp.where(halt, t, state.stopped_step),
        best_params=_map(keep_best, params, state.best_params),
    )
    return new, halt


def best_value(rule: EarlyStopping, state: StopState) -> jax.Array:
    """The best score in the metric's own sign (±inf where no record was finite)."""
    return -state.best if rule.mode == "max" else state.best
