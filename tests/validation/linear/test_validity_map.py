"""The validity map of linear-ensemble theories (gtv.validation.linear.validity_map) and its CLI."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest

from gtv.numerics.features import ProductFeatures
from gtv.numerics.linear import (
    CavityLinear,
    FirstOrderLinear,
    OccupancyLinear,
    cavity_moments,
    linear_model_theory,
    occupancy_moments,
    occupancy_split,
    population_nodes,
)
from gtv.numerics.schedules import get_schedule
from gtv.numerics.streams import stream
from gtv.validation.cli import main
from gtv.validation.figures.figure2 import FIGURE2_DATA
from gtv.validation.linear.validity_map import (
    THEORY_NAMES,
    ValidityMap,
    ValidityMapConfig,
    validity_map,
)
from gtv.validation.linear.validity_map_cli import THEORY_CHOICES, VALIDITY_MAP_DEFAULTS
from gtv.validation.theory_densities import gaussian_field_histograms

SMALL = {
    "eps_values": (1e-2,),
    "f_over_p": (1 / 4, 4.0),
    "n_space": 4,
    "n_time": 4,
    "n_models": 24,
    "n_samples": 200,
    "n_boot": 100,
    "n_splits": 4,
    "fp_steps": 100,
    "theories": THEORY_NAMES,
    "n_moment_members": 400,
    "density": "mc",  # transported maps: test_validity_map_transport.py
}


@pytest.fixture(scope="module")
def small_map():
    return validity_map(ValidityMapConfig(**SMALL))


def test_rows_cover_every_cell_and_theory(small_map):
    c = small_map.config
    assert len(small_map.rows) == len(c.f_over_p) * len(THEORY_NAMES)
    for r in small_map.rows:
        assert r["P"] == round(16 / r["f_over_p"])
        if r["error"]:
            # the only theory allowed to fail is the 1/P**2 expansion at absurdly small P
            assert r["theory"] == "second_order" and "positive semi-definite" in r["error"]
            continue
        assert r["tv"] > 0 and np.isfinite(r["gap_z"]) and r["floor"] > 0
        assert r["tv_over_floor"] == pytest.approx(r["tv"] / r["floor"])
        assert r["gap_lo"] <= r["gap"] <= r["gap_hi"]
        if r["theory"] != "paper":
            assert r["var_median_abs"] is not None and r["n_points"] > 0
    grid = small_map.grid("tv_over_floor", "cavity")
    assert grid.shape == (1, 2) and np.all(np.isfinite(grid))


@pytest.mark.parametrize(
    ("name", "field"),
    [("first_order", None), ("cavity", "gaussian"), ("cavity_field", "cavity"),
     ("occupancy_field", "occupancy")],
)  # fmt: skip
def test_rows_are_the_named_fields(small_map, name, field):
    """Wiring check: each field row's gap mass is that of the named field drawn with the cell's
    own seed (stream(seed, "panel", i, j))."""
    c = small_map.config
    sched = get_schedule(c.schedule)
    feats = ProductFeatures.uniform("gaussian", 1, 4, 4, (1e-2, sched.T), c.x_range)
    population = linear_model_theory(FIGURE2_DATA, feats, 1e-2, sched)
    P = c.budget(4.0)
    if field is None:
        th = FirstOrderLinear(population, P)
    else:
        th = CavityLinear(population, cavity_moments(population, P), field)
    edges = np.linspace(*c.hist_range, c.n_bins + 1)
    _, _, gap = gaussian_field_histograms(
        th, c.n_models, c.n_samples, edges, c.gap_distance, seed=stream(c.seed, "panel", 0, 1)
    )
    row = next(r for r in small_map.rows if r["theory"] == name and r["f_over_p"] == 4)
    assert row["gap"] == pytest.approx(gap.mean(), rel=1e-12)


def test_save_load_plot_and_table(small_map, tmp_path):
    path = small_map.save(tmp_path / "vm")
    back = ValidityMap.load(path)
    assert back.rows == small_map.rows and back.config == small_map.config
    files = small_map.plot(tmp_path / "vm", formats=("png",))
    assert files[0].stat().st_size > 1000
    text = small_map.format_table()
    assert "cavity_field" in text and "TV/floor" in text
    assert json.loads(small_map.to_json())["rows"] == small_map.rows


@pytest.mark.parametrize(
    ("kw", "word"),
    [
        ({"eps_values": (2.0,)}, "eps_values"),
        ({"f_over_p": (0.0,)}, "f_over_p"),
        ({"f_over_p": (100.0,)}, "f_over_p"),
        ({"theories": ("exact",)}, "theories"),
        ({"n_models": 2}, "n_models"),
        ({"var_floor": -1.0}, "var_floor"),
        ({"exact_below": -0.1}, "exact_below"),
        ({"exact_below": float("nan")}, "exact_below"),
        ({"n_moment_members": 39}, "n_moment_members"),
        ({"n_moment_members": 100.5}, "n_moment_members"),
    ],
)
def test_bad_config(kw, word):
    with pytest.raises(ValueError, match=word):
        ValidityMapConfig(**{**SMALL, **kw})


def test_cli_defaults_agree_with_the_config():
    c = ValidityMapConfig()
    d = VALIDITY_MAP_DEFAULTS
    assert d["eps"] == c.eps_values and d["theories"] == c.theories
    assert THEORY_CHOICES == THEORY_NAMES
    ratios = tuple(float(Fraction(r)) for r in d["f_over_p"])
    assert ratios == pytest.approx(c.f_over_p)
    assert (d["n_space"], d["n_time"], d["models"], d["samples"], d["seed"]) == (
        c.n_space, c.n_time, c.n_models, c.n_samples, c.seed,
    )  # fmt: skip
    assert (d["density"], d["points"], d["max_points"]) == (c.density, c.n_points, c.max_points)
    assert d["moment_members"] == c.n_moment_members


def test_cli_runs_and_writes(tmp_path, capsys):
    js = tmp_path / "vm.json"
    args = [
        "validity-map", "--eps", "0.01", "--f-over-p", "1/4", "--n-space", "3", "--n-time", "3",
        "--models", "8", "--density", "mc", "--samples", "100", "--theories", "paper",
        "cavity_field",
        "--out", str(tmp_path), "--json", str(js), "--formats", "png", "--no-progress",
    ]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "cavity_field" in out
    assert (tmp_path / "validity_map.npz").exists() and (tmp_path / "validity_map.png").exists()
    assert len(json.loads(js.read_text())["rows"]) == 2


def test_cli_bad_ratio_is_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["validity-map", "--f-over-p", "1/0"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "F/P" in err


def test_exact_below_changes_only_the_occupancy_fields(small_map):
    """``exact_below`` reaches the occupancy fields (their rows change) and no other theory
    (rows equal to the last digit); the table and the saved config carry it."""
    cfg = {**SMALL, "theories": ("cavity", "occupancy_field", "consistent_field")}
    early = validity_map(ValidityMapConfig(**cfg, exact_below=0.3))
    by = {(r["f_over_p"], r["theory"]): r for r in small_map.rows}
    for r in early.rows:
        ref = by[(r["f_over_p"], r["theory"])]
        if r["theory"] == "cavity":
            assert r == ref
        else:
            assert r["gap"] != ref["gap"]
    assert "exact below t = 0.3" in early.format_table()
    assert early.config.exact_below == 0.3


def test_exact_below_auto_is_chosen_per_cell(small_map):
    """``exact_below="auto"``: each occupancy-field row carries its own plateau start (a rung of
    the ladder or the all-exact rung above T, i.e. the same field's choice run by hand), the other
    theories are untouched, and the table lists the choices."""
    from gtv.validation.exact_below import choose_exact_below

    cfg = {**SMALL, "theories": ("cavity", "consistent_field")}
    auto = validity_map(ValidityMapConfig(**cfg, exact_below="auto"))
    by = {(r["f_over_p"], r["theory"]): r for r in small_map.rows}
    c = auto.config
    sched = get_schedule(c.schedule)
    for r in auto.rows:
        if r["theory"] == "cavity":
            assert r == by[(r["f_over_p"], "cavity")]
            continue
        feats = ProductFeatures.uniform("gaussian", 1, c.n_space, c.n_time, (r["eps"], sched.T),
                                        c.x_range)  # fmt: skip
        th = linear_model_theory(FIGURE2_DATA, feats, r["eps"], sched, ridge=c.ridge)
        nodes = population_nodes(th)
        edges = np.linspace(c.hist_range[0], c.hist_range[1], c.n_bins + 1)
        choice = choose_exact_below(
            th, cavity_moments(th, r["P"], nodes=nodes), "consistent", n_members=c.n_models,
            edges=edges, gap_distance=c.gap_distance, density="mc", n_samples=c.n_samples,
            n_steps=c.n_steps, method=c.method,
            seed=stream(c.seed, "panel", 0, c.f_over_p.index(r["f_over_p"])),
            nodes=nodes,
        )  # fmt: skip
        assert r["exact_below"] == choice.t_c
    assert "exact_below chosen per cell (plateau start)" in auto.format_table()


def _cell_theory(c, eps, P):
    sched = get_schedule(c.schedule)
    feats = ProductFeatures.uniform("gaussian", 1, c.n_space, c.n_time, (eps, sched.T), c.x_range)
    th = linear_model_theory(FIGURE2_DATA, feats, eps, sched, ridge=c.ridge)
    nodes = population_nodes(th)
    return th, nodes, cavity_moments(th, P, nodes=nodes)


def test_consistent_row_is_scored_with_the_fields_own_moments(small_map):
    """ "consistent": the same field as "consistent_field" (equal gap masses, same seed) but its
    variance score comes from the field's own Monte Carlo moments (n_moment_members members on
    the cell seed's "occupancy-moments" stream), not from the cavity moments -- recomputed here
    from those moments and the trained ensemble's variance, which the cavity row's differs
    from."""
    from gtv.numerics.linear import train_linear_ensemble
    from gtv.validation.linear.validity_map import _var_summary

    c = small_map.config
    by = {(r["f_over_p"], r["theory"]): r for r in small_map.rows}
    alone = validity_map(ValidityMapConfig(**{**SMALL, "theories": ("consistent",)}))
    # in either order the two share one split and one draw of the members
    rev = validity_map(
        ValidityMapConfig(**{**SMALL, "theories": ("consistent", "consistent_field")})
    )
    for r in rev.rows:
        ref = by[(r["f_over_p"], r["theory"])]
        assert {k: r[k] for k in ("gap", "tv", "var_median_abs")} == {
            k: ref[k] for k in ("gap", "tv", "var_median_abs")
        }
    for j, ratio in enumerate(c.f_over_p):
        own, ref = by[(ratio, "consistent")], by[(ratio, "consistent_field")]
        assert own["gap"] == ref["gap"] and own["tv"] == ref["tv"]
        # drawn on its own, the field is the same (its densities are reused from
        # consistent_field when both are scored)
        solo = next(r for r in alone.rows if r["f_over_p"] == ratio)
        assert {k: solo[k] for k in ("gap", "tv", "var_median_abs")} == {
            k: own[k] for k in ("gap", "tv", "var_median_abs")
        }
        seed = stream(c.seed, "panel", 0, j)
        th, nodes, mom = _cell_theory(c, 1e-2, own["P"])
        split = occupancy_split(th, mom, nodes=nodes, consistent=True)
        occ = occupancy_moments(th, mom, c.n_moment_members, seed, split=split)
        theory = OccupancyLinear(th, mom, occ, "occupancy", nodes)
        ens = train_linear_ensemble(
            FIGURE2_DATA, th.features, c.n_models, own["P"], 1e-2, get_schedule(c.schedule),
            ridge=c.ridge, seed=seed, keep_normal_equations=False,
        )  # fmt: skip
        qx = np.asarray(c.query_x)[:, None]
        values = {t: ens.denoise(qx, t)[:, :, 0].var(axis=0, ddof=1) for t in c.query_t}
        med, within, npts = _var_summary(theory, values, c)
        assert (own["var_median_abs"], own["var_within_25"], own["n_points"]) == (
            pytest.approx(med, rel=1e-12), pytest.approx(within, rel=1e-12), npts,
        )  # fmt: skip
        assert own["var_median_abs"] != ref["var_median_abs"]


def test_consistent_shares_the_auto_pick_of_consistent_field(monkeypatch):
    """With exact_below="auto" the ladder runs once per cell for the two theories of the
    consistent field, and both rows carry that pick."""
    import gtv.validation.linear.validity_map as vm

    calls = []
    real = vm.choose_exact_below

    def counting(*args, **kwargs):
        calls.append(args[2])
        return real(*args, **kwargs)

    monkeypatch.setattr(vm, "choose_exact_below", counting)
    cfg = {**SMALL, "f_over_p": (4.0,), "theories": ("consistent_field", "consistent")}
    auto = validity_map(ValidityMapConfig(**cfg, exact_below="auto"))
    assert calls == ["consistent"]
    picks = {r["theory"]: r["exact_below"] for r in auto.rows}
    assert picks["consistent_field"] == picks["consistent"]
