"""Bad input fails early with a ValueError that names the argument and the value."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from optdyn import integrators as itg
from optdyn.landscape._base import Landscape

PLANE = Landscape(lambda x: 0.5 * jnp.sum(x**2), "plane", 2)


@pytest.mark.parametrize(
    "build, match",
    [
        # learning rate: negative or non-finite, for every family
        (lambda: itg.sgd(lr=-0.1), r"lr=-0\.1 "),
        (lambda: itg.sgd(lr=math.nan), r"lr=nan "),
        (lambda: itg.sgd(lr=math.inf), r"lr=inf "),
        (lambda: itg.langevin(lr=-1.0), r"lr=-1\.0 "),
        (lambda: itg.momentum(lr=-1e-3), r"lr=-0\.001 "),
        (lambda: itg.nesterov(lr=math.inf), r"lr=inf "),
        (lambda: itg.adam(lr=-1e-3), r"lr=-0\.001 "),
        (lambda: itg.adamw(lr=math.nan), r"lr=nan "),
        (lambda: itg.rmsprop(lr=-math.inf), r"lr=-inf "),
        (lambda: itg.adagrad(lr=-2.0), r"lr=-2\.0 "),
        (lambda: itg.sgd(lr=np.float32(-0.5)), r"lr=-0\.5 "),
        # temperature
        (lambda: itg.sgd(0.1, temperature=-1.0), r"temperature=-1\.0 "),
        (lambda: itg.sgd(0.1, temperature=math.nan), r"temperature=nan "),
        (lambda: itg.langevin(0.1, temperature=math.inf), r"temperature=inf "),
        (lambda: itg.momentum(0.1, temperature=-0.5), r"temperature=-0\.5 "),
        (lambda: itg.adam(0.1, temperature=math.inf), r"temperature=inf "),
        (lambda: itg.underdamped_langevin(0.1, 1.0, temperature=-1.0), r"temperature=-1\.0 "),
        # momentum outside [0, 1)
        (lambda: itg.momentum(0.1, momentum=1.0), r"momentum=1\.0 .*\[0\.0, 1\.0\)"),
        (lambda: itg.momentum(0.1, momentum=-0.1), r"momentum=-0\.1 "),
        (lambda: itg.nesterov(0.1, momentum=1.0), r"momentum=1\.0 "),
        (lambda: itg.momentum(0.1, momentum=math.nan), r"momentum=nan "),
        # Adam's decays and eps
        (lambda: itg.adam(1e-3, b1=1.0), r"b1=1\.0 "),
        (lambda: itg.adam(1e-3, b1=-0.1), r"b1=-0\.1 "),
        (lambda: itg.adam(1e-3, b2=1.0), r"b2=1\.0 "),
        (lambda: itg.adamw(1e-3, b2=-0.1), r"b2=-0\.1 "),
        (lambda: itg.adam(1e-3, eps=0.0), r"eps=0\.0 .*\(0\.0, inf\)"),
        (lambda: itg.adam(1e-3, eps=-1e-8), r"eps=-1e-08 "),
        (lambda: itg.rmsprop(1e-3, eps=0.0), r"eps=0\.0 "),
        (lambda: itg.adagrad(1e-3, eps=-1.0), r"eps=-1\.0 "),
        (lambda: itg.rmsprop(1e-3, decay=1.0), r"decay=1\.0 "),
        (lambda: itg.adamw(1e-3, weight_decay=-1.0), r"weight_decay=-1\.0 "),
        (lambda: itg.adam(1e-3, eps_root=-1.0), r"eps_root=-1\.0 "),
        # physical units
        (lambda: itg.underdamped_langevin(dt=0.0, friction=1.0), r"dt=0\.0 "),
        (lambda: itg.underdamped_langevin(dt=0.1, friction=1.0, mass=-1.0), r"mass=-1\.0 "),
        (lambda: itg.underdamped_langevin(dt=0.1, friction=-1.0), r"friction=-1\.0 "),
        (lambda: itg.underdamped_langevin(dt=0.5, friction=3.0), r"friction\*dt=1\.5 "),
        # a bad member of a sweep is reported with its value
        (lambda: itg.sgd(lr=[0.1, -0.2, 0.3]), r"lr=-0\.2 "),
        (lambda: itg.momentum(lr=[0.1, 0.2], momentum=[0.5, 1.0]), r"momentum=1\.0 "),
        (lambda: itg.sgd(lr=[0.1, 0.2], temperature=[1.0, 2.0, 3.0]), r"equal lengths"),
    ],
)
def test_bad_hyperparameter(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_misspelt_keyword_names_close_valid_argument():
    with pytest.raises(ValueError, match=r"beta1.*Did you mean 'b1'"):
        itg.adam(lr=1e-3, beta1=0.9)
    with pytest.raises(ValueError, match=r"learning_rate"):
        itg.sgd(learning_rate=0.1)
    with pytest.raises(ValueError, match=r"momentun.*Did you mean 'momentum'"):
        itg.momentum(lr=0.1, momentun=0.9)
    with pytest.raises(ValueError, match=r"lr"):  # a missing required argument
        itg.adam(b1=0.9)


def test_unknown_optimizer_name_suggests_closest():
    with pytest.raises(ValueError, match=r"optimizer='adma'.*Did you mean 'adam'"):
        itg.get("adma")
    with pytest.raises(ValueError, match=r"'nesterov'"):
        itg.get("nestrov", lr=0.1)
    with pytest.raises(ValueError, match=r"lr=-1"):  # hyperparameters are checked via get too
        itg.get("sgd", lr=-1)


@pytest.mark.parametrize(
    "x0, match",
    [
        (jnp.zeros(3), r"x0 has shape \(3,\).*dimension 2"),
        (jnp.zeros((4, 3)), r"x0 has shape \(4, 3\).*dimension 2"),
        (jnp.zeros((2, 2, 2)), r"x0 has shape \(2, 2, 2\)"),
        ({"w": jnp.zeros(2)}, r"x0 has shape dict"),
    ],
)
def test_x0_not_fitting_landscape(x0, match):
    with pytest.raises(ValueError, match=match):
        itg.simulate(itg.sgd(0.1), PLANE, x0, 5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"steps": 0}, r"steps=0 "),
        ({"steps": -5}, r"steps=-5 "),
        ({"steps": 2.5}, r"steps=2\.5 "),
        ({"steps": 5, "record_every": 0}, r"record_every=0 "),
        ({"steps": 5, "bound": -1.0}, r"bound=-1\.0 "),
        ({"steps": 5, "ensemble": False, "x0": jnp.zeros((4, 2))}, r"ensemble=False"),
    ],
)
def test_bad_simulate_arguments(kwargs, match):
    kwargs = {"x0": jnp.zeros(2), **kwargs}
    with pytest.raises(ValueError, match=match):
        itg.simulate(itg.sgd(0.1), PLANE, **kwargs)


def test_simulate_rejects_non_optimizer():
    with pytest.raises(ValueError, match=r"optimizer='adam' is not an optdyn Integrator"):
        itg.simulate("adam", PLANE, jnp.zeros(2), 5)


def test_kinetic_energy_of_overdamped_integrator():
    opt = itg.adam(0.1)
    with pytest.raises(ValueError, match=r"integrator='adam' has no velocity"):
        itg.kinetic_temperature(opt, opt.init(jnp.zeros(2)))


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: itg.schedules.exponential(1.0, decay_rate=0.0), r"decay_rate=0\.0 "),
        (lambda: itg.schedules.cosine(1.0, decay_steps=0), r"decay_steps=0 "),
        (lambda: itg.schedules.cosine(1.0, 10, alpha=1.5), r"alpha=1\.5 "),
        (lambda: itg.schedules.inverse_time(1.0, power=2.0), r"power=2\.0 "),
        (lambda: itg.schedules.geometric_cooling(1.0, factor=1.1), r"factor=1\.1 "),
        (lambda: itg.schedules.logarithmic_cooling(1.0, offset=1.0), r"offset=1\.0 "),
        (lambda: itg.schedules.constant(-1.0), r"value=-1\.0 "),
        (lambda: itg.schedules.step(1.0, {10: -0.5}), r"boundaries_and_scales value=-0\.5 "),
    ],
)
def test_bad_schedule_arguments(build, match):
    with pytest.raises(ValueError, match=match):
        build()


@pytest.mark.parametrize(
    "factory, kwargs, hint",
    [
        (itg.sgd, {"learning_rate": 0.1}, "'lr'"),
        (itg.adam, {"lr": 1e-3, "epsilon": 1e-6}, "'eps'"),
        (itg.underdamped_langevin, {"dt": 0.1, "gamma": 1.0}, "'friction'"),
    ],
)
def test_other_libraries_names_get_our_name_as_hint(factory, kwargs, hint):
    with pytest.raises(ValueError, match=f"Did you mean {hint}"):
        factory(**kwargs)
