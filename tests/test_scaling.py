"""Batch scaling rules (experiments.scaling_rules): the rules' hyperparameters, the collapse
statistic, and a small digits run where SGD's linear rule collapses and the square root not."""

import json

import numpy as np
import pytest

from optdyn.experiments import scaling_rules as sr
from optdyn.experiments._common import Config

pytestmark = pytest.mark.quick_experiment  # `make test` runs these with --compile-fast


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
def quick(tmp_path_factory):
    """`run` at --quick: the small version of the figure (6 seeds, B = 1 and 4, 2 epochs after
    20 of Adam pretraining), shared by the smoke check and the collapse checks."""
    out = tmp_path_factory.mktemp("scaling_rules")
    return sr.run(Config(quick=True, out=str(out))), out


def test_quick_run_writes_the_figure_and_finite_numbers(quick):
    result, out = quick
    assert (out / "scaling_rules.png").stat().st_size > 0
    data = json.loads((out / "scaling_rules.json").read_text())
    stats = [st for rules in data["collapse"].values() for st in rules.values()]
    z = [v["z"] for st in stats for v in st.values()]
    assert len(z) == 4 and np.all(np.isfinite(z))
    rules = [cs for r in result["mean_train_loss"].values() for cs in r.values()]
    curves = [c for cs in rules for c in cs.values()]
    assert len(curves) == 8 and np.all(np.isfinite(curves))


def test_sgd_linear_rule_collapses_and_square_root_rule_does_not(quick):
    stats, loss = quick[0]["collapse"]["sgd"], quick[0]["mean_train_loss"]["sgd"]
    z_linear, z_sqrt = stats["linear"][4]["z"], stats["sqrt"][4]["z"]
    assert z_linear < sr.Z_COLLAPSE, z_linear
    assert z_sqrt > sr.Z_COLLAPSE, z_sqrt
    # and the square-root rule is slower per epoch (half the drift at κ = 4)
    assert loss["sqrt"][4][-1] > loss["sqrt"][1][-1]


def test_adam_square_root_rule_collapses_and_linear_rule_does_not(quick):
    """Malladi et al.'s rule in the SDE regime (B = 1, small η, 1 − β₁ = 0.01, after
    pretraining: the gradient noise dominates v̂): the gap within 4 standard errors of the
    seed-to-seed spread; the linear rule (η → 4η, β and ε kept) moves far faster per epoch."""
    stats, loss = quick[0]["collapse"]["adam"], quick[0]["mean_train_loss"]["adam"]
    z_sqrt, z_linear = stats["sqrt"][4]["z"], stats["linear"][4]["z"]
    assert z_sqrt < sr.Z_COLLAPSE, z_sqrt
    assert z_linear > sr.Z_COLLAPSE, z_linear
    assert loss["linear"][4][-1] < loss["linear"][1][-1]  # 4× the step and the same v̂: faster
