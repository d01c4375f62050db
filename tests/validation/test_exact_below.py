"""Choosing the occupancy fields' ``exact_below`` from the field alone
(gtv.validation.exact_below), in ``compare_linear``, the validity map and the CLI.
Small sizes: the module runs in seconds."""

import json

import numpy as np
import pytest

from gtv.numerics.features import ProductFeatures
from gtv.numerics.linear import CavityLinear, cavity_moments, linear_model_theory, population_nodes
from gtv.numerics.schedules import get_schedule
from gtv.validation.cli import main
from gtv.validation.exact_below import (
    CORE_RADIUS,
    LADDER,
    check_exact_below,
    choose_exact_below,
    plateau_start,
)
from gtv.validation.figures.figure2 import FIGURE2_DATA
from gtv.validation.linear import LinearCompareConfig, compare_linear
from gtv.validation.linear.comparison import LinearComparison
from gtv.validation.theory_densities import gaussian_field_densities

EPS = 1e-2
EDGES = np.linspace(-2.0, 2.0, 81)  # bin 0.05: the cores +- 0.05 fall on bin edges


def test_plateau_start_by_hand():
    """The first rung within one of its standard errors of every later rung, on made-up ladders
    (gap, gap SE, core, core SE per rung)."""
    ladder = (0.0, 0.1, 0.2, 0.3)

    def start(rows):
        return plateau_start(ladder, *zip(*rows, strict=True))

    flat_from_02 = [(0.16, 0.01, 0.39, 0.01), (0.15, 0.01, 0.42, 0.01), (0.15, 0.01, 0.44, 0.01),
                    (0.15, 0.01, 0.445, 0.01)]  # fmt: skip
    assert start(flat_from_02) == 0.2
    gap_moves = [(0.20, 0.01, 0.44, 0.01)] + [(0.15, 0.01, 0.44, 0.01)] * 3  # core flat
    assert start(gap_moves) == 0.1
    assert start([(0.15, 0.01, 0.44, 0.01)] * 4) == 0.0
    never = [(0.1 * k, 0.01, 0.4, 0.01) for k in range(4)]
    assert start(never) == 0.3  # only the last rung: the top of the ladder
    # the tolerance is the rung's own SE: a wide rung accepts what a narrow one does not
    wide = [(0.15, 0.05, 0.44, 0.05), (0.19, 0.01, 0.44, 0.01), (0.19, 0.01, 0.44, 0.01),
            (0.19, 0.01, 0.44, 0.01)]  # fmt: skip
    assert start(wide) == 0.0
    with pytest.raises(ValueError, match="same length"):
        plateau_start(ladder, (0.1,) * 4, (0.1,) * 3, (0.1,) * 4, (0.1,) * 4)


@pytest.fixture(scope="module")
def setup():
    sched = get_schedule("vp-linear")
    feats = ProductFeatures.uniform("gaussian", 1, 5, 4, (EPS, sched.T), (-1.5, 1.5))
    th = linear_model_theory(FIGURE2_DATA, feats, EPS, sched, ridge=0.1, n_t=4, n_hermite=30)
    m = cavity_moments(th, 20)
    return th, m, population_nodes(th)


def _rung_by_hand(th, m, nodes, t_c, n_members, n_samples, seed):
    """One rung without the module: the field's densities, the core mass summed over the bins
    whose centres lie within CORE_RADIUS of a training point."""
    d = gaussian_field_densities(
        CavityLinear(th, m, "consistent", nodes, exact_below=t_c), n_members, EDGES, 0.25,
        density="mc", n_samples=n_samples, seed=seed,
    )  # fmt: skip
    centres = (EDGES[:-1] + EDGES[1:]) / 2
    near = np.min(np.abs(centres[:, None] - FIGURE2_DATA[:, 0][None]), axis=1) < CORE_RADIUS
    core = d.histograms[:, near].sum(axis=1) * (EDGES[1] - EDGES[0])
    n = n_members
    return d.gap.mean(), d.gap.std(ddof=1) / np.sqrt(n), core.mean(), core.std(ddof=1) / np.sqrt(n)


