"""Nearest and second-nearest neighbours (gtv.numerics.memory.nearest).

Every backend and method is compared with an independent brute force written here (a Python
loop over sorted ``(distance, index)`` pairs, ``np.linalg.norm`` distances), and the numba
kernels with the numpy reference bitwise (they sum squared differences in the same order).
Exact ties come from integer lattices, where every distance is computed exactly.
"""

import numba
import numpy as np
import pytest

from gtv.numerics.memory.nearest import NearestTwo, nearest_two

VARIANTS = [("numpy", "brute"), ("numba", "brute"), ("numba", "grid")]


def _independent(q, p, exclude_self=False):
    """Top-2 by sorting ``(distance, index)`` pairs for each query (ties: lowest index)."""
    n = q.shape[0]
    d1, d2 = np.full(n, np.inf), np.full(n, np.inf)
    i1, i2 = np.full(n, -1), np.full(n, -1)
    for a in range(n):
        cand = sorted(
            (float(np.linalg.norm(q[a] - p[j])), j)
            for j in range(p.shape[0])
            if not (exclude_self and j == a)
        )
        d1[a], i1[a] = cand[0]
        if len(cand) > 1:
            d2[a], i2[a] = cand[1]
    return d1, d2, i1, i2


def _run(q, p, backend, method, exclude_self=False):
    return nearest_two(q, p, exclude_self=exclude_self, backend=backend, method=method)


def _assert_same(a: NearestTwo, b: NearestTwo, exact_distances=True):
    np.testing.assert_array_equal(a.i1, b.i1)
    np.testing.assert_array_equal(a.i2, b.i2)
    if exact_distances:
        np.testing.assert_array_equal(a.d1, b.d1)
        np.testing.assert_array_equal(a.d2, b.d2)


@pytest.mark.parametrize(
    "D,backend,method",
    [(D, b, m) for D in (1, 2, 3, 64) for b, m in VARIANTS if D <= 3 or m != "grid"],
)
def test_matches_independent_brute_force(D, backend, method):
    rng = np.random.default_rng(100 + D)
    for _ in range(3):
        n, k = rng.integers(1, 40), rng.integers(1, 60)
        q = rng.normal(size=(n, D))
        p = rng.normal(size=(k, D))
        out = _run(q, p, backend, method)
        d1, d2, i1, i2 = _independent(q, p)
        np.testing.assert_array_equal(out.i1, i1)
        np.testing.assert_array_equal(out.i2, i2)
        np.testing.assert_allclose(out.d1, d1, rtol=1e-12, atol=0)
        np.testing.assert_allclose(out.d2, d2, rtol=1e-12, atol=0)
        assert out.i1.dtype == np.int64 and out.d1.dtype == np.float64


@pytest.mark.parametrize(
    "D,method", [(1, "brute"), (2, "brute"), (64, "brute"), (1, "grid"), (2, "grid")]
)
def test_numba_equals_numpy_reference_random_sizes(D, method):
    """Random sizes spanning several query and point blocks; bitwise agreement."""
    rng = np.random.default_rng(7 * D)
    for n, k in [(1, 1), (33, 2), (97, 300), (250, 777)]:
        q = rng.normal(size=(n, D)) * 3.0
        p = rng.normal(size=(k, D))
        ref = nearest_two(q, p, backend="numpy")
        _assert_same(nearest_two(q, p, method=method), ref)
        if k >= 2:
            ref_self = nearest_two(p, p, exclude_self=True, backend="numpy")
            _assert_same(nearest_two(p, p, exclude_self=True, method=method), ref_self)


@pytest.mark.parametrize("D", [1, 2, 3])
@pytest.mark.parametrize("backend,method", VARIANTS)
def test_ties_break_by_lowest_index(D, backend, method):
    """Integer lattice points (with repeats) and lattice / half-lattice queries: many exact ties;
    every variant must follow the (distance, index) order of the independent brute force."""
    rng = np.random.default_rng(3 + D)
    p = rng.integers(-3, 4, size=(120, D)).astype(float)
    q = np.concatenate([rng.integers(-4, 5, size=(80, D)), rng.integers(-8, 9, size=(40, D)) / 2])
    q = q.astype(float)
    out = _run(q, p, backend, method)
    d1, d2, i1, i2 = _independent(q, p)
    np.testing.assert_array_equal(out.i1, i1)
    np.testing.assert_array_equal(out.i2, i2)
    np.testing.assert_array_equal(out.d1, d1)
    np.testing.assert_array_equal(out.d2, d2)
    assert np.any(out.d1 == out.d2), "the test data must contain ties"
    tie = out.d1 == out.d2
    assert np.all(out.i1[tie] < out.i2[tie])


@pytest.mark.parametrize("backend,method", VARIANTS)
def test_exclude_self_skips_only_the_self_match(backend, method):
    # Points 0 and 3 coincide: each is the other's nearest *other* point at distance 0.
    p = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.5], [0.0, 0.0], [5.0, 5.0]])
    out = _run(p, p, backend, method, exclude_self=True)
    np.testing.assert_array_equal(out.i1, [3, 0, 0, 0, 2])
    np.testing.assert_array_equal(out.i2, [1, 3, 3, 1, 1])
    np.testing.assert_allclose(out.d1, [0, 1, 2.5, 0, np.hypot(5, 2.5)], rtol=1e-15)
    np.testing.assert_allclose(out.d2[4], np.hypot(4, 5), rtol=1e-15)
    # Without exclusion every point finds itself first.
    plain = _run(p, p, backend, method)
    np.testing.assert_array_equal(plain.d1, np.zeros(5))
    np.testing.assert_array_equal(plain.i1, [0, 1, 2, 0, 4])


