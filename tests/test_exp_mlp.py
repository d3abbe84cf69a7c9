"""The network experiments (mlp_training, edge_of_stability, batch_temperature, precision).

A --quick smoke run each (files written, JSON finite), and the physics each figure rests on,
checked through the experiment's own functions at a size chosen for that check (fixed seeds).
One test per experiment (not a shared fixture), so that `pytest -n 2` never runs an
experiment twice on two workers.
"""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _json_leaves import json_numbers

from optdyn import integrators as itg
from optdyn.experiments import batch_temperature, edge_of_stability, mlp_training, precision
from optdyn.experiments._common import Config
from optdyn.landscape.data import digits
from optdyn.landscape.mlp import mlp

pytestmark = pytest.mark.quick_experiment  # `make test` runs these with --compile-fast

MODULES = {
    "mlp_training": mlp_training,
    "edge_of_stability": edge_of_stability,
    "batch_temperature": batch_temperature,
    "precision": precision,
}


@pytest.mark.parametrize("name", list(MODULES))
def test_quick_run_writes_finite_files(name, tmp_path):
    result = MODULES[name].run(Config(quick=True, seed=0, out=str(tmp_path)))
    assert (tmp_path / f"{name}.png").stat().st_size > 10_000
    data = json.loads((tmp_path / f"{name}.json").read_text())
    assert all(math.isfinite(x) for x in json_numbers(data))
    if name == "mlp_training":
        assert result["iterations_per_epoch"] == 1438 // 100
        assert set(result["optimizers"]) == set(mlp_training.OPTIMIZERS)
    elif name == "batch_temperature":
        # T = η·tr C·(N−B)/(2B(N−1)) is measured from the per-sample gradients: runs with
        # equal η/B share it (tr C barely moves near θ*), and it rises with η/B
        runs = result["runs"]
        for ratio in {r["lr_over_b"] for r in runs}:
            temps = [r["temperature_mean"] for r in runs if r["lr_over_b"] == ratio]
            assert max(temps) / min(temps) < 1.15
        assert result["fit_temperature_vs_lr_over_b"]["slope"] > 0
    elif name == "precision":
        f32 = result["runs"]["float32"]
        assert np.all(np.asarray(f32["act_underflow_final"]) == 0)
        assert np.all(np.asarray(f32["grad_relative_error_final"]) == 0)


def test_heavy_ball_reaches_94pct_test_accuracy_in_15_epochs():
    # 359 test samples: one standard error of an accuracy near 95 % is 1.2 points, so the
    # bar sits one below the 95 % that the full run (250 epochs, 4 seeds) passes
    res = mlp_training.train("momentum", digits(), epochs=15, seeds=1, key=jax.random.key(0))
    assert float(np.asarray(res.test_accuracy)[0, -1]) >= 0.94


def test_gradient_descent_is_pushed_back_to_its_stability_limit():
    # 300 digits, 64-16-10: the network starts sharper than 2/η for η = 0.35 and 0.5;
    # gradient descent never diverges and its late sharpness stays within 10 % of 2/η
    s = {"n_train": 300, "steps": 200, "record_every": 20, "sizes": (64, 16, 10)}
    U, p0 = edge_of_stability.problem(s, seed=0)
    steps, _, sharp, div = edge_of_stability.simulate(U, p0, s, jax.random.key(0))["gd"]
    late = steps >= steps[-1] // 2
    for i, lr in enumerate(edge_of_stability.METHODS["gd"]["lrs"]):
        limit = edge_of_stability.threshold("gd", lr, 0.0)
        assert div[i] == -1
        if lr >= 0.35:
            assert sharp[i, 0] > limit
        assert sharp[i, late].mean() <= 1.1 * limit


def test_float16_underflow_and_loss_scaling():
    # the digits network after 20 epochs of heavy ball: float16 flushes backward signals
    # below 2⁻²⁵ to zero (at least the float32 prediction), loss scaling S = 2¹⁰ recovers
    # most of them, and the sweep overflows exactly where S·(loss ≤ 1) passes 65504
    data = digits()
    model = mlp((64, 50, 10), activation="sigmoid")
    res = itg.train(
        model, data, itg.momentum(0.1, 0.9), epochs=20, batch_size=100, key=jax.random.key(0)
    )
    params = jax.tree.map(lambda a: a[0], res.final_params)
    batch = jax.tree.map(jnp.asarray, {"x": data.x_train[:100], "y": data.y_train[:100]})
    grads = jax.jit(precision.activation_gradients, static_argnums=(0, 3))
    ref = [np.asarray(d) for d in grads(model, params, batch, "float32", 1.0)]
    plain = [np.asarray(d) for d in grads(model, params, batch, "float16", 1.0)]
    scaled = [np.asarray(d) for d in grads(model, params, batch, "float16", precision.SCALE)]
    for r, p, s in zip(ref, plain, scaled, strict=True):
        under = np.mean((p == 0) & (r != 0))
        predicted = np.mean((np.abs(r) < precision.F16_ZERO) & (r != 0))
        assert predicted > 0.01 and under >= predicted
        assert np.mean((s == 0) & (r != 0)) < 0.5 * under
    sweep = precision._scale_sweep(model, params, batch, ref)
    nonfinite = np.asarray(sweep["nonfinite"])
    big = np.asarray(sweep["scale"]) >= 2.0**16
    assert np.all(nonfinite[big] == 1) and np.all(nonfinite[~big] == 0)