def test_choose_exact_below_rungs_and_choice_by_hand(setup):
    """Every rung's gap and core mass (and SEs) equal a by-hand evaluation of the same field, the
    last rung is above T (every triple exact), and the choice is the plateau start of those rows."""
    th, m, nodes = setup
    ladder = (0.0, 0.1, 0.3)
    choice = choose_exact_below(
        th, m, n_members=8, edges=EDGES, n_samples=200, seed=3, nodes=nodes, ladder=ladder
    )
    assert choice.ladder == (*ladder, 2.0 * th.schedule.T)
    rows = [_rung_by_hand(th, m, nodes, t, 8, 200, 3) for t in choice.ladder]
    got = np.array([choice.gap, choice.gap_se, choice.core, choice.core_se]).T
    np.testing.assert_allclose(got, np.array(rows), rtol=1e-12, atol=1e-15)
    assert choice.t_c == plateau_start(choice.ladder, *np.array(rows).T)
    assert sum(r["chosen"] for r in choice.rows()) == 1
    assert "plateau start" in choice.format() and choice.to_dict()["t_c"] == choice.t_c
    # nodes made inside when not given: the same choice
    again = choose_exact_below(th, m, n_members=8, edges=EDGES, n_samples=200, seed=3,
                               ladder=ladder)  # fmt: skip
    assert again == choice
    # the rungs differ (the early triples change the members), else the rule chose nothing
    assert len(set(choice.gap)) > 1


def test_the_rungs_are_drawn_together(setup, monkeypatch):
    """The consistent and occupancy fields' rungs come from one shared draw (no per-rung draw
    of sample_occupancy_weights), the same rows as drawn rung by rung (above); the stratified
    field, whose light part differs per member, is drawn rung by rung."""
    import gtv.numerics.linear.prediction as prediction
    from gtv.validation.exact_below import _Drawn

    th, m, nodes = setup
    calls = []
    real = prediction.sample_occupancy_weights
    monkeypatch.setattr(
        prediction, "sample_occupancy_weights", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    kw = dict(n_members=8, edges=EDGES, n_samples=200, seed=3, nodes=nodes, ladder=(0.0, 0.1))
    for field in ("consistent", "occupancy"):
        choose_exact_below(th, m, field, **kw)
    assert calls == []
    choose_exact_below(th, m, "stratified", **kw)
    assert len(calls) == 3  # two rungs and the all-exact one
    # a pre-drawn rung answers its own request only
    rung = CavityLinear(th, m, "consistent", nodes, exact_below=0.1)
    drawn = _Drawn(rung, rung.gaussian_field(8, 3), 8, 3)
    assert drawn.gaussian_field(8, 3) is drawn._field and drawn.schedule is rung.schedule
    np.testing.assert_array_equal(drawn.gaussian_field(5, 3).W, rung.gaussian_field(5, 3).W)


def test_choose_exact_below_transport_density(setup):
    """With transported densities the rungs are those of the transported field."""
    th, m, nodes = setup
    choice = choose_exact_below(
        th, m, n_members=6, edges=EDGES, density="transport", nodes=nodes, ladder=(0.0, 0.2)
    )
    d = gaussian_field_densities(
        CavityLinear(th, m, "consistent", nodes, exact_below=0.2), 6, EDGES, 0.25,
        density="transport",
    )  # fmt: skip
    assert choice.gap[1] == pytest.approx(d.gap.mean(), rel=1e-12)


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"field": "gaussian"}, "field must be one of"),
        ({"ladder": (0.2, 0.1)}, "ladder must be increasing"),
        ({"ladder": (0.0, 1.5)}, r"ladder must be increasing times in \[0, T"),
        ({"ladder": ()}, "ladder must be increasing"),
        ({"ladder": "ab"}, "ladder must be a sequence"),
        ({"n_members": 1}, "n_members must be an integer >= 2"),
        ({"n_samples": 0}, "n_samples must be an integer >= 1"),
        ({"density": "exact"}, "density must be one of"),
        ({"edges": np.linspace(-2, 2, 50)}, "edges: the core"),
        ({"seed": -1}, "seed"),
    ],
)
def test_choose_exact_below_bad_input(setup, kw, match, monkeypatch):
    """Refused by name before any member is drawn."""
    import gtv.numerics.linear.prediction as prediction

    def no_draw(*a, **k):
        raise AssertionError("members drawn before the input was checked")

    monkeypatch.setattr(prediction, "occupancy_fields_together", no_draw)
    th, m, nodes = setup
    args = dict(n_members=4, edges=EDGES, n_samples=10, nodes=nodes)
    args.update(kw)
    with pytest.raises((ValueError, TypeError), match=match):
        choose_exact_below(th, m, **args)


