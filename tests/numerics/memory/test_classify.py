"""Sample classifications: memorized / spurious / generalized (gtv.numerics.memory.classify).

Constructed cases whose labels are known by construction (samples on training points, tight
clusters far from the data, widely scattered samples), and random cases checked against an
independent implementation written here with explicit loops and ``np.linalg.norm``.
"""

import numpy as np
import pytest

from gtv.numerics.memory.classify import (
    SampleClasses,
    classify_samples,
    classify_samples_ratio,
    default_thresholds,
    ratio_memorized,
)
from gtv.numerics.memory.labels import GENERALIZED, MEMORIZED, SPURIOUS

BACKENDS = ["numba", "numpy"]


def _lattice(n=5):
    """n x n training points with spacing 1 (median nearest-neighbour distance exactly 1)."""
    g = np.arange(n, dtype=float)
    return np.stack(np.meshgrid(g, g), axis=-1).reshape(-1, 2)


def _scattered(n, radius=60.0, centre=(2.0, 2.0)):
    """n points on a circle of the given radius around the data: far from the training points and
    from each other (neighbour spacing ~ 2 pi radius / n)."""
    a = 2 * np.pi * (np.arange(n) + 0.5) / n
    return np.asarray(centre) + radius * np.stack([np.cos(a), np.sin(a)], axis=1)


def _clusters(centres, size, spread, rng):
    return np.concatenate([c + spread * rng.uniform(-1, 1, size=(size, 2)) for c in centres])


def _two_nearest(x, ref, skip_self):
    """Independent: sorted distances from each row of x to ref (self skipped when asked)."""
    out = []
    for a in range(x.shape[0]):
        d = sorted(
            float(np.linalg.norm(x[a] - ref[j]))
            for j in range(ref.shape[0])
            if not (skip_self and j == a)
        )
        out.append((d[0], d[1] if len(d) > 1 else np.inf))
    return np.array(out)


def _expected_pham(x, train, dm, ds, synth=None):
    dt = _two_nearest(x, train, False)[:, 0]
    ds_ = _two_nearest(x, x if synth is None else synth, synth is None)[:, 0]
    return np.where(dt <= dm, MEMORIZED, np.where(ds_ <= ds, SPURIOUS, GENERALIZED))


def _expected_ratio(x, train, r, synth=None):
    t = _two_nearest(x, train, False)
    s = _two_nearest(x, x if synth is None else synth, synth is None)
    mem = t[:, 0] / t[:, 1] < r
    sp = s[:, 0] / s[:, 1] < r
    return np.where(mem, MEMORIZED, np.where(sp, SPURIOUS, GENERALIZED))


def test_default_thresholds_are_a_third_of_the_median_spacing():
    np.testing.assert_allclose(default_thresholds(_lattice()), (1 / 3, 1 / 3), rtol=1e-15)
    # Median, not mean: one far outlier does not move it.
    train = np.concatenate([_lattice(), [[100.0, 100.0]]])
    np.testing.assert_allclose(default_thresholds(train), (1 / 3, 1 / 3), rtol=1e-15)
    # Scale-free: scaling the data scales the thresholds.
    np.testing.assert_allclose(default_thresholds(7.5 * _lattice()), (2.5, 2.5), rtol=1e-15)


@pytest.mark.parametrize("backend", BACKENDS)
def test_pham_constructed_three_classes(backend):
    rng = np.random.default_rng(1)
    train = _lattice()
    mem = train[[0, 6, 12, 18, 24, 3, 21]]  # exactly on training points
    spur = _clusters([(20.0, 20.0), (-20.0, 15.0), (30.0, -25.0)], 4, 1e-3, rng)
    gen = _scattered(10)
    x = np.concatenate([mem, spur, gen])
    out = classify_samples(x, train, backend=backend)
    expected = np.repeat([MEMORIZED, SPURIOUS, GENERALIZED], [len(mem), len(spur), len(gen)])
    np.testing.assert_array_equal(out.labels, expected)
    assert isinstance(out, SampleClasses) and out.criterion == "pham"
    np.testing.assert_allclose(out.thresholds["delta_m"], 1 / 3, rtol=1e-15)
    np.testing.assert_array_equal(out.counts, [7, 12, 10])
    np.testing.assert_allclose(out.fractions, np.array([7, 12, 10]) / 29, rtol=1e-15)
    np.testing.assert_array_equal(out.d_train[:7], 0.0)
    np.testing.assert_array_equal(out.nearest_memory[:7], [0, 6, 12, 18, 24, 3, 21])
    indep = _two_nearest(x, train, False)
    np.testing.assert_allclose(out.d_train, indep[:, 0], rtol=1e-13)
    np.testing.assert_allclose(out.d_train2, indep[:, 1], rtol=1e-13)
    # Samples of one cluster point to one another.
    assert np.all(out.nearest_sample[7:11] >= 7) and np.all(out.nearest_sample[7:11] < 11)
    np.testing.assert_array_equal(out.memorized, out.labels == MEMORIZED)


