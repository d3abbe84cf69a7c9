"""The Müller–Brown potential: the standard 2-D model of a chemical reaction path."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ._base import BoundEnergy, Landscape
from ._dtype import like
from ._points import point

# Standard parameters (Müller & Brown 1979), one column per Gaussian term.
_A = np.array([-200.0, -100.0, -170.0, 15.0])
_a = np.array([-1.0, -1.0, -6.5, 0.7])
_b = np.array([0.0, 0.0, 11.0, 0.6])
_c = np.array([-10.0, -10.0, -6.5, 0.7])
_X0 = np.array([1.0, 0.0, -0.5, -1.0])
_Y0 = np.array([0.0, 0.5, 1.5, 1.0])


def muller_brown_energy(params: None, p: jax.Array) -> jax.Array:
    """Σ_k A_k exp(a_k dx² + b_k dx dy + c_k dy²), dx = x − x⁰_k, dy = y − y⁰_k.

    No parameters (`params` is None): the coefficients are the fixed constants of the
    potential, so XLA folds them (the zeros of b drop terms; traced they ran ~20x slower on
    an ensemble of 10⁵, one fused loop recomputing the exponentials).
    """
    dx = p[0] - like(_X0, p)
    dy = p[1] - like(_Y0, p)
    q = like(_a, p) * dx**2 + like(_b, p) * dx * dy + like(_c, p) * dy**2
    return jnp.sum(like(_A, p) * jnp.exp(q))


def muller_brown() -> Landscape:
    r"""The Müller–Brown potential: three minima joined by two saddles.

    .. math::
        U(x, y) = \sum_{k=1}^{4} A_k \exp\!\left(a_k (x - x^0_k)^2
            + b_k (x - x^0_k)(y - y^0_k) + c_k (y - y^0_k)^2\right)

    with A = (−200, −100, −170, 15), a = (−1, −1, −6.5, 0.7), b = (0, 0, 11, 0.6),
    c = (−10, −10, −6.5, 0.7), x⁰ = (1, 0, −0.5, −1), y⁰ = (0, 0.5, 1.5, 1). Minima at
    ≈ (−0.558, 1.442), (0.623, 0.028), (−0.050, 0.467) with U ≈ −146.70, −108.17, −80.77;
    saddles at ≈ (0.212, 0.293) and (−0.822, 0.624) with U ≈ −72.25 and −40.66. Energies
    are of order 100, so temperatures of order 10 make barrier crossings visible.

    Returns:
      A 2-D `Landscape` named "muller_brown".

    References:
      K. Müller, L. D. Brown, "Location of saddle points and minimum energy paths by a
      constrained simplex optimization procedure", Theoretica Chimica Acta 53 (1979) 75-93.
    """

    return Landscape(
        energy=BoundEnergy(muller_brown_energy, None),
        name="muller_brown",
        dim=2,
        bounds=((-1.5, 1.2), (-0.4, 2.0)),
        minima=(
            point((-0.5582236346330243, 1.4417258418046686), -146.699517209954, "global"),
            point((0.6234994049308765, 0.02803775852868567), -108.16672411685235, "local"),
            point((-0.050010822998206084, 0.4666941048719721), -80.76781812965903, "local"),
        ),
        saddles=(
            point((0.2124865820006621, 0.2929883251073677), -72.24894011232522, "saddle"),
            point((-0.8220015587327322, 0.6243128028148713), -40.6648435086574, "saddle"),
        ),
        description="Müller–Brown potential",
    )
