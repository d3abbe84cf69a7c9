"""Box–Muller transforms from Threefry words to standard normals, with polynomial sine and
cosine so that XLA fuses them into the step (float32 and float64)."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
from jax import lax

_COS_TAYLOR = tuple((-1) ** k / math.factorial(2 * k) for k in range(7))


"""cos(a) = Σ (−1)^k a^{2k}/(2k)!, to a^12: error < 7e-9 on [0, π/2)."""


def box_muller(w0, w1):
    r"""One standard normal from two uint32 words: Box–Muller with a polynomial cosine.

    .. math::
        z = s\,\sqrt{-2\ln u}\,\cos a, \qquad u = (w_0 + \tfrac12)\,2^{-32} \in (0, 1],
        \quad a = \tfrac{\pi}{2}\,v,\ v \in [0, 1) \text{ from the top 23 bits of } w_1,
        \quad s = \pm 1 \text{ from the lowest bit of } w_1.

    With θ uniform on [0, 2π), r cos θ is N(0, 1) (Box & Muller 1958); |cos θ| has the law
    of cos a for a uniform on [0, π/2), and the independent sign s restores the symmetry,
    so only a cosine on [0, π/2) is needed, as a polynomial (no range reduction): the
    transform is all multiply–adds, one log and one square root, which XLA fuses into the
    step. The tail is cut at |z| = √(2 ln 2^33) ≈ 6.8 (probability 1e-10); float32 result.
    """
    r, a = _radius_angle(w0, w1)
    return _flip(r * _polynomial(_COS_TAYLOR, a * a), w1 & np.uint32(1))


def _radius_angle(w0, w1):
    """r = √(−2 ln u) from w0, and a ∈ [0, π/2) from the top 23 bits of w1 (float32)."""
    u = (w0.astype(jnp.float32) + np.float32(0.5)) * np.float32(2.0**-32)
    u = jnp.minimum(u, np.float32(1))
    r = jnp.sqrt(np.float32(-2) * jnp.log(u))
    v = lax.bitcast_convert_type((w1 >> np.uint32(9)) | np.uint32(0x3F800000), jnp.float32)
    return r, (v - np.float32(1)) * np.float32(np.pi / 2)


_SIN_TAYLOR = tuple((-1) ** k / math.factorial(2 * k + 1) for k in range(7))


"""sin(a) = a Σ (−1)^k a^{2k}/(2k+1)!, to a^13: error < 7e-10 on [0, π/2)."""


def _polynomial(coefficients, b):
    """Σ c_k b^k by Horner's rule, the coefficients in the dtype of b."""
    dtype = jnp.result_type(b)
    out = np.asarray(coefficients[-1], dtype)
    for c in coefficients[-2::-1]:
        out = np.asarray(c, dtype) + b * out
    return out


def _flip(z, bit):
    """z with its sign flipped where `bit` (a uint32 of 0 or 1) is 1."""
    sign = bit << np.uint32(31)
    return lax.bitcast_convert_type(lax.bitcast_convert_type(z, jnp.uint32) ^ sign, jnp.float32)


def box_muller_pair(w0, w1):
    r"""Two independent standard normals from two uint32 words: both Box–Muller outputs.

    .. math::
        (z_0, z_1) = \sqrt{-2\ln u}\,(s_0 \cos a,\ s_1 \sin a),

    with u, a and the sign s0 (lowest bit of w1) as in `box_muller`, so z0 is
    `box_muller(w0, w1)`, and s1 from the second-lowest bit of w1. By the symmetry of the
    uniform angle θ under reflections, (|cos θ|, |sin θ|) has the law of (cos a, sin a) for
    a uniform on [0, π/2), with independent signs: (z0, z1) has the law of
    r (cos θ, sin θ), two independent N(0, 1) (Box & Muller 1958). One Threefry block gives
    two normals, half the generator's work per normal of `box_muller`.
    """
    r, a = _radius_angle(w0, w1)
    b = a * a
    z0 = _flip(r * _polynomial(_COS_TAYLOR, b), w1 & np.uint32(1))
    z1 = _flip(r * (a * _polynomial(_SIN_TAYLOR, b)), (w1 >> np.uint32(1)) & np.uint32(1))
    return z0, z1


_COS_TAYLOR64 = tuple((-1) ** k / math.factorial(2 * k) for k in range(12))


_SIN_TAYLOR64 = tuple((-1) ** k / math.factorial(2 * k + 1) for k in range(12))


"""Taylor series of cos and sin to a^22 and a^23: error < 1e-17 on [0, π/2)."""


def box_muller_pair64(radius, angle):
    r"""Two independent float64 standard normals from two Threefry blocks (four words).

    .. math::
        (z_0, z_1) = \sqrt{-2\ln u}\,(\cos 2\pi v, \sin 2\pi v),

    u = (m + ½)·2⁻⁵³ ∈ (0, 1) and v = m'·2⁻⁵³ ∈ [0, 1) from the top 53 bits m, m' of the
    64-bit numbers w0·2³² + w1 of the `radius` and `angle` blocks (Box & Muller 1958).
    2πv = (π/2)(q + a') with the quadrant q = ⌊4v⌋: cos and sin of (π/2)a' ∈ [0, π/2) are
    polynomials, rotated by q quarter turns (within 1e-15 of `jnp.cos`/`jnp.sin`, which
    cost 6x more on CPU). Needs x64 (`jax_enable_x64`), as float64 itself does.
    """

    def mantissa(words):  # the top 53 bits of w0·2³² + w1, exactly, without 64-bit integers
        hi = words[0].astype(jnp.float64)
        return hi * 2.0**21 + (words[1] >> np.uint32(11)).astype(jnp.float64)

    u = (mantissa(radius) + 0.5) * 2.0**-53
    r = jnp.sqrt(-2 * jnp.log(u))
    quarter = mantissa(angle) * 2.0**-51  # 4v ∈ [0, 4)
    q = jnp.floor(quarter)
    a = (quarter - q) * (np.pi / 2)
    b = a * a
    c, s = _polynomial(_COS_TAYLOR64, b), a * _polynomial(_SIN_TAYLOR64, b)
    odd = (q == 1) | (q == 3)  # (cos, sin) of θ + π/2 = (−sin θ, cos θ)
    x, y = jnp.where(odd, -s, c), jnp.where(odd, c, s)
    flip = q >= 2  # θ + π: both change sign
    return r * jnp.where(flip, -x, x), r * jnp.where(flip, -y, y)
