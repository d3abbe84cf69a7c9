"""The noisy quadratic model: ensemble means of the loss equal the exact recursions.

U = ½Σh_iθ_i² with gradient noise of covariance H/B (`gaussian(h, B)`); the expected loss of
SGD, of heavy ball (3×3 recursion per coordinate) and of SGD preconditioned by H^(−γ) follows
`experiments._nqm_theory` exactly, at every step: the simulated means must agree within 4
standard errors at several steps, and must differ from the noiseless loss by many of them.
Preconditioned SGD is run as plain SGD in the coordinates φ = H^(γ/2)θ, where the curvatures
are h^(1−γ) and the noise covariance h^(1−γ)/B, with the same loss.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optdyn import integrators as itg
from optdyn import landscape as ls
from optdyn.experiments import _nqm_theory as nqm

H = np.geomspace(1.0, 0.05, 8)
B, N, STEPS, CHECK = 2, 3000, 80, (3, 20, 80)
LRS = [0.4, 1.2]


def _check(loss, theory, noiseless=None):
    loss = np.asarray(loss)  # (sweep, n, steps + 1)
    mean = loss.mean(axis=1)
    se = loss.std(axis=1, ddof=1) / np.sqrt(N)
    for t in CHECK:
        z = (mean[:, t] - theory[:, t]) / se[:, t]
        assert np.all(np.abs(z) < 4), (t, z)
    if noiseless is not None:  # the noise floor is resolved: many SE above the noiseless loss
        assert np.all((mean[:, -1] - noiseless[:, -1]) > 10 * se[:, -1])


def _sgd_run(h, x0, key):
    traj = itg.simulate(
        itg.sgd(LRS), ls.quadratic(np.diag(h)), x0, STEPS, jax.random.key(key),
        noise=itg.gaussian(h, B), record_positions=False,
    )  # fmt: skip
    return traj.loss


def test_sgd_and_preconditioned_sgd_follow_the_recursion():
    x0 = jnp.ones((N, H.size))
    theory = nqm.sgd_loss(H, 1.0, LRS, B, STEPS)
    noiseless = nqm.sgd_loss(H, 1.0, LRS, np.inf, STEPS)
    _check(_sgd_run(H, x0, 0), theory, noiseless)
    gamma = 0.5
    phi0 = jnp.ones((N, H.size)) * H ** (gamma / 2)
    loss = _sgd_run(H ** (1 - gamma), phi0, 1)
    _check(loss, nqm.sgd_loss(H, 1.0, LRS, B, STEPS, gamma))
    # and preconditioning is not a no-op: the plain recursion is far off at step 20
    plain = nqm.sgd_loss(H, 1.0, LRS, B, STEPS)
    mean, se = np.asarray(loss).mean(1), np.asarray(loss).std(1) / np.sqrt(N)
    assert np.all(np.abs(mean[:, 20] - plain[:, 20]) > 10 * se[:, 20])


def test_heavy_ball_follows_the_3x3_recursion():
    beta = 0.7
    traj = itg.simulate(
        itg.momentum(LRS, beta), ls.quadratic(np.diag(H)), jnp.ones((N, H.size)), STEPS,
        jax.random.key(2), noise=itg.gaussian(H, B), record_positions=False,
    )  # fmt: skip
    theory = nqm.momentum_loss(H, 1.0, LRS, beta, B, STEPS)
    _check(traj.loss, theory, nqm.momentum_loss(H, 1.0, LRS, beta, np.inf, STEPS))


def test_steps_to_target():
    loss = np.array([[4.0, 2.0, 1.0, 0.5], [4.0, 3.0, 3.0, 3.0]])
    np.testing.assert_array_equal(nqm.steps_to_target(loss, 1.0), [2.0, np.nan])
    with pytest.raises(AssertionError):
        np.testing.assert_array_equal(nqm.steps_to_target(loss, 1.0), [3.0, np.nan])
