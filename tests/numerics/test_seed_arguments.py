"""Seeds of every public trainer and sampler (issue 14, "Seeds"; docs/reliability.md).

Audit: ``seed=True`` and ``seed=1.7`` ran as seed 1; ``seed=None`` trained for a while and then
raised; negative seeds gave "expected non-negative integer" without naming ``seed``. Each is now
rejected by name before any work (well under a second, numba compilation of the trainer aside:
the error comes from :func:`gtv.numerics.streams.check_seed` at the top of the call).
"""

import time

import numpy as np
import pytest

from gtv.numerics.binned_affine import train_binned_affine_ensemble
from gtv.numerics.exact import sample_exact_denoiser
from gtv.numerics.features import ProductFeatures
from gtv.numerics.kernel import train_kernel_ensemble
from gtv.numerics.linear import train_linear_ensemble
from gtv.numerics.naive import sample_naive_estimator
from gtv.numerics.two_layer import init_two_layer_ensemble, train_two_layer_ensemble

DATA = np.array([[-1.0], [0.0], [1.0]])
EPS = 0.01
FEATS = ProductFeatures.uniform("gaussian", 1, 3, 2, (EPS, 1.0))

# Sizes large enough that a run would take far longer than the bound below.
CALLS = {
    "train_linear_ensemble": lambda s: train_linear_ensemble(DATA, FEATS, 500, 10**6, EPS, seed=s),
    "train_two_layer_ensemble": lambda s: train_two_layer_ensemble(
        DATA, 64, 50, 2000, EPS, 0.01, [0.0, 100.0], seed=s
    ),
    "init_two_layer_ensemble": lambda s: init_two_layer_ensemble(DATA, 64, 50, 10**5, EPS, seed=s),
    "train_binned_affine_ensemble": lambda s: train_binned_affine_ensemble(
        0.0, 1.0, [EPS, 0.5, 1.0], 500, 10**6, seed=s
    ),
    "train_kernel_ensemble": lambda s: train_kernel_ensemble(DATA, 200, 200, EPS, [1.0], seed=s),
    "sample_naive_estimator": lambda s: sample_naive_estimator(DATA, 10**6, EPS, 1.0, seed=s),
    "sample_exact_denoiser": lambda s: sample_exact_denoiser(DATA, 10**7, EPS, seed=s),
}

BAD = [
    (None, TypeError, "NoneType"),
    (True, TypeError, "bool"),
    (np.True_, TypeError, "bool"),
    (1.7, TypeError, "float"),
    (1.0, TypeError, "float"),
    ("3", TypeError, "str"),
    (-1, ValueError, "non-negative"),
    (np.int64(-5), ValueError, "non-negative"),
]


@pytest.mark.parametrize("name", sorted(CALLS))
@pytest.mark.parametrize("seed, exc, what", BAD, ids=[repr(b[0]) for b in BAD])
def test_bad_seed_rejected_by_name_before_work(name, seed, exc, what):
    t0 = time.perf_counter()
    with pytest.raises(exc, match=rf"^seed must be .*{what}"):
        CALLS[name](seed)
    assert time.perf_counter() - t0 < 1.0, "the seed was checked only after some work"
