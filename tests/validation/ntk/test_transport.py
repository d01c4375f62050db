"""Transported densities in ``gtv validate ntk`` (``density="transport"``, the default) against
Monte Carlo (``density="mc"``); the density options of the command; resume files of the other
density (docs/math/transport.md, docs/math/kernel.md).

Both runs of the agreement test train the same networks (stream ``"training"``), fit the same
infinite-width networks and draw the same field members (stream ``"field"``): only how the
densities are formed differs. A transported density is exact up to its grid error (estimates
below 1e-3 in total variation here), so the Monte Carlo histogram of model ``n`` is a multinomial
draw (``S`` samples) from its transported bin masses (statistics: tests/validation/agreement.py).

False-alarm probability of the agreement test: ``ENSEMBLES`` = 8 ensembles (2 widths x 2 taus,
the infinite width and the Gaussian field at 2 taus) run two X^2 checks at level ``ALPHA`` each
and ``N = 6`` gap z-checks at ``P(|z| > 4.5) = 6.8e-6``, the exact-Bayes baseline one X^2 check
and one z-check; with ``ALPHA = 1e-3 / (ENSEMBLES + 1)`` the test fails for a correct
implementation with probability below ``2e-3 + 49 * 6.8e-6 = 2.4e-3`` (asymptotic X^2;
conservative for the ensemble means). It takes about 6 s (2-core AMD EPYC, numba caches warm).
"""

from __future__ import annotations

import numpy as np
import pytest

from gtv.validation.cli import main
from gtv.validation.ntk import compare
from gtv.validation.ntk.compare import NTKCompareConfig, compare_ntk

from ..agreement import check_agreement

S = 4000  # Monte Carlo samples per model
TAUS = (1.0, 6.0)
WIDTHS = (32, 256)
ENSEMBLES = len(WIDTHS) * len(TAUS) + 2 * len(TAUS)
ALPHA = 1e-3 / (ENSEMBLES + 1)
COMMON = dict(
    P=48, widths=WIDTHS, n_models=6, taus=TAUS, n_bins=40, n_boot=20, theory_n_t=6,
    theory_n_hermite=6, fp_steps=40, fp_refine=1, fp_half_width=10.0, query_x=(-1.0, 0.5),
    query_t=(0.05,), seed=2,
)  # fmt: skip


def _one_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("gtv: error:") and "Traceback" not in err, err
    return lines[0]


# -- agreement with Monte Carlo ----------------------------------------------------------------
def test_transport_agrees_with_monte_carlo_model_by_model():
    """Every ensemble of the comparison -- the trained networks of each width, the infinite-width
    networks and the Gaussian-field members at every tau, and the exact-Bayes PF-ODE: per-model
    gap masses and densities and the ensemble-mean density within the Monte Carlo noise of ``S``
    samples per model; the negative controls (models paired with their neighbours' gap masses,
    densities shifted by one bin) fail the same statistics."""
    tr = compare_ntk(NTKCompareConfig(**COMMON, n_points=256, max_points=2048))
    mc = compare_ntk(NTKCompareConfig(**COMMON, density="mc", n_samples=S, n_bayes_samples=S))
    np.testing.assert_array_equal(tr.denoiser, mc.denoiser)  # the same trained networks
    assert max(tr.meta["transport_error_tv"].values()) < 1e-3, tr.meta["transport_error_tv"]
    width = float(np.diff(tr.edges)[0])
    checked = 0
    for k in range(len(TAUS)):
        pairs = [
            (f"width {w}", (tr.histograms[i, k], tr.outside[i, k], tr.gap[i, k]),
             (mc.histograms[i, k], mc.outside[i, k], mc.gap[i, k]))
            for i, w in enumerate(WIDTHS)
        ]  # fmt: skip
        pairs.append(
            ("infinite width", (tr.kernel_histograms[k], tr.kernel_outside[k], tr.kernel_gap[k]),
             (mc.kernel_histograms[k], mc.kernel_outside[k], mc.kernel_gap[k]))
        )  # fmt: skip
        pairs.append(
            ("Gaussian field", (tr.gf_histograms[k], tr.gf_outside[k], tr.gf_gap[k]),
             (mc.gf_histograms[k], mc.gf_outside[k], mc.gf_gap[k]))
        )  # fmt: skip
        for name, a, b in pairs:
            check_agreement(f"tau {TAUS[k]} {name}", a, b, width, S, ALPHA)
            checked += 1
    assert checked == ENSEMBLES
    # the exact-Bayes baseline: one model (its Pearson X^2 and gap z; no neighbour to pair with)
    from ..agreement import agreement

    def bayes(r):
        h = r.bayes_density[None]
        return h, np.array([1.0 - h.sum() * width]), np.array([r.meta["baseline_gap"]["bayes"]])

    a = agreement(bayes(tr), bayes(mc), width, S, ALPHA)
    assert abs(a["z"][0]) < 4.5 and a["worst"] < 1, a
    shifted = agreement(
        (np.roll(bayes(tr)[0], 1, axis=1), *bayes(tr)[1:]), bayes(mc), width, S, ALPHA
    )
    assert shifted["worst"] > 1


# -- the command's options ------------------------------------------------------------------
class _Seen(Exception):
    pass


