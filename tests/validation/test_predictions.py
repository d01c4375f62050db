"""Predictions of [q] for any theory of the contract (gtv.validation.predictions).

The Gaussian-field ensemble and the white-noise Fokker-Planck density are written once; here
they run for the linear first- and second-order theories and the kernel theory: the field's
histograms are those of the theory's Gaussian field sampled from the documented streams, the
Fokker-Planck densities are normalized and conserve mass, and the baselines are exact.
"""

import numpy as np
import pytest

from gtv.numerics.contract import EnsembleTheory
from gtv.numerics.exact import sample_exact_denoiser
from gtv.numerics.features import ProductFeatures
from gtv.numerics.kernel import KernelTheoryAt, ntk_theory
from gtv.numerics.linear import (
    FirstOrderLinear,
    SecondOrderLinear,
    linear_model_theory,
    second_order_moments,
    v_kernel_factor,
)
from gtv.numerics.pfode import initial_points
from gtv.numerics.posterior import posterior_stats
from gtv.numerics.schedules import get_schedule
from gtv.validation.ensembles import TransportSettings, gap_mass, per_model_histograms
from gtv.validation.figures.figure2 import FIGURE2_DATA, mixture_density
from gtv.validation.predictions import (
    TheoryPredictions,
    bin_mixture_density,
    compute_theory_predictions,
    markov_fokker_planck,
)
from gtv.validation.theory_densities import (
    exact_bayes_densities,
    gaussian_field_densities,
    gaussian_field_histograms,
)

EPS = 1e-2
P = 400


@pytest.fixture(scope="module")
def linear():
    sched = get_schedule("vp-linear")
    feats = ProductFeatures.uniform("gaussian", 1, 5, 4, (EPS, sched.T))
    return linear_model_theory(FIGURE2_DATA, feats, EPS, sched)


@pytest.fixture(scope="module")
def kernel():
    return KernelTheoryAt(ntk_theory(FIGURE2_DATA, 0.1, n_t=10, n_hermite=10), 10.0, 300)


@pytest.fixture(scope="module", params=["first", "second", "kernel"])
def any_theory(request, linear, kernel):
    if request.param == "first":
        return FirstOrderLinear(linear, P)
    if request.param == "second":
        return SecondOrderLinear(linear, second_order_moments(linear), P)
    return kernel


def test_gaussian_field_histograms_are_those_of_the_field(any_theory):
    edges = np.linspace(-2, 2, 41)
    hist, outside, gap = gaussian_field_histograms(any_theory, 5, 200, edges, 0.25, seed=4)
    xs = any_theory.gaussian_field(5, seed=4).sample(200, seed=4)
    np.testing.assert_array_equal(hist, per_model_histograms(xs, [edges]))
    np.testing.assert_array_equal(gap, gap_mass(xs, FIGURE2_DATA, 0.25))
    np.testing.assert_allclose(hist.sum(1) * 0.1 + outside, 1.0, atol=1e-12)


def test_white_noise_fp_is_a_normalized_nonnegative_density(any_theory):
    res, info = markov_fokker_planck(any_theory, (-5, 5), 200, 120)
    p = res.density
    assert np.all(np.isfinite(p)) and np.all(p >= 0)
    # mass is conserved exactly; p_T on [-5, 5] misses the N(0, 1) tails (5.7e-7)
    assert res.grid.mass(p) == pytest.approx(res.mass[0], rel=1e-12)
    assert res.grid.mass(p) == pytest.approx(1.0, abs=1e-6)
    assert 0 <= info["clipped_fraction"] <= 1 and 0 <= info["clipped_share"] <= 1
    assert info["min_Q_rel"] <= 0 and info["mass_error"] < 1e-12


