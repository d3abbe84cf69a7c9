"""`Trajectory`: what `simulate` returns."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import numpy as np

from ..landscape.types import PyTree


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

    @property
    def diverged(self) -> jax.Array:
        """Boolean `(*batch,)`: which trajectories diverged."""
        return self.diverged_step >= 0
