"""Linear-model features (docs/math/linear.md, docs/engineering.md): numba kernels vs numpy
reference, and both vs
independent definitions.

Comparison scale. Kernel and reference are compared entry by entry with an error bound of
``1e-12 * max_k |phi_k(u)|`` for each point (row), not relative to each entry. Reason: a Gaussian
bump far from its centre is ``exp(-a)`` with ``a`` in the hundreds; any double-precision
evaluation of it carries a relative error of about ``a * 1e-16`` (the rounding of ``a`` itself),
and near underflow (``a`` ~ 700) the value is subnormal with few significant digits. Such entries
are irrelevant next to the largest feature of the same point, which is what a prediction
``W phi`` sees. Rows whose largest entry is itself below ``1e-280`` (the whole point is
numerically outside the support) are compared on the floor scale ``1e-280``: both
implementations must then give (numerically) zero rows.
"""

import math

import numpy as np
import pytest
from scipy import integrate

from gtv.numerics.features import AxisBasis, ProductFeatures

RTOL = 1e-12
FLOOR = 1e-280
SIZES = (1, 2, 7, 16)
RANGES = ((-1.5, 1.5), (0.01, 1.0), (-3.0, -1.0))


def _points_1d(lo, hi, seed=0):
    """Points inside the range, at its ends, just outside and far outside (±10)."""
    rng = np.random.default_rng(seed)
    width = hi - lo
    return np.concatenate(
        [
            np.linspace(lo, hi, 37),
            rng.uniform(lo, hi, 20),
            [lo - 0.3 * width, hi + 0.3 * width, lo - width, hi + width],
            np.linspace(-10.0, 10.0, 41),
            rng.uniform(-10.0, 10.0, 20),
        ]
    )


def _assert_rows_close(a, b):
    """|a - b| <= RTOL * max(row max |b|, FLOOR), entry by entry (see module docstring)."""
    assert a.shape == b.shape
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(b))
    scale = np.maximum(np.abs(b).max(axis=1), FLOOR)
    err = np.abs(a - b).max(axis=1)
    bad = np.nonzero(err > RTOL * scale)[0]
    assert bad.size == 0, f"rows {bad[:5]}: err {err[bad[:5]]}, row max {scale[bad[:5]]}"


# -- kernel vs reference ------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["gaussian", "fourier"])
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("lo,hi", RANGES)
def test_axis_kernel_matches_reference(kind, size, lo, hi):
    basis = AxisBasis(kind, size, lo, hi)
    u = _points_1d(lo, hi, seed=size)
    fast = basis.evaluate(u)
    ref = basis.evaluate_reference(u)
    assert fast.shape == (u.size, size)
    _assert_rows_close(fast, ref)


def test_axis_scalar_input():
    basis = AxisBasis("gaussian", 5, -1.5, 1.5)
    assert basis.evaluate(0.3).shape == (1, 5)
    np.testing.assert_array_equal(basis.evaluate(0.3), basis.evaluate([0.3]))


@pytest.mark.parametrize("kind", ["gaussian", "fourier"])
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dim", [1, 2, 3])
def test_product_kernel_matches_reference(kind, size, dim):
    feats = ProductFeatures.uniform(kind, dim, size, 3, (0.01, 1.0))
    rng = np.random.default_rng(100 * size + dim)
    n_in, n_out = 25, 15
    x = np.concatenate(
        [rng.uniform(-1.5, 1.5, (n_in, dim)), rng.choice([-10.0, -3.0, 2.0, 10.0], (n_out, dim))]
    )
    x[-1] = 10.0  # a point far outside on every axis
    t = np.concatenate([rng.uniform(0.01, 1.0, n_in), rng.uniform(-10.0, 10.0, n_out)])
    fast = feats.evaluate(x, t)
    ref = feats.evaluate_reference(x, t)
    assert fast.shape == (n_in + n_out, size**dim * 3) == (n_in + n_out, feats.n_features)
    _assert_rows_close(fast, ref)


def test_product_mixed_kinds_and_scalar_time():
    space = (AxisBasis("gaussian", 4, -1.5, 1.5), AxisBasis("fourier", 5, -2.0, 2.0))
    feats = ProductFeatures(space, AxisBasis("fourier", 6, 0.01, 1.0))
    x = np.random.default_rng(3).uniform(-4, 4, (30, 2))
    _assert_rows_close(feats.evaluate(x, 0.37), feats.evaluate_reference(x, 0.37))
    np.testing.assert_array_equal(feats.evaluate(x, 0.37), feats.evaluate(x, np.full(30, 0.37)))


