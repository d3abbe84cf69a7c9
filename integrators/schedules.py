r"""Schedules `step -> value` for learning rates (time steps) and temperatures.

Every schedule is a plain function of the int32 step count, so optax schedules work
wherever these do, and these work in optax. Decaying the learning rate of SGD lowers its
noise temperature T ≈ η·tr(C)/(2B·d): learning-rate annealing is simulated annealing.
"""

from __future__ import annotations

import jax.numpy as jnp
import optax

from ..landscape.types import Schedule
from ..landscape.validate import check_int, check_nonnegative, check_positive, check_real


def _float_count(schedule: Schedule) -> Schedule:
    """Call an optax schedule with a floating step count.

    optax computes `count / transition_steps` for an int32 count in float32, which would
    round the schedule of a float64 simulation to single precision (rel. error ~1e-6).
    """
    return lambda count: schedule(jnp.asarray(count, dtype=float))


def constant(value: float) -> Schedule:
    """v_k = value."""
    check_nonnegative("value", value)
    return optax.constant_schedule(value)


def exponential(init_value: float, decay_rate: float, decay_steps: int = 1) -> Schedule:
    r"""v_k = v₀·r^{k/s}: exponential decay by `decay_rate` r every `decay_steps` s."""
    check_nonnegative("init_value", init_value)
    check_real("decay_rate", decay_rate, low=0.0, low_open=True)
    check_int("decay_steps", decay_steps)
    return _float_count(optax.exponential_decay(init_value, decay_steps, decay_rate))


def step(init_value: float, boundaries_and_scales: dict[int, float]) -> Schedule:
    """Piecewise constant: multiply by `scale` at each step `boundary` (e.g. {1000: 0.1})."""
    check_nonnegative("init_value", init_value)
    for boundary, scale in boundaries_and_scales.items():
        check_int("boundaries_and_scales key", boundary, minimum=0)
        check_nonnegative("boundaries_and_scales value", scale)
    return optax.piecewise_constant_schedule(init_value, boundaries_and_scales)


def cosine(init_value: float, decay_steps: int, alpha: float = 0.0) -> Schedule:
    r"""v_k = v₀·((1−α)·½(1 + cos(π·min(k, K)/K)) + α), K = `decay_steps`."""
    check_nonnegative("init_value", init_value)
    check_int("decay_steps", decay_steps)
    check_real("alpha", alpha, low=0.0, high=1.0)
    return optax.cosine_decay_schedule(init_value, decay_steps, alpha)


def inverse_time(init_value: float, decay_steps: float = 1.0, power: float = 1.0) -> Schedule:
    r"""Robbins–Monro: v_k = v₀/(1 + k/s)^p, with Σv = ∞ and Σv² < ∞ for p in (½, 1]."""
    check_nonnegative("init_value", init_value)
    check_positive("decay_steps", decay_steps)
    check_real("power", power, low=0.0, high=1.0, low_open=True)

    def schedule(count):
        return init_value / (1 + jnp.asarray(count) / decay_steps) ** power

    return schedule


def linear_warmup(
    peak_value: float, warmup_steps: int, after: Schedule | float | None = None
) -> Schedule:
    """Linear ramp 0 → `peak_value` over `warmup_steps`, then `after` (shifted) or constant."""
    check_nonnegative("peak_value", peak_value)
    check_int("warmup_steps", warmup_steps)
    ramp = _float_count(optax.linear_schedule(0.0, peak_value, warmup_steps))
    tail = (
        after
        if callable(after)
        else optax.constant_schedule(peak_value if after is None else after)
    )
    return optax.join_schedules([ramp, tail], [warmup_steps])


def geometric_cooling(init_value: float, factor: float) -> Schedule:
    r"""Simulated-annealing cooling T_k = T₀·a^k with factor a in (0, 1]."""
    check_nonnegative("init_value", init_value)
    check_real("factor", factor, low=0.0, high=1.0, low_open=True)
    return _float_count(optax.exponential_decay(init_value, 1, factor))


def logarithmic_cooling(init_value: float, offset: float = 2.0) -> Schedule:
    r"""Geman–Geman cooling T_k = T₀·log(c)/log(k + c), c = `offset` > 1.

    The slowest cooling that provably finds the global minimum (for T₀ above the deepest
    barrier): Geman & Geman, IEEE PAMI 6, 1984; Hajek, Math. Oper. Res. 13, 1988.
    """
    check_nonnegative("init_value", init_value)
    check_real("offset", offset, low=1.0, low_open=True)

    def schedule(count):
        return init_value * jnp.log(offset) / jnp.log(jnp.asarray(count) + offset)

    return schedule
