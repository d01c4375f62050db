"""gtv.validation.linear.validity: the per-configuration summary of theory vs trained ensembles."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gtv.validation.linear.compare import LinearCompareConfig, compare_linear
from gtv.validation.linear.validity import format_validity_table, validity_row


@pytest.fixture(scope="module")
def comparison():
    cfg = LinearCompareConfig(
        P=400, n_space=5, n_time=4, n_models=8, n_samples=300, n_bins=40, n_boot=40,
        n_splits=3, fp_steps=60, fp_refine=1, n_bayes_samples=2000,
        query_x=(-1.0, -0.3, 0.0, 0.6), query_t=(0.01, 0.05, 0.3),
    )  # fmt: skip
    return compare_linear(cfg)


def test_row_counts_and_ratios_follow_the_denoiser_rows(comparison):
    floor = 1e-4
    row = validity_row(comparison, var_floor=floor, tolerance=0.15)
    # independent recount from the raw rows
    kept = [r for r in comparison.denoiser_rows if r["var"] > floor]
    ratios = np.array([r["var"] / r["var_pred"] for r in kept])
    assert row["n_points"] == len(kept) > 0
    assert row["n_within"] == int(np.sum(np.abs(ratios - 1) <= 0.15))
    assert row["ratio_min"] == pytest.approx(ratios.min())
    assert row["ratio_max"] == pytest.approx(ratios.max())
    assert row["ratio_min"] <= row["ratio_median"] <= row["ratio_max"]
    worst = kept[int(np.argmax(np.abs(ratios - 1)))]
    assert row["worst_point"] == (worst["x"], worst["t"])
    assert row["F_over_P"] == pytest.approx(20 / 400)
    assert row["gf_within_floor"] == (row["gf_tv"] <= row["floor_tv"])
    # a huge tolerance accepts every point, a higher variance floor keeps fewer
    assert validity_row(comparison, tolerance=1e9)["n_within"] == row["n_points"]
    assert validity_row(comparison, var_floor=1.0)["n_points"] == 0


def test_table_has_one_line_per_row(comparison):
    rows = [validity_row(comparison), validity_row(comparison, tolerance=0.3)]
    text = format_validity_table(rows)
    lines = text.splitlines()
    assert len(lines) == 4 and lines[0].startswith("| eps | P | F/P |")
    assert "nan" not in text


@pytest.mark.parametrize(
    "kw", [{"var_floor": -1.0}, {"var_floor": float("nan")}, {"tolerance": 0.0}]
)
def test_bad_arguments(comparison, kw):
    name = next(iter(kw))
    with pytest.raises(ValueError, match=name):
        validity_row(comparison, **kw)


def test_bad_types_and_empty():
    with pytest.raises(TypeError, match="result"):
        validity_row({"not": "a comparison"})
    with pytest.raises(ValueError, match="rows"):
        format_validity_table([])


@pytest.mark.parametrize("name", ["query_x", "query_t"])
def test_config_rejects_non_finite_query_points(name):
    with pytest.raises(ValueError, match=name):
        dataclasses.replace(LinearCompareConfig(), **{name: (0.1, float("nan"))})