def test_check_exact_below():
    """The configuration's value ("auto" or a time) and the numerics' time check it uses."""
    from gtv.numerics.checks import check_nonnegative_time

    assert check_nonnegative_time(0, "t") == 0.0 and check_nonnegative_time(np.float32(2), "t") == 2
    for bad in ("0.2", -0.1, float("nan"), float("inf"), True, None, [0.1]):
        with pytest.raises(ValueError, match="t must be a finite time >= 0"):
            check_nonnegative_time(bad, "t")
    assert check_exact_below("auto") == "auto"
    assert check_exact_below(0) == 0.0 and check_exact_below(np.float64(0.2)) == 0.2
    for bad in ("Auto", "0.2", -0.1, float("nan"), float("inf"), True, None):
        with pytest.raises(ValueError, match="exact_below must be 'auto' or a finite time"):
            check_exact_below(bad)


def _tiny(**kw):
    base = dict(
        eps=EPS, P=40, n_space=5, n_time=4, n_models=6, n_samples=300, n_bins=80, n_boot=40,
        n_splits=3, fp_steps=60, fp_refine=1, n_bayes_samples=2000, density="mc",
        theory="consistent_field", diagnostics=False,
    )  # fmt: skip
    base.update(kw)
    return LinearCompareConfig(**base)


def test_compare_linear_auto_uses_the_plateau_start(tmp_path):
    """``exact_below="auto"``: the ladder runs on the configuration's own field (its members,
    samples and seed), its choice is the theory's exact_below and is saved; the result equals
    the comparison run with that t_c given by hand; it reloads."""
    res = compare_linear(_tiny(exact_below="auto"))
    choice = res.meta["exact_below_choice"]
    assert [r["t_c"] for r in choice["rows"]] == [*LADDER, 2.0]
    assert res.theory.config["theory"]["exact_below"] == choice["t_c"]
    fixed = compare_linear(_tiny(exact_below=choice["t_c"]))
    np.testing.assert_array_equal(res.theory.gf_histograms, fixed.theory.gf_histograms)
    npz, _ = res.save(tmp_path / "auto")
    back = LinearComparison.load(npz)
    assert back.config.exact_below == "auto"
    assert back.meta["exact_below_choice"] == json.loads(json.dumps(choice))


def test_auto_is_checked_with_the_configuration():
    with pytest.raises(ValueError, match="only with the occupancy-field theories"):
        _tiny(theory="cavity", exact_below="auto")
    with pytest.raises(ValueError, match="exact_below must be 'auto'"):
        _tiny(exact_below="best")


