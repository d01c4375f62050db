"""Schedules: the values of each kind and their bad input."""

from __future__ import annotations

import numpy as np
import pytest

from gtv.numerics.serial import SCHEDULE_SHAPES, schedule


def test_linear_is_the_authors_linspace():
    np.testing.assert_array_equal(schedule("linear", 10, 0.03, 0.1), np.linspace(0.03, 0.1, 10))
    assert schedule("linear", 1, 0.01, 0.05).tolist() == [0.05]  # MATLAB linspace(a, b, 1) = b


def test_constant_geometric_cosine():
    assert schedule("constant", 3, 0.01).tolist() == [0.01] * 3
    g = schedule("geometric", 5, 0.01, 0.16)
    np.testing.assert_allclose(g, [0.01, 0.02, 0.04, 0.08, 0.16], rtol=1e-14)
    c = schedule("cosine", 5, 0.1, 0.5)
    np.testing.assert_allclose(c, 0.1 + 0.4 * (1 - np.cos(np.pi * np.arange(5) / 4)) / 2)
    assert c[0] == 0.1 and c[-1] == 0.5 and c[2] == pytest.approx(0.3)
    # slow at both ends: the first and last increments are smaller than the middle ones
    assert np.diff(c)[0] < np.diff(c)[1] and np.diff(c)[-1] < np.diff(c)[-2]


@pytest.mark.parametrize("shape", SCHEDULE_SHAPES)
@pytest.mark.parametrize("T", [1, 2, 7, 100])
def test_fixed_total_variance_sums_to_the_target(shape, T):
    s = schedule("fixed-total-variance", T, 0.01, 0.05, total_variance=0.02, shape=shape)
    assert s.shape == (T,) and np.all(s > 0)
    assert np.sum(s**2) == pytest.approx(0.02, rel=1e-13)
    if shape != "constant" and T > 1:
        assert s[-1] / s[0] == pytest.approx(5.0, rel=1e-12)  # only the ratio of start, stop


def test_fixed_total_variance_default_shape_is_constant():
    s = schedule("fixed-total-variance", 4, total_variance=0.04)
    np.testing.assert_allclose(s, 0.1, rtol=1e-14)


def test_user_array_passes_through():
    np.testing.assert_array_equal(schedule([0.1, 0.2, 0.0]), [0.1, 0.2, 0.0])
    np.testing.assert_array_equal(schedule(np.array([0.3]), T=1), [0.3])


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        (("linear", 0, 0.1, 0.2), {}, "T must be an integer >= 1"),
        (("linear", 2.0, 0.1, 0.2), {}, "T must be an integer >= 1"),
        (("linear", 3, 0.0, 0.2), {}, "start must be a finite number > 0"),
        (("linear", 3, 0.1, -0.2), {}, "stop must be a finite number > 0"),
        (("linear", 3, 0.1), {}, "stop is required"),
        (("geometric", 3, 0.1, np.nan), {}, "stop must be a finite number > 0"),
        (("constant", 3), {}, "start \\(the constant value\\) is required"),
        (("constant", 3, 0.1, 0.2), {}, "stop must be omitted"),
        (("fixed-total-variance", 3), {}, "total_variance is required"),
        (("fixed-total-variance", 3), {"total_variance": -1.0}, "total_variance must be"),
        (("fixed-total-variance", 3), {"total_variance": 1.0, "shape": "x"}, "shape must be one"),
        (("exponential", 3, 0.1, 0.2), {}, "kind must be one of"),
        (([],), {}, "T >= 1 values"),
        (([0.1, -0.1],), {}, "finite values >= 0"),
        (([0.1, np.inf],), {}, "finite values >= 0"),
        (([0.1, 0.2],), {"T": 3}, "does not match"),
    ],
)
def test_bad_schedules_raise(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        schedule(*args, **kwargs)
