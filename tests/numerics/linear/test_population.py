"""Population moments of linear-feature models by quadrature (gtv.numerics.linear.population).

The numba kernel against the plain-numpy reference, thread-count invariance, and the proxy +
misfit split of ``Cov(vec g)`` against the direct (posterior-free) second moment
(docs/math/linear.md).
"""

import numba
import numpy as np
import pytest

from gtv.numerics.features import ProductFeatures
from gtv.numerics.linear import linear_model_theory

EPS, T = 0.01, 1.0


DATA = np.array([[-1.0], [0.0], [1.0]])


FEATS = ProductFeatures.uniform("gaussian", 1, 6, 5, (EPS, T))  # F = 30


def _rel(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


# -- numba vs numpy reference -------------------------------------------------------------------
@pytest.mark.parametrize(
    "kind,dim,n_space,n_time",
    [("gaussian", 1, 4, 3), ("fourier", 1, 5, 3), ("gaussian", 2, 3, 2), ("fourier", 2, 3, 2)],
)
def test_numba_matches_numpy_reference(kind, dim, n_space, n_time):
    rng = np.random.default_rng(1)
    data = rng.uniform(-1, 1, (3, dim))
    feats = ProductFeatures.uniform(kind, dim, n_space, n_time, (EPS, T))
    kw = dict(n_t=2, n_hermite=10 if dim == 1 else 6, ridge=0.05)
    a = linear_model_theory(data, feats, EPS, **kw)
    b = linear_model_theory(data, feats, EPS, backend="numpy", **kw)
    for name in ("sigma", "A", "A_x0", "cov_g_proxy", "cov_g_misfit", "W_inf"):
        assert _rel(getattr(a, name), getattr(b, name)) < 1e-11, name


def test_thread_count_invariance():
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        a = linear_model_theory(DATA, FEATS, EPS, n_t=3, n_hermite=30)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        b = linear_model_theory(DATA, FEATS, EPS, n_t=3, n_hermite=30)
    finally:
        numba.set_num_threads(old)
    for name in ("sigma", "A", "cov_g_proxy", "cov_g_misfit"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_split_matches_direct_second_moment():
    """proxy + misfit == E[lam^2 phi phi^T (x) (x0 - D_bar)(x0 - D_bar)^T] - vec(Eg) vec(Eg)^T with
    x0 the mixture component (no posterior at all); equal up to quadrature error."""
    feats = ProductFeatures.uniform("gaussian", 1, 4, 3, (EPS, T))
    errs = []
    for n_t, n_h in ((3, 60), (8, 220)):
        th, diag = linear_model_theory(
            DATA, feats, EPS, n_t=n_t, n_hermite=n_h, backend="numpy", return_diagnostics=True
        )
        errs.append(_rel(th.cov_g("total"), diag["total_direct"]))
    print("split identity, relative error vs quadrature order:", errs)
    assert errs[1] < 1e-9 and errs[1] < errs[0]
