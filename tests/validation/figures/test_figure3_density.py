"""How accurate Figure 3's densities are from scrambled-Sobol' vs random start points.

The slow tests print the tables quoted in docs/math/transport.md ("2-D and more"):
``python -m pytest -m slow tests/validation/figures/test_figure3_density.py -s -n 0``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from gtv.validation.figures import Figure3Config, compute_figure3
from gtv.validation.figures.figure3_density import (
    format_start_set_table,
    measure_start_sets,
    pooled_errors,
)

TINY = Figure3Config(
    rotations=(math.pi / 4,), n_space=4, n_time=3, P=100, n_models=3, n_bins=10,
    n_bayes_samples=100, seed=4,
)  # fmt: skip


def test_measured_start_sets_are_the_figures():
    """The start sets measured are Figure 3's own: the segment-table row of every start set
    equals the figure's row computed with that density (same models, same start points)."""
    starts = (("mc", 256), ("transport", 256))
    errors = measure_start_sets(TINY, starts, n_reference=1024)
    assert [(e.kind, e.density, e.n_points) for e in errors] == [
        ("gaussian", "mc", 256), ("gaussian", "transport", 256),
        ("fourier", "mc", 256), ("fourier", "transport", 256),
    ]  # fmt: skip
    for density, n in starts:
        cfg = Figure3Config.from_dict({**TINY.to_dict(), "density": density, "n_samples": n,
                                       "n_points": n})  # fmt: skip
        rows = compute_figure3(cfg, progress=False).segment_table()
        for i, row in enumerate(rows):
            e = [e for e in errors if e.density == density][i]
            assert e.difference_ci == row["difference"]
            assert e.reference_difference_ci == errors[2 * i].reference_difference_ci
    for e in errors:
        assert e.n_reference == 1024 and e.tv.shape == (3,) and np.all(e.tv > 0)
        assert np.all(np.isfinite(e.squared_error)) and e.equivalent_samples > 0
    rows = pooled_errors(errors)
    assert [(r["density"], r["panels"], r["models"]) for r in rows] == [
        ("mc", 2, 6), ("transport", 2, 6),
    ]  # fmt: skip
    table = format_start_set_table(errors)
    assert "scrambled Sobol'" in table and "reference" in table


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"starts": ()}, "starts"),
        ({"starts": (("qmc", 256),)}, "density"),
        ({"starts": (("transport", 300),)}, "power of 2"),
        ({"starts": (("mc", 1),)}, "starts: n"),
        ({"panels": [(0, 1)]}, "panels"),
        ({"n_reference": 1}, "n_reference"),
        ({"n_reference": 10**15}, "n_reference"),
    ],
)
def test_measure_rejects_bad_arguments_naming_them(kwargs, match):
    with pytest.raises(ValueError, match=match):
        measure_start_sets(TINY, **kwargs)


MEASURES = ("tv", "mean_tv", "segment", "diagonal", "difference", "gap")


def _check_pooled(errors, n, measures=MEASURES):
    """Scrambled Sobol' at ``n`` points is at least as accurate as Monte Carlo at ``n``: in the
    equivalent number of random points (Monte Carlo's own is ``n`` up to noise) and in the
    median per-model error of ``measures``."""
    rows = {(r["density"], r["n_points"]): r for r in pooled_errors(errors)}
    qmc, mc = rows[("transport", n)], rows[("mc", n)]
    assert qmc["equivalent_samples"] > 1.5 * n > mc["equivalent_samples"] / 1.2
    for key in measures:
        assert qmc[key][0] <= mc[key][0], key


@pytest.mark.slow
def test_qmc_is_as_accurate_as_twice_the_random_points_on_figure3_fast():
    """Figure3Config.fast() (20 models, 120 x 120 bins), all six panels, 2**12 and 2**13 start
    points per model against 2**17 random ones of the same model (about 4 minutes on 2 cores)."""
    errors = measure_start_sets(Figure3Config.fast())
    print()
    print(format_start_set_table(errors))
    for n in (4096, 8192):
        _check_pooled(errors, n)


@pytest.mark.slow
def test_qmc_2_16_points_beat_the_papers_1e5_random_points():
    """The default's size: 2**16 Sobol' points vs the paper's 10**5 random points (and 2**16 of
    them) per model, rotation pi/4 of both kinds, 6 models each, 120 x 120 bins, against 2**20
    random points of the same model (about 4 minutes on 2 cores)."""
    cfg = Figure3Config(n_models=6)
    starts = (("mc", 100_000), ("transport", 65_536), ("mc", 65_536))
    errors = measure_start_sets(cfg, starts, panels=[(0, 2), (1, 2)], n_reference=2**20)
    print()
    print(format_start_set_table(errors))
    _check_pooled(errors, 65_536, measures=("tv",))  # 12 models: medians of the rest are noisy
    rows = {(r["density"], r["n_points"]): r for r in pooled_errors(errors)}
    assert rows[("transport", 65_536)]["equivalent_samples"] > 100_000
