"""The kernel theory bound to one training time and budget (gtv.numerics.kernel.prediction).

Checks: :class:`KernelTheoryAt` implements the theory contract and agrees with the per-call
methods of :class:`NTKTheory` to the last digit; its white-noise coefficients agree with the
theory's mean score and Markov intensity; the Gaussian field draws from the documented streams
and has the theory's mean and covariance; save/load round trip.
"""

import numpy as np
import pytest

from gtv.numerics.contract import EnsembleTheory, FieldEnsemble
from gtv.numerics.kernel import KernelField, KernelTheoryAt, NTKTheory, ntk_theory, serial_blas
from gtv.numerics.pfode import initial_points
from gtv.numerics.streams import model_rngs

DATA = np.array([[-1.0], [0.0], [1.0]])
EPS = 0.1
XQ = np.array([-1.2, -0.5, 0.3, 1.0])
TQ = 0.2
TAU, P = 10.0, 300.0


@pytest.fixture(scope="module")
def theory():
    return ntk_theory(DATA, EPS, n_t=12, n_hermite=12)


@pytest.fixture(scope="module")
def bound(theory):
    return KernelTheoryAt(theory, TAU, P)


def test_implements_the_contract_and_equals_the_per_call_methods(theory, bound):
    assert isinstance(bound, EnsembleTheory)
    assert bound.P == P and bound.tau == TAU and bound.eps == EPS and bound.dim == 1
    assert bound.data is theory.data and bound.schedule is theory.schedule
    z, z2 = (XQ, TQ), (XQ[::-1], np.array([0.15, 0.3, 0.5, 0.9]))
    eq = np.testing.assert_array_equal
    eq(bound.mean_denoiser(XQ, TQ), theory.mean_denoiser(XQ, TQ, TAU))
    eq(bound.mean_score(XQ, TQ), theory.mean_score(XQ, TQ, TAU))
    eq(bound.score_factor(XQ * 0 + TQ), theory.score_factor(XQ * 0 + TQ))
    for part in ("total", "proxy", "misfit"):
        for paired in (False, True):
            eq(
                bound.denoiser_covariance(z, z2, part=part, paired=paired),
                theory.denoiser_covariance(z, z2, tau=TAU, P=P, part=part, paired=paired),
            )
            eq(
                bound.v_kernel(z, z2, part=part, paired=paired),
                theory.v_kernel(z, z2, tau=TAU, P=P, part=part, paired=paired),
            )
        eq(
            bound.markov_intensity(XQ, TQ, part=part),
            theory.markov_intensity(XQ, TQ, tau=TAU, P=P, part=part),
        )
    assert bound.effective_dimension() == float(theory.effective_dimension(TAU))


def test_white_noise_coefficients_are_the_mean_score_and_intensity(bound):
    mean_score, intensity = bound.white_noise_coefficients()
    x = np.linspace(-3, 3, 31)
    for t in (0.11, 0.4, 0.95):
        np.testing.assert_allclose(mean_score(x, t), bound.mean_score(x, t), rtol=1e-10, atol=1e-12)
        q = bound.markov_intensity(x, t)[:, 0, 0]
        np.testing.assert_allclose(intensity(x, t), q, rtol=1e-9, atol=1e-12 * np.abs(q).max())


def test_bad_arguments(theory):
    with pytest.raises(TypeError, match="NTKTheory"):
        KernelTheoryAt("theory", TAU, P)
    with pytest.raises(ValueError, match="P"):
        KernelTheoryAt(theory, TAU, 0.5)
    with pytest.raises(ValueError, match="tau"):
        KernelTheoryAt(theory, -1.0, P)


