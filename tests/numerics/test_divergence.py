"""Divergence warnings of the kernel, two-layer and Gaussian-field samplers (issue 14, item 5).

The rule is the exact and linear samplers' (:func:`gtv.numerics.pfode.warn_if_diverged`, tested
in tests/numerics/test_finite.py): samples that end non-finite or beyond
``10 (data radius + sigma_T)`` (= 20 for data in [-1, 1] and vp-linear) give one
:class:`~gtv.numerics.pfode.DivergenceWarning` with their count and share and the advice. Each
diverging case here is checked against the samples the call returned (the count of samples with a
coordinate beyond 20 or non-finite), each healthy one for the absence of the warning and samples
inside ``|x| < 3``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from gtv.numerics.kernel import KernelEnsemble, train_kernel_ensemble
from gtv.numerics.pfode import DivergenceWarning, initial_points
from gtv.numerics.posterior import posterior_stats
from gtv.numerics.schedules import get_schedule
from gtv.numerics.two_layer import (
    TwoLayerNetworks,
    sample_two_layer_ensemble,
    sample_two_layer_reference,
    train_two_layer_ensemble,
)
from gtv.validation.theory_densities import gaussian_field_histograms

MU = np.array([[-1.0], [0.0], [1.0]])
SCHED = get_schedule("vp-linear")
BOUND = 20.0  # 10 (radius 1 + sigma_T = 1)


def _divergence_warnings(f):
    """Run ``f()``; return its result and the messages of the DivergenceWarnings it gave."""
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        out = f()
    return out, [str(r.message) for r in rec if issubclass(r.category, DivergenceWarning)]


def _far(x: np.ndarray) -> tuple[int, int]:
    """(samples with a coordinate beyond BOUND or non-finite, all samples)."""
    with np.errstate(invalid="ignore"):
        far = ~np.all(np.abs(x) <= BOUND, axis=-1)
    return int(np.count_nonzero(far)), far.size


def _assert_reported(msg: str, x: np.ndarray, method: str) -> None:
    n_far, n = _far(x)
    assert n_far > 0
    assert f"{n_far} of {n} samples ({n_far / n:.2%})" in msg
    assert "beyond |x| = 20" in msg and "use more steps" in msg
    assert ("method='euler'" in msg) == (method == "heun")


# -- kernel ensembles ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def kernel_tiny_eps():
    """Three interpolating infinite-width models trained down to eps = 1e-4."""
    return train_kernel_ensemble(MU, 60, 3, 1e-4, [np.inf], seed=0)


def test_kernel_heun_at_tiny_eps_warns_with_the_share(kernel_tiny_eps):
    """Heun, 30 steps, eps = 1e-4 (measured: about a third of the samples beyond 20)."""
    x, msgs = _divergence_warnings(lambda: kernel_tiny_eps.sample(500, method="heun", seed=0))
    assert len(msgs) == 1
    _assert_reported(msgs[0], x, "heun")
    assert x.shape == (3, 500, 1)  # returned for inspection


def test_kernel_euler_does_not_warn(kernel_tiny_eps):
    x, msgs = _divergence_warnings(lambda: kernel_tiny_eps.sample(500, seed=0))
    assert msgs == [] and np.abs(x).max() < 3.0


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_kernel_huge_coefficients_warn_on_both_backends(kernel_tiny_eps, backend):
    e = kernel_tiny_eps
    big = KernelEnsemble(e.centres, 1e4 * e.coeffs, e.taus, e.activation, e.data, e.schedule, e.eps)
    x, msgs = _divergence_warnings(lambda: big.sample(50, seed=0, backend=backend))
    assert len(msgs) == 1
    _assert_reported(msgs[0], x, "euler")


# -- two-layer networks -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def two_layer():
    """Two width-64 networks trained for 100 steps of lr 0.5 on {-1, 0, 1}, eps = 1e-3."""
    return train_two_layer_ensemble(MU, 64, 2, 200, 1e-3, 0.5, [50.0], "vp-linear", seed=0)


def test_two_layer_heun_with_few_steps_warns_with_the_share(two_layer):
    """Heun, 5 steps, eps = 1e-3 (measured: 21 % beyond 20, max |x| = 82)."""
    nets = two_layer.networks(-1)
    f = lambda: sample_two_layer_ensemble(nets, 500, method="heun", n_steps=5, seed=0)  # noqa: E731
    x, msgs = _divergence_warnings(f)
    assert len(msgs) == 1
    _assert_reported(msgs[0], x, "heun")
    # the bound follows the data radius: for data of radius 100 the same samples are fine
    f = lambda: sample_two_layer_ensemble(  # noqa: E731
        nets, 500, method="heun", n_steps=5, seed=0, radius=100.0
    )
    y, msgs = _divergence_warnings(f)
    assert msgs == [] and np.array_equal(x, y) and np.abs(y).max() < 1010


@pytest.mark.parametrize("method", ["euler", "heun"])
def test_trained_two_layer_with_30_steps_does_not_warn(two_layer, method):
    nets = two_layer.networks(-1)
    f = lambda: sample_two_layer_ensemble(nets, 500, method=method, seed=0)  # noqa: E731
    x, msgs = _divergence_warnings(f)
    assert msgs == [] and np.abs(x).max() < 3.5


@pytest.mark.parametrize("sampler", [sample_two_layer_ensemble, sample_two_layer_reference])
def test_two_layer_huge_output_weights_warn(sampler):
    rng = np.random.default_rng(0)
    W, A = rng.standard_normal((2, 16, 3)), rng.standard_normal((2, 16, 1))
    nets = TwoLayerNetworks(W, 1e3 * A, "relu", SCHED, 0.01)
    x, msgs = _divergence_warnings(lambda: sampler(nets, 40, seed=0))
    assert len(msgs) == 1
    _assert_reported(msgs[0], x, "euler")
    small = TwoLayerNetworks(W, 0.1 * A, "relu", SCHED, 0.01)
    x, msgs = _divergence_warnings(lambda: sampler(small, 40, seed=0))
    assert msgs == [] and np.abs(x).max() < 3.0


@pytest.mark.parametrize("radius", [0.0, -1.0, float("nan"), "a"])
def test_two_layer_radius_is_checked_by_name(radius):
    nets = TwoLayerNetworks(np.ones((1, 4, 3)), np.ones((1, 4, 1)), "relu", SCHED, 0.01)
    with pytest.raises(ValueError, match="radius must be a finite number > 0"):
        sample_two_layer_ensemble(nets, 10, radius=radius)


# -- Gaussian-field ensembles (gtv.validation.predictions) --------------------------------------
class _Field:
    """N members, each the exact Bayes denoiser of the data; ``far`` samples per member are moved
    to ``far_value`` after sampling (a field whose own sampler does not check itself)."""

    def __init__(self, theory, n_models, far=0, far_value=50.0):
        self.theory, self.n_models, self.dim = theory, n_models, 1
        self.far, self.far_value = far, far_value

    def denoise(self, x, t):
        x = np.asarray(x, dtype=float).reshape(-1, 1)
        mean = posterior_stats(self.theory.data, x, t, self.theory.schedule).mean
        return np.broadcast_to(mean, (self.n_models, len(x), 1))

    def sample(self, n_samples, *, n_steps=30, method="euler", seed=0):
        from gtv.numerics.exact import sample_exact_denoiser

        th = self.theory
        x_T = initial_points(None, seed, self.n_models, n_samples, 1, th.schedule, "field-sampling")
        xs = np.stack(
            [
                sample_exact_denoiser(
                    th.data, n_samples, th.eps, th.schedule, n_steps=n_steps, method=method, x_T=x
                )
                for x in x_T
            ]
        )
        xs[:, : self.far] = self.far_value
        return xs


class _Theory:
    """The smallest :class:`gtv.numerics.contract.EnsembleTheory` whose field is :class:`_Field`
    (only ``gaussian_field`` is used by :func:`gaussian_field_histograms`)."""

    def __init__(self, eps, far=0):
        self.data, self.eps, self.schedule, self.P, self.far = MU, eps, SCHED, 100, far

    dim = property(lambda self: 1)

    def gaussian_field(self, n_models, seed=0):
        return _Field(self, n_models, self.far)

    def _unused(self, *args, **kwargs):  # pragma: no cover - not called by the field histograms
        raise NotImplementedError

    mean_denoiser = mean_score = denoiser_covariance = score_factor = v_kernel = _unused
    markov_intensity = white_noise_coefficients = config = save = load = _unused


EDGES = np.linspace(-2, 2, 41)


def test_gaussian_field_heun_at_tiny_eps_warns_once_naming_the_field():
    """The members' own (exact-Bayes) sampler warns too; the caller sees one warning, the field's,
    with the share over all members' samples (Heun, 30 steps, eps = 1e-4)."""
    th = _Theory(1e-4)
    f = lambda: gaussian_field_histograms(th, 2, 2000, EDGES, 0.25, method="heun", seed=0)  # noqa: E731
    (hist, outside, gap), msgs = _divergence_warnings(f)
    assert len(msgs) == 1 and "sampler of the Gaussian-field ensemble" in msgs[0]
    xs, _ = _divergence_warnings(  # the same samples
        lambda: th.gaussian_field(2, 0).sample(2000, method="heun", seed=0)
    )
    _assert_reported(msgs[0], xs, "heun")
    assert np.all(outside > 0)  # the far samples are outside the edges (not gap mass only)


def test_gaussian_field_that_does_not_check_itself_is_checked():
    """7 of 400 samples per member put at 50 by the field: 14 of 800 (1.75 %) reported."""
    th = _Theory(1e-2, far=7)
    f = lambda: gaussian_field_histograms(th, 2, 400, EDGES, 0.25, seed=0)  # noqa: E731
    (hist, outside, gap), msgs = _divergence_warnings(f)
    assert len(msgs) == 1 and "14 of 800 samples (1.75%)" in msgs[0]
    assert "method='euler'" not in msgs[0]
    np.testing.assert_allclose(outside, 7 / 400, atol=1e-12)  # Euler at eps = 1e-2: none else


def test_healthy_gaussian_field_does_not_warn():
    f = lambda: gaussian_field_histograms(_Theory(1e-2), 2, 400, EDGES, 0.25, seed=0)  # noqa: E731
    (hist, outside, gap), msgs = _divergence_warnings(f)
    assert msgs == [] and np.all(outside < 1e-3)
