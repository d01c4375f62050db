"""Issue 4, item 7: the acceptance numbers of the linear-model theory (slow; ~2 minutes).

Data {-1, 0, 1}, vp-linear, eps = 1e-2, F = 8 x 8 Gaussian features, N = 2000 trained models x
10^4 samples, the paper's sampler (30 Euler steps), query points x in {-1.5, ..., 1.5} (11) x
t in {0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1}.

* P = 4000 (F/P = 1/62.5): predicted Var D^ within 15 % of the empirical value at every query point
  with Var > 1e-4 -- with the second-order (1/P**2) theory. The first-order theory alone misses
  by up to 30 % at t <= 0.05 (printed; the heavy-tailed DSM weight leaves the early-time features
  few effective samples).
* The Gaussian-field [q] against the trained ensemble's half-vs-half noise floor: printed, and the
  measurement that the second-order Gaussian field sits at the edge of the noise floor.
* F/P = 1/4, 1, 4: the table of how far the first-order theory is off (reported, not hidden).

Run with ``python -m pytest -m slow tests/validation/linear/test_acceptance.py -s``.
"""

from __future__ import annotations

import numpy as np
import pytest

from gtv.numerics.linear import FirstOrderLinear, SecondOrderLinear, second_order_moments
from gtv.validation.linear import (
    LinearCompareConfig,
    compare_linear,
    format_validity_table,
    validity_row,
)
from gtv.validation.stats import interval_masses, total_variation
from gtv.validation.theory_densities import gaussian_field_histograms

pytestmark = pytest.mark.slow

QUERY_X = (-1.5, -1.0, -0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0, 1.5)
QUERY_T = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


def _config(P: int) -> LinearCompareConfig:
    # Monte Carlo densities: the thresholds below were measured with them (README, docs)
    return LinearCompareConfig(
        P=P, n_models=2000, n_samples=10_000, query_x=QUERY_X, query_t=QUERY_T, seed=0,
        density="mc",
    )  # fmt: skip


@pytest.fixture(scope="module")
def accepted():
    res = compare_linear(_config(4000))
    return res, second_order_moments(_theory(res))


def _theory(res):
    from gtv.numerics.features import ProductFeatures
    from gtv.numerics.linear import linear_model_theory
    from gtv.validation.figures import FIGURE2_DATA

    c = res.config
    feats = ProductFeatures.uniform("gaussian", 1, c.n_space, c.n_time, (c.eps, 1.0), c.x_range)
    return linear_model_theory(FIGURE2_DATA, feats, c.eps, c.schedule, ridge=c.ridge)


def test_variance_within_15_percent_with_second_order(accepted):
    res, mom = accepted
    P = res.config.P
    rows = [r for r in res.denoiser_rows if r["var"] > 1e-4]
    z = (np.array([r["x"] for r in rows]), np.array([r["t"] for r in rows]))
    _, v1, v2 = mom.denoiser_moments(z, P)
    emp = np.array([r["var"] for r in rows])
    r1 = emp / v1[:, 0, 0]
    r2 = emp / (v1 + v2)[:, 0, 0]
    print(f"\n{'x':>6} {'t':>5} | {'Var emp':>9} | emp/1st  emp/(1st+2nd)")
    for k, r in enumerate(rows):
        print(f"{r['x']:>6.2f} {r['t']:>5.2f} | {emp[k]:.3e} | {r1[k]:7.3f}  {r2[k]:7.3f}")
    print(
        f"{len(rows)} points with Var > 1e-4: max |ratio - 1| first order "
        f"{np.abs(r1 - 1).max():.3f}"
        f" ({np.sum(np.abs(r1 - 1) > 0.15)} outside 15 %), first + second "
        f"{np.abs(r2 - 1).max():.3f} ({np.sum(np.abs(r2 - 1) > 0.15)} outside 15 %)"
    )
    assert len(rows) >= 50
    assert np.all(np.abs(r2 - 1) <= 0.15)
    # the theory's known first-order shortfall, pinned down so that a change is noticed
    assert np.abs(r1 - 1).max() > 0.15


