"""Tests of the potentials: listed stationary points, closed forms, dtype, jit/vmap, errors."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optdyn import landscape as ls

jax.config.update("jax_enable_x64", True)

NEEDS_ARGS = {"quadratic"}
CASES = [(name, {}) for name in ls.names() if name not in NEEDS_ARGS] + [
    ("double_well", {"dim": 2}),
    ("double_well", {"dim": 3, "barrier": 2.5, "stiffness": 4.0}),
    ("rosenbrock", {"dim": 3}),
    ("rosenbrock", {"dim": 4}),
    ("rosenbrock", {"dim": 5}),
    ("rosenbrock", {"dim": 6}),
    ("rosenbrock", {"dim": 7}),
    ("rosenbrock", {"a": 0.5, "b": 10.0}),
    ("rastrigin", {"dim": 5}),
    ("styblinski_tang", {"dim": 1}),
    ("styblinski_tang", {"dim": 3}),
    ("styblinski_tang", {"dim": 6}),
    ("valley", {"condition_number": 1e4}),
    ("valley", {"condition_number": 30.0, "dim": 5, "angle": 0.4}),
    ("saddle", {"a": 2.0, "b": 0.5}),
    ("least_squares", {"n_samples": 50, "dim": 4, "noise": 0.3, "seed": 3}),
    ("quadratic", {"hessian": [[2.0, 0.5], [0.5, 1.0]], "b": [1.0, -2.0], "c": 3.0}),
    ("quadratic", {"hessian": [[2.0, 0.0], [0.0, -1.0]], "b": [1.0, 1.0]}),
    ("quadratic", {"hessian": [[-2.0, 0.3], [0.3, -1.0]], "b": [0.5, 0.0]}),
]
IDS = [name + "".join(f"-{k}={v}" for k, v in kw.items() if k != "hessian") for name, kw in CASES]


@pytest.fixture(params=CASES, ids=IDS)
def case(request):
    name, kwargs = request.param
    return ls.get(name, **kwargs)


def _evaluate(landscape, points):
    """Values, gradients and Hessians at the points, in float64, in one jitted call."""
    x = jnp.asarray([p.x for p in points], dtype=jnp.float64)
    f = landscape.energy
    return jax.jit(jax.vmap(lambda y: (f(y), jax.grad(f)(y), jax.hessian(f)(y))))(x)


def test_listed_points_are_stationary_with_the_right_signature(case):
    points = case.minima + case.saddles
    if not points:
        pytest.skip(f"{case.name} lists no stationary point")
    values, grads, hessians = map(np.asarray, _evaluate(case, points))
    for p, value, g, h in zip(points, values, grads, hessians, strict=True):
        scale = max(1.0, np.abs(h).max())  # the gradient error of an x error of 1e-12
        assert np.linalg.norm(g) < 1e-6 * scale, (p, g)
        assert abs(value - p.value) < 1e-6 * max(1.0, abs(p.value)), (p, value)
        eig = np.linalg.eigvalsh(h)
        tol = 1e-9 * scale
        if p.kind in ("global", "local"):
            assert eig.min() > tol, (p, eig)
        elif p.kind == "saddle":
            assert eig.min() < -tol and eig.max() > tol, (p, eig)
        elif p.kind == "maximum":
            assert eig.max() < -tol, (p, eig)
        elif p.kind == "monkey":
            assert np.abs(h).max() < 1e-12, (p, h)
        else:
            raise AssertionError(f"unknown kind {p.kind!r}")


def test_metadata_is_consistent(case):
    assert isinstance(case, ls.Landscape)
    assert case.dim is not None and len(case.bounds) == case.dim
    for low, high in case.bounds:
        assert low < high
    for p in case.minima + case.saddles:
        assert len(p.x) == case.dim
        assert all(low <= v <= high for v, (low, high) in zip(p.x, case.bounds, strict=True)), p
    assert {p.kind for p in case.minima} <= {"global", "local"}
    assert {p.kind for p in case.saddles} <= {"saddle", "monkey", "maximum"}
    if case.minima:
        best = case.global_minimum
        assert best.kind == "global"
        assert all(p.value >= best.value - 1e-12 for p in case.minima)
        assert all(p.kind == "local" for p in case.minima if p.value > best.value + 1e-9)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_dtype_follows_input(case, dtype):
    x = jnp.linspace(-0.7, 0.9, case.dim, dtype=dtype)
    assert jax.eval_shape(case.energy, x).dtype == dtype
    assert jax.eval_shape(case.grad, x).dtype == dtype


def test_jit_and_vmap_agree(case):
    xs = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (5, case.dim)))
    one_by_one = jnp.stack([jax.jit(case.energy)(x) for x in xs])
    np.testing.assert_allclose(jax.jit(jax.vmap(case.energy))(xs), one_by_one, rtol=1e-12)


# Closed forms ---------------------------------------------------------------------------------


def test_quadratic_minimiser_is_minus_inverse_hessian_times_b():
    rng = np.random.default_rng(1)
    m = rng.standard_normal((4, 4))
    h, b, c = m @ m.T + 0.5 * np.eye(4), rng.standard_normal(4), 0.7
    q = ls.quadratic(h, b, c)
    x_star = -np.linalg.solve(h, b)
    (p,) = q.minima
    np.testing.assert_allclose(p.x, x_star, rtol=1e-12)
    assert p.kind == "global" and not q.saddles
    assert p.value == pytest.approx(c - 0.5 * b @ np.linalg.solve(h, b), rel=1e-12)
    np.testing.assert_allclose(jax.jit(q.hessian)(jnp.zeros(4)), h, rtol=1e-12)
    np.testing.assert_allclose(jax.jit(q.grad)(jnp.zeros(4)), b, rtol=1e-12)


def test_quadratic_classifies_indefinite_negative_and_singular():
    assert ls.quadratic([[1.0, 0.0], [0.0, -3.0]]).saddles[0].kind == "saddle"
    assert ls.quadratic(-np.eye(3)).saddles[0].kind == "maximum"
    singular = ls.quadratic([[1.0, 0.0], [0.0, 0.0]])
    assert singular.minima == () and singular.saddles == ()


@pytest.mark.parametrize("kappa,dim,angle", [(100.0, 2, 0.0), (1e4, 2, 0.3), (50.0, 6, -1.0)])
def test_valley_condition_number_and_axes(kappa, dim, angle):
    v = ls.valley(condition_number=kappa, dim=dim, angle=angle)
    eig, vec = np.linalg.eigh(np.asarray(jax.jit(v.hessian)(jnp.zeros(dim))))
    assert eig[-1] == pytest.approx(1.0, rel=1e-12)
    assert eig[0] == pytest.approx(1.0 / kappa, rel=1e-10)
    assert eig[-1] / eig[0] == pytest.approx(kappa, rel=1e-10)
    np.testing.assert_allclose(np.diff(np.log(eig)), math.log(kappa) / (dim - 1), rtol=1e-8)
    floor = np.zeros(dim)
    floor[:2] = math.cos(angle), math.sin(angle)
    assert abs(vec[:, 0] @ floor) == pytest.approx(1.0, abs=1e-10)
    # The box shows the long axis: wide along the floor, narrow across it (unrotated).
    if angle == 0.0:
        (x_lo, x_hi), (y_lo, y_hi) = v.bounds[:2]
        assert (x_hi - x_lo) / (y_hi - y_lo) == pytest.approx(math.sqrt(kappa))


def test_valley_box_shows_the_zig_zag_of_gradient_descent():
    v = ls.valley(condition_number=100.0)
    (_, a), (_, b) = v.bounds
    h = np.asarray(jax.jit(v.hessian)(jnp.zeros(2)))
    x = np.array([-0.9 * a, 0.5 * b])
    path = [x]
    for _ in range(30):  # gradient descent at η = 1.8, just below 2/λ_max = 2
        x = x - 1.8 * h @ x
        path.append(x)
    path = np.array(path)
    assert (np.sign(path[1:, 1]) == -np.sign(path[:-1, 1])).all()  # across: zig-zag
    assert (np.diff(path[:, 0]) > 0).all() and path[-1, 0] < 0.5 * path[0, 0]  # along: crawl
    assert (np.abs(path) <= [a, b]).all()  # the whole path stays in the box


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_double_well_barrier(dim):
    dw = ls.double_well(dim=dim, barrier=1.5, stiffness=2.0)
    assert [p.x[0] for p in dw.minima] == [-1.0, 1.0]
    (top,) = dw.saddles
    assert top.value == 1.5 and top.kind == ("maximum" if dim == 1 else "saddle")


def test_rosenbrock_minimum_for_general_a():
    r = ls.rosenbrock(a=-0.5, b=3.0)
    assert r.minima[0].x == (-0.5, 0.25)
    assert float(r.energy(jnp.array([-0.5, 0.25]))) == 0.0
    assert len(ls.rosenbrock(dim=5).minima) == 2  # global and the local one near (-1, 1, ...)
    assert ls.rosenbrock(dim=9).minima == (ls.Point((1.0,) * 9, 0.0, "global"),)


def test_known_reference_values():
    camel = ls.six_hump_camel()
    assert sorted(p.x for p in camel.minima if p.kind == "global") == [
        pytest.approx((-0.0898, 0.7126), abs=1e-4),
        pytest.approx((0.0898, -0.7126), abs=1e-4),
    ]
    assert camel.global_minimum.value == pytest.approx(-1.0316, abs=1e-4)
    for dim in (1, 2, 5):
        st = ls.styblinski_tang(dim)
        assert st.global_minimum.x == pytest.approx((-2.903534,) * dim, abs=1e-6)
        assert st.global_minimum.value == pytest.approx(-39.16617 * dim, abs=1e-5 * dim)
    assert len(ls.styblinski_tang(2).minima) == 4 and len(ls.styblinski_tang(2).saddles) == 5
    h = ls.himmelblau()
    assert len(h.minima) == 4 and all(p.value == 0 for p in h.minima)
    assert [p.kind for p in h.saddles].count("saddle") == 4
    assert [p.kind for p in h.saddles].count("maximum") == 1
    mb = ls.muller_brown()
    assert [round(p.value, 2) for p in mb.minima] == [-146.70, -108.17, -80.77]
    assert sorted(round(p.value, 2) for p in mb.saddles) == [-72.25, -40.66]
    assert ls.beale().global_minimum.x == (3.0, 0.5)
    assert float(ls.rastrigin(3)(jnp.zeros(3))) == 0.0
    assert float(ls.monkey_saddle()(jnp.array([1.0, 1.0]))) == -2.0


def test_from_function_wraps_a_pytree_energy():
    def energy(params):
        return jnp.sum(params["w"] ** 2) + params["b"] ** 2

    f = ls.from_function(energy, name="mine", minima=[((0.0, 0.0, 0.0), 0.0, "global")])
    params = {"w": jnp.ones(2), "b": jnp.array(2.0)}
    assert f.dim is None and f.name == "mine"
    assert float(f(params)) == 6.0
    assert f.grad(params)["b"] == 4.0
    assert f.minima == (ls.Point((0.0, 0.0, 0.0), 0.0, "global"),)
    g = ls.from_function(lambda x: jnp.sum(x**2), dim=2, bounds=[(-1, 1), (-2, 2)])
    assert g.bounds == ((-1.0, 1.0), (-2.0, 2.0))


def test_registry():
    expected = {
        "beale",
        "double_well",
        "himmelblau",
        "least_squares",
        "monkey_saddle",
        "muller_brown",
        "quadratic",
        "rastrigin",
        "rosenbrock",
        "saddle",
        "six_hump_camel",
        "styblinski_tang",
        "valley",
    }
    assert set(ls.names()) == expected
    assert ls.get("rosenbrock", dim=3).dim == 3
    assert set(ls.__all__) >= expected | {"Landscape", "Point", "get", "names", "from_function"}


# Bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build,match",
    [
        (lambda: ls.get("rosenbrok"), "name='rosenbrok'.*Did you mean 'rosenbrock'"),
        (lambda: ls.get("double_well", barier=2.0), "barier.*Did you mean 'barrier'"),
        (lambda: ls.rosenbrock(dim=1), "dim=1"),
        (lambda: ls.rosenbrock(dim=2.0), "dim=2.0"),
        (lambda: ls.rosenbrock(b=0.0), "b=0.0"),
        (lambda: ls.double_well(dim=0), "dim=0"),
        (lambda: ls.double_well(dim=True), "dim=True"),
        (lambda: ls.double_well(barrier=0.0), "barrier=0.0"),
        (lambda: ls.double_well(stiffness=-1.0), "stiffness=-1.0"),
        (lambda: ls.valley(condition_number=0.5), "condition_number=0.5"),
        (lambda: ls.valley(condition_number=float("inf")), "condition_number=inf"),
        (lambda: ls.valley(dim=1), "dim=1"),
        (lambda: ls.valley(angle=float("nan")), "angle=nan"),
        (lambda: ls.saddle(a=-1.0), "a=-1.0"),
        (lambda: ls.saddle(b=0.0), "b=0.0"),
        (lambda: ls.rastrigin(A=0.0), "A=0.0"),
        (lambda: ls.rastrigin(dim=-2), "dim=-2"),
        (lambda: ls.styblinski_tang(dim=0), "dim=0"),
        (lambda: ls.quadratic([[1.0, 2.0], [0.0, 1.0]]), "hessian=.*not symmetric"),
        (lambda: ls.quadratic([1.0, 2.0]), "hessian has shape"),
        (lambda: ls.quadratic([[1.0, float("nan")], [0, 1]]), "hessian="),
        (lambda: ls.quadratic(np.eye(2), b=[1.0, 2.0, 3.0]), "b has shape"),
        (lambda: ls.quadratic(np.eye(2), c=float("inf")), "c=inf"),
        (lambda: ls.from_function(3.0), "energy=3.0"),
        (lambda: ls.from_function(jnp.sum, dim=0), "dim=0"),
        (lambda: ls.from_function(jnp.sum, dim=2, bounds=[(0, 1)]), "bounds has 1"),
        (lambda: ls.from_function(jnp.sum, bounds=[(1, 0)]), r"bounds\[0\]"),
        (
            lambda: ls.from_function(jnp.sum, minima=[((0.0,), 0.0, "globl")]),
            r"minima\[0\]\.kind.*Did you mean 'global'",
        ),
        (lambda: ls.from_function(jnp.sum, saddles=[(0.0, 1.0)]), r"saddles\[0\]"),
        (lambda: ls.from_function(jnp.sum, dim=2, minima=[((0.0,), 0.0, "global")]), "dim=2"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(build, match):
    with pytest.raises(ValueError, match=match):
        build()
