"""Thermometers against the finite-step closed forms on a harmonic well, and stated temperatures.

On U = ½kθ² at temperature T: Euler–Maruyama (SGD, optax's noisy_sgd) has
⟨θ²⟩ = (T/k)/(1 − ηk/2), so it reads T_conf = T/(1 − ηk/2); heavy ball reads
T_conf = T/(1 − ηk/(2(1+β))) and, from its displacement velocity,
T_kin = 2T/(1 + β − ηk/2); BAOAB's configurations read T exactly.
The steps are chosen so that every finite-step bias is at least 10 standard errors: a
thermometer that read the continuum T would fail.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optdyn import integrators as itg
from optdyn import landscape as ls

K, T = 2.0, 0.5
WELL = ls.quadratic(np.array([[K]]))
N, STEPS, BURN, EVERY = 2000, 300, 60, 3


def _within(reading, expected, n_se=4.0):
    t, se = float(reading.temperature), float(reading.stderr)
    assert np.isfinite(t) and 0 < se < 0.02 * expected, (t, se)
    assert abs(t - expected) < n_se * se, (t, expected, se, (t - expected) / se)


def _run(optimizer, stream, key, noise=None, x0=None):
    x0 = jnp.zeros((N, 1)) if x0 is None else x0
    traj = itg.simulate(
        optimizer, WELL, x0, STEPS, jax.random.key(key), noise=noise, record=False, stream=stream
    )
    return traj.stream


def conf():
    return itg.configurational_thermometer(WELL, start=BURN, every=EVERY)


def test_heavy_ball_reads_its_finite_step_temperatures():
    lr, beta = 0.3, 0.5  # ηk = 0.6
    stream = {"c": conf(), "k": itg.kinetic_thermometer(lr**0.5, start=BURN, every=EVERY)}
    out = _run(itg.momentum(lr, beta, T), stream, 2)
    _within(out["c"], T / (1 - lr * K / (2 * (1 + beta))))
    assert out["c"].temperature.dtype == jnp.float64  # the dtype of x0 (x64 in the tests)
    _within(out["k"], 2 * T / (1 + beta - lr * K / 2))
    assert abs(float(out["k"].temperature) - T) > 10 * float(out["k"].stderr)


def test_baoab_configurations_read_exactly_T():
    dt = 1.0  # h²k = 2: Euler–Maruyama at this step would read twice T
    reading = _run(itg.baoab(dt, 1.0, 1.0, T), {"c": conf()}, 3)["c"]
    _within(reading, T)


def test_optax_noisy_sgd_reads_the_stated_temperature():
    alpha, eta = 0.1, 2.0  # T = αη/2 = 0.1; ηk = 0.2
    stated = itg.noisy_sgd_temperature(alpha, eta, gamma=0.0)
    assert stated == pytest.approx(alpha * eta / 2)
    tx = optax.noisy_sgd(alpha, eta=eta, gamma=0.0, key=0)
    reading = _run(tx, {"c": conf()}, 4)["c"]
    # Euler–Maruyama at dt = α: T_conf = T/(1 − αk/2), 11% above the continuum value
    _within(reading, stated / (1 - alpha * K / 2))
    assert abs(float(reading.temperature) - stated) > 10 * float(reading.stderr)


def test_snapshot_of_boltzmann_samples_by_hutchinson_in_float32():
    # exact Boltzmann samples of a rotated 80-d quadratic: T_conf = T with the Laplacian by
    # Hutchinson's estimator (dim > EXACT_MAX_DIM; rotated, so the probes are really random)
    dim, n = 80, 1000
    lam = np.linspace(0.5, 3.0, dim)
    rot = np.linalg.qr(np.random.default_rng(0).normal(size=(dim, dim)))[0]
    U = ls.quadratic(rot @ np.diag(lam) @ rot.T)
    z = jax.random.normal(jax.random.key(5), (n, dim), jnp.float32)
    x = (z * jnp.sqrt(T / lam).astype(jnp.float32)) @ rot.T.astype(np.float32)
    reading = itg.configurational_temperature(U.energy, x, key=jax.random.key(6))
    _within(reading, T)
    assert reading.temperature.dtype == reading.stderr.dtype == jnp.float32
    exact = jax.jit(lambda p: itg.laplacian(U.energy, p, probes=0))(x[0].astype(jnp.float64))
    assert float(exact) == pytest.approx(lam.sum(), rel=1e-10)
    one_probe = itg.laplacian(U.energy, x[0], jax.random.key(7), probes=1)
    assert abs(float(one_probe) - lam.sum()) > 1e-3  # an estimate, not the exact trace


def test_stated_temperatures():
    noise = itg.gaussian(0.8, batch_size=4)  # σ²/B = 0.2
    assert itg.stated_temperature(itg.sgd(0.1, 0.05), noise) == pytest.approx(0.05 + 0.1 * 0.1)
    assert itg.stated_temperature(itg.sgd(0.1)) == 0.0
    hb = itg.stated_temperature(itg.momentum([0.1, 0.2], 0.9), noise)
    np.testing.assert_allclose(hb, [0.1 * 0.1 / 0.1, 0.2 * 0.1 / 0.1])
    ul = itg.underdamped_langevin(dt=0.5, friction=0.4)  # η = 0.25, β = 0.8
    assert itg.stated_temperature(ul, noise) == pytest.approx(0.25 * 0.1 / 0.2)
    adam = itg.stated_temperature(itg.adam(0.01, eps=1e-12), noise)
    assert adam == pytest.approx(0.01 * np.sqrt(0.2) / 2)
    assert itg.stated_temperature(itg.baoab(0.1, 1.0, temperature=0.3)) == pytest.approx(0.3)
    schedule = itg.stated_temperature(itg.sgd(lambda t: 0.1 / (1 + t)), noise)
    assert schedule(1) == pytest.approx(0.05 * 0.1)
    decaying = itg.noisy_sgd_temperature(0.1, 2.0, gamma=1.0)
    assert decaying(3) == pytest.approx(0.1 * 2.0 / 4 / 2)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: itg.stated_temperature(optax.sgd(0.1)), "noisy_sgd_temperature"),
        (lambda: itg.stated_temperature(itg.baoab(0.1, 1.0), itg.gaussian(1.0)), "noise"),
        (lambda: itg.stated_temperature(itg.adam(0.1)), "Gaussian"),
        (
            lambda: itg.stated_temperature(itg.adam(0.1, temperature=0.1), itg.gaussian(1.0)),
            "temperature",
        ),
        (lambda: itg.stated_temperature(itg.rmsprop(0.1), itg.gaussian(1.0)), "rmsprop"),
        (lambda: itg.noisy_sgd_temperature(0.1, eta=-1.0), "eta"),
        (lambda: itg.configurational_thermometer(WELL, every=0), "every"),
        (lambda: itg.kinetic_thermometer(dt=0.0), "dt"),
        (lambda: itg.laplacian(WELL.energy, jnp.zeros(1), probes=2), "key"),
        (lambda: itg.laplacian(WELL.energy, jnp.zeros(1), probes=-1), "probes"),
        (lambda: itg.configurational_temperature(WELL.energy, jnp.zeros(1)), "ensemble"),
    ],
)
def test_bad_input_is_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()
