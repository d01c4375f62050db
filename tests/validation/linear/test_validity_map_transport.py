"""Transported densities in the validity map (``density="transport"``, the default) against
Monte Carlo (``density="mc"``), model by model and ensemble by ensemble; the map's rows formed from
them; saved maps of both kinds; ``gtv validity-map``'s density options (docs/math/transport.md,
docs/math/finite_fp.md).

Both maps train the same models (stream ``"training"`` of each cell's seed) and draw the same
field members (stream ``"field"``): only how the densities are formed differs. A transported
density is exact up to its grid error (estimates below 1e-3 in total variation here), so the
Monte Carlo histogram of model ``n`` is a multinomial draw (``S`` samples) from its transported
bin masses (statistics: tests/validation/agreement.py).

False-alarm probability of the agreement test: every ensemble (the trained one and each field
theory, per cell; at most ``ENSEMBLES`` = 14) runs two X^2 checks at level ``ALPHA`` each and
``N = 12`` gap z-checks at ``P(|z| > 4.5) = 6.8e-6``; with ``ALPHA = 1e-3 / ENSEMBLES`` the
whole test fails for a correct implementation with probability below
``2e-3 + 14 * 12 * 6.8e-6 = 3.2e-3`` (asymptotic X^2; conservative for the ensemble means).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from gtv.numerics.io import load_result, save_result
from gtv.numerics.streams import stream
from gtv.validation.cli import main
from gtv.validation.linear.validity_map import THEORY_NAMES, ValidityMap, ValidityMapConfig
from gtv.validation.linear.validity_map import validity_map as run_map
from gtv.validation.stats import interval_masses, resampling_rng, total_variation

from ..agreement import check_agreement

S = 4000  # Monte Carlo samples per model
ENSEMBLES = 2 * len(THEORY_NAMES)  # cells x (trained + field theories), an upper bound
ALPHA = 1e-3 / ENSEMBLES
COMMON = dict(
    eps_values=(1e-2,), f_over_p=(1 / 16, 4.0), n_space=4, n_time=4, n_models=12, n_bins=80,
    n_boot=50, n_splits=4, fp_steps=60, theories=THEORY_NAMES, seed=3,
)  # fmt: skip


@pytest.fixture(scope="module")
def pair() -> tuple[ValidityMap, ValidityMap]:
    # 256 start points refined up to 2048 per model at the bin width
    tr = run_map(ValidityMapConfig(**COMMON, n_points=256, max_points=2048), keep_densities=True)
    mc = run_map(ValidityMapConfig(**COMMON, density="mc", n_samples=S), keep_densities=True)
    return tr, mc


def _width(c: ValidityMapConfig) -> float:
    return float(np.diff(np.linspace(*c.hist_range, c.n_bins + 1))[0])


def test_transport_agrees_with_monte_carlo_model_by_model(pair):
    """Every ensemble of every cell (trained models and the members of each field theory):
    per-model gap masses and densities, and the ensemble-mean density, within the Monte Carlo
    noise; the negative controls (neighbours' gap masses, densities shifted by a bin) fail."""
    tr, mc = pair
    assert tr.config.density == "transport" and mc.config.density == "mc"
    width = _width(tr.config)
    checked = set()
    for cell, dens in tr.densities.items():
        assert set(dens) == set(mc.densities[cell])
        ratio = tr.config.f_over_p[[f"{r:g}" for r in tr.config.f_over_p].index(cell.split("/")[1])]
        fields = {
            r["theory"] for r in tr.rows
            if r["f_over_p"] == ratio and r["error"] == "" and r["theory"] != "paper"
        }  # fmt: skip
        assert fields <= set(dens)  # every evaluated field theory went through transport
        for name, d in dens.items():
            m = mc.densities[cell][name]
            assert d.error is not None and m.error is None
            assert d.error.max() < 1e-3, (cell, name)
            check_agreement(
                f"{cell} {name}", (d.histograms, d.outside, d.gap),
                (m.histograms, m.outside, m.gap), width, S, ALPHA,
            )  # fmt: skip
            checked.add((cell, name))
    # every field theory at F/P = 1/16 (the second-order field is not PSD at F/P = 4)
    assert {name for cell, name in checked if cell == "0.01/0.0625"} == {
        "trained",
        *THEORY_NAMES[1:],
    }
    assert len(checked) <= ENSEMBLES


def test_rows_are_formed_from_the_transported_densities(pair):
    """Wiring: the gap masses, distances and half-vs-half floors of the transported map are
    those of its kept per-model densities (the cell's own resampling stream); the per-cell
    error estimates are recorded."""
    tr, _ = pair
    c = tr.config
    width = _width(c)
    for j, ratio in enumerate(c.f_over_p):
        key = f"{c.eps_values[0]:g}/{ratio:g}"
        dens = tr.densities[key]
        t = dens["trained"]
        trained = interval_masses(t.histograms.mean(0), width, t.outside.mean())
        rng = resampling_rng(stream(c.seed, "panel", 0, j))
        floors = []
        for _ in range(c.n_splits):
            perm = rng.permutation(c.n_models)
            a, b = perm[: c.n_models // 2], perm[c.n_models // 2 :]
            pa = interval_masses(t.histograms[a].mean(0), width, t.outside[a].mean())
            pb = interval_masses(t.histograms[b].mean(0), width, t.outside[b].mean())
            floors.append(total_variation(pa, pb))
        for r in (r for r in tr.rows if r["f_over_p"] == ratio and not r["error"]):
            assert r["floor"] == pytest.approx(np.mean(floors), rel=1e-12)
            assert r["gap_trained"] == pytest.approx(t.gap.mean(), rel=1e-12)
            if r["theory"] == "paper":
                continue
            d = dens[r["theory"]]
            q = interval_masses(d.histograms.mean(0), width, d.outside.mean())
            assert r["gap"] == pytest.approx(d.gap.mean(), rel=1e-12)
            assert r["tv"] == pytest.approx(total_variation(trained, q), rel=1e-12)
        errors = tr.meta["transport_error_tv"][key]
        assert errors["trained"] == t.error.max() and set(errors) <= set(dens)
        assert tr.meta["transport_points"][key]["trained"] > c.n_points  # refinement ran
    assert "transport_error_tv" not in pair[1].meta


def test_paper_rows_do_not_depend_on_the_density(pair):
    """The white-noise Fokker-Planck density is deterministic: its own gap mass is the same in
    both maps (only the trained side it is compared with changes)."""
    tr, mc = pair
    for a, b in zip(tr.rows, mc.rows, strict=True):
        assert (a["theory"], a["f_over_p"]) == (b["theory"], b["f_over_p"])
        if a["theory"] == "paper":
            assert a["gap"] == b["gap"]


def test_table_names_the_density(pair):
    tr, mc = pair
    text = tr.format_table()
    assert "12 trained models x 256-point transported grid (<= 2048) per cell" in text
    assert "transport error estimate" in text
    assert "12 trained models x 4000 samples per cell" in mc.format_table()
    assert "transport error" not in mc.format_table()


@pytest.mark.parametrize("density", ["transport", "mc"])
def test_save_load_round_trip(pair, tmp_path, density):
    res = pair[0] if density == "transport" else pair[1]
    back = ValidityMap.load(res.save(tmp_path / "vm"))
    assert back.config == res.config and back.config.density == density
    assert back.rows == res.rows and back.format_table() == res.format_table()


def test_map_saved_before_the_density_option_loads_as_monte_carlo(pair, tmp_path):
    """A map whose configuration has no density fields (written before they existed) was made
    by Monte Carlo: it loads as ``density="mc"``, never as the new default."""
    arrays, summary = load_result(pair[1].save(tmp_path / "new"))
    for key in ("density", "n_points", "transport_tolerance", "max_points"):
        del summary["config"][key]
    back = ValidityMap.load(save_result(tmp_path / "old", arrays, summary))
    assert back.config == pair[1].config and back.config.density == "mc"


@pytest.mark.parametrize(
    ("bad", "name"),
    [
        ({"density": "quasi"}, "density"),
        ({"n_points": 3}, "n_points"),
        ({"n_points": 100, "max_points": 99}, "max_points"),
        ({"transport_tolerance": 0.0}, "transport_tolerance"),
    ],
)
def test_config_rejects_bad_density_options(bad, name):
    with pytest.raises(ValueError, match=name):
        ValidityMapConfig(**bad)


def test_config_defaults():
    c = ValidityMapConfig()
    assert (c.density, c.n_points, c.transport_tolerance, c.max_points, c.n_samples) == (
        "transport", 2048, 1e-6, 16_384, 2000,
    )  # fmt: skip


# -- gtv validity-map --------------------------------------------------------------------------
_CLI = ["validity-map", "--eps", "0.01", "--f-over-p", "4", "--n-space", "3", "--n-time", "3",
        "--models", "4", "--theories", "first_order", "--no-progress",
        "--formats", "png"]  # fmt: skip


def _one_line(err: str, text: str) -> None:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("gtv: error:") and text in lines[0], err


@pytest.mark.parametrize(
    ("extra", "text"),
    [
        (["--samples", "100"], "--samples is used with --density mc"),
        (["--density", "transport", "--samples", "100"], "--samples is used with --density mc"),
        (["--density", "mc", "--points", "64"], "--points and --max-points are used with"),
        (["--density", "mc", "--max-points", "64"], "--points and --max-points are used with"),
        (["--points", "128", "--max-points", "64"], "--max-points must be >= --points (128)"),
        (["--max-points", "1024"], "--max-points must be >= --points (2048)"),
    ],
)
def test_cli_density_errors_one_line(extra, text, tmp_path, capsys):
    assert main([*_CLI, *extra, "--out", str(tmp_path)]) == 1
    _one_line(capsys.readouterr().err, text)
    assert not any(tmp_path.iterdir())  # nothing computed


@pytest.mark.parametrize(
    ("extra", "text"),
    [
        (["--points", "0"], "--points must be an integer >= 4"),
        (["--max-points", "3"], "--max-points must be an integer >= 4"),
        (["--samples", "0"], "--samples must be an integer >= 1"),
        (["--density", "qmc"], "--density"),
    ],
)
def test_cli_bad_values_are_usage_errors(extra, text, capsys):
    with pytest.raises(SystemExit) as exc:
        main([*_CLI, *extra])
    assert exc.value.code == 2
    _one_line(capsys.readouterr().err, text)


def test_cli_help_gives_the_density_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["validity-map", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "by default transported" in text
    for opt, default in (
        ("--density {transport,mc}", "default: transport"),
        ("--samples SAMPLES", "default: 2000"),
        ("--points POINTS", "default: 2048"),
        ("--max-points MAX_POINTS", "default: 16384"),
    ):
        i = text.index(opt, text.index("options:"))
        assert default in text[i : i + 500], opt


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ([], ("transport", 2048, 16_384, 2000)),
        (["--points", "64", "--max-points", "256"], ("transport", 64, 256, 2000)),
        (["--points", "20000"], ("transport", 20_000, 20_000, 2000)),
        (["--density", "mc", "--samples", "300"], ("mc", 2048, 16_384, 300)),
        (["--density", "mc"], ("mc", 2048, 16_384, 2000)),
    ],
)
def test_cli_density_options_reach_the_config(extra, expected, tmp_path, capsys, monkeypatch):
    """The options end in the configuration (the map itself is replaced)."""
    import gtv.validation.linear.validity_map as vm

    seen = []

    def fake(c, progress=False):
        seen.append(c)
        raise ValueError("stop")

    monkeypatch.setattr(vm, "validity_map", fake)
    assert main([*_CLI, *extra, "--out", str(tmp_path)]) == 1
    assert "gtv: error: stop" in capsys.readouterr().err
    c = seen[0]
    assert (c.density, c.n_points, c.max_points, c.n_samples) == expected


def test_cli_transport_end_to_end(tmp_path, capsys):
    js = tmp_path / "vm.json"
    args = [*_CLI, "--points", "128", "--max-points", "512", "--out", str(tmp_path)]
    assert main([*args, "--json", str(js)]) == 0
    out = capsys.readouterr().out
    assert "4 trained models x 128-point transported grid (<= 512) per cell" in out
    back = ValidityMap.load(tmp_path / "validity_map.npz")
    assert (back.config.density, back.config.n_points, back.config.max_points) == (
        "transport", 128, 512,
    )  # fmt: skip
    assert json.loads(js.read_text())["config"]["density"] == "transport"
