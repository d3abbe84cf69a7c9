"""Smoke tests of the landscape-view experiments at --quick settings, with physics checks."""

import json

import numpy as np

from optdyn.experiments import depth_and_skips, mlp_landscape
from optdyn.experiments._common import Config


def test_mlp_landscape_quick(tmp_path):
    data = mlp_landscape.run(Config(quick=True, out=str(tmp_path)))
    for name in ("mlp_landscape_pca.png", "mlp_landscape_interpolation.png", "mlp_landscape.json"):
        assert (tmp_path / name).stat().st_size > 0
    saved = json.loads((tmp_path / "mlp_landscape.json").read_text())
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
            # the endpoints of the line are the trained/initial parameters themselves
            loss = np.asarray(line["loss"])
            assert np.all(np.isfinite(loss))
    init_to_final = data["interpolation"]["init → final"]["sgd"]
    np.testing.assert_allclose(
        init_to_final["loss_b"], data["pca"]["sgd"]["final_train_loss"], rtol=1e-5
    )


def test_depth_and_skips_quick(tmp_path):
    data = depth_and_skips.run(Config(quick=True, out=str(tmp_path)))
    for name in ("depth_and_skips_gradients.png", "depth_and_skips_slices.png"):
        assert (tmp_path / name).stat().st_size > 0
    depth = data["network"]["depth"]
    plain, residual = data["plain"]["init"], data["residual"]["init"]
    # vanishing gradients: through sigmoid layers (σ' <= 1/4, LeCun weights) the plain net's
    # gradient shrinks by ~√χ ≈ 0.23 per layer; the residual net's shrinks only where the
    # layer inputs |h_{l−1}| do (they grow with depth there), by a factor ~10 in all
    assert data["plain"]["decay_per_layer_at_init"] < 0.35
    assert plain["first_over_last_hidden"] < 0.35 ** (depth - 1)
    assert residual["first_over_last_hidden"] > 0.05
    # the mean-field backprop prediction follows the measurement over decades (within ×2)
    for stage in (plain, residual):
        measured = np.asarray(stage["grad_norm_per_layer"])[1:depth]
        predicted = np.asarray(stage["mean_field_prediction_layers_2_to_depth"])
        assert np.max(np.abs(np.log(predicted / measured))) < np.log(2.0)
    # the plain network cannot leave the no-input loss H(y)
    np.testing.assert_allclose(
        data["plain"]["train_loss_per_epoch"][-1], data["label_entropy"], rtol=0.05
    )
    slices = [np.asarray(data[k]["slice"]["loss"]) for k in ("plain", "residual")]
    assert all(np.all(np.isfinite(s)) for s in slices)
