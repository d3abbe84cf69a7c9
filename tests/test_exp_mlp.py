"""The network experiments (mlp_training, edge_of_stability, batch_temperature, precision):
one --quick run each, its files, and the physics in the numbers it returns.

One test per experiment (not a shared fixture), so that `pytest -n 2` never runs an
experiment twice on two workers.
"""

import json
import math

import numpy as np
import pytest

from optdyn.experiments import batch_temperature, edge_of_stability, mlp_training, precision
from optdyn.experiments._common import Config

MODULES = {
    "mlp_training": (mlp_training, ["mlp_training"]),
    "edge_of_stability": (edge_of_stability, ["edge_of_stability"]),
    "batch_temperature": (batch_temperature, ["batch_temperature"]),
    "precision": (precision, ["precision"]),
}


def _numbers(tree):
    if isinstance(tree, dict):
        for v in tree.values():
            yield from _numbers(v)
    elif isinstance(tree, list):
        for v in tree:
            yield from _numbers(v)
    elif isinstance(tree, int | float) and not isinstance(tree, bool):
        yield tree


@pytest.mark.parametrize("name", list(MODULES))
def test_quick_run_files_and_physics(name, tmp_path):
    result = MODULES[name][0].run(Config(quick=True, seed=0, out=str(tmp_path)))
    for fig in MODULES[name][1]:
        assert (tmp_path / f"{fig}.png").stat().st_size > 10_000
    data = json.loads((tmp_path / f"{name}.json").read_text())
    assert all(math.isfinite(x) for x in _numbers(data))
    if name == "mlp_training":
        # at 15 epochs heavy ball is past 94 % test accuracy (95 % is checked at full length,
        # `reaches_95pct_test` in figures/mlp_training.json)
        assert result["optimizers"]["momentum"]["final_test_accuracy_mean"] >= 0.94
        assert result["iterations_per_epoch"] == 1438 // 100
    elif name == "edge_of_stability":
        # gradient descent never stays above its stability limit 2/η: every run that starts
        # sharper than 2/η (η = 0.35, 0.5) is pushed back below it within 10 %
        for run in result["methods"]["gd"]["runs"]:
            assert run["diverged_step"] == -1
            assert run["late_sharpness_mean"] <= 1.1 * run["threshold"]
    elif name == "batch_temperature":
        runs = result["runs"]
        for ratio in {r["lr_over_b"] for r in runs}:  # equal η/B: equal temperature
            temps = [r["temperature_mean"] for r in runs if r["lr_over_b"] == ratio]
            assert max(temps) / min(temps) < 1.15
        fit = result["fit_temperature_vs_lr_over_b"]
        assert fit["slope"] > 0 and fit["r2"] > 0.95
    elif name == "precision":
        f16 = result["runs"]["float16"]
        assert np.all(np.asarray(f16["act_underflow_scaled_final"]) <= f16["act_underflow_final"])
        assert np.all(np.asarray(result["runs"]["float32"]["act_underflow_final"]) == 0)
        sweep = result["scale_sweep_at_final_float16_params"]
        nonfinite = np.asarray(sweep["nonfinite"])
        big = np.asarray(sweep["scale"]) >= 2.0**16  # S·1 > 65504: the scaled loss overflows
        assert np.all(nonfinite[big] == 1) and np.all(nonfinite[~big] == 0)