@pytest.mark.parametrize("backend,method", VARIANTS)
def test_single_candidate_gives_inf_second(backend, method):
    q = np.array([[0.0, 1.0], [3.0, 4.0]])
    out = _run(q, np.zeros((1, 2)), backend, method)
    np.testing.assert_allclose(out.d1, [1.0, 5.0])
    np.testing.assert_array_equal(out.i1, [0, 0])
    assert np.all(np.isinf(out.d2)) and np.all(out.i2 == -1)
    two = np.array([[0.0, 0.0], [3.0, 4.0]])
    out = _run(two, two, backend, method, exclude_self=True)
    np.testing.assert_allclose(out.d1, [5.0, 5.0])
    np.testing.assert_array_equal(out.i1, [1, 0])
    assert np.all(np.isinf(out.d2)) and np.all(out.i2 == -1)


@pytest.mark.parametrize("D", [1, 2, 3])
def test_grid_exact_on_hard_geometry(D):
    """Clustered points far apart (most cells empty, a few crowded), an offset of 1e6, a flat
    dimension, queries far outside the points' bounding box and on a diagonal line through it:
    grid == brute force bitwise."""
    rng = np.random.default_rng(11 + D)
    centres = rng.normal(size=(4, D)) * 50.0
    p = np.concatenate([c + 1e-3 * rng.normal(size=(150, D)) for c in centres])
    p = np.concatenate([p, rng.uniform(-60, 60, size=(30, D))])
    q = np.concatenate(
        [
            p[::7] + 1e-4 * rng.normal(size=p[::7].shape),
            rng.uniform(-500, 500, size=(40, D)),
            np.linspace(-60, 60, 41)[:, None] * np.ones((1, D)),
        ]
    )
    for shift in (0.0, 1e6):
        a = nearest_two(q + shift, p + shift, method="grid")
        b = nearest_two(q + shift, p + shift, method="brute")
        _assert_same(a, b)
    if D >= 2:
        flat = p.copy()
        flat[:, 1] = 0.25  # all points share one coordinate
        _assert_same(nearest_two(q, flat, method="grid"), nearest_two(q, flat, method="brute"))
    for method in ("grid", "brute"):
        s = nearest_two(p, p, exclude_self=True, method=method)
        _assert_same(s, nearest_two(p, p, exclude_self=True, backend="numpy"))


@pytest.mark.parametrize("method", ["brute", "grid"])
def test_thread_count_invariance(method):
    rng = np.random.default_rng(5)
    q = rng.normal(size=(500, 2))
    p = rng.normal(size=(400, 2))
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = nearest_two(q, p, method=method)
    finally:
        numba.set_num_threads(before)
    _assert_same(one, nearest_two(q, p, method=method))


def test_auto_method_picks_grid_for_low_dimension_only():
    """'auto' must give the same answer as both methods (grid for D <= 3, brute otherwise)."""
    rng = np.random.default_rng(9)
    for D in (2, 5):
        q, p = rng.normal(size=(50, D)), rng.normal(size=(70, D))
        _assert_same(nearest_two(q, p), nearest_two(q, p, method="brute"))


def test_collapsed_points_all_methods_agree():
    """All samples within 1e-9 of two points (crowded cells; 'auto' switches to brute force)."""
    rng = np.random.default_rng(12)
    x = np.array([[0.0, 0.0], [1.0, 1.0]])[rng.integers(0, 2, 300)]
    x += 1e-9 * rng.normal(size=x.shape)
    ref = nearest_two(x, x, exclude_self=True, backend="numpy")
    for method in ("auto", "brute", "grid"):
        _assert_same(nearest_two(x, x, exclude_self=True, method=method), ref)
    assert np.all(ref.d1 < 1e-8) and np.all(ref.d2 < 1e-8)


def test_one_dimensional_input_needs_a_column():
    with pytest.raises(ValueError, match="queries"):
        nearest_two(np.zeros(3), np.zeros((3, 1)))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(queries=np.zeros((2, 2)), points=np.zeros((2, 3))), "points"),
        (dict(queries=np.array([[0.0, np.nan]]), points=np.zeros((2, 2))), "queries"),
        (dict(queries=np.zeros((2, 2)), points=np.array([[np.inf, 0.0]])), "points"),
        (dict(queries=np.zeros((2, 2)), points=np.zeros((0, 2))), "points"),
        (dict(queries=np.full((2, 2), 1e200), points=np.zeros((2, 2))), "queries"),
        (dict(queries=np.zeros((2, 2)), points=np.full((2, 2), -1e151)), "points"),
        (dict(queries=np.zeros((2, 2)), points=np.zeros((2, 2)), backend="cuda"), "backend"),
        (dict(queries=np.zeros((2, 2)), points=np.zeros((2, 2)), method="kd"), "method"),
        (dict(queries=np.zeros((2, 4)), points=np.zeros((2, 4)), method="grid"), "method"),
        (
            dict(queries=np.zeros((2, 2)), points=np.zeros((2, 2)), backend="numpy", method="grid"),
            "method",
        ),
        (dict(queries=np.zeros((1, 2)), points=np.zeros((1, 2)), exclude_self=True), "points"),
        (dict(queries=np.zeros((3, 2)), points=np.ones((3, 2)), exclude_self=True), "points"),
        (dict(queries=np.zeros((3, 2)), points=np.zeros((3, 2)), exclude_self=1), "exclude_self"),
    ],
)
def test_bad_input_names_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        nearest_two(kwargs.pop("queries"), kwargs.pop("points"), **kwargs)