@pytest.mark.parametrize("backend", BACKENDS)
def test_ratio_constructed_three_classes(backend):
    rng = np.random.default_rng(2)
    train = _lattice()
    mem = train[[1, 7, 13, 19]] + 0.01 * rng.uniform(-1, 1, size=(4, 2))  # d1/d2 ~ 0.01
    # Isolated near-duplicate pairs far from the data: d_synth / d_synth2 ~ 1e-4.
    spur = _clusters([(20.0, 20.0), (-20.0, 15.0), (30.0, -25.0)], 2, 1e-3, rng)
    gen = _scattered(10)
    x = np.concatenate([mem, spur, gen])
    out = classify_samples_ratio(x, train, backend=backend)
    expected = np.repeat([MEMORIZED, SPURIOUS, GENERALIZED], [4, 6, 10])
    np.testing.assert_array_equal(out.labels, expected)
    assert out.criterion == "ratio" and out.thresholds == {"ratio": 1 / 3}
    np.testing.assert_array_equal(ratio_memorized(x, train, backend=backend), expected == MEMORIZED)


def test_ratio_variant_flags_pairs_not_larger_clusters():
    """Documented property: a cluster of three identical-ish samples has d_synth ~ d_synth2, so
    the ratio variant calls it generalized while the absolute criterion calls it spurious."""
    train = _lattice()
    triangle = 20.0 + 1e-3 * np.array([[0.0, 0.0], [1.0, 0.0], [0.5, np.sqrt(3) / 2]])
    x = np.concatenate([triangle, _scattered(6)])
    assert np.all(classify_samples_ratio(x, train).labels[:3] == GENERALIZED)
    assert np.all(classify_samples(x, train).labels[:3] == SPURIOUS)


def test_ratio_test_at_duplicated_training_point_is_not_memorized():
    """d1 = d2 = 0 (two identical training points): d1 < ratio * d2 is false, as documented."""
    train = np.concatenate([_lattice(), [[0.0, 0.0]]])
    x = np.array([[0.0, 0.0], [1.0, 1.0]])
    np.testing.assert_array_equal(ratio_memorized(x, train), [False, True])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("with_synth", [False, True])
def test_random_cases_match_independent_implementation(backend, with_synth):
    rng = np.random.default_rng(10 + with_synth)
    for D in (1, 2, 5):
        train = rng.normal(size=(40, D))
        # Samples near training points, near one another, and spread out.
        x = np.concatenate(
            [
                train[:10] + 0.05 * rng.normal(size=(10, D)),
                np.repeat(rng.normal(size=(5, D)) * 3, 2, axis=0) + 0.02 * rng.normal(size=(10, D)),
                rng.normal(size=(20, D)) * 2,
            ]
        )
        synth = rng.normal(size=(30, D)) * 2 if with_synth else None
        for dm, ds in [(0.1, 0.1), (0.3, 0.05), (0.02, 0.5)]:
            out = classify_samples(x, train, delta_m=dm, delta_s=ds, synth=synth, backend=backend)
            np.testing.assert_array_equal(out.labels, _expected_pham(x, train, dm, ds, synth))
            assert out.thresholds == {"delta_m": dm, "delta_s": ds}
        for r in (0.2, 1 / 3, 0.6):
            out = classify_samples_ratio(x, train, ratio=r, synth=synth, backend=backend)
            np.testing.assert_array_equal(out.labels, _expected_ratio(x, train, r, synth))
        assert abs(out.fractions.sum() - 1.0) < 1e-15 and out.counts.sum() == x.shape[0]


def test_thresholds_are_monotone():
    rng = np.random.default_rng(4)
    train = rng.normal(size=(60, 2))
    x = np.concatenate([train[:20] + 0.1 * rng.normal(size=(20, 2)), rng.normal(size=(60, 2))])
    deltas = [0.01, 0.03, 0.1, 0.3, 1.0]
    prev = None
    for dm in deltas:  # delta_m grows: memorized grows, generalized shrinks
        out = classify_samples(x, train, delta_m=dm, delta_s=0.1)
        if prev is not None:
            assert np.all(out.memorized[prev.memorized])
            assert np.all(prev.generalized[out.generalized])
        prev = out
    assert 0 < prev.counts[MEMORIZED] and classify_samples(x, train, delta_m=0.01).counts[0] < 20
    prev = None
    for ds in deltas:  # delta_s grows: memorized unchanged, spurious grows
        out = classify_samples(x, train, delta_m=0.05, delta_s=ds)
        if prev is not None:
            np.testing.assert_array_equal(out.memorized, prev.memorized)
            assert np.all(out.spurious[prev.spurious])
            assert np.all(prev.generalized[out.generalized])
        prev = out
    prev_mask = None
    for r in (0.05, 0.1, 0.2, 1 / 3, 0.5, 0.9):  # ratio grows: memorized grows
        mask = ratio_memorized(x, train, ratio=r)
        if prev_mask is not None:
            assert np.all(mask[prev_mask])
        prev_mask = mask
    assert 0 < prev_mask.sum() < x.shape[0]