def test_gaussian_field_draws_from_the_field_stream(theory, bound):
    """Member n: ``a_tau + basis (L xi_n)`` with ``xi_n`` from ``stream(seed, "field")`` child n
    (``L`` the eigen-factor of ``C/P``); start points from ``stream(seed, "field-sampling")``."""
    gf = bound.gaussian_field(5, seed=7)
    assert isinstance(gf, (KernelField, FieldEnsemble)) and isinstance(gf, FieldEnsemble)
    assert gf.n_models == 5 and gf.dim == 1 and gf.ensemble.config["kind"] == "gaussian-field"
    r = theory.rank

    @serial_blas  # the same LAPACK path as gaussian_field (eigenvector signs)
    def factor():
        ev, vecs = np.linalg.eigh(theory.coefficient_covariance(TAU, P).reshape(r, r))
        return vecs * np.sqrt(np.clip(ev, 0.0, None))[None, :]

    L = factor()
    a = theory.node_coefficients(TAU)
    for n, rng in enumerate(model_rngs(7, "field", 5)):
        expected = a + theory.basis @ (L @ rng.standard_normal(r)).reshape(r, 1)
        np.testing.assert_allclose(gf.coeffs[n, 0], expected, rtol=1e-12, atol=1e-14)
    x_T = initial_points(None, 7, 5, 40, 1, theory.schedule, stream="field-sampling")
    np.testing.assert_array_equal(gf.sample(40, seed=7), gf.ensemble.sample(40, x_T=x_T))
    np.testing.assert_array_equal(gf.denoise(XQ, TQ), gf.ensemble.denoiser(XQ, TQ))


def test_gaussian_field_has_the_predicted_moments(theory, bound):
    """4000 Gaussian-field denoisers: mean and covariance at the query points agree with the
    theory within 4 standard errors (mean: se = sd/sqrt(N); variance: se = var sqrt(2/N))."""
    N = 4000
    gf = bound.gaussian_field(N, seed=5)
    d = gf.denoise(XQ, TQ)[:, :, 0]
    mean = bound.mean_denoiser(XQ, TQ)[:, 0]
    var = bound.denoiser_covariance((XQ, TQ), paired=True)[:, 0, 0]
    assert np.all(np.abs(d.mean(0) - mean) <= 4 * np.sqrt(var / N))
    assert np.all(np.abs(d.var(0, ddof=1) - var) <= 4 * var * np.sqrt(2 / N))
    # reproducible per-model streams: the first members of a larger field are the same
    np.testing.assert_array_equal(bound.gaussian_field(3, seed=5).coeffs, gf.coeffs[:3])


def test_save_load_round_trip(bound, tmp_path):
    path = bound.save(tmp_path / "bound")
    assert path.exists() and (tmp_path / "bound_theory.npz").exists()
    back = KernelTheoryAt.load(path)
    assert isinstance(back.theory, NTKTheory) and back.tau == TAU and back.P == P
    np.testing.assert_array_equal(
        back.denoiser_covariance((XQ, TQ)), bound.denoiser_covariance((XQ, TQ))
    )
    assert back.config() == bound.config()
    with pytest.raises(ValueError, match="KernelTheoryAt"):
        KernelTheoryAt.load(bound.theory.save(tmp_path / "other"))


def test_gaussian_field_takes_start_points_and_row_owners(bound):
    """``KernelField.sample`` with explicit ``x_T`` equals its Monte Carlo path given the start
    points that path draws (stream ``"field-sampling"``, drawn here directly), and with
    ``models`` row r is member ``models[r]`` (as the member ensemble's own sampler)."""
    gf = bound.gaussian_field(4, seed=3)
    sigma_T = np.sqrt(gf.ensemble.schedule.sigma2(gf.ensemble.schedule.T))
    x_T = np.stack(
        [sigma_T * g.standard_normal((30, 1)) for g in model_rngs(3, "field-sampling", 4)]
    )
    np.testing.assert_array_equal(gf.sample(30, seed=3), gf.sample(30, x_T=x_T))
    models = np.array([3, 0, 3])
    rows = gf.sample(30, x_T=x_T[:3], models=models)
    for r, m in enumerate(models):
        start = x_T.copy()
        start[m] = x_T[r]  # member m started from row r's points, all members at once
        np.testing.assert_array_equal(rows[r], gf.sample(30, x_T=start)[m])
    with pytest.raises(ValueError, match="models needs explicit start points"):
        gf.sample(30, models=models)