def test_kernel_white_noise_fp_conserves_mass_and_the_noise_matters(kernel):
    res, info = markov_fokker_planck(kernel, bounds=(-7, 7), n_cells=140, n_steps=40)
    res0, _ = markov_fokker_planck(
        kernel, bounds=(-7, 7), n_cells=140, n_steps=40, with_noise=False
    )
    assert info["mass_error"] < 1e-12 and info["max_boundary_mass"] < 1e-6
    h = np.diff(res.grid.edges[0])
    # (the initial cell averages of N(0, sigma_T**2) on [-7, 7] miss 2.6e-12 of the mass)
    np.testing.assert_allclose((res.density * h).sum(), 1.0, rtol=1e-11)
    # the noise spreads mass: the densities differ, with the same mean (symmetric data)
    x = res.grid.centres[0]
    assert np.abs(res.density - res0.density).max() > 1e-3
    assert abs((res.density * h) @ x) < 1e-8


def test_predictions_need_a_theory_of_the_contract(linear):
    with pytest.raises(TypeError, match="EnsembleTheory"):
        markov_fokker_planck(linear)
    with pytest.raises(TypeError, match="EnsembleTheory"):
        gaussian_field_histograms(linear, 2, 10, np.linspace(-1, 1, 5), 0.25)


def test_bin_mixture_density_is_exact_bin_average():
    sched = get_schedule("vp-linear")
    edges = np.linspace(-5, 5, 5001)
    d = bin_mixture_density(FIGURE2_DATA, edges, 0.1, sched)
    assert (d * np.diff(edges)).sum() == pytest.approx(1.0, abs=1e-12)
    ctr = (edges[1:] + edges[:-1]) / 2
    assert np.allclose(d, mixture_density(FIGURE2_DATA, ctr, 0.1, sched), atol=1e-3)


def test_theory_predictions_roundtrip(linear, tmp_path):
    edges = np.linspace(-2, 2, 41)
    theory = FirstOrderLinear(linear, P)
    tp = compute_theory_predictions(
        theory, 4, 300, edges, n_bayes_samples=2000, fp_steps=60, fp_refine=1
    )
    for name, (dens, out) in tp.densities().items():
        assert np.all(np.isfinite(dens)) and np.all(dens >= 0), name
        assert (dens * 0.1).sum() + out == pytest.approx(1.0, abs=1e-9), name
    assert tp.config["P"] == P and tp.config["theory"] == theory.config()
    hist, _, _ = gaussian_field_histograms(theory, 4, 300, edges, 0.25)
    np.testing.assert_array_equal(tp.gf_histograms, hist)
    path = tp.save(tmp_path / "tp")
    back = TheoryPredictions.load(path)
    assert np.array_equal(back.gf_histograms, tp.gf_histograms)
    assert back.fp_info == tp.fp_info and back.gap == tp.gap


# -- one more theory plugs in -------------------------------------------------------------------
class _MemorizingField:
    """N copies of the exact Bayes denoiser (a :class:`FieldEnsemble`)."""

    def __init__(self, theory, n_models):
        self.theory, self.n_models, self.dim = theory, n_models, 1

    def denoise(self, x, t):
        return np.broadcast_to(self.theory.mean_denoiser(x, t), (self.n_models, len(x), 1))

    def sample(self, n_samples, *, n_steps=30, method="euler", seed=0):
        th = self.theory
        x_T = initial_points(None, seed, self.n_models, n_samples, 1, th.schedule, "field-sampling")
        return np.stack(
            [
                sample_exact_denoiser(
                    th.data, n_samples, th.eps, th.schedule, n_steps=n_steps, method=method, x_T=x
                )
                for x in x_T
            ]
        )


