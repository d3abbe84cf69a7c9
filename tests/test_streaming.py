"""Streaming observables accumulated inside the scan, and the fused (multi-step) simulator path.

Physics: on the harmonic well U = ½ Σ λ_i x_i², Langevin dynamics with step η has the exact
stationary variance (T/λ)/(1 − ηλ/2) per coordinate; the streamed moments, histogram and
energy trace must reproduce it within the standard error of the ensemble.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import norm

from optdyn import integrators as itg
from optdyn import landscape as ls
from optdyn.integrators import streaming as st

LAMBDA = np.array([1.0, 4.0])
WELL = ls.quadratic(np.diag(LAMBDA), np.zeros(2))
T, LR = 0.5, 0.05
STEPS, BURN = 600, 200  # relaxation time 1/(ηλ_min) = 20 steps: 200 steps is 10 of them
N = 4000


def stationary_variance(lam):
    return (T / lam) / (1 - LR * lam / 2)


@pytest.fixture(scope="module")
def langevin_run():
    x0 = jnp.zeros((N, 2))
    stream = {
        "x": st.moments(start=BURN),
        "energy": st.moments(WELL.energy, start=BURN, every=5),
        "hist": st.histogram(np.linspace(-3, 3, 25), start=BURN, every=10),
        "trace": st.energy_trace(WELL, every=100, steps=STEPS),
        "escape": st.escape_time(lambda x: jnp.abs(x[0]) < 1.0),
    }
    traj = itg.simulate(
        itg.langevin(LR, T), WELL, x0, STEPS, jax.random.key(7), record=False, stream=stream
    )
    return traj


def test_moments_match_exact_stationary_variance(langevin_run):
    m = langevin_run.stream["x"]
    assert int(m.count) == STEPS - BURN
    assert m.mean.shape == m.var.shape == (2,) and m.particle_mean.shape == (N, 2)
    # standard error of the pooled mean from the independent particles' time averages
    se_mean = np.std(m.particle_mean, axis=0) / np.sqrt(N)
    np.testing.assert_array_less(np.abs(m.mean), 4 * se_mean)
    # the variance: each particle gives (STEPS-BURN)/τ ≈ 20-80 independent samples; bound
    # the relative standard error by sqrt(2/(N · 20)) and test within 4 of them
    theory = stationary_variance(LAMBDA)
    rel_se = np.sqrt(2 / (N * (STEPS - BURN) * LR * LAMBDA.min() / 2))
    np.testing.assert_allclose(m.var, theory, rtol=4 * rel_se)


def test_energy_moments_and_trace_equipartition(langevin_run):
    # <U> = Σ_i λ_i var_i / 2
    expected = float(np.sum(LAMBDA * stationary_variance(LAMBDA)) / 2)
    e = langevin_run.stream["energy"]
    assert e.mean.shape == ()
    se = float(np.std(e.particle_mean) / np.sqrt(N))
    assert abs(float(e.mean) - expected) < 4 * se
    tr = langevin_run.stream["trace"]
    np.testing.assert_array_equal(tr.steps, np.arange(0, STEPS + 1, 100))
    assert tr.mean.shape == (STEPS // 100 + 1,)
    assert float(tr.mean[0]) == 0.0  # everyone starts at the minimum
    # after relaxation, each record is an ensemble mean over N independent particles
    late = np.asarray(tr.mean[3:])
    se_record = np.sqrt(np.asarray(tr.var[3:]) / N)
    np.testing.assert_array_less(np.abs(late - expected), 4 * se_record)


def test_histogram_is_the_gaussian_stationary_density(langevin_run):
    h = langevin_run.stream["hist"]
    samples = N * ((STEPS - BURN) // 10)
    total = float(h.counts.sum() + h.underflow + h.overflow)
    assert total == samples
    sd = np.sqrt(stationary_variance(LAMBDA[0]))
    expected = samples * np.diff(norm.cdf(np.asarray(h.edges), scale=sd))  # bin probabilities
    # samples 10 steps apart are correlated (τ = 20 steps): inflate the Poisson error by 3
    sigma = 3 * np.sqrt(expected)
    np.testing.assert_array_less(np.abs(np.asarray(h.counts) - expected), 4 * sigma + 1)
    inside = 1 - float(h.overflow + h.underflow) / samples
    width = float(h.edges[1] - h.edges[0])
    np.testing.assert_allclose(float(jnp.sum(h.density) * width), inside, rtol=1e-5)


def test_escape_times_are_first_exits(langevin_run):
    esc = langevin_run.stream["escape"]
    assert esc.shape == (N,) and esc.dtype == jnp.int32
    # |x0| = 0 < 1: nobody starts outside; with var ≈ 0.51, most leave |x| < 1 in 600 steps
    assert int(esc.min()) >= 1
    assert 0.9 < float(jnp.mean(esc >= 0)) <= 1.0


def test_first_passage_matches_recorded_positions():
    x0 = jnp.zeros((64, 2))
    region = lambda x: x[0] > 0.6  # noqa: E731
    traj = itg.simulate(
        itg.langevin(LR, T),
        WELL,
        x0,
        300,
        jax.random.key(3),
        stream={"fp": st.first_passage(region)},
    )
    inside = np.asarray(traj.positions[..., 0] > 0.6)  # (n, steps + 1)
    expected = np.where(inside.any(axis=1), inside.argmax(axis=1), -1)
    np.testing.assert_array_equal(traj.stream["fp"], expected)


def test_moments_against_recorded_trajectory_and_sweep_shapes():
    x0 = jax.random.normal(jax.random.key(1), (50, 2))
    opt = itg.langevin([0.01, 0.03], T)
    traj = itg.simulate(
        opt,
        WELL,
        x0,
        40,
        jax.random.key(2),
        stream={"m": st.moments(start=10), "t": st.trace(lambda x: x**2, every=8, steps=40)},
    )
    pos = np.asarray(traj.positions)  # (2, 50, 41, 2)
    window = pos[:, :, 11:, :]
    np.testing.assert_allclose(traj.stream["m"].mean, window.mean(axis=(1, 2)), rtol=1e-10)
    np.testing.assert_allclose(traj.stream["m"].var, window.var(axis=(1, 2), ddof=1), rtol=1e-9)
    t = traj.stream["t"]
    np.testing.assert_allclose(t.mean, (pos[:, :, ::8, :] ** 2).mean(axis=1), rtol=1e-10)
    assert t.mean.shape == (2, 6, 2)


def test_record_false_stores_nothing_but_final_state_and_streams():
    x0 = jnp.ones((10, 2))
    traj = itg.simulate(itg.sgd(0.1), WELL, x0, 50, record=False, stream={"m": st.moments()})
    assert traj.positions is None and traj.loss is None and traj.grad_norm is None
    assert traj.steps.size == 0 and traj.final_state.params.shape == (10, 2)
    same = itg.simulate(itg.sgd(0.1), WELL, x0, 50, record_every=None)
    np.testing.assert_array_equal(same.final_state.params, traj.final_state.params)
    expected = (1 - 0.1 * LAMBDA) ** 50
    np.testing.assert_allclose(traj.final_state.params, np.broadcast_to(expected, (10, 2)))


def test_bad_accumulators_and_edges():
    with pytest.raises(ValueError, match="stream"):
        itg.simulate(itg.sgd(0.1), WELL, jnp.ones(2), 5, stream={"m": object()})
    with pytest.raises(ValueError, match="edges"):
        st.histogram([1.0, 0.0])
    with pytest.raises(ValueError, match="every"):
        st.moments(every=0)


# ------------------------------------------------------------------ the fused (multi-step) path


@pytest.mark.parametrize(
    "opt",
    [itg.sgd(2e-3), itg.adam(0.05), itg.momentum(1e-3, 0.9), itg.sgd([1e-3, 3e-3])],
    ids=["gd", "adam", "momentum", "sweep"],
)
def test_fused_blocks_equal_step_by_step(opt):
    """Several steps per loop iteration, divergence checked per chunk: same numbers, same
    divergence steps as the exact step-by-step path (Rosenbrock, where many diverge)."""
    U = ls.rosenbrock()
    x0 = jax.random.uniform(jax.random.key(0), (300, 2), minval=-2.0, maxval=2.0)
    exact = itg.simulate(opt, U, x0, 203, record=False, fuse=0)
    fused = itg.simulate(opt, U, x0, 203, record=False, fuse=4)
    np.testing.assert_array_equal(fused.diverged_step, exact.diverged_step)
    np.testing.assert_allclose(
        fused.final_state.params, exact.final_state.params, rtol=1e-9, atol=1e-12
    )
    assert np.all(np.isfinite(fused.final_state.params))


def test_fused_escape_through_small_bound_is_exact():
    """A bound crossed and re-crossed within one block still counts at the first crossing."""
    x0 = 0.01 * jax.random.normal(jax.random.key(4), (400, 2))
    args = (itg.langevin(0.01, 0.02), ls.saddle(), x0, 400, jax.random.key(5))
    exact = itg.simulate(*args, bound=0.5, record=False, fuse=0)
    fused = itg.simulate(*args, bound=0.5, record=False, fuse=3)
    assert int((exact.diverged_step >= 0).sum()) > 100
    np.testing.assert_array_equal(fused.diverged_step, exact.diverged_step)


def test_fused_bound_crossed_and_recrossed_within_a_chunk():
    """In a harmonic well with the bound at one standard deviation, particles leave and come
    back many times inside one chunk of fused steps; the first exit is still the one
    reported (NaN poisoning inside the chunk, exact replay after it)."""
    x0 = jnp.zeros((50, 2))  # few particles: most chunks end with every particle inside
    args = (itg.sgd(LR, temperature=T), WELL, x0, 150, jax.random.key(6))
    exact = itg.simulate(*args, bound=1.8, record=False, fuse=0)
    fused = itg.simulate(*args, bound=1.8, record=False, fuse=5)
    frac = float(jnp.mean(exact.diverged_step >= 0))
    assert 0.2 < frac < 0.8
    np.testing.assert_array_equal(fused.diverged_step, exact.diverged_step)
    np.testing.assert_array_equal(fused.final_state.params, exact.final_state.params)


def test_fused_gd_keeps_float32():
    x0 = jnp.full((8, 2), 0.5, jnp.float32)
    traj = itg.simulate(itg.adam(0.01), ls.rosenbrock(), x0, 64, record=False, fuse=8)
    assert traj.final_state.params.dtype == jnp.float32
    assert traj.final_state.mu.dtype == jnp.float32


# ------------------------------------------------------------------ the counter-mode generator


def test_threefry_block_function_known_answer():
    """Random123's known-answer vector for Threefry-2x32-20, and JAX's own block function."""
    from jax.extend.random import threefry_2x32

    from optdyn.integrators._engine import prng as prng

    k = jnp.array([0x13198A2E, 0x03707344], jnp.uint32)
    w0, w1 = prng.threefry2x32(k[0], k[1], jnp.uint32(0x243F6A88), jnp.uint32(0x85A308D3))
    assert (int(w0), int(w1)) == (0xC4923A9C, 0x483DF7A0)
    x = jax.random.bits(jax.random.key(0), (2, 1000), jnp.uint32)
    ours = jnp.concatenate(prng.threefry2x32(k[0], k[1], x[0], x[1]))
    np.testing.assert_array_equal(ours, threefry_2x32(k, x.reshape(-1)))


def test_counter_normals_are_standard_and_independent_across_steps():
    from scipy.stats import kstest

    from optdyn.integrators._engine import prng as prng

    n = 200_000
    key = prng.key(11)
    z = np.asarray(jax.random.normal(jax.random.fold_in(key, 1), (n,)), np.float64)
    z2 = np.asarray(jax.random.normal(jax.random.fold_in(key, 2), (n,)), np.float64)
    assert abs(z.mean()) < 4 / np.sqrt(n)
    assert abs(z.var() - 1) < 4 * np.sqrt(2 / n)
    assert abs(np.mean(z * z2)) < 4 / np.sqrt(n)  # successive steps uncorrelated
    assert abs(np.mean(z[1:] * z[:-1])) < 4 / np.sqrt(n)  # neighbouring draws uncorrelated
    assert kstest(z, "norm").pvalue > 1e-3
    # a default key is re-read with the same key data; other generators are left alone
    assert jax.random.key_impl(prng.counter_key(jax.random.key(3))) == jax.random.key_impl(key)
    rbg = jax.random.key(0, impl="rbg")
    assert prng.counter_key(rbg) is rbg
