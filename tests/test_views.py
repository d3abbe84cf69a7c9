"""Landscape views against closed forms: interpolation, filter normalisation, PCA plane, grids."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optdyn.landscape import views

# A quadratic L(θ) = ½ θᵀAθ + bᵀθ on a pytree θ = {"w": (2, 3), "b": (3,)}: 9 parameters.
RNG = np.random.default_rng(0)
_Q = RNG.standard_normal((9, 9))
A = _Q @ _Q.T / 9 + 0.5 * np.eye(9)  # positive definite
B = RNG.standard_normal(9)


def _flat(p):
    return jnp.concatenate([jnp.ravel(p["b"]), jnp.ravel(p["w"])])  # ravel_pytree's key order


def quad_loss(p):
    x = _flat(p)
    return 0.5 * x @ jnp.asarray(A, x.dtype) @ x + jnp.asarray(B, x.dtype) @ x


def quad_np(x):
    return 0.5 * x @ A @ x + B @ x


def _params(seed, dtype=np.float64):
    r = np.random.default_rng(seed)
    return {
        "w": jnp.asarray(r.standard_normal((2, 3)), dtype),
        "b": jnp.asarray(r.standard_normal(3), dtype),
    }


def test_interpolation_equals_closed_form_on_quadratic():
    pa, pb = _params(1), _params(2)
    xa, xb = np.asarray(_flat(pa)), np.asarray(_flat(pb))
    alpha = np.linspace(-0.5, 1.5, 21)
    line = views.interpolate(quad_loss, pa, pb, alpha)
    d = xb - xa
    # L(θ_A + αΔ) = L_A + α ∇L_A·Δ + ½ α² ΔᵀAΔ
    closed = quad_np(xa) + alpha * ((A @ xa + B) @ d) + 0.5 * alpha**2 * (d @ A @ d)
    np.testing.assert_allclose(line.loss, closed, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose([line.loss_a, line.loss_b], [quad_np(xa), quad_np(xb)], rtol=1e-12)
    np.testing.assert_allclose(line.distance, np.linalg.norm(d), rtol=1e-12)
    # convex along the segment: the maximum on [0, 1] is an end, so no barrier
    assert float(line.barrier) == 0.0


def test_barrier_of_a_double_well():
    # L = (x² − 1)² between the two minima ±1: the barrier is L(0) − 0 = 1 at α = ½
    loss = lambda p: (p["x"][0] ** 2 - 1.0) ** 2  # noqa: E731
    line = views.interpolate(loss, {"x": jnp.array([-1.0])}, {"x": jnp.array([1.0])}, n=41)
    np.testing.assert_allclose(line.barrier, 1.0, rtol=1e-12)
    np.testing.assert_allclose(line.alpha_peak, 0.5, atol=1e-12)
    # between two points of the same well there is none
    same = views.interpolate(loss, {"x": jnp.array([0.9])}, {"x": jnp.array([1.2])}, n=41)
    assert float(same.barrier) == 0.0


@pytest.mark.parametrize("filter_axis", [-1, 0])
def test_filter_normalized_direction_has_the_filter_norms_of_theta(filter_axis):
    r = np.random.default_rng(3)
    params = {
        "dense": jnp.asarray(r.standard_normal((5, 4)) * np.array([0.1, 1.0, 3.0, 10.0])),
        "conv": jnp.asarray(r.standard_normal((3, 3, 2, 6))),
        "bias": jnp.asarray(r.standard_normal(4)),
        "scale": jnp.asarray(2.0),
    }
    d = views.filter_normalized_direction(jax.random.key(0), params, filter_axis=filter_axis)
    for name in ("dense", "conv"):
        w, dw = np.asarray(params[name]), np.asarray(d[name])
        axis = filter_axis % w.ndim
        others = tuple(i for i in range(w.ndim) if i != axis)
        np.testing.assert_allclose(
            np.sqrt((dw**2).sum(axis=others)), np.sqrt((w**2).sum(axis=others)), rtol=1e-12
        )
        assert not np.allclose(dw, w)  # a random direction, not θ itself
    assert np.all(np.asarray(d["bias"]) == 0) and float(d["scale"]) == 0.0
    copied = views.filter_normalized_direction(jax.random.key(0), params, biases="copy")
    np.testing.assert_array_equal(copied["bias"], params["bias"])
    # the same key gives the same direction; another key another one
    again = views.filter_normalized_direction(jax.random.key(0), params, filter_axis=filter_axis)
    np.testing.assert_array_equal(again["dense"], d["dense"])
    other = views.filter_normalized_direction(jax.random.key(1), params, filter_axis=filter_axis)
    assert not np.allclose(other["dense"], d["dense"])


def test_filter_normalized_direction_rejects_unknown_bias_rule():
    with pytest.raises(ValueError, match="biases"):
        views.filter_normalized_direction(jax.random.key(0), _params(0), biases="ignore")


def test_plane_grid_equals_closed_form_on_quadratic():
    center = _params(4)
    d1, d2 = _params(5), _params(6)
    a, b = np.linspace(-1, 1, 7), np.linspace(-2, 2, 5)
    sl = views.plane_loss(quad_loss, center, (d1, d2), a, b, chunk=None)
    x0, u, v = (np.asarray(_flat(p)) for p in (center, d1, d2))
    closed = np.array([[quad_np(x0 + ai * u + bj * v) for ai in a] for bj in b])
    assert sl.loss.shape == (5, 7)
    np.testing.assert_allclose(sl.loss, closed, rtol=1e-12)
    # in chunks: the same numbers
    chunked = views.plane_loss(quad_loss, center, (d1, d2), a, b, chunk=4)
    np.testing.assert_allclose(chunked.loss, sl.loss, rtol=1e-12)
    # the Taylor model from Hessian-vector products is exact on a quadratic
    model = views.restricted_quadratic(quad_loss, center, (d1, d2))
    basis = np.stack([u, v])
    np.testing.assert_allclose(model[1], basis @ (A @ x0 + B), rtol=1e-10)
    np.testing.assert_allclose(model[2], basis @ A @ basis.T, rtol=1e-10)
    A_, B_ = np.meshgrid(a, b)
    coords = np.stack([A_.ravel(), B_.ravel()], axis=1)
    np.testing.assert_allclose(
        views.quadratic_value(model, coords).reshape(5, 7), closed, rtol=1e-10
    )


def test_random_slice_is_centred_on_theta_and_keeps_dtype():
    center = _params(7, np.float32)
    sl = views.random_slice(quad_loss, center, jax.random.key(0), span=0.5, n=5)
    assert sl.loss.dtype == jnp.float32 and sl.a.dtype == jnp.float32
    np.testing.assert_allclose(sl.loss[2, 2], quad_loss(center), rtol=1e-6)
    np.testing.assert_allclose(sl.a, np.linspace(-0.5, 0.5, 5), rtol=1e-6)
    # biases are not perturbed: moving along δ₁ changes only the "w" leaf
    assert np.all(np.asarray(sl.directions[0]["b"]) == 0)


def _planar_trajectory(T=30, D=7, off=(3.0, 2.0, 1.0), seed=8):
    """θ_t = c + M_t R: M (T, 3) has orthogonal columns of norms `off`, last row 0."""
    r = np.random.default_rng(seed)
    q, _ = np.linalg.qr(r.standard_normal((T - 1, 3)))
    m = np.vstack([q * np.asarray(off), np.zeros(3)])
    rot, _ = np.linalg.qr(r.standard_normal((D, D)))
    c = r.standard_normal(D)
    flat = c + m @ rot[:, :3].T
    return {"x": jnp.asarray(flat)}, m, rot[:, :3]


def test_pca_of_a_planar_trajectory_is_exact():
    positions, m, rot = _planar_trajectory(off=(3.0, 2.0, 0.0))
    plane = views.pca_plane(positions)
    np.testing.assert_allclose(plane.distance, 0.0, atol=1e-12)
    np.testing.assert_allclose(np.sum(plane.explained_variance), 1.0, rtol=1e-12)
    np.testing.assert_allclose(plane.explained_variance, [9 / 13, 4 / 13], rtol=1e-12)
    np.testing.assert_allclose(plane.coords[0], np.abs(m[0, :2]), rtol=1e-10)  # sign rule
    np.testing.assert_allclose(np.abs(plane.coords), np.abs(m[:, :2]), atol=1e-12)
    # the honest view: on the plane, the map's loss is the true loss
    loss = lambda p: jnp.sum(jnp.sin(p["x"]) ** 2) + 0.1 * jnp.sum(p["x"]) ** 2  # noqa: E731
    honest = views.honest_view(loss, positions, plane)
    np.testing.assert_allclose(honest.plane_loss, honest.true_loss, rtol=1e-10)
    np.testing.assert_allclose(honest.true_loss, [loss({"x": x}) for x in positions["x"]])


def test_pca_of_an_off_plane_trajectory_shows_the_distance():
    positions, m, rot = _planar_trajectory(off=(3.0, 2.0, 1.0))
    plane = views.pca_plane(positions)
    # the best plane is span(e₁, e₂) of M: each iterate is |M_t3| from it
    np.testing.assert_allclose(plane.distance, np.abs(m[:, 2]), atol=1e-12)
    np.testing.assert_allclose(plane.explained_variance, [9 / 14, 4 / 14], rtol=1e-12)
    np.testing.assert_allclose(plane.displacement, np.linalg.norm(m, axis=1), atol=1e-12)
    u1 = np.asarray(plane.directions[0]["x"])
    np.testing.assert_allclose(abs(u1 @ rot[:, 0]), 1.0, rtol=1e-12)
    # Σ d_t² = (1 − ρ₁ − ρ₂) Σ |θ_t − θ_c|²
    np.testing.assert_allclose(
        np.sum(plane.distance**2),
        (1 - np.sum(plane.explained_variance)) * np.sum(plane.displacement**2),
        rtol=1e-10,
    )
    # off the plane the map's loss differs from the loss the path had
    loss = lambda p: jnp.sum(p["x"] ** 2)  # noqa: E731
    honest = views.honest_view(loss, positions, plane)
    assert np.max(np.abs(honest.plane_loss - honest.true_loss)) > 1e-2
    # the grid covers the projected path
    sl = views.pca_slice(loss, plane, n=9, margin=0.1)
    assert sl.a[0] < np.min(plane.coords[:, 0]) and sl.a[-1] > np.max(plane.coords[:, 0])
    assert sl.b[0] < np.min(plane.coords[:, 1]) and sl.b[-1] > np.max(plane.coords[:, 1])
    assert np.all(np.isfinite(sl.loss))