class _Memorizing:
    """A theory written outside gtv: every model learned the exact Bayes denoiser (no variance)."""

    def __init__(self, data, eps, schedule, P):
        self.data, self.eps, self.schedule, self.P = data, eps, schedule, P

    dim = property(lambda self: self.data.shape[1])

    def mean_denoiser(self, x, t):
        x = np.asarray(x, dtype=float).reshape(-1, 1)
        return posterior_stats(self.data, x, t, self.schedule).mean

    def mean_score(self, x, t):
        x = np.asarray(x, dtype=float).reshape(-1, 1)
        s = self.schedule
        return s.score_mean_coeff(t) * self.mean_denoiser(x, t) - s.inv_sigma2(t) * x

    def denoiser_covariance(self, z, z2=None, *, part="total", paired=False):
        n, n2 = len(z[0]), len((z if z2 is None else z2)[0])
        return np.zeros((n, 1, 1) if paired else (n, n2, 1, 1))

    def score_factor(self, t):
        return v_kernel_factor(self.schedule, t)

    v_kernel = denoiser_covariance

    def markov_intensity(self, x, t, *, part="total"):
        return np.zeros((len(x), 1, 1))

    def white_noise_coefficients(self):
        return self.mean_score, lambda x, t: np.zeros(len(x))

    def gaussian_field(self, n_models, seed=0):
        return _MemorizingField(self, n_models)

    def config(self):
        return {"kind": "memorizing", "P": self.P}

    def save(self, path):
        raise NotImplementedError

    @classmethod
    def load(cls, path):
        raise NotImplementedError


def test_a_new_theory_plugs_into_the_predictions():
    """A theory implemented outside gtv (the memorizing ensemble: every model is the exact Bayes
    denoiser) satisfies the contract, and the predictions written once run on it: its Gaussian
    field is the exact-Bayes PF-ODE, its white-noise density is the Fokker-Planck density of the
    exact score (Q = 0), i.e. p(x|eps) up to the solver's discretization."""
    sched = get_schedule("vp-linear")
    memo = _Memorizing(FIGURE2_DATA, 0.1, sched, 100)
    assert isinstance(memo, EnsembleTheory)
    edges = np.linspace(-2, 2, 41)
    hist, outside, gap = gaussian_field_histograms(memo, 2, 400, edges, 0.25, seed=3)
    x_T = initial_points(None, 3, 2, 400, 1, sched, "field-sampling")
    xb = sample_exact_denoiser(FIGURE2_DATA, 400, 0.1, sched, x_T=x_T[1])
    np.testing.assert_array_equal(hist[1], per_model_histograms(xb[None], [edges])[0])
    res, info = markov_fokker_planck(memo, (-6, 6), 600, 200)
    assert info["clipped_fraction"] == 0 and info["mass_error"] < 1e-12
    fp_edges = np.asarray(res.grid.edges[0])
    exact = bin_mixture_density(FIGURE2_DATA, fp_edges, 0.1, sched)
    h = np.diff(fp_edges)
    tv = 0.5 * np.abs(res.density / res.grid.mass(res.density) - exact) @ h
    print(f"TV(white-noise FP of the exact score, p(x|eps)) = {tv:.4f}")
    assert tv < 0.005  # measured 1e-4 (600 cells, 200 steps)


# -- transported densities (density="transport") ------------------------------------------------
class _TransportableMemorizingField(_MemorizingField):
    """The memorizing field with explicit start points (``x_T``, ``models``)."""

    def sample(self, n_samples, *, n_steps=30, method="euler", seed=0, x_T=None, models=None):
        if x_T is None:
            return super().sample(n_samples, n_steps=n_steps, method=method, seed=seed)
        th = self.theory
        flat = sample_exact_denoiser(
            th.data, x_T.size, th.eps, th.schedule, n_steps=n_steps, method=method,
            x_T=x_T.reshape(-1, 1),
        )  # fmt: skip
        return flat.reshape(x_T.shape)


class _TransportableMemorizing(_Memorizing):
    def gaussian_field(self, n_models, seed=0):
        return _TransportableMemorizingField(self, n_models)