def _gaussian_field_histograms(res, mom, order):
    """Per-model histograms of the Gaussian-field ensemble on the comparison's bins."""
    c = res.config
    th = _theory(res)
    bound = FirstOrderLinear(th, c.P) if order == 1 else SecondOrderLinear(th, mom, c.P)
    hist, _, _ = gaussian_field_histograms(
        bound, c.n_models, c.n_samples, res.edges, c.gap_distance, n_steps=c.n_steps, seed=c.seed
    )
    return hist


def _tv_to_trained(res, h):
    width = float(res.edges[1] - res.edges[0])
    q = interval_masses(h.mean(0), width, 1 - h.sum(1).mean() * width)
    p = interval_masses(res.histograms.mean(0), width, res.outside.mean())
    return float(total_variation(p, q))


def _gaussian_field_tv(res, mom, order):
    return _tv_to_trained(res, _gaussian_field_histograms(res, mom, order))


def test_gaussian_field_density_report(accepted):
    res, mom = accepted
    h1, h2 = _gaussian_field_histograms(res, mom, 1), _gaussian_field_histograms(res, mom, 2)
    tv1, tv2 = _tv_to_trained(res, h1), _tv_to_trained(res, h2)
    floor = res.floor["tv"]
    gaps = {r["name"]: r for r in res.gap_rows}
    print(
        f"\nTV(trained, Gaussian field): first order {tv1:.4f}, second order {tv2:.4f}; "
        f"half-vs-half floor {floor:.4f}; gap mass trained {gaps['trained']['estimate']:.4f} "
        f"[{gaps['trained']['lo']:.4f}, {gaps['trained']['hi']:.4f}], Gaussian field "
        f"{gaps['gaussian_field']['estimate']:.4f}"
    )
    # where the second-order field differs: per-bin z-scores with the models as the units
    se = np.sqrt(res.histograms.var(0, ddof=1) / len(res.histograms) + h2.var(0, ddof=1) / len(h2))
    ok = se > 0
    z = (res.histograms.mean(0) - h2.mean(0))[ok] / se[ok]
    centres = (0.5 * (res.edges[:-1] + res.edges[1:]))[ok]
    top = np.argsort(-np.abs(z))[:6]
    print(
        f"per-bin z (trained - 2nd-order field): mean z^2 {np.mean(z**2):.2f} over {z.size} "
        "bins; largest |z| at x = " + ", ".join(f"{centres[k]:+.3f} ({z[k]:+.1f})" for k in top)
    )
    # The Gaussian field is close (the gap mass agrees within the trained CI) and the
    # second-order covariance brings it closer.
    assert gaps["trained"]["lo"] <= gaps["gaussian_field"]["estimate"] <= gaps["trained"]["hi"]
    assert tv2 < tv1


def test_gaussian_field_at_the_edge_of_the_noise_floor(accepted):
    """At N = 2000 the second-order Gaussian field sits at the half-vs-half noise floor, not
    resolvably beyond it. Measured TV(trained, 2nd-order field) / floor: 0.0110 / 0.0091 with the
    streams before issue 10 (seed arithmetic), 0.0075 / 0.0083 (seed 0), 0.0097 / 0.0092
    (seed 1) and 0.0071 / 0.0091 (seed 2) with the named streams. So whether the field is
    "within the floor" depends on the seed; this records the robust part: within 1.5 floors (it
    was recorded as a strict xfail of "within 1 floor" before, which seed 0 now passes)."""
    res, mom = accepted
    tv2 = _gaussian_field_tv(res, mom, 2)
    print(f"\nTV(trained, 2nd-order field) {tv2:.4f}, floor {res.floor['tv']:.4f}")
    assert tv2 <= 1.5 * res.floor["tv"]


def test_figure2_regime_table(accepted):
    """F/P = 1/4, 1, 4: the first-order theory is far off; print how far (the README table)."""
    res, _ = accepted
    rows = [validity_row(res)]
    for P in (256, 64, 16):
        rows.append(validity_row(compare_linear(_config(P))))
    print("\n" + format_validity_table(rows))
    for r in rows[1:]:
        assert r["n_within"] < r["n_points"]  # the known failure at F/P >= 1/4
