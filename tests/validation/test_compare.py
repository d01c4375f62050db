"""Theory predictions (Gaussian-field ensemble, white-noise Fokker-Planck) and the linear
compare table / CLI (issue 4, items 5-6). Small sizes: the whole module runs in seconds."""

import numpy as np
import pytest

from gtv.numerics.features import ProductFeatures
from gtv.numerics.linear.theory import linear_model_theory
from gtv.numerics.schedules import get_schedule
from gtv.validation.cli import main
from gtv.validation.figures.figure2 import FIGURE2_DATA, mixture_density
from gtv.validation.linear.compare import (
    LinearCompareConfig,
    LinearComparison,
    compare_linear,
    hellinger,
    total_variation,
)
from gtv.validation.predictions import (
    TheoryPredictions,
    _SeparableCoefficients,
    bin_mixture_density,
    compute_theory_predictions,
    gaussian_field_ensemble,
    markov_fokker_planck,
)

EPS = 1e-2
P = 400


@pytest.fixture(scope="module")
def theory():
    sched = get_schedule("vp-linear")
    feats = ProductFeatures.uniform("gaussian", 1, 5, 4, (EPS, sched.T))
    return linear_model_theory(FIGURE2_DATA, feats, EPS, sched)


def _one_line_error(err):
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("gtv: error:"), err
    assert "Traceback" not in err


def test_gaussian_field_weights_have_the_predicted_covariance(theory):
    n = 4000
    ens = gaussian_field_ensemble(theory, P, n, seed=1)
    assert ens.W.shape == (n, 1, theory.n_features)
    assert ens.features is theory.features and ens.eps == theory.eps
    v = ens.W[:, 0, :]  # D = 1: vec W = W[0]
    C = theory.cov_W(P)
    emp = np.cov(v, rowvar=False)
    # E||C^ - C||_F^2 = (||C||_F^2 + tr(C)^2) / n for Gaussian vectors: <= sqrt(21/n) = 0.07 here
    assert np.linalg.norm(emp - C) / np.linalg.norm(C) < 0.15
    assert np.allclose(v.mean(0), theory.W_inf[0], atol=4 * np.sqrt(np.diag(C) / n).max())


def test_gaussian_field_reproduces_predicted_denoiser_variance(theory):
    n = 4000
    ens = gaussian_field_ensemble(theory, P, n, seed=2)
    x = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
    for t in (0.02, 0.1, 0.5):
        emp = ens.denoise(x[:, None], t)[:, :, 0].var(axis=0, ddof=1)
        pred = theory.denoiser_covariance((x, t), P=P, paired=True)[:, 0, 0]
        # sd of a variance ratio with n Gaussian draws: sqrt(2 / n) = 0.022
        assert np.all(np.abs(emp / pred - 1) < 0.12), (t, emp / pred)


def test_separable_coefficients_match_linear_theory(theory):
    fast = _SeparableCoefficients(theory, P)
    x = np.linspace(-3, 3, 41)[:, None]
    for t in (0.011, 0.3, 0.95):
        q_ref = theory.markov_intensity(x, t, P)[:, 0, 0]
        assert np.allclose(fast.markov_intensity(x, t), q_ref, rtol=1e-10, atol=1e-14)
        assert np.allclose(fast.mean_score(x, t), theory.mean_score(x, t), rtol=1e-12, atol=1e-12)


def test_white_noise_fp_is_a_normalized_nonnegative_density(theory):
    res, info = markov_fokker_planck(theory, P, (-5, 5), 200, 120)
    p = res.density
    assert np.all(np.isfinite(p)) and np.all(p >= 0)
    # mass is conserved exactly; p_T on [-5, 5] misses the N(0, 1) tails (5.7e-7)
    assert res.grid.mass(p) == pytest.approx(res.mass[0], rel=1e-12)
    assert res.grid.mass(p) == pytest.approx(1.0, abs=1e-6)
    assert 0 <= info["clipped_fraction"] <= 1 and 0 <= info["clipped_share"] <= 1
    assert info["min_Q_rel"] <= 0


def test_bin_mixture_density_is_exact_bin_average():
    sched = get_schedule("vp-linear")
    edges = np.linspace(-5, 5, 5001)
    d = bin_mixture_density(FIGURE2_DATA, edges, 0.1, sched)
    assert (d * np.diff(edges)).sum() == pytest.approx(1.0, abs=1e-12)
    ctr = (edges[1:] + edges[:-1]) / 2
    assert np.allclose(d, mixture_density(FIGURE2_DATA, ctr, 0.1, sched), atol=1e-3)


def test_distances():
    p = np.array([0.5, 0.5, 0.0])
    q = np.array([0.0, 0.0, 1.0])
    assert total_variation(p, p) == 0 and hellinger(p, p) == pytest.approx(0, abs=1e-7)
    assert total_variation(p, q) == pytest.approx(1) and hellinger(p, q) == pytest.approx(1)


def test_theory_predictions_roundtrip(theory, tmp_path):
    edges = np.linspace(-2, 2, 41)
    tp = compute_theory_predictions(
        theory, P, 4, 300, edges, n_bayes_samples=2000, fp_steps=60, fp_refine=1
    )
    for name, (dens, out) in tp.densities().items():
        assert np.all(np.isfinite(dens)) and np.all(dens >= 0), name
        assert (dens * 0.1).sum() + out == pytest.approx(1.0, abs=1e-9), name
    path = tp.save(tmp_path / "tp")
    back = TheoryPredictions.load(path)
    assert np.array_equal(back.gf_histograms, tp.gf_histograms)
    assert back.fp_info == tp.fp_info and back.gap == tp.gap


