"""Issue 11's [q] target for the small-occupancy fields (docs/math/finite_fp.md).

Slow: each configuration trains 2000 models (F = 8 x 8) and draws 2000 field members. Target: the
field's gap mass inside the trained ensemble's 95 % CI and TV(field, trained) <= 1.5 times the
half-vs-half floor. The default run exercises the same path at small size
(tests/numerics/linear/test_strata.py, tests/validation/linear/test_validity_map.py).
"""

from __future__ import annotations

import pytest

from gtv.validation.linear.compare import LinearCompareConfig, compare_linear

QUERY_X = (-1.0, 0.0, 1.0)
QUERY_T = (0.02, 0.1)


def _compare(P: int, eps: float, theory: str, n_samples: int, exact_below: float = 0.0):
    # Monte Carlo densities, as in the measurements of docs/math/finite_fp.md
    c = LinearCompareConfig(
        eps=eps, P=P, n_models=2000, n_samples=n_samples, query_x=QUERY_X, query_t=QUERY_T,
        seed=0, theory=theory, diagnostics=False, n_boot=400, density="mc",
        exact_below=exact_below,
    )  # fmt: skip
    return compare_linear(c)


def _scores(
    P: int, eps: float, theory: str = "stratified_field", n_samples: int = 500
) -> tuple[dict, dict, float, float]:
    res = _compare(P, eps, theory, n_samples)
    gaps = {r["name"]: r for r in res.gap_rows}
    tv = {r["theory"]: r["tv"] for r in res.density_rows}["gaussian_field"]
    return gaps["trained"], gaps["gaussian_field"], tv, res.floor["tv"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "P",
    [
        pytest.param(
            256,
            marks=pytest.mark.xfail(
                strict=True,
                reason="F/P = 1/4: the stratified field's gap mass is 7-8 % above the trained "
                "CI (0.159 vs 0.148 [0.143, 0.154] at eps = 0.01); docs/math/finite_fp.md",
            ),
        ),
        64,
        16,
    ],
)
def test_stratified_field_gap_and_tv_at_finite_F_over_P(P):
    trained, field, tv, floor = _scores(P, 0.01)
    print(
        f"\nP={P}: gap trained {trained['estimate']:.4f} [{trained['lo']:.4f}, "
        f"{trained['hi']:.4f}], field {field['estimate']:.4f}; TV {tv:.4f}, floor {floor:.4f}"
    )
    assert trained["lo"] <= field["estimate"] <= trained["hi"]
    assert tv <= 1.5 * floor


@pytest.mark.slow
@pytest.mark.parametrize(
    "eps",
    [
        pytest.param(
            0.01,
            marks=pytest.mark.xfail(
                strict=True,
                reason="F/P = 1/4, eps = 0.01: the consistent field's gap mass is 7.8 % above "
                "the trained CI (0.1597 vs 0.1481 [0.1429, 0.1535]): mass missing from the peak "
                "cores lands in the gap (test below); docs/math/finite_fp.md",
            ),
        ),
        0.001,
    ],
)
def test_consistent_field_gap_and_tv_at_F_over_P_one_quarter(eps):
    """8 x 8 features, P = 256: the consistent field (heavy sets closed under each member's own
    leverage) meets the [q] target at eps = 1e-3, where the plain occupancy field does not --
    with these Monte Carlo densities (0.1219 in [0.1134, 0.1221]); with transported densities the
    same cell is 0.0001 above the CI (docs/math/finite_fp.md): a tie, not a margin."""
    # the options of the consistent-field table in docs/math/finite_fp.md (5000 samples each)
    trained, field, tv, floor = _scores(256, eps, "consistent_field", 5000)
    print(
        f"\neps={eps}: gap trained {trained['estimate']:.4f} [{trained['lo']:.4f}, "
        f"{trained['hi']:.4f}], field {field['estimate']:.4f}; TV {tv:.4f}, floor {floor:.4f}"
    )
    assert trained["lo"] <= field["estimate"] <= trained["hi"]
    assert tv <= 1.5 * floor


