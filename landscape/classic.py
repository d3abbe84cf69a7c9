"""Classic optimisation test functions: Rosenbrock, Beale, Himmelblau, six-hump camel.

Stationary points other than closed forms were found by Newton's method from a dense grid in
float64, classified by the eigenvalues of the Hessian and deduplicated; the digits are
hard-coded (gradient norm < 1e-12 at every listed point).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ._base import BoundEnergy, Landscape
from ._dtype import like
from ._points import point
from .validate import check_int, check_positive, check_real

# Local minimum of the extended Rosenbrock function near (-1, 1, ..., 1) for a=1, b=100,
# 4 <= dim <= 7 (Shang & Qiu 2006), refined by Newton in float64.
_ROSENBROCK_LOCAL = {
    4: ((-0.7756592265653527, 0.6130933654850435, 0.38206284633839316, 0.14597201855219463),
        3.701428610430018),
    5: ((-0.9620510206947501, 0.9357393959767101, 0.8807136041943207, 0.7778776758544064,
         0.605093678592653), 3.930839434133028),
    6: ((-0.9865749795709937, 0.9833982288361818, 0.9721066700530919, 0.947437436826436,
         0.8986511848517296, 0.8075739520354175), 3.973940500930295),
    7: ((-0.9917225725614055, 0.9935553935033712, 0.9921733215946921, 0.986898762690314,
         0.975164756608873, 0.9514319827049926, 0.9052228177139535), 3.983600536424854),
}  # fmt: skip


def rosenbrock_energy(params: dict, x: jax.Array) -> jax.Array:
    """Σ b (x_{i+1} − x_i²)² + (a − x_i)² for params {"a": a, "b": b}."""
    a, b = like(params["a"], x), like(params["b"], x)
    return jnp.sum(b * (x[1:] - x[:-1] ** 2) ** 2 + (a - x[:-1]) ** 2)


def rosenbrock(dim: int = 2, a: float = 1.0, b: float = 100.0) -> Landscape:
    r"""The (extended) Rosenbrock banana: a curved, flat-bottomed valley.

    .. math::
        U(x) = \sum_{i=0}^{d-2} b\,(x_{i+1} - x_i^2)^2 + (a - x_i)^2

    For d = 2 the only minimum is (a, a²) with U = 0; for a = 1 (or 0) it is (a, …, a) in
    any dimension. For a = 1, b = 100 and 4 <= d <= 7 a second, local minimum near
    (−1, 1, …, 1) is listed too. Other (d > 2, a ∉ {0, 1}) minima are not listed.

    Args:
      dim: dimension d >= 2.
      a: position parameter.
      b: valley stiffness > 0.

    Returns:
      A `Landscape` named "rosenbrock".

    References:
      H. H. Rosenbrock, "An automatic method for finding the greatest or least value of a
      function", The Computer Journal 3 (1960) 175-184. Y.-W. Shang, Y.-H. Qiu, "A note on
      the extended Rosenbrock function", Evolutionary Computation 14 (2006) 119-126.
    """
    dim = check_int("dim", dim, minimum=2)
    check_real("a", a)
    check_positive("b", b)
    a, b = float(a), float(b)

    minima = ()
    if dim == 2:
        minima = (point((a, a * a), 0.0, "global"),)
    elif a in (0.0, 1.0):
        minima = (point((a,) * dim, 0.0, "global"),)
    if a == 1.0 and b == 100.0 and dim in _ROSENBROCK_LOCAL:
        minima += (point(*_ROSENBROCK_LOCAL[dim], "local"),)
    lo, hi = min(-2.0, a - 1.0), max(2.0, a + 1.0)
    bounds = ((lo, hi), (min(-1.0, a * a - 2.0), max(3.0, a * a + 2.0)))
    if dim > 2:
        bounds = ((lo, hi),) * dim
    return Landscape(
        energy=BoundEnergy(rosenbrock_energy, {"a": a, "b": b}),
        name="rosenbrock",
        dim=dim,
        bounds=bounds,
        minima=minima,
        description=f"Rosenbrock banana valley, {dim}-D",
    )


def beale() -> Landscape:
    r"""Beale's function: a flat plateau with sharp ridges and a minimum in a narrow corner.

    .. math::
        U(x, y) = (1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2

    Global minimum (3, 0.5) with U = 0; saddles at (0, 1) and ≈ (0.1005, −2.6445). The whole
    line x = 0 has ∂U/∂y = 0.

    Returns:
      A 2-D `Landscape` named "beale".

    References:
      E. M. L. Beale, "On an iterative method for finding a local minimum of a function of
      more than one variable", Tech. Rep. 25, Princeton University (1958).
    """

    def energy(p: jax.Array) -> jax.Array:
        x, y = p[0], p[1]
        return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2

    return Landscape(
        energy=energy,
        name="beale",
        dim=2,
        bounds=((-4.5, 4.5), (-4.5, 4.5)),
        minima=(point((3.0, 0.5), 0.0, "global"),),
        saddles=(
            point((0.10053793732415833, -2.6445135850231254), 9.86451228475556, "saddle"),
            point((0.0, 1.0), 14.203125, "saddle"),
        ),
        description="Beale's function",
    )


def himmelblau() -> Landscape:
    r"""Himmelblau's function: four equal minima around one maximum.

    .. math::
        U(x, y) = (x^2 + y - 11)^2 + (x + y^2 - 7)^2

    Four global minima with U = 0, four saddles between them and a local maximum at
    ≈ (−0.2708, −0.9230) (listed among `saddles` with kind "maximum").

    Returns:
      A 2-D `Landscape` named "himmelblau".

    References:
      D. M. Himmelblau, "Applied Nonlinear Programming", McGraw-Hill (1972).
    """

    def energy(p: jax.Array) -> jax.Array:
        x, y = p[0], p[1]
        return (x**2 + y - 11.0) ** 2 + (x + y**2 - 7.0) ** 2

    return Landscape(
        energy=energy,
        name="himmelblau",
        dim=2,
        bounds=((-5.0, 5.0), (-5.0, 5.0)),
        minima=(
            point((3.0, 2.0), 0.0, "global"),
            point((-2.805118086952745, 3.131312518250573), 0.0, "global"),
            point((-3.779310253377747, -3.2831859912861696), 0.0, "global"),
            point((3.5844283403304917, -1.8481265269644036), 0.0, "global"),
        ),
        saddles=(
            point((3.3851541836070207, 0.0738518798377493), 13.31192627040559, "saddle"),
            point((0.08667750455539634, 2.8842547011747763), 67.71915008752613, "saddle"),
            point((-3.0730257507643897, -0.08135304428796751), 104.01516291755811, "saddle"),
            point((-0.12796134673068005, -1.9537149802445766), 178.33723920192745, "saddle"),
            point((-0.2708445906673476, -0.9230385564799815), 181.6165215225827, "maximum"),
        ),
        description="Himmelblau's function",
    )


def six_hump_camel() -> Landscape:
    r"""The six-hump camel back: two global minima, four local ones, and saddles between.

    .. math::
        U(x, y) = \left(4 - 2.1 x^2 + \tfrac{x^4}{3}\right) x^2 + xy + (4y^2 - 4) y^2

    Global minima ±(0.0898, −0.7127) with U = −1.0316; local minima ±(1.7036, −0.7961) with
    U = −0.2155 and ±(1.6071, 0.5687) with U = 2.1043; seven saddles (one at 0). Two
    local maxima at ±(1.2302, 0.1623) with U = 2.4963 are listed among `saddles` with kind
    "maximum". The function is symmetric under (x, y) → (−x, −y).

    Returns:
      A 2-D `Landscape` named "six_hump_camel".

    References:
      L. C. W. Dixon, G. P. Szegö, "The global optimisation problem: an introduction", in
      Towards Global Optimisation 2, North-Holland (1978) 1-15.
    """

    def energy(p: jax.Array) -> jax.Array:
        x, y = p[0], p[1]
        return (4.0 - 2.1 * x**2 + x**4 / 3.0) * x**2 + x * y + (4.0 * y**2 - 4.0) * y**2

    def pair(x, y, value, kind):
        return point((x, y), value, kind), point((-x, -y), value, kind)

    return Landscape(
        energy=energy,
        name="six_hump_camel",
        dim=2,
        bounds=((-2.2, 2.2), (-1.2, 1.2)),
        minima=(
            *pair(0.08984201310031806, -0.7126564030207396, -1.0316284534898774, "global"),
            *pair(1.7036067149699807, -0.7960835686726251, -0.21546382438371725, "local"),
            *pair(1.6071047529201974, 0.5686514548841314, 2.1042503103112584, "local"),
        ),
        saddles=(
            point((0.0, 0.0), 0.0, "saddle"),
            *pair(1.1092053368047865, -0.7682680925095399, 0.5437186009781853, "saddle"),
            *pair(1.638067984189779, 0.22867406904439413, 2.2293571975307143, "saddle"),
            *pair(1.296070267167109, 0.6050843880386585, 2.2294708180298595, "saddle"),
            *pair(1.2302298765166524, 0.16233458445899493, 2.496295351023577, "maximum"),
        ),
        description="six-hump camel back",
    )
