"""`Trajectory`: what `simulate` returns."""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import numpy as np

from ..landscape.types import PyTree


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class ResumeState:
    """Everything `simulate(..., resume=trajectory)` needs to continue a run exactly.

    A pytree whose leaves are the arrays; `step`, `key_impl` and `ensemble` are static.

    Attributes:
      step: the absolute step reached (the next run's steps are step + 1, ...).
      key: the run's random key as raw data (the step keys depend on it and on the
        absolute step); `key_impl` names its generator ("" for a raw uint32 key).
      key_impl: see `key`.
      ensemble: whether the run's `x0` was an ensemble (the outputs' shapes follow it).
      noise_state: the gradient estimator's state (a mini-batch's shuffled epoch).
      alive: bool `(*batch,)`: members not frozen (by divergence or a stopping rule).
      diverged_step: int32 `(*batch,)`, as `Trajectory.diverged_step`.
      acc: the streaming accumulators before `finalize`.
      stop: the stopping rule's `StopState` (None without a rule).
      state: the optimizer's final state with its particle axis (`Trajectory.final_state`
        drops that axis for one particle).
    """

    step: int = dataclasses.field(metadata={"static": True})
    key: Any
    key_impl: str = dataclasses.field(metadata={"static": True})
    ensemble: bool = dataclasses.field(metadata={"static": True})
    noise_state: Any
    alive: jax.Array
    diverged_step: jax.Array
    acc: dict
    stop: Any = None
    state: Any = None

    def _replace(self, **changes) -> ResumeState:
        return dataclasses.replace(self, **changes)

    def run_key(self):
        """The run's key, as it was given."""
        if not self.key_impl:
            return self.key
        return jax.random.wrap_key_data(self.key, impl=self.key_impl)


class Trajectory(NamedTuple):
    """A recorded trajectory (or ensemble / sweep of trajectories).

    Leading axes are the batch axes `(sweep, particle)`, present only when the integrator
    sweeps hyperparameters and when `x0` is an ensemble; then comes the record axis.

    Attributes:
      positions: the parameters at each record, shape `(*batch, n_records, *x_shape)` on
        every leaf (None when `record_positions=False`). A diverged particle stays frozen at
        its last finite position, so no record holds NaN.
      loss: the exact potential U(θ) at each record, `(*batch, n_records)`.
      grad_norm: |∇U(θ)| (exact gradient) at each record, `(*batch, n_records)`.
      kinetic_energy: ½M|v|² at each record for underdamped integrators, else None.
      steps: the step index of each record, a NumPy array `(n_records,)`.
      diverged_step: int32 `(*batch,)`: the step whose result was non-finite or outside
        `bound` (the particle is frozen from the step before), or -1 if it never diverged.
      final_state: the integrator state after the last step, with the batch axes of the
        other fields: for one particle (no ensemble axis in `x0`) `final_state.params` has
        the shape of `x0`, ready to feed back to the model.
      observed: `{name: values}` for the `observe` functions, each `(*batch, n_records, ...)`.
      stream: `{name: result}` of the streaming accumulators (`simulate(stream=...)`), each
        the accumulator's `finalize` of statistics gathered at every step inside the scan.
      resume_state: a `ResumeState`: pass the trajectory as `simulate(..., resume=traj)` to
        continue the run (the stopping rule's state is `resume_state.stop`).
    """

    positions: PyTree | None
    loss: jax.Array
    grad_norm: jax.Array
    kinetic_energy: jax.Array | None
    steps: np.ndarray
    diverged_step: jax.Array
    final_state: Any
    observed: dict | None = None
    stream: dict | None = None
    resume_state: ResumeState | None = None

    @property
    def diverged(self) -> jax.Array:
        """Boolean `(*batch,)`: which trajectories diverged."""
        return self.diverged_step >= 0