# -- independent checks of the definitions ------------------------------------------------------
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("lo,hi", RANGES)
@pytest.mark.parametrize("impl", ["evaluate", "evaluate_reference"])
def test_gaussian_bumps_are_normalized_pdfs(size, lo, hi, impl):
    """Each bump integrates to 1 over the real line (trapezoid on a fine grid well past the
    range; for a Gaussian the trapezoid rule is spectrally accurate, error far below 1e-10)."""
    basis = AxisBasis("gaussian", size, lo, hi)
    std = (hi - lo) / (size - 1) / 2 if size > 1 else (hi - lo) / 2
    u = np.linspace(lo - 40 * std, hi + 40 * std, int(round((hi - lo + 80 * std) / (std / 20))) + 1)
    vals = getattr(basis, impl)(u)
    np.testing.assert_allclose(integrate.trapezoid(vals, u, axis=0), 1.0, rtol=0, atol=1e-10)


@pytest.mark.parametrize("size", [1, 2, 7])
def test_gaussian_bump_integral_quad(size):
    """The same with adaptive quadrature on (-inf, inf) for each column."""
    basis = AxisBasis("gaussian", size, -1.5, 1.5)
    for k, c in enumerate(basis.centres):

        def column(u, k=k):
            return basis.evaluate(u)[0, k]

        left, _ = integrate.quad(column, -np.inf, c, epsabs=1e-13)
        right, _ = integrate.quad(column, c, np.inf, epsabs=1e-13)
        assert abs(left + right - 1.0) < 1e-10


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("lo,hi", RANGES)
def test_gaussian_bumps_peak_at_centres_with_half_spacing_std(size, lo, hi):
    """Centres linspace(lo, hi, F), std = spacing/2 (F = 1: centre lo, std (hi - lo)/2)."""
    basis = AxisBasis("gaussian", size, lo, hi)
    centres = np.linspace(lo, hi, size) if size > 1 else np.array([lo])
    std = (hi - lo) / (size - 1) / 2 if size > 1 else (hi - lo) / 2
    peak = 1.0 / (std * math.sqrt(2 * math.pi))
    for impl in (basis.evaluate, basis.evaluate_reference):
        at_c = impl(centres)
        np.testing.assert_allclose(np.diag(at_c), peak, rtol=1e-13)
        for k, c in enumerate(centres):
            # Maximum at the centre: lower on both sides, symmetric.
            delta = 1e-3 * std
            side = impl(np.array([c - delta, c + delta]))[:, k]
            assert np.all(side < at_c[k, k])
            np.testing.assert_allclose(side[0], side[1], rtol=1e-12)
            # One standard deviation away: peak * exp(-1/2).
            np.testing.assert_allclose(
                impl(np.array([c - std, c + std]))[:, k], peak * math.exp(-0.5), rtol=1e-13
            )


def _fourier_explicit(u, size, lo, hi):
    n_sin = (size - 1) // 2
    n_cos = size - 1 - n_sin
    L = hi - lo
    cols = [np.ones_like(u)]
    cols += [np.cos(2 * np.pi * n * u / L) for n in range(1, n_cos + 1)]
    cols += [np.sin(2 * np.pi * n * u / L) for n in range(1, n_sin + 1)]
    return np.stack(cols, axis=1)