def test_exclude_self_and_separate_synth():
    train = _lattice()
    far = np.array([[40.0, 0.0], [40.0, 0.0], [-40.0, 0.0], [0.0, 50.0]])
    # synth=None: the exact duplicate pair (rows 0, 1) is spurious at distance 0; the isolated
    # rows are not (their own zero distance is skipped).
    out = classify_samples(far, train, delta_m=0.3, delta_s=0.3)
    np.testing.assert_array_equal(out.labels, [SPURIOUS, SPURIOUS, GENERALIZED, GENERALIZED])
    np.testing.assert_array_equal(out.d_synth[:2], 0.0)
    np.testing.assert_array_equal(out.nearest_sample[:2], [1, 0])
    # synth equal to samples is the same set: identical result.
    same = classify_samples(far, train, delta_m=0.3, delta_s=0.3, synth=far.copy())
    np.testing.assert_array_equal(same.labels, out.labels)
    np.testing.assert_array_equal(same.d_synth, out.d_synth)
    # A separate reference set: an exact copy in it counts (distance 0), no skipping.
    ref = np.array([[-40.0, 0.0], [0.0, -50.0]])
    sep = classify_samples(far, train, delta_m=0.3, delta_s=0.3, synth=ref)
    np.testing.assert_array_equal(sep.labels, [GENERALIZED, GENERALIZED, SPURIOUS, GENERALIZED])
    np.testing.assert_array_equal(sep.nearest_sample, [1, 1, 0, 0])


def test_memorized_takes_precedence_over_spurious():
    train = _lattice()
    x = np.array([[2.0, 2.0], [2.0, 2.0], [2.0, 2.01], [30.0, 30.0]])
    out = classify_samples(x, train, delta_m=0.1, delta_s=0.1)
    np.testing.assert_array_equal(out.labels, [MEMORIZED, MEMORIZED, MEMORIZED, GENERALIZED])
    np.testing.assert_array_equal(out.nearest_memory[:3], [12, 12, 12])


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda x, t: classify_samples(x, t, delta_m=0.0), "delta_m"),
        (lambda x, t: classify_samples(x, t, delta_m=-1.0), "delta_m"),
        (lambda x, t: classify_samples(x, t, delta_s=np.nan), "delta_s"),
        (lambda x, t: classify_samples(x, t, delta_s="a"), "delta_s"),
        (lambda x, t: classify_samples(x[:1], t), "samples"),
        (lambda x, t: classify_samples(x, t[:, :1]), "train"),
        (lambda x, t: classify_samples(x, t, synth=np.zeros((3, 3))), "synth"),
        (lambda x, t: classify_samples(x, t, synth=np.zeros((0, 2))), "synth"),
        (lambda x, t: classify_samples(x, t[:1]), "train"),
        (lambda x, t: classify_samples(x, np.zeros((4, 2))), "train"),
        (lambda x, t: classify_samples(x[:, :1], t), "train"),
        (lambda x, t: classify_samples(np.full((3, 2), np.nan), t), "samples"),
        (lambda x, t: ratio_memorized(x, t, ratio=0.0), "ratio"),
        (lambda x, t: ratio_memorized(x, t, ratio=1.0), "ratio"),
        (lambda x, t: ratio_memorized(x, t, ratio=np.nan), "ratio"),
        (lambda x, t: ratio_memorized(x, t[:1]), "train"),
        (lambda x, t: classify_samples_ratio(x, t, ratio=1.5), "ratio"),
        (lambda x, t: classify_samples_ratio(x[:2], t), "samples"),
        (lambda x, t: classify_samples_ratio(x, t, synth=np.zeros((1, 2))), "synth"),
        (lambda x, t: classify_samples(x, t, backend="gpu"), "backend"),
    ],
)
def test_bad_input_names_the_argument(call, match):
    x = np.array([[0.5, 0.5], [10.0, 10.0], [-10.0, 3.0]])
    with pytest.raises(ValueError, match=match):
        call(x, _lattice())
