"""The linear compare table (gtv.validation.linear.compare) and ``gtv validate linear``.
Small sizes: the whole module runs in seconds. (The predictions: tests/validation/
test_predictions.py; the bound theories: tests/numerics/linear/test_prediction.py.)"""

import numpy as np
import pytest

from gtv.numerics.features import ProductFeatures
from gtv.numerics.linear import (
    FirstOrderLinear,
    SecondOrderLinear,
    linear_model_theory,
    second_order_moments,
)
from gtv.numerics.schedules import get_schedule
from gtv.validation.cli import main
from gtv.validation.figures.figure2 import FIGURE2_DATA
from gtv.validation.linear import LinearCompareConfig, LinearComparison, compare_linear
from gtv.validation.linear.comparison import moment_summary

EPS = 1e-2
P = 400


def _one_line_error(err):
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("gtv: error:"), err
    assert "Traceback" not in err


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
    # the mass-by-distance table: every model's mass (bins + outside) is in one of the shells
    assert len(res.shell_rows) == 5 and "mass by distance" in text
    for key in ("trained", "predicted"):
        assert sum(r[key] for r in res.shell_rows) == pytest.approx(1.0, abs=1e-9)
    ms = moment_summary(res.denoiser_rows, res.config.n_models)
    assert ms["n_points"] > 0 and f"within 25 % at {100 * ms['within_25']:.0f} %" in text
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
    args = ["validate", "linear", "--models", "4", "--density", "mc", "--samples", "200",
            "--P", "400", "--n-space", "5", "--n-time", "4", "--bins", "40", "--boot", "20",
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


def test_compare_takes_any_theory_through_the_contract():
    """The default is the first-order theory of the config's features; the same theory passed
    explicitly gives the same tables; a second-order theory changes the predicted moments and
    names itself in the table; a theory of another configuration is refused."""
    cfg = _tiny(n_models=4)
    sched = get_schedule(cfg.schedule)
    feats = ProductFeatures.uniform("gaussian", 1, 5, 4, (EPS, sched.T), cfg.x_range)
    th = linear_model_theory(FIGURE2_DATA, feats, EPS, sched, ridge=cfg.ridge)
    default = compare_linear(cfg)
    first = compare_linear(cfg, theory=FirstOrderLinear(th, P))
    assert first.denoiser_rows == default.denoiser_rows
    assert first.density_rows == default.density_rows
    second = compare_linear(cfg, theory=SecondOrderLinear(th, second_order_moments(th), P))
    assert [r["var_pred"] for r in second.denoiser_rows] != [
        r["var_pred"] for r in default.denoiser_rows
    ]
    assert [r["mean"] for r in second.denoiser_rows] == [r["mean"] for r in default.denoiser_rows]
    assert "second_order_linear" in second.format_table()
    with pytest.raises(ValueError, match="theory"):
        compare_linear(cfg, theory=FirstOrderLinear(th, P + 1))
    with pytest.raises(TypeError, match="EnsembleTheory"):
        compare_linear(cfg, theory=th)


def test_moment_summary_scores_by_hand():
    """Four points, one below the variance floor: the scores written out by hand."""
    rows = [
        {"var": 0.04, "var_pred": 0.05, "mean": 0.0, "mean_pred": 0.01},  # r-1 = 0.25, z = 0.5
        {"var": 0.01, "var_pred": 0.006, "mean": 0.2, "mean_pred": 0.2},  # 0.4, z = 0
        {"var": 0.09, "var_pred": 0.09, "mean": 1.0, "mean_pred": 1.09},  # 0, z = 3
        {"var": 1e-6, "var_pred": 5.0, "mean": 0.0, "mean_pred": 9.0},  # below the floor
    ]
    s = moment_summary(rows, n_models=100)
    assert s["n_points"] == 3
    assert s["median"] == pytest.approx(0.25)
    assert s["within_25"] == pytest.approx(2 / 3)
    assert s["z_within_2"] == pytest.approx(2 / 3)
    assert s["median_z"] == pytest.approx(0.5)
    assert s["p90"] == pytest.approx(0.25 + 0.8 * 0.15)
    assert moment_summary(rows[3:], 100) == {"n_points": 0, "var_floor": 1e-4}


def test_exact_below_reaches_the_occupancy_fields_and_is_checked():
    """``exact_below`` goes to the occupancy-field theories (their members change; the trained
    side does not), is saved with the configuration, and is refused elsewhere or out of range."""
    base = compare_linear(_tiny(theory="consistent_field", P=40))
    early = compare_linear(_tiny(theory="consistent_field", P=40, exact_below=0.3))
    assert early.config.exact_below == 0.3
    np.testing.assert_array_equal(early.histograms, base.histograms)
    assert early.theory.gf_histograms.tolist() != base.theory.gf_histograms.tolist()
    for bad, match in (
        (dict(exact_below=0.1), "only with the occupancy-field theories"),
        (dict(theory="consistent_field", exact_below=-0.1), "exact_below"),
        (dict(theory="consistent_field", exact_below=float("nan")), "exact_below"),
    ):
        with pytest.raises(ValueError, match=match):
            _tiny(**bad)


def test_theory_members_set_the_predictions_members_only(tmp_path, capsys):
    """``n_theory_members``: the theory's densities and gap mass come from that many field
    members -- the first K members of the same per-member streams, so the first ``n_models``
    members' gap masses are the default run's -- while the trained side and the Var D^ table
    (``n_models`` members) are unchanged; bad values are refused; the CLI passes it on."""
    base = compare_linear(_tiny(theory="consistent_field", P=40))
    more = compare_linear(_tiny(theory="consistent_field", P=40, n_theory_members=15))
    assert more.theory.gf_gap.shape == (15,) and base.theory.gf_gap.shape == (6,)
    np.testing.assert_array_equal(more.theory.gf_gap[:6], base.theory.gf_gap)
    np.testing.assert_array_equal(more.histograms, base.histograms)
    assert more.denoiser_rows == base.denoiser_rows
    assert "theory field: 15 members" in more.format_table()
    for bad in (3, 2.5, True):
        with pytest.raises(ValueError, match="n_theory_members"):
            _tiny(n_theory_members=bad)
    args = ["validate", "linear", "--models", "4", "--theory-members", "9", "--density", "mc",
            "--samples", "100", "--P", "40", "--n-space", "3", "--n-time", "3", "--bins", "40",
            "--boot", "20", "--theory", "consistent_field", "--no-diagnostics",
            "--out", str(tmp_path), "--formats", "png", "--no-progress"]  # fmt: skip
    assert main(args) == 0
    assert "theory field: 9 members" in capsys.readouterr().out
    back = LinearComparison.load(tmp_path / "linear_eps0.01_P40.npz")
    assert back.config.n_theory_members == 9 and back.theory.gf_gap.shape == (9,)


def test_theory_samples_set_the_fields_samples_only(tmp_path, capsys):
    """``theory_samples``: the theory field's members are sampled with that many PF-ODE samples
    each (its gap masses are those of :func:`gaussian_field_histograms` with it, recomputed here
    from the first-order theory of the config), while the trained side, the Var D^ table and the
    exact-Bayes baseline (whose default sample count does not follow it) are unchanged; only with
    density="mc"; bad values are refused; the CLI passes it on and it survives save/load."""
    from gtv.validation.theory_densities import gaussian_field_histograms

    mc = dict(density="mc", n_bayes_samples=None)
    base = compare_linear(_tiny(**mc))
    few = compare_linear(_tiny(**mc, theory_samples=50))
    sched = get_schedule("vp-linear")
    c = few.config
    feats = ProductFeatures.uniform("gaussian", 1, c.n_space, c.n_time, (EPS, sched.T), c.x_range)
    theory = FirstOrderLinear(
        linear_model_theory(FIGURE2_DATA, feats, EPS, sched, ridge=c.ridge), c.P
    )
    edges = np.linspace(c.hist_range[0], c.hist_range[1], c.n_bins + 1)
    hist, out, gap = gaussian_field_histograms(
        theory, c.n_models, 50, edges, c.gap_distance, n_steps=c.n_steps, seed=c.seed
    )
    np.testing.assert_allclose(few.theory.gf_gap, gap, rtol=0, atol=1e-12)
    np.testing.assert_allclose(few.theory.gf_histograms, hist, rtol=0, atol=1e-12)
    assert not np.allclose(few.theory.gf_gap, base.theory.gf_gap)  # 50, not 300, samples
    np.testing.assert_array_equal(few.histograms, base.histograms)
    assert few.denoiser_rows == base.denoiser_rows
    bayes = [[r for r in res.gap_rows if r["name"] == "exact_bayes_pfode"] for res in (base, few)]
    assert bayes[0] == bayes[1]
    assert "theory field: 6 members x 50 samples" in few.format_table()
    for bad, match in (
        (dict(theory_samples=0, density="mc"), "theory_samples must be"),
        (dict(theory_samples=2.5, density="mc"), "theory_samples"),
        (dict(theory_samples=50, density="transport"), "only with density='mc'"),
    ):
        with pytest.raises((ValueError, TypeError), match=match):
            _tiny(**bad)
    args = ["validate", "linear", "--models", "4", "--theory-samples", "30", "--density", "mc",
            "--samples", "100", "--P", "40", "--n-space", "3", "--n-time", "3", "--bins", "40",
            "--boot", "20", "--no-diagnostics", "--out", str(tmp_path), "--formats", "png",
            "--no-progress"]  # fmt: skip
    assert main(args) == 0
    assert "theory field: 4 members x 30 samples" in capsys.readouterr().out
    back = LinearComparison.load(tmp_path / "linear_eps0.01_P40.npz")
    assert back.config.theory_samples == 30
    assert np.allclose(back.theory.gf_gap * 30, np.round(back.theory.gf_gap * 30))
