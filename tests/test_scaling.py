"""Batch scaling rules (experiments.scaling_rules): the rules' hyperparameters, the collapse
statistic, and a small digits run where SGD's linear rule collapses and the square root not."""

import jax
import numpy as np
import pytest

from optdyn import integrators as itg
from optdyn import landscape as ls
from optdyn.experiments import scaling_rules as sr


def test_rules_scale_the_hyperparameters():
    hp = sr.adam_rules(4.0, lr=1e-3, b1=0.9, b2=0.99, eps=1e-8).hyperparams
    np.testing.assert_allclose(hp["lr"], [4e-3, 2e-3])
    np.testing.assert_allclose(hp["b1"], [0.9, 0.6])
    np.testing.assert_allclose(hp["b2"], [0.99, 0.96])
    np.testing.assert_allclose(hp["eps"], [1e-8, 0.5e-8])
    np.testing.assert_allclose(sr.sgd_rules(9.0, lr=0.01).hyperparams["lr"], [0.09, 0.03])


def test_collapse_statistic_is_the_gap_in_standard_errors():
    rng = np.random.default_rng(0)
    base = rng.normal(1.0, 0.1, (400, 6))
    same = rng.normal(1.0, 0.1, (400, 6))
    shifted = rng.normal(1.0 + 0.1 * 10 * np.sqrt(2 / 400), 0.1, (400, 6))  # 10 SE higher
    z = sr.collapse({1: base, 2: same, 4: shifted})
    assert z[2]["z"] < 4  # two samples of one distribution
    assert 8 < z[4]["z"] < 12 and abs(z[4]["gap_over_spread"] - np.sqrt(2 / 400) * 10) < 0.2


@pytest.fixture(scope="module")
def sgd_curves():
    data = ls.digits()
    model = ls.mlp((64, 16, 10), activation="sigmoid")
    curves = {"linear": {}, "sqrt": {}}
    for kappa in (1, 4):
        res = itg.train(
            model,
            data,
            sr.sgd_rules(kappa, 0.02),
            epochs=2,
            batch_size=8 * kappa,
            seeds=4,
            key=jax.random.key(0),
            dtype=np.float32,
        )
        loss = np.asarray(res.train_loss)
        curves["linear"][kappa], curves["sqrt"][kappa] = loss[0], loss[1]
    return curves


def test_sgd_linear_rule_collapses_and_square_root_rule_does_not(sgd_curves):
    z_linear = sr.collapse(sgd_curves["linear"])[4]["z"]
    z_sqrt = sr.collapse(sgd_curves["sqrt"])[4]["z"]
    assert z_linear < sr.Z_COLLAPSE, z_linear
    assert z_sqrt > sr.Z_COLLAPSE, z_sqrt
    # and the square-root rule is slower per epoch (half the drift at κ = 4)
    assert sgd_curves["sqrt"][4][:, -1].mean() > sgd_curves["sqrt"][1][:, -1].mean()