@pytest.mark.slow
@pytest.mark.parametrize("eps", [0.01, 0.001])
def test_consistent_field_error_at_F_over_P_one_quarter_sits_in_the_peak_cores(eps):
    """Where the F/P = 1/4 error of the consistent field sits (docs/math/finite_fp.md, *Where the
    density errors sit*): its peak cores (within 0.05 of a training point) hold less mass than
    the trained ensemble's, the difference's CI below 0 (-0.014, z = -2.3 at eps = 1e-2; -0.027,
    z = -4.4 at 1e-3, with these seeds and 5000 samples). A measurement kept as a test: a theory
    that removes the deficit fails it, and the docs must then change with it."""
    res = _compare(256, eps, "consistent_field", 5000)
    core = res.shell_rows[0]
    print(
        f"\neps={eps}: core shell difference {core['diff']:+.4f} "
        f"[{core['diff_lo']:+.4f}, {core['diff_hi']:+.4f}], z {core['z']:.1f}"
    )
    assert core["lo"] == 0.0 and core["hi"] == 0.05
    assert core["diff_hi"] < 0 and core["z"] < -2


@pytest.mark.slow
@pytest.mark.parametrize("eps", [0.01, 0.001])
def test_early_triples_exact_meet_the_target_and_fill_the_cores_at_F_over_P_one_quarter(eps):
    """8 x 8 features, P = 256, every triple below t = 0.2 exact (docs/math/finite_fp.md, *[q]
    with the early triples exact*; 0.2 was read off the splice measurement of these ensembles):
    the gap mass inside the trained CI, TV <= 1.5 floors, and the peak-core deficit of the
    consistent field (z = -2.3 / -4.4 above) gone: |z| < 2 (measured +1.2 / +0.8 with 5000
    samples; a field with the trained law fails this with probability 5 %)."""
    res = _compare(256, eps, "consistent_field", 5000, exact_below=0.2)
    gaps = {r["name"]: r for r in res.gap_rows}
    trained, field = gaps["trained"], gaps["gaussian_field"]
    tv = {r["theory"]: r["tv"] for r in res.density_rows}["gaussian_field"]
    core = res.shell_rows[0]
    print(
        f"\neps={eps}: gap trained {trained['estimate']:.4f} [{trained['lo']:.4f}, "
        f"{trained['hi']:.4f}], field {field['estimate']:.4f}; TV {tv:.4f}, floor "
        f"{res.floor['tv']:.4f}; core {core['diff']:+.4f} (z {core['z']:.1f})"
    )
    assert trained["lo"] <= field["estimate"] <= trained["hi"]
    assert tv <= 1.5 * res.floor["tv"]
    assert abs(core["z"]) < 2


@pytest.mark.slow
@pytest.mark.parametrize("P", [256, 64, 16])
def test_consistent_theory_with_auto_t_c_meets_both_targets(P):
    """``theory="consistent"``, ``exact_below="auto"`` at eps = 0.01 on the issue's 11 x 7 grid,
    seed 0 (docs/math/finite_fp.md, *The consistent field's own moments*): t_c chosen by the
    field's own ladder (no trained model), then the variance target (median |r - 1| <= 0.10,
    90 % of the points within 25 %; measured 0.048 / 0.050 / 0.047, 98-100 %), the mean within
    2 SE at >= 85 % of the points (measured 89-91 %), and the [q] target (gap mass inside the
    trained CI, TV <= 1.5 floors; measured z = -0.16, +0.50, -0.57)."""
    from gtv.validation.linear.comparison import moment_summary

    c = LinearCompareConfig(
        eps=0.01, P=P, n_models=2000, n_samples=5000, seed=0, theory="consistent",
        exact_below="auto", diagnostics=False, n_boot=400, density="mc",
        query_x=(-1.5, -1, -0.75, -0.5, -0.25, 0, 0.25, 0.5, 0.75, 1, 1.5),
        query_t=(0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1),
    )  # fmt: skip
    res = compare_linear(c)
    ms = moment_summary(res.denoiser_rows, c.n_models)
    gaps = {r["name"]: r for r in res.gap_rows}
    trained, field = gaps["trained"], gaps["gaussian_field"]
    tv = {r["theory"]: r["tv"] for r in res.density_rows}["gaussian_field"]
    print(f"\nP={P}: t_c {res.meta['exact_below_choice']['t_c']}, {ms}, gap {field['estimate']}")
    assert ms["median"] <= 0.10 and ms["within_25"] >= 0.90
    assert ms["z_within_2"] >= 0.85
    assert trained["lo"] <= field["estimate"] <= trained["hi"]
    assert tv <= 1.5 * res.floor["tv"]