def test_cli_exact_below_auto_and_bad_value(tmp_path, capsys):
    args = [
        "validate", "linear", "--theory", "consistent_field", "--exact-below", "auto",
        "--eps", "0.01", "--P", "40", "--n-space", "5", "--n-time", "4", "--models", "6",
        "--density", "mc", "--samples", "200", "--no-diagnostics", "--no-progress",
        "--out", str(tmp_path),
    ]  # fmt: skip
    assert main(args) == 0
    saved = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert saved["config"]["exact_below"] == "auto"
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["validate", "linear", "--exact-below", "soon"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--exact-below must be 'auto'" in err


def test_consistent_theory_is_the_consistent_field_with_its_own_moments():
    """``theory="consistent"``: the [q] field is the consistent field with the same exact_below
    (identical per-member histograms), the moments are its Monte Carlo moments (not the cavity
    ones), and "auto" picks the same t_c for both (the ladder runs on the same field)."""
    field = compare_linear(_tiny(theory="consistent_field", exact_below=0.3))
    own = compare_linear(_tiny(theory="consistent", exact_below=0.3))
    np.testing.assert_array_equal(own.theory.gf_histograms, field.theory.gf_histograms)
    means = [
        (r["mean_pred"], r2["mean_pred"])
        for r, r2 in zip(own.denoiser_rows, field.denoiser_rows, strict=True)
    ]
    assert all(a != b for a, b in means)
    cfg = own.theory.config["theory"]
    assert cfg["kind"] == "occupancy_linear" and cfg["consistent"] and cfg["exact_below"] == 0.3
    auto_own = compare_linear(_tiny(theory="consistent", exact_below="auto"))
    auto_field = compare_linear(_tiny(theory="consistent_field", exact_below="auto"))
    assert auto_own.meta["exact_below_choice"] == auto_field.meta["exact_below_choice"]


def _tiny_ladder(n_members: int, n_samples: int):
    """The ladder of :func:`_tiny`'s configuration built by hand (its theory, P = 40, seed 0)."""
    sched = get_schedule("vp-linear")
    feats = ProductFeatures.uniform("gaussian", 1, 5, 4, (EPS, sched.T), (-1.5, 1.5))
    th = linear_model_theory(FIGURE2_DATA, feats, EPS, sched, ridge=0.1)
    return choose_exact_below(
        th, cavity_moments(th, 40), n_members=n_members, edges=np.linspace(-2, 2, 81),
        n_samples=n_samples, seed=0,
    )  # fmt: skip


def test_ladder_samples_sets_the_rungs_samples_only():
    """``ladder_samples``: the rungs use that many samples per member (the ladder equals
    ``choose_exact_below`` with ``n_samples=ladder_samples``), the prediction keeps ``n_samples``;
    checked with the configuration."""
    cheap = compare_linear(_tiny(exact_below="auto", ladder_samples=60))
    full = compare_linear(_tiny(exact_below=cheap.meta["exact_below_choice"]["t_c"]))
    np.testing.assert_array_equal(cheap.theory.gf_histograms, full.theory.gf_histograms)
    choice = _tiny_ladder(n_members=6, n_samples=60)
    assert cheap.meta["exact_below_choice"] == json.loads(json.dumps(choice.to_dict()))
    for bad, match in (
        (dict(exact_below="auto", ladder_samples=0), "ladder_samples must be"),
        (dict(exact_below=0.2, ladder_samples=60), "only with exact_below='auto'"),
        (dict(exact_below="auto", ladder_samples=60, density="transport"), "density='mc'"),
    ):
        with pytest.raises(ValueError, match=match):
            _tiny(**bad)


def test_ladder_members_sets_the_rungs_members_only(tmp_path, capsys):
    """``ladder_members``: the ladder is ``choose_exact_below`` with that many members (its
    standard errors are theirs), the prediction keeps its own members; only with "auto"; the
    CLI passes it on."""
    res = compare_linear(_tiny(exact_below="auto", ladder_members=10))
    choice = _tiny_ladder(n_members=10, n_samples=300)
    assert res.meta["exact_below_choice"] == json.loads(json.dumps(choice.to_dict()))
    default = compare_linear(_tiny(exact_below="auto"))
    ses = [[r["gap_se"] for r in x.meta["exact_below_choice"]["rows"]] for x in (default, res)]
    assert ses[0] != ses[1]
    assert res.theory.gf_gap.shape == (6,)  # the prediction's members: n_models
    for bad, match in (
        (dict(exact_below="auto", ladder_members=3), "ladder_members must be"),
        (dict(exact_below=0.2, ladder_members=10), "ladder_members: only with exact_below='auto'"),
    ):
        with pytest.raises(ValueError, match=match):
            _tiny(**bad)
    args = ["validate", "linear", "--models", "4", "--ladder-members", "8", "--exact-below",
            "auto", "--density", "mc", "--samples", "50", "--P", "40", "--n-space", "3",
            "--n-time", "3", "--bins", "80", "--boot", "20", "--theory", "consistent_field",
            "--no-diagnostics", "--out", str(tmp_path), "--formats", "png",
            "--no-progress"]  # fmt: skip
    assert main(args) == 0
    back = LinearComparison.load(tmp_path / "linear_eps0.01_P40.npz")
    assert back.config.ladder_members == 8
