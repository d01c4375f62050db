"""gtv.numerics.kernel.inputs: the network inputs z = (x, e(t), 1)."""

from __future__ import annotations

import numpy as np
import pytest

from gtv.numerics.kernel import embed_time, ntk_inputs
from gtv.numerics.schedules import get_schedule

SCHED = get_schedule("vp-linear")


def test_linear_embedding_maps_training_range_to_unit_interval():
    eps = 0.01
    e = embed_time([eps, (eps + 1.0) / 2, 1.0], eps, SCHED)
    np.testing.assert_allclose(e, [-1.0, 0.0, 1.0], atol=1e-15)


def test_log_sigma_embedding():
    t = np.array([0.01, 0.3, 1.0])
    e = embed_time(t, 0.01, SCHED, "log-sigma")
    # sigma_t^2 = 1 - exp(-2 (0.1 t + 19.9 t^2 / 2)), written out independently
    s2 = 1 - np.exp(-2 * (0.1 * t + 9.95 * t**2))
    np.testing.assert_allclose(e, 0.5 * np.log(s2), rtol=1e-12)


def test_inputs_layout_and_broadcast():
    x = np.array([[0.5, -1.0], [2.0, 3.0], [0.0, 0.0]])
    z = ntk_inputs(x, 0.2, 0.01, SCHED, bias=2.0)
    assert z.shape == (3, 4)
    np.testing.assert_array_equal(z[:, :2], x)
    np.testing.assert_allclose(z[:, 2], 2 * (0.2 - 0.01) / 0.99 - 1)
    np.testing.assert_array_equal(z[:, 3], 2.0)
    z1 = ntk_inputs(np.array([0.1, 0.2]), np.array([0.5, 1.0]), 0.01, SCHED)
    assert z1.shape == (2, 3) and z1[1, 1] == pytest.approx(1.0)


@pytest.mark.parametrize(
    "kw, name",
    [
        ({"embedding": "raw"}, "embedding"),
        ({"bias": 0.0}, "bias"),
        ({"x": np.zeros((2, 2, 2))}, "x"),
        ({"x": np.array([np.nan])}, "x"),
        ({"t": 1.5}, "t"),
    ],
)
def test_bad_input(kw, name):
    args = {"x": np.zeros(1), "t": 0.5, "eps": 0.01, "schedule": SCHED}
    args.update(kw)
    with pytest.raises(ValueError, match=name):
        ntk_inputs(**args)
