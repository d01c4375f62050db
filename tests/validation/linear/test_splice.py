"""Spliced sampling of a trained ensemble and a theory field (gtv.validation.linear.splice).

* The derangement: a permutation without fixed points, reproducible from its generator.
* The roles of the splices, checked where they must reduce to a plain ensemble: a switch below
  every evaluated sampler time leaves only the early members, a field equal to the trained
  ensemble makes its splices the trained ensemble, and the field row is the field sampled
  directly.
* Bad input is refused before any sampling.
"""

import dataclasses

import numpy as np
import pytest

from gtv.numerics.features import ProductFeatures
from gtv.numerics.linear import (
    CavityLinear,
    cavity_moments,
    linear_model_theory,
    sample_linear_ensemble,
    train_linear_ensemble,
)
from gtv.numerics.schedules import get_schedule
from gtv.validation.ensembles import sampled_densities
from gtv.validation.linear import format_splices, splice_rows
from gtv.validation.linear.splice import SPLICES, derangement
from gtv.validation.shells import shell_masses

DATA = np.array([[-1.0], [0.0], [1.0]])
EDGES = np.linspace(-2.0, 2.0, 81)
EPS = 0.01


@pytest.fixture(scope="module")
def pair():
    sched = get_schedule("vp-linear")
    feats = ProductFeatures.uniform("gaussian", 1, 8, 4, (EPS, sched.T), (-1.5, 1.5))
    trained = train_linear_ensemble(DATA, feats, 20, 64, EPS, sched, ridge=0.1, seed=0)
    theory = linear_model_theory(DATA, feats, EPS, sched, ridge=0.1)
    field = CavityLinear(theory, cavity_moments(theory, 64), "consistent").gaussian_field(20, 0)
    return trained, field


def test_derangement_has_no_fixed_point_and_is_reproducible():
    for n in (2, 3, 10, 1000):
        p = derangement(n, np.random.default_rng(1))
        assert sorted(p) == list(range(n))
        assert np.all(p != np.arange(n))
        np.testing.assert_array_equal(p, derangement(n, np.random.default_rng(1)))
    assert not np.array_equal(
        derangement(1000, np.random.default_rng(1)), derangement(1000, np.random.default_rng(2))
    )
    for bad in (1, 0):
        with pytest.raises(ValueError, match="n must be"):
            derangement(bad, np.random.default_rng(0))


def _by_name(rows, tau):
    return {r["name"]: r for r in rows if r["t_switch"] in (None, tau)}


def test_field_row_is_the_field_sampled_directly(pair):
    trained, field = pair
    rows = splice_rows(trained, field, (0.1,), EDGES, n_samples=300, seed=4, n_boot=50)
    assert [r["name"] for r in rows] == ["trained", "field"] + [s[0] for s in SPLICES]
    d = sampled_densities(sample_linear_ensemble(field.ensemble, 300, seed=4), DATA, EDGES, 0.25)
    direct = shell_masses(d.histograms, d.outside, EDGES, DATA[:, 0]).mean(axis=0)
    got = np.array([s["predicted"] for s in rows[1]["shells"]])
    np.testing.assert_allclose(got, direct, rtol=0, atol=1e-12)
    assert rows[1]["gap"] == pytest.approx(d.gap.mean(), abs=1e-12)
    assert all(s["diff"] == 0 for s in rows[0]["shells"])
    text = format_splices(rows)
    for name in ("trained", "field", *(s[0] for s in SPLICES)):
        assert f" {name} | " in text


def test_switch_below_every_sampler_time_leaves_the_early_members(pair):
    """The sampler evaluates D^ at T - k (T - eps)/30, k < 30: above 0.04 here. A switch at 0.02
    hands every step to the early members."""
    trained, field = pair
    rows = _by_name(splice_rows(trained, field, (0.02,), EDGES, n_samples=300, n_boot=50), 0.02)
    # late field: early = trained at every step, so the trained ensemble exactly
    assert all(s["diff"] == 0 for s in rows["late field"]["shells"])
    # late trained: the field at every step, from the trained start points = the field row
    for a, b in zip(rows["late trained"]["shells"], rows["field"]["shells"], strict=True):
        assert a["predicted"] == b["predicted"]
    # shuffled: the same members, carried from other members' start points: a different
    # ensemble of the same law (not the same numbers)
    for name, ref in (("trained shuffled", "trained"), ("field shuffled", "field")):
        a = np.array([s["predicted"] for s in rows[name]["shells"]])
        b = np.array([s["predicted"] for s in rows[ref]["shells"]])
        assert 0 < np.abs(a - b).max() < 0.05


def test_a_field_equal_to_the_trained_ensemble_splices_to_it(pair):
    trained, _ = pair
    same = dataclasses.replace(trained, W=trained.W.copy())
    rows = splice_rows(trained, same, (0.05, 0.3), EDGES, n_samples=300, n_boot=50)
    for r in rows:
        if r["name"] in ("field", "late field", "late trained"):
            assert all(s["diff"] == 0 for s in r["shells"]), r["name"]
    # shuffling across a time the sampler passes changes the densities (member coherence)
    shuffled = [r for r in rows if r["name"] == "trained shuffled"]
    assert all(max(abs(s["diff"]) for s in r["shells"]) > 0 for r in shuffled)


def test_bad_input(pair):
    trained, field = pair
    ok = dict(n_samples=10)
    for bad in ((), (0.005,), (1.0,), (0.1, float("nan")), [[0.1]]):
        with pytest.raises(ValueError, match="t_switch"):
            splice_rows(trained, field, bad, EDGES, **ok)
    with pytest.raises(TypeError, match="field"):
        splice_rows(trained, field.W, (0.1,), EDGES, **ok)
    with pytest.raises(TypeError, match="trained"):
        splice_rows("trained", field, (0.1,), EDGES, **ok)
    fewer = dataclasses.replace(field.ensemble, W=field.W[:5])
    with pytest.raises(ValueError, match="early must have the ensemble's models"):
        splice_rows(trained, fewer, (0.1,), EDGES, **ok)
    with pytest.raises(ValueError, match="n_samples"):
        splice_rows(trained, field, (0.1,), EDGES, n_samples=0)
    with pytest.raises(ValueError, match="method"):
        splice_rows(trained, field, (0.1,), EDGES, n_samples=10, method="rk4")
    with pytest.raises(ValueError, match="at least 2 models"):
        splice_rows(dataclasses.replace(trained, W=trained.W[:1]), fewer, (0.1,), EDGES, **ok)
