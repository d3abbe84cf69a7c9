"""The public plotting helpers draw what they promise (artists, clipping, quantiles, errors)."""

import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from optdyn import landscape as ls  # noqa: E402
from optdyn.experiments import plotting  # noqa: E402


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


def test_plot_landscape_marks_critical_points_and_uses_the_known_minimum(ax):
    U = ls.rosenbrock()
    cs, label = plotting.plot_landscape(ax, U, log=True, n=40)
    assert cs.levels.size > 5
    assert "U_{\\min}" in label and "{" not in label.replace("{\\min}", "").replace("{10}", "")
    labels = ax.get_legend_handles_labels()[1]
    assert labels == ["minimum"]
    # Log contours measured from the true U_min = 0, not the grid's lowest value (> 0 here).
    X, Y, Z = plotting.energy_grid(U, 40)
    assert Z.min() > 0
    eps = 1e-6 * np.ptp(Z)
    assert cs.zmin == pytest.approx(np.log10(Z.min() - 0.0 + eps))  # not log10(eps)
    assert ax.get_xlim() == tuple(U.bounds[0])


def test_saddle_gets_a_saddle_marker(ax):
    plotting.plot_landscape(ax, ls.saddle(), n=20)
    assert ax.get_legend_handles_labels()[1] == ["saddle"]


def test_plot_path_clips_where_the_path_leaves_the_box(ax):
    path = np.stack([np.linspace(0, 3, 31), np.zeros(31)], axis=1)  # leaves x ≤ 1 at x = 1.1
    line = plotting.plot_path(ax, path, color="C0", label="p", bounds=((-1, 1), (-1, 1)))
    x = line.get_xdata()
    assert len(x) == 12 and x[-1] == pytest.approx(1.1) and x[-2] == pytest.approx(1.0)
    assert len(ax.lines) == 2  # the path and its end marker


def test_plot_ensemble_paths_and_cloud(ax):
    paths = np.zeros((7, 5, 2))  # (n, steps, dim), as Trajectory.positions
    line = plotting.plot_ensemble(ax, jnp.asarray(paths), color="C1", label="ens", max_paths=3)
    assert len(ax.lines) == 3 and line.get_label() == "ens"
    assert len(line.get_xdata()) == 5
    cloud = plotting.plot_ensemble(ax, paths[:, -1], color="C2", label="cloud")
    assert cloud.get_offsets().shape == (7, 2)


def test_plot_loss_bands_median_and_quantiles(ax):
    rng = np.random.default_rng(0)
    losses = rng.exponential(size=(200, 6))  # (n, T)
    line, band = plotting.plot_loss_bands(ax, np.arange(6), losses, color="C3")
    np.testing.assert_allclose(line.get_ydata(), np.median(losses, axis=0))
    verts = band.get_paths()[0].vertices
    assert verts[:, 1].max() == pytest.approx(np.quantile(losses, 0.9, axis=0).max())
    with pytest.raises(ValueError, match="quantiles"):
        plotting.plot_loss_bands(ax, np.arange(6), losses, color="C3", quantiles=(0.9, 0.1))


def test_theory_line_is_dashed_and_on_top(ax):
    line = plotting.theory_line(ax, [0, 1], [1, 2], label="theory")
    assert line.get_linestyle() == "--" and line.get_zorder() == 5
    assert line.get_label() == "theory"