def _tiny(**kw):
    base = dict(
        eps=EPS,
        P=P,
        n_space=5,
        n_time=4,
        n_models=6,
        n_samples=300,
        n_bins=40,
        n_boot=40,
        n_splits=3,
        fp_steps=60,
        fp_refine=1,
        n_bayes_samples=2000,
    )
    base.update(kw)
    return LinearCompareConfig(**base)


def _finite_rows(rows):
    for r in rows:
        for k, v in r.items():
            if isinstance(v, float):
                assert np.isfinite(v), (r, k)


def test_compare_table_end_to_end(tmp_path):
    res = compare_linear(_tiny())
    assert len(res.denoiser_rows) == 15
    assert {r["theory"] for r in res.density_rows} == set(res.theory.densities())
    _finite_rows(res.denoiser_rows)
    _finite_rows(res.density_rows)
    _finite_rows(res.gap_rows)
    for r in res.density_rows:
        assert 0 <= r["tv"] <= 1 and 0 <= r["hellinger"] <= 1
        assert r["tv_lo"] <= r["tv_hi"]
    assert np.isfinite(res.floor["tv"]) and np.isfinite(res.floor["hellinger"])
    text = res.format_table()
    assert "gaussian_field" in text and "noise floor" in text and "nan" not in text
    npz, js = res.save(tmp_path / "cmp")
    assert js.exists()
    back = LinearComparison.load(npz)
    assert back.format_table() == text
    paths = res.plot(tmp_path / "cmp", formats=("png",))
    assert paths[0].stat().st_size > 0


def test_compare_is_reproducible():
    a, b = compare_linear(_tiny(n_models=4)), compare_linear(_tiny(n_models=4))
    assert a.density_rows == b.density_rows and a.denoiser_rows == b.denoiser_rows


def test_cli_validate_linear_runs(tmp_path, capsys):
    args = ["validate", "linear", "--models", "4", "--samples", "200", "--P", "400",
            "--n-space", "5", "--n-time", "4", "--bins", "40", "--boot", "20",
            "--query-x", "-0.4", "0.7", "--query-t", "0.05", "0.3",
            "--out", str(tmp_path), "--formats", "png", "--no-progress"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "eps=0.01" in out and "Hellinger" in out
    assert " -0.40  0.050 |" in out and "  0.70  0.300 |" in out and "  0.50 " not in out
    assert "validity of the first-order theory" in out and "| 0.01 | 400 | 0.05 | 4 |" in out
    assert (tmp_path / "linear_eps0.01_P400.npz").exists()
    assert (tmp_path / "linear_eps0.01_P400.json").exists()
    assert (tmp_path / "linear_eps0.01_P400.png").exists()


@pytest.mark.parametrize(
    "bad",
    [["--eps", "-1"], ["--models", "1"], ["--P", "0"], ["--eps", "x"], ["--formats", "gif"]],
)
def test_cli_validate_bad_args_one_line(bad, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["validate", "linear", *bad])
    assert exc.value.code == 2
    _one_line_error(capsys.readouterr().err)


def test_cli_validate_eps_above_T_one_line(tmp_path, capsys):
    assert main(["validate", "linear", "--eps", "2", "--out", str(tmp_path)]) == 1
    _one_line_error(capsys.readouterr().err)


def test_second_order_gaussian_field_has_the_second_order_moments(theory):
    from gtv.numerics.linear.second_order import second_order_moments

    mom = second_order_moments(theory)
    n, P2 = 6000, 150  # small P: the second-order part is a visible share of Cov W
    dW, C2 = mom.weight_moments(P2)
    C = theory.cov_W(P2) + C2
    assert np.linalg.norm(C2) > 0.1 * np.linalg.norm(theory.cov_W(P2))
    ens = gaussian_field_ensemble(theory, P2, n, seed=2, second_order=mom)
    v = ens.W[:, 0, :]
    emp = np.cov(v, rowvar=False)
    # Frobenius error of a Gaussian sample covariance: sqrt((|C|^2 + tr(C)^2)/n) relative
    bound = 4 * np.sqrt((np.linalg.norm(C) ** 2 + np.trace(C) ** 2) / n) / np.linalg.norm(C)
    assert np.linalg.norm(emp - C) / np.linalg.norm(C) < bound
    assert np.linalg.norm(emp - theory.cov_W(P2)) / np.linalg.norm(C) > bound  # C2 is visible
    se = np.sqrt(np.diag(C) / n)
    assert np.all(np.abs(v.mean(0) - (theory.W_inf[0] + dW[0])) < 4.5 * se)
    # same streams as the first-order draws
    first = gaussian_field_ensemble(theory, P2, 3, seed=2)
    assert not np.allclose(first.W, ens.W[:3])
    with pytest.raises(TypeError, match="second_order"):
        gaussian_field_ensemble(theory, P2, 3, second_order="yes")
    with pytest.raises(ValueError, match="n_models"):
        gaussian_field_ensemble(theory, P2, 0, second_order=mom)
