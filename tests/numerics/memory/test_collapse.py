"""Collapse time of the exact empirical score (gtv.numerics.memory.collapse)."""

import math

import numpy as np
import pytest

from gtv.numerics.memory.collapse import collapse_time, measured_collapse_time, time_at_snr
from gtv.numerics.schedules import get_schedule
from gtv.theory.memory import ou_schedule

SCHED = get_schedule("vp-linear")


def _log_snr(tv):
    a2 = math.exp(-2 * (199 / 20 * tv**2 + tv / 10))  # vp-linear alpha**2, written out
    return math.log(a2 / (1 - a2))


@pytest.mark.parametrize(("K", "D", "s2"), [(100, 8, 1.0), (1000, 32, 2.5), (7, 2, 0.3)])
def test_collapse_time_solves_the_snr_equation(K, D, s2):
    tc = collapse_time(K, D, s2)
    assert abs(_log_snr(tc) - math.log((K ** (2 / D) - 1) / s2)) < 1e-10


def test_collapse_time_on_the_ou_schedule_is_the_closed_form():
    ou = ou_schedule().to_numeric()
    for K, D, s2 in [(100, 8, 1.0), (1000, 32, 2.5), (7, 2, 0.3)]:
        ref = 0.5 * math.log(1 + s2 / (K ** (2 / D) - 1))
        assert abs(collapse_time(K, D, s2, ou) - ref) < 1e-12


def test_collapse_after_T_is_inf_and_time_at_snr_checks():
    assert collapse_time(2, 10**10) == math.inf  # K**(2/D) - 1 ~ 1.4e-10 < snr(T) ~ 2e-9
    with pytest.raises(ValueError, match="snr must be"):
        time_at_snr(-1.0)
    with pytest.raises(ValueError, match="K must be"):
        collapse_time(1, 4)
    with pytest.raises(ValueError, match="s2 must be"):
        collapse_time(10, 4, s2=0.0)


#: Tolerance on log(alpha**2/sigma2) at the measured crossing. The formula is asymptotic
#: (D -> infinity at fixed log K / D); at D = 8..32 the measured 1/2-crossing of the mean largest
#: weight sits within 0.33 of it for seeds 1-4 and these (K, D) (largest at D = 8, K = 64), while
#: the wrong exponent K**(1/D) - 1 is off by >= 0.66 (log(K**(1/D) + 1) >= log 2 apart).
LOG_SNR_TOL = 0.45


@pytest.mark.parametrize("D", [8, 16, 32])
def test_measured_crossing_tracks_the_formula(D):
    for K in (64, 256, 1024):
        m = measured_collapse_time(K, D, n_population=500, seed=1)
        err = abs(_log_snr(m.time) - _log_snr(collapse_time(K, D)))
        wrong = abs(_log_snr(m.time) - math.log(K ** (1 / D) - 1))
        assert err < LOG_SNR_TOL, (K, D, err)
        assert wrong > LOG_SNR_TOL, (K, D, wrong)
        # the curve goes from collapsed (largest weight ~ 1) to spread out
        assert m.mean_max_weight[0] > 0.9 and m.mean_max_weight[-1] < 0.5


def test_measured_is_reproducible_and_backends_agree():
    a = measured_collapse_time(64, 8, n_population=200, seed=7)
    b = measured_collapse_time(64, 8, n_population=200, seed=7, backend="numpy")
    np.testing.assert_allclose(a.mean_max_weight, b.mean_max_weight, rtol=1e-10)
    c = measured_collapse_time(64, 8, n_population=200, seed=7)
    assert a.time == c.time


def test_measured_raises_without_crossing():
    with pytest.raises(ValueError, match="t_grid"):
        measured_collapse_time(64, 8, n_population=50, t_grid=[0.5, 0.8, 1.0])