def test_transported_field_members_are_their_own_push_forwards():
    """Every member of the memorizing field is the exact-Bayes PF-ODE, so each transported member
    density equals the transported exact-Bayes reference (same grid, same refinement: the sampler
    is pointwise, so packing the refinement rows of several members changes nothing)."""
    sched = get_schedule("vp-linear")
    memo = _TransportableMemorizing(FIGURE2_DATA, 0.05, sched, 100)
    edges = np.linspace(-2, 2, 81)
    settings = TransportSettings(n_points=128, max_points=1024)
    gf = gaussian_field_densities(
        memo, 3, edges, 0.25, density="transport", transport=settings, seed=3
    )
    ref = exact_bayes_densities(
        FIGURE2_DATA, edges, 0.05, sched, 0.25, density="transport", transport=settings
    )
    assert ref.points[0] > 128  # refined
    for name in ("histograms", "outside", "gap", "error", "points"):
        a, b = getattr(gf, name), np.repeat(getattr(ref, name), 3, axis=0)
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15, err_msg=name)
    np.testing.assert_allclose(gf.histograms.sum(1) * 0.05 + gf.outside, 1.0, atol=1e-12)
    # the Monte Carlo path is gaussian_field_histograms, untouched
    mc = gaussian_field_densities(memo, 2, edges, 0.25, n_samples=300, seed=3)
    hist, outside, gap = gaussian_field_histograms(memo, 2, 300, edges, 0.25, seed=3)
    assert mc.error is None and np.array_equal(mc.histograms, hist)
    assert np.array_equal(mc.outside, outside) and np.array_equal(mc.gap, gap)


def test_a_field_without_start_points_cannot_be_transported(kernel):
    edges = np.linspace(-2, 2, 41)
    memo = _Memorizing(FIGURE2_DATA, 0.1, get_schedule("vp-linear"), 100)
    with pytest.raises(TypeError, match="x_T"):
        gaussian_field_densities(memo, 2, edges, 0.25, density="transport")
    # the kernel field takes start points (KernelField.sample(x_T=, models=)): transported
    settings = TransportSettings(n_points=64, max_points=256)
    d = gaussian_field_densities(kernel, 2, edges, 0.25, density="transport", transport=settings)
    assert np.all(np.isfinite(d.histograms)) and np.all(d.error < 1e-2)


def test_transported_predictions_record_their_errors(linear):
    edges = np.linspace(-2, 2, 41)
    theory = FirstOrderLinear(linear, P)
    settings = TransportSettings(n_points=256, max_points=1024)
    tp = compute_theory_predictions(
        theory, 4, None, edges, fp_steps=60, fp_refine=1, density="transport", transport=settings
    )
    for name, (dens, out) in tp.densities().items():
        assert np.all(np.isfinite(dens)) and np.all(dens >= 0), name
        assert (dens * 0.1).sum() + out == pytest.approx(1.0, abs=1e-9), name
    cfg = tp.config
    assert cfg["density"] == "transport" and "n_samples" not in cfg
    assert cfg["transport"] == {"n_points": 256, "tolerance": 1e-6, "max_points": 1024}
    assert set(cfg["transport_error_tv"]) == {"gaussian_field", "bayes"}
    assert 0 < cfg["transport_error_tv"]["gaussian_field"] < 1e-3
    gf = gaussian_field_densities(
        theory, 4, edges, 0.25, density="transport", transport=settings, seed=0
    )
    np.testing.assert_array_equal(tp.gf_histograms, gf.histograms)
    np.testing.assert_array_equal(tp.gf_gap, gf.gap)
    assert (
        compute_theory_predictions(
            theory, 4, 300, edges, n_bayes_samples=500, fp_steps=60, fp_refine=1
        ).config["density"]
        == "mc"
    )
    with pytest.raises(ValueError, match="density"):
        compute_theory_predictions(theory, 4, 300, edges, density="exact")
    with pytest.raises(ValueError, match="n_samples"):
        compute_theory_predictions(theory, 4, None, edges, density="mc")
    with pytest.raises(TypeError, match="TransportSettings"):
        compute_theory_predictions(theory, 4, None, edges, density="transport", transport=256)