@pytest.mark.parametrize("lo,hi", RANGES)
def test_fourier_six_columns_explicit(lo, hi):
    """F = 6: [1, cos 1, cos 2, cos 3, sin 1, sin 2] in the raw coordinate u, period L = hi - lo."""
    u = _points_1d(lo, hi)
    w = 2 * np.pi / (hi - lo)
    expected = np.stack(
        [
            np.ones_like(u),
            np.cos(w * u),
            np.cos(2 * w * u),
            np.cos(3 * w * u),
            np.sin(w * u),
            np.sin(2 * w * u),
        ],
        axis=1,
    )
    basis = AxisBasis("fourier", 6, lo, hi)
    for impl in (basis.evaluate, basis.evaluate_reference):
        np.testing.assert_allclose(impl(u), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("size", range(1, 10))
def test_fourier_column_counts(size):
    """num_sin = (F - 1)//2, the rest (after the constant) cosines."""
    lo, hi = -1.5, 1.5
    u = np.linspace(-4, 4, 57)
    basis = AxisBasis("fourier", size, lo, hi)
    np.testing.assert_allclose(basis.evaluate(u), _fourier_explicit(u, size, lo, hi), atol=1e-12)
    # Periodic in u with period L, and the constant column is exactly 1.
    np.testing.assert_allclose(basis.evaluate(u + (hi - lo)), basis.evaluate(u), atol=1e-12)
    assert np.all(basis.evaluate(u)[:, 0] == 1.0)


def test_product_ordering_is_kron_with_time_fastest():
    axes = (
        AxisBasis("gaussian", 3, -1.5, 1.5),
        AxisBasis("fourier", 4, -2.0, 2.0),
        AxisBasis("gaussian", 2, -1.0, 1.0),
    )
    tbasis = AxisBasis("fourier", 5, 0.01, 1.0)
    feats = ProductFeatures(axes, tbasis)
    rng = np.random.default_rng(11)
    x = rng.uniform(-2, 2, (12, 3))
    t = rng.uniform(0.01, 1.0, 12)
    per_axis = [a.evaluate_reference(x[:, d]) for d, a in enumerate(axes)]
    phi_t = tbasis.evaluate_reference(t)
    kron = np.stack(
        [
            np.kron(np.kron(np.kron(per_axis[0][i], per_axis[1][i]), per_axis[2][i]), phi_t[i])
            for i in range(12)
        ]
    )
    # Explicit index map: column ((i1 * F2 + i2) * F3 + i3) * Ft + it.
    explicit = np.empty((12, 3 * 4 * 2 * 5))
    for i1 in range(3):
        for i2 in range(4):
            for i3 in range(2):
                for it in range(5):
                    col = ((i1 * 4 + i2) * 2 + i3) * 5 + it
                    explicit[:, col] = (
                        per_axis[0][:, i1] * per_axis[1][:, i2] * per_axis[2][:, i3] * phi_t[:, it]
                    )
    np.testing.assert_allclose(kron, explicit, rtol=1e-15, atol=0)
    _assert_rows_close(feats.evaluate(x, t), kron)
    _assert_rows_close(feats.evaluate_reference(x, t), kron)
    assert feats.n_features == 120 and feats.n_space_features == 24 and feats.dim == 3


def test_uniform_matches_explicit_construction_and_config_roundtrip():
    feats = ProductFeatures.uniform("gaussian", 2, 5, 4, (0.01, 1.0), time_kind="fourier")
    assert feats.space == (AxisBasis("gaussian", 5, -1.5, 1.5),) * 2
    assert feats.time == AxisBasis("fourier", 4, 0.01, 1.0)
    assert ProductFeatures.from_config(feats.config()) == feats


# -- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args,match",
    [
        (("gaussian", 0, -1.0, 1.0), "size"),
        (("gaussian", -3, -1.0, 1.0), "size"),
        (("fourier", 2.5, -1.0, 1.0), "size"),
        (("gaussian", True, -1.0, 1.0), "size"),
        (("gaussian", 3, 1.0, 1.0), "lo"),
        (("gaussian", 3, 2.0, 1.0), "lo"),
        (("fourier", 3, -1.0, np.inf), "hi"),
        (("fourier", 3, np.nan, 1.0), "lo"),
        (("legendre", 3, -1.0, 1.0), "kind"),
    ],
)
def test_axis_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        AxisBasis(*args)


@pytest.mark.parametrize("kind", ["gaussian", "fourier"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_axis_nonfinite_input(kind, bad):
    basis = AxisBasis(kind, 4, -1.5, 1.5)
    for impl in (basis.evaluate, basis.evaluate_reference):
        with pytest.raises(ValueError, match=r"\bu\b.*finite"):
            impl(np.array([0.0, bad]))
    with pytest.raises(ValueError, match=r"\bu\b"):
        basis.evaluate(np.zeros((2, 2)))


@pytest.mark.parametrize("impl", ["evaluate", "evaluate_reference"])
def test_product_bad_input(impl):
    feats = ProductFeatures.uniform("gaussian", 2, 3, 3, (0.01, 1.0))
    f = getattr(feats, impl)
    x = np.zeros((4, 2))
    with pytest.raises(ValueError, match=r"\bx\b.*finite"):
        f(np.where(np.eye(4, 2) > 0, np.nan, x), 0.5)
    with pytest.raises(ValueError, match=r"\bt\b.*finite"):
        f(x, np.array([0.5, np.inf, 0.5, 0.5]))
    with pytest.raises(ValueError, match=r"\bx\b.*shape"):
        f(np.zeros((4, 3)), 0.5)
    with pytest.raises(ValueError, match=r"\bx\b.*shape"):
        f(np.zeros(4), 0.5)
    with pytest.raises(ValueError, match=r"\bt\b.*shape"):
        f(x, np.full(3, 0.5))


def test_product_construction_bad_input():
    with pytest.raises(ValueError, match="dim"):
        ProductFeatures.uniform("gaussian", 0, 3, 3, (0.01, 1.0))
    with pytest.raises(ValueError, match="space"):
        ProductFeatures((), AxisBasis("gaussian", 3, 0.01, 1.0))
    with pytest.raises(ValueError, match="time"):
        ProductFeatures((AxisBasis("gaussian", 3, -1.0, 1.0),), "time")
    with pytest.raises(ValueError, match="kind"):
        ProductFeatures.uniform("chebyshev", 1, 3, 3, (0.01, 1.0))
    with pytest.raises(ValueError, match="lo"):
        ProductFeatures.uniform("gaussian", 1, 3, 3, (1.0, 0.01))
