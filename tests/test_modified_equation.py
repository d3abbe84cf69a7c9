"""The modified equation of GD (Barrett & Dherin 2021): the distance at t = kη between GD and
the flow of L is first order in η, between GD and the flow of L + (η/4)|∇L|² second order."""

import jax
import jax.numpy as jnp
import numpy as np

from optdyn.experiments import modified_equation as me
from optdyn.landscape import double_well


def test_gd_is_first_order_to_the_flow_and_second_order_to_the_modified_flow():
    U = double_well(dim=2)
    lrs = 0.1 / 2.0 ** np.arange(4)
    d = me.distances(U.energy, jnp.asarray([0.3, 1.5]), 1.6, lrs)
    # the asymptotic orders: the local slopes between successive halvings tend to 1 and 2
    # (the next terms are O(η²) and O(η³); at η ≤ 0.1 they move the slopes by < 0.05)
    assert np.all(np.abs(np.diff(np.log2(d["to_flow"])) + 1) < 0.05), d["to_flow"]
    assert np.all(np.abs(np.diff(np.log2(d["to_modified"])) + 2) < 0.05), d["to_modified"]
    assert np.all(d["to_modified"] < 0.2 * d["to_flow"])


def test_modified_loss_gradient_is_the_closed_form():
    """∇L̃ = ∇L + (η/2)H∇L, on the quadratic part: at (1, y), ∇L = (0, y), H∇L = (0, y)."""
    U = double_well(dim=2)
    g = jax.grad(me.modified_loss(U.energy, 0.2))(jnp.asarray([1.0, 0.5]))
    np.testing.assert_allclose(g, [0.0, 0.5 * (1 + 0.1)], rtol=1e-12)
