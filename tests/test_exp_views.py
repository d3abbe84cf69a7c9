"""Landscape-view experiments: smoke runs at --quick, and the gradient physics at the size the
check needs (depth 8, at initialisation: no training, no statistics)."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optdyn.experiments import depth_and_skips, mlp_landscape
from optdyn.experiments._common import Config
from optdyn.landscape.data import digits
from optdyn.landscape.mlp import mlp

pytestmark = pytest.mark.quick_experiment  # `make test` runs these with --compile-fast


def _numbers(value):
    """Every number in a JSON document (None, the encoding of a non-finite value, as NaN)."""
    if isinstance(value, dict):
        return [x for v in value.values() for x in _numbers(v)]
    if isinstance(value, list):
        return [x for v in value for x in _numbers(v)]
    if value is None:
        return [float("nan")]
    return [float(value)] if isinstance(value, int | float) else []


def _saved(path):
    saved = json.loads(path.read_text())
    assert np.all(np.isfinite(_numbers(saved)))
    return saved


def test_mlp_landscape_quick(tmp_path):
    data = mlp_landscape.run(Config(quick=True, out=str(tmp_path)))
    for name in ("mlp_landscape_pca.png", "mlp_landscape_interpolation.png"):
        assert (tmp_path / name).stat().st_size > 0
    saved = _saved(tmp_path / "mlp_landscape.json")
    assert set(saved["pca"]) == {"sgd", "momentum", "adam"}
    for name, pca in data["pca"].items():
        rho = np.asarray(pca["explained_variance"])
        assert np.all(rho >= 0) and rho.sum() <= 1 + 1e-5 and rho[0] >= rho[1], name
        # Σ d_t² = (1 − ρ₁ − ρ₂) Σ |θ_t − θ_c|², to float32 rounding
        np.testing.assert_allclose(pca["sum_d2"], pca["sum_d2_theory"], rtol=1e-3, atol=1e-4)
        assert not np.any(pca["diverged"])
        assert pca["final_train_loss"] < pca["true_loss_start"]  # training went downhill
    for panel, lines in data["interpolation"].items():
        for name, line in lines.items():
            assert line["barrier"] >= 0, (panel, name)
            assert np.all(np.isfinite(line["loss"])), (panel, name)
    # the ends of the init → final line are the recorded initial and final parameters
    for name, line in data["interpolation"]["init → final"].items():
        pca = data["pca"][name]
        np.testing.assert_allclose(line["loss_a"], pca["true_loss_start"], rtol=1e-5)
        np.testing.assert_allclose(line["loss_b"], pca["final_train_loss"], rtol=1e-5)


def test_depth_and_skips_quick(tmp_path):
    data = depth_and_skips.run(Config(quick=True, out=str(tmp_path)))
    for name in ("depth_and_skips_gradients.png", "depth_and_skips_slices.png"):
        assert (tmp_path / name).stat().st_size > 0
    saved = _saved(tmp_path / "depth_and_skips.json")
    depth = saved["network"]["depth"]
    for kind in ("plain", "residual"):
        for stage in ("init", "trained"):
            assert len(saved[kind][stage]["grad_norm_per_layer"]) == depth + 1
            assert len(saved[kind][stage]["mean_field_prediction_layers_2_to_depth"]) == depth - 1
        assert np.asarray(saved[kind]["slice"]["loss"]).shape == (7, 7)
    # the plain network can only learn the label frequencies: its loss goes to H(y) from above
    plain = np.asarray(data["plain"]["train_loss_per_epoch"])
    assert plain[0] > plain[-1] > data["label_entropy"] * (1 - 1e-3)
    np.testing.assert_allclose(plain[-1], data["label_entropy"], rtol=0.01)


def test_gradients_vanish_without_skips_as_mean_field_predicts():
    """|∂L/∂W_l| at initialisation, 8 hidden sigmoid layers, plain and residual, one start."""
    depth = 8
    data = digits()
    train = jax.tree.map(jnp.asarray, data.train)
    sizes = (data.n_features,) + (depth_and_skips.WIDTH,) * depth + (data.n_outputs,)
    params = mlp(sizes, depth_and_skips.ACTIVATION).init(jax.random.key(0))
    stages = {
        kind: depth_and_skips.layer_gradients(
            mlp(sizes, depth_and_skips.ACTIVATION, residual=kind == "residual"), params, train
        )
        for kind in ("plain", "residual")
    }
    plain, residual = (stages[k]["grad_norm"] for k in ("plain", "residual"))
    # through sigmoid layers (σ' <= 1/4, LeCun weights) the plain net's gradient shrinks by
    # ~√χ ≈ 0.23 per layer; the residual net's only where the layer inputs |h_{l−1}| do
    decay = (plain[0] / plain[depth - 1]) ** (1 / (depth - 1))
    assert decay < 0.35
    assert residual[0] / residual[depth - 1] > 0.05
    # the mean-field backprop prediction follows the measurement over decades (within ×2)
    for kind, stage in stages.items():
        measured = stage["grad_norm"][1:depth]
        assert np.max(np.abs(np.log(stage["mean_field"] / measured))) < np.log(2.0), kind