def _precise(P: int, seed: int, exact_below) -> tuple[dict, dict, float]:
    """Gap rows (trained, field) and TV/floor of the consistent field with 8000 members (four per
    trained model) at eps = 0.01 (docs/math/finite_fp.md, *The prediction at the precision the
    target assumes*); ``exact_below=2`` (above T) makes every member a ridge regression on its
    own triples: 8000 independently trained models."""
    c = LinearCompareConfig(
        eps=0.01, P=P, n_models=2000, n_theory_members=8000, n_samples=5000, seed=seed,
        theory="consistent_field", exact_below=exact_below, diagnostics=False, n_boot=400,
        density="mc", query_x=QUERY_X, query_t=QUERY_T,
    )  # fmt: skip
    res = compare_linear(c)
    gaps = {r["name"]: r for r in res.gap_rows}
    tv = {r["theory"]: r["tv"] for r in res.density_rows}["gaussian_field"]
    return gaps["trained"], gaps["gaussian_field"], tv / res.floor["tv"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("P", "seed"),
    [
        (64, 0),
        pytest.param(
            256,
            1,
            marks=pytest.mark.xfail(
                strict=True,
                reason="seed 1, F/P = 1/4: the 2000-model ensemble is low (0.1411 [0.1363, "
                "0.1458] here); the field (0.1484) and 8000 independently trained models "
                "(0.1488) are both above its CI; docs/math/finite_fp.md",
            ),
        ),  # fmt: skip
    ],
)
def test_precise_field_meets_the_literal_target(P, seed):
    """The literal [q] target with the field computed to half the trained standard error
    (measured: 22 of 24 cells; here, with 400 bootstrap resamples, seed 0, F/P = 1: 0.2365 in
    [0.2244, 0.2441], TV 0.56 floors)."""
    trained, field, tv_floor = _precise(P, seed, "auto")
    print(f"\nP={P} seed {seed}: trained {trained}, field {field}, TV/floor {tv_floor:.2f}")
    assert tv_floor <= 1.5
    assert trained["lo"] <= field["estimate"] <= trained["hi"]


@pytest.mark.slow
def test_precise_field_agrees_with_independently_trained_models_where_the_target_misses():
    """Where the literal target misses (seed 1, F/P = 1/4), the field's gap mass agrees with that
    of 8000 independently trained models: two-sample |z| < 2.5 (false-alarm rate about 1 % for an
    exact prediction; measured z = -0.22). A field off by what the closure without early triples
    missed at F/P = 1/4 (+7.8 % with seed 0, about +0.011) would give z of about 6."""
    import numpy as np

    _, field, _ = _precise(256, 1, "auto")
    _, indep, _ = _precise(256, 1, 2.0)
    se = [(r["hi"] - r["lo"]) / 3.92 for r in (field, indep)]
    z = (field["estimate"] - indep["estimate"]) / np.hypot(*se)
    print(f"\nfield {field['estimate']:.4f}, independent {indep['estimate']:.4f}, z {z:+.2f}")
    assert abs(z) < 2.5
