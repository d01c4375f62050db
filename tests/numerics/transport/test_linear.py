"""Transport densities of trained linear ensembles: against Monte Carlo, and the option in
summarize_ensemble / sample_linear_panel."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from gtv.numerics.features import ProductFeatures
from gtv.numerics.linear import sample_linear_ensemble, train_linear_ensemble
from gtv.numerics.schedules import get_schedule
from gtv.numerics.transport import TransportedGrid, transport_1d, transport_grid
from gtv.validation.ensembles import summarize_ensemble
from gtv.validation.figures.base import sample_linear_panel
from gtv.validation.figures.figure2 import FIGURE2_DATA

SCHED = get_schedule("vp-linear")
SIGMA_T = float(np.sqrt(SCHED.sigma2(SCHED.T)))
EPS = 0.01
EDGES = np.linspace(-1.5, 1.5, 31)


def _features(dim=1):
    return ProductFeatures.uniform("gaussian", dim, 16 if dim == 1 else 5, 16 if dim == 1 else 4,
                                   (EPS, SCHED.T), (-1.5, 1.5))  # fmt: skip


@pytest.fixture(scope="module")
def ensemble():
    """Four Figure-2 models (eps = 0.01, P = 64, F = 16 x 16)."""
    return train_linear_ensemble(
        FIGURE2_DATA, _features(), 4, 64, EPS, SCHED, ridge=0.1, seed=0, keep_normal_equations=False
    )


def _pearson(counts, masses, n):
    """Pearson chi-square p-value of counts (B,) out of n against bin masses (B,); the mass
    outside the bins and bins expecting < 5 counts are pooled into one category."""
    obs = np.append(counts, n - counts.sum())
    exp = np.append(masses, 1.0 - masses.sum()) * n
    small = exp < 5
    obs = np.append(obs[~small], obs[small].sum())
    exp = np.append(exp[~small], exp[small].sum())
    chi2 = ((obs - exp) ** 2 / exp).sum()
    return stats.chi2.sf(chi2, obs.size - 1)


def test_transport_agrees_with_monte_carlo_per_model(ensemble):
    """Per model, 10^5 Monte Carlo samples (stream "sampling", seed 0) are a multinomial draw
    from the transport bin masses: Pearson chi-square, Bonferroni over 4 models at 1e-3, so a
    false alarm has probability <= 1e-3 (the transport error, < 3e-4 in TV by the halving
    estimate, moves at most 30 of the 10^5 expected counts). Power: model n's samples against
    model n+1's transport masses are rejected."""
    g = transport_1d(lambda x: sample_linear_ensemble(ensemble, x.shape[1], x_T=x), 4, SIGMA_T,
                     2**14)  # fmt: skip
    masses = g.bin_masses(EDGES)
    assert g.error(EDGES).max() < 3e-4
    n = 100_000
    xs = sample_linear_ensemble(ensemble, n, seed=0)
    counts = np.stack([np.histogram(xs[k, :, 0], EDGES)[0] for k in range(4)])
    p_same = [_pearson(counts[k], masses[k], n) for k in range(4)]
    assert min(p_same) > 1e-3 / 4, p_same
    p_other = [_pearson(counts[k], masses[(k + 1) % 4], n) for k in range(4)]
    assert max(p_other) < 1e-6, p_other


def test_summarize_ensemble_bins_a_transported_grid(ensemble):
    g = transport_1d(lambda x: sample_linear_ensemble(ensemble, x.shape[1], x_T=x), 4, SIGMA_T,
                     2000)  # fmt: skip
    res = summarize_ensemble(g, FIGURE2_DATA, [EDGES], 0.25, {"eps": EPS})
    np.testing.assert_array_equal(res.histograms, g.histograms(EDGES))
    np.testing.assert_array_equal(res.gap, g.gap_mass(FIGURE2_DATA, 0.25))
    assert res.config["density"] == "transport" and res.config["eps"] == EPS
    assert res.config["transport_points"] == 2000
    assert res.config["transport_error_tv"] == pytest.approx(g.error(EDGES).max())
    # the far mass is far from trivial at eps = 0.01, P = 64 (the gap fills)
    assert np.all((res.gap > 0) & (res.gap < 1))
    with pytest.raises(ValueError, match="edges"):
        summarize_ensemble(g, FIGURE2_DATA, [EDGES, EDGES], 0.25)


def test_panel_option_transport_1d_and_2d():
    kw = dict(ridge=0.1, n_steps=30, method="euler", lookup="exact", seed=3)
    mc, _ = sample_linear_panel(FIGURE2_DATA, _features(), 3, 32, EPS, SCHED, n_samples=200, **kw)
    tr, took = sample_linear_panel(
        FIGURE2_DATA, _features(), 3, 32, EPS, SCHED, n_samples=200, density="transport", **kw
    )
    assert isinstance(mc, np.ndarray) and mc.shape == (3, 200, 1)
    assert isinstance(tr, TransportedGrid) and set(took) == {"train", "sample"}
    np.testing.assert_array_equal(tr.start, transport_grid(200, SIGMA_T))
    # trained as the panel trains (normal equations not kept: for P <= F/2 the dual system)
    ens = train_linear_ensemble(
        FIGURE2_DATA, _features(), 3, 32, EPS, SCHED, ridge=0.1, seed=3, keep_normal_equations=False
    )
    x_T = np.broadcast_to(tr.start[None, :, None], (3, 200, 1))
    np.testing.assert_array_equal(tr.end, sample_linear_ensemble(ens, 200, x_T=x_T)[:, :, 0])
    data2 = np.array([[-1.0, 0.0], [1.0, 0.5]])
    q, _ = sample_linear_panel(data2, _features(2), 2, 16, EPS, SCHED, n_samples=100,
                               density="transport", **kw)  # fmt: skip
    assert q.shape == (2, 128, 2) and np.all(np.isfinite(q))
    with pytest.raises(ValueError, match="density"):
        sample_linear_panel(FIGURE2_DATA, _features(), 3, 32, EPS, SCHED, n_samples=10,
                            density="exact", **kw)  # fmt: skip