@pytest.fixture
def seen_config(monkeypatch):
    """Run ``gtv validate ntk`` up to compare_ntk and return the configuration it got."""

    def spy(cfg, progress=False, cache_dir=None, *, checkpoint=None, model_chunk=None):
        raise _Seen(cfg)

    monkeypatch.setattr(compare, "compare_ntk", spy)

    def run(*args: str) -> NTKCompareConfig:
        with pytest.raises(_Seen) as exc:
            main(["validate", "ntk", "--no-progress", *args])
        return exc.value.args[0]

    return run


def test_cli_density_options_reach_the_configuration(seen_config, tmp_path):
    out = ["--out", str(tmp_path)]
    c = seen_config(*out)
    d = NTKCompareConfig()
    assert (c.density, c.n_points, c.max_points) == ("transport", 512, 4096) == (
        d.density, d.n_points, d.max_points
    )  # fmt: skip
    c = seen_config(*out, "--points", "256")
    assert (c.n_points, c.max_points) == (256, 4096)
    c = seen_config(*out, "--points", "8192")
    assert (c.n_points, c.max_points) == (8192, 8192)
    c = seen_config(*out, "--points", "64", "--max-points", "64")
    assert (c.n_points, c.max_points) == (64, 64)
    c = seen_config(*out, "--density", "mc", "--samples", "77")
    assert (c.density, c.n_samples) == ("mc", 77)
    c = seen_config(*out, "--density", "mc")
    assert (c.density, c.n_samples) == ("mc", d.n_samples)
    assert "density" in c.to_dict() and "density" not in c.run_settings()


@pytest.mark.parametrize(
    "args, word",
    [
        (["--samples", "100"], "--samples is used with --density mc"),
        (["--density", "mc", "--points", "256"], "--points and --max-points are used with"),
        (["--density", "mc", "--max-points", "9000"], "--points and --max-points are used with"),
        (["--points", "1024", "--max-points", "512"], "--max-points must be >= --points (1024)"),
    ],
)
def test_cli_density_conflicts_are_one_line_errors(args, word, tmp_path, capsys, monkeypatch):
    """Refused before any work (compare_ntk would raise if reached)."""
    monkeypatch.setattr(compare, "compare_ntk", lambda *a, **k: pytest.fail("compare_ntk ran"))
    assert main(["validate", "ntk", "--no-progress", "--out", str(tmp_path), *args]) == 1
    assert word in _one_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    "args, word",
    [
        (["--points", "3"], "--points must be an integer >= 4, got 3"),
        (["--max-points", "x"], "--max-points must be an integer >= 4"),
        (["--samples", "0"], "--samples must be an integer >= 1, got 0"),
        (["--density", "qmc"], "--density"),
    ],
)
def test_cli_bad_density_values_are_one_line_errors(args, word, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["validate", "ntk", *args])
    assert exc.value.code == 2
    assert word in _one_line(capsys.readouterr().err)


def test_cli_help_states_the_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["validate", "ntk", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for s in ("--density {transport,mc}", "(default: transport)", "(default: 512)",
              "default: 4096", "(default: 1000)"):  # fmt: skip
        assert s in text, s


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(density="qmc"), r"density must be one of \('transport', 'mc'\)"),
        (dict(n_points=3), "n_points must be an integer >= 4"),
        (dict(max_points=256), "max_points must be an integer >= 512"),
        (dict(transport_tolerance=0.0), "transport_tolerance"),
    ],
)
def test_config_rejects_bad_density_settings(kw, match):
    with pytest.raises(ValueError, match=match):
        NTKCompareConfig(**kw)


# -- resume files of the other density ------------------------------------------------------
RESUME = dict(
    P=48, widths=(16,), n_models=4, taus=(1.0,), n_samples=40, n_bins=20, n_boot=20,
    theory_n_t=3, theory_n_hermite=4, fp_steps=5, fp_refine=1, fp_half_width=10.0,
    n_bayes_samples=200, query_x=(-1.0, 0.5), query_t=(0.05,), sample_kernel=False,
)  # fmt: skip


@pytest.mark.parametrize("first, then", [("mc", "transport"), ("transport", "mc")])
def test_checkpoint_of_the_other_density_is_refused(first, then, tmp_path, monkeypatch):
    """An interrupted run leaves its resume file; the same configuration with the other density
    refuses it (before any work), naming the file. A Monte Carlo run records the configuration
    without the density fields, as every Monte Carlo run before the option did; every run
    records it without ``exact_below`` and ``centre`` at their defaults (as before they existed)."""
    path = tmp_path / "run.partial.npz"

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(compare, "sample_two_layer_ensemble", stop)
        with pytest.raises(KeyboardInterrupt):
            compare_ntk(NTKCompareConfig(**RESUME, density=first), checkpoint=path)
    assert path.exists()
    with monkeypatch.context() as m:
        m.setattr(compare, "init_two_layer_ensemble", stop)  # no work before the refusal
        with pytest.raises(ValueError, match="another configuration") as exc:
            compare_ntk(NTKCompareConfig(**RESUME, density=then), checkpoint=path)
    assert str(path) in str(exc.value)
    from gtv.validation.results import load_result_of_kind

    _, meta = load_result_of_kind(path, compare._PARTIAL, "a checkpoint")
    new = {"density", "n_points", "transport_tolerance", "max_points"}
    fields = set(NTKCompareConfig().to_dict()) - {"exact_below", "centre"}
    assert set(meta["config"]) == (fields - new if first == "mc" else fields)
