"""Attractors of denoiser maps and of the PF-ODE end map (gtv.numerics.memory.attractors).

Checks, for the exact empirical score: the two-memory bifurcation at beta_t d**2 = 2 (t computed
from the closed-form vp-linear schedule written out here), the fixed points against the scalar
equation s = (d/2) tanh(beta d s) solved by bisection, their eigenvalues against the derivative
of that scalar map, a saddle flagged unstable, K separated memories at small t, the CCCP
iteration against a plain-numpy loop and against hopfield_fixed_points (gtv.numerics.memory.
hopfield); trained tiny ensembles (linear, kernel, two-layer): fixed points checked with the
ensembles' own denoisers; the PF-ODE end map (exact score lands on the memories; a linear
ensemble member equals the ensemble sampler); start points follow the documented stream
protocol; damping; non-convergence is reported; bad input.
"""

import numpy as np
import pytest
from scipy.optimize import brentq

from gtv.numerics.features import ProductFeatures
from gtv.numerics.kernel import train_kernel_ensemble
from gtv.numerics.linear import train_linear_ensemble
from gtv.numerics.linear.sampler import sample_linear_ensemble
from gtv.numerics.memory.attractors import (
    attractor_starts,
    end_map_attractors,
    find_attractors,
    integrate_pf_ode,
)
from gtv.numerics.memory.denoisers import ExactDenoiser, FunctionDenoiser, ModelDenoiser
from gtv.numerics.memory.energy import data_hessian
from gtv.numerics.memory.hopfield import hopfield_fixed_points
from gtv.numerics.streams import stream_rng
from gtv.numerics.two_layer import train_two_layer_ensemble

EPS = 0.01


# Closed forms for vp-linear, written out here (independent of the generated schedule code):
# log alpha = -B(t), B(t) = 0.1 t + 19.9 t**2 / 2, sigma**2 = 1 - alpha**2.
def _alpha(t):
    return np.exp(-(0.1 * t + 9.95 * t * t))


def _time_for_beta(beta):
    """t with alpha**2 / (2 sigma**2) = beta: exp(2B) = 1 + 1/(2 beta), then solve the
    quadratic 9.95 t**2 + 0.1 t - B = 0."""
    B = 0.5 * np.log1p(1.0 / (2.0 * beta))
    return (-0.1 + np.sqrt(0.01 + 4 * 9.95 * B)) / (2 * 9.95)


def _pair(d, dim, rng):
    """Two memories a distance d apart along a random unit vector u, centred at c."""
    u = rng.normal(size=dim)
    u /= np.linalg.norm(u)
    c = rng.normal(size=dim)
    return np.stack([c - 0.5 * d * u, c + 0.5 * d * u]), u, c


@pytest.mark.parametrize("c,d,dim", [(3.0, 2.0, 2), (2.5, 1.0, 3), (1.5, 1.0, 3), (1.0, 2.0, 2)])
def test_two_memories_split_at_beta_d2_equal_two(c, d, dim):
    rng = np.random.default_rng(int(10 * c))
    mem, u, centre = _pair(d, dim, rng)
    beta = c / d**2
    t = _time_for_beta(beta)
    den = ExactDenoiser(mem, "vp-linear", 1e-3)
    att = find_attractors(den, t, attractor_starts(den, 60, seed=1))
    assert att.all_converged and att.n_converged == 60
    stable = att.points[att.stable]
    # Along the pair's axis the map is s -> (d/2) tanh(beta d s) (two-point softmax).
    f = lambda s: 0.5 * d * np.tanh(beta * d * s) - s  # noqa: E731
    if c > 2:
        assert att.n_stable == 2
        s_star = brentq(f, 1e-6 * d, d)
        s = np.sort((stable - centre) @ u)
        np.testing.assert_allclose(s, [-s_star, s_star], atol=1e-7)
        slope = 0.5 * beta * d**2 * (1 - np.tanh(beta * d * s_star) ** 2)
    else:
        assert att.n_stable == 1
        np.testing.assert_allclose(stable[0], centre, atol=1e-7)
        slope = 0.5 * beta * d**2
    # The off-axis component sits on the pair's line, and I - J_G has eigenvalues
    # 1 - slope (along u) and 1 (the other directions; J_G has rank 1).
    off = (stable - centre) - np.outer((stable - centre) @ u, u)
    np.testing.assert_allclose(off, 0.0, atol=1e-7)
    expected = np.sort(np.r_[1 - slope, np.ones(dim - 1)])
    for ev in att.eigenvalues[att.stable]:
        np.testing.assert_allclose(ev.real, expected, atol=1e-6)
        np.testing.assert_array_equal(ev.imag, 0.0)
    assert np.isclose(att.basin_share.sum(), att.n_converged / att.n_starts)
    # At these beta the fixed points are far from the memories: all stable ones are spurious.
    assert not np.any(att.is_memory) and np.array_equal(att.is_spurious, att.stable)


def test_midpoint_just_above_threshold_is_a_saddle():
    rng = np.random.default_rng(5)
    d, c = 1.5, 2.2
    mem, u, centre = _pair(d, 2, rng)
    den = ExactDenoiser(mem, "vp-linear", 1e-3)
    att = find_attractors(den, _time_for_beta(c / d**2), centre[None])
    assert att.n_converged == 1 and att.n_attractors == 1
    np.testing.assert_allclose(att.points[0], centre, atol=1e-12)
    assert not att.stable[0] and not att.is_spurious[0]
    np.testing.assert_allclose(att.eigenvalues[0].real, [1 - c / 2, 1.0], atol=1e-9)


def test_separated_memories_at_small_t_are_the_only_attractors():
    rng = np.random.default_rng(3)
    K, dim = 6, 3
    mem = rng.uniform(-3, 3, size=(K, dim))
    dmin = min(np.linalg.norm(mem[i] - mem[j]) for i in range(K) for j in range(i))
    t = _time_for_beta(50.0 / dmin**2)  # beta dmin**2 = 50
    den = ExactDenoiser(mem, "vp-linear", 1e-3)
    att = find_attractors(den, t, attractor_starts(den, 300, seed=0))
    assert att.n_attractors == K and att.n_stable == K
    assert np.all(att.is_memory) and not np.any(att.is_spurious)
    assert sorted(att.memory_index) == list(range(K))
    assert np.isclose(att.basin_share.sum(), att.n_converged / att.n_starts)
    assert att.n_converged == 300
    # Fixed points sit exponentially close to the memories at this beta.
    np.testing.assert_allclose(att.points, mem[att.memory_index], atol=1e-6)


def _cccp_plain(mem, starts, t, tol, max_iter):
    """CCCP / Hopfield update y <- softmax(-|a y - a xi|**2 / (2 s2)) xi, one start at a time."""
    a = _alpha(t)
    s2 = 1 - a * a
    out = []
    for y in starts:
        for _ in range(max_iter):
            logit = -np.sum((a * y - a * mem) ** 2, axis=1) / (2 * s2)
            w = np.exp(logit - logit.max())
            g = (w / w.sum()) @ mem
            if np.linalg.norm(g - y) <= tol:
                break
            y = g
        out.append(y)
    return np.array(out)


def test_exact_iteration_is_cccp():
    """Against the plain CCCP loop above (see also the energy helper's kernel, next test)."""
    rng = np.random.default_rng(11)
    mem = rng.normal(size=(8, 2))
    den = ExactDenoiser(mem, "vp-linear", 1e-3)
    starts = attractor_starts(den, 40, seed=2)
    for t in (0.05, 0.15):
        att = find_attractors(den, t, starts, tol=1e-10)
        assert att.damping == 1.0 and att.all_converged
        np.testing.assert_allclose(att.end_points, _cccp_plain(mem, starts, t, 1e-10, 2000),
                                   atol=1e-8)  # fmt: skip


def test_exact_iteration_agrees_with_hopfield_fixed_points():
    """hopfield_fixed_points stops when its step |G(y) - y| <= tol and returns G(y); with
    damping 1 find_attractors stops at the same iteration and returns y, so the end points differ
    by that last step (<= tol) and the iteration counts are equal."""
    rng = np.random.default_rng(12)
    mem = rng.normal(size=(10, 3))
    den = ExactDenoiser(mem, "vp-linear", 1e-3)
    starts = attractor_starts(den, 50, seed=4)
    for t in (0.03, 0.1, 0.3):
        att = find_attractors(den, t, starts, tol=1e-10)
        hop = hopfield_fixed_points(mem, starts, t, "vp-linear", tol=1e-10)
        np.testing.assert_array_equal(att.converged, hop.converged)
        np.testing.assert_array_equal(att.n_iter, hop.iterations)
        np.testing.assert_allclose(att.end_points, hop.points, atol=2e-10)


def test_stability_eigenvalues_are_those_of_the_energy_hessian():
    """I - J_G is the Hessian of E_t(alpha y) / alpha**2 (gtv.numerics.memory.energy)."""
    rng = np.random.default_rng(13)
    mem = rng.normal(size=(7, 3))
    den = ExactDenoiser(mem, "vp-linear", 1e-3)
    t = 0.12
    att = find_attractors(den, t, attractor_starts(den, 40, seed=5))
    hess = data_hessian(mem, att.points, t, "vp-linear")
    np.testing.assert_allclose(att.eigenvalues.real, np.linalg.eigvalsh(hess), atol=1e-10)
    assert np.array_equal(att.stable, np.linalg.eigvalsh(hess)[:, 0] > 0)


def test_damping_rescues_an_oscillating_map_and_nonconvergence_is_reported():
    """G(y) = -1.5 y: fixed point 0 with I - J_G = 2.5 (stable), but the plain iteration
    multiplies the error by -1.5; with lam = 0.5 by 1 - 0.5 * 2.5 = -0.25."""
    den = FunctionDenoiser(lambda x, t: -1.5 * x / _alpha(t), np.array([[1.0]]), "vp-linear", EPS)
    starts = np.array([[0.3], [-2.0]])
    with pytest.warns(RuntimeWarning, match="2 of 2 starts did not converge"):
        bad = find_attractors(den, 0.3, starts, max_iter=50)
    assert bad.n_not_converged == 2 and not bad.converged.any()
    assert np.all(bad.assignment == -1) and bad.n_attractors == 0 and bad.basin_share.size == 0
    good = find_attractors(den, 0.3, starts, damping=0.5)
    assert good.all_converged and good.n_attractors == 1 and good.stable[0]
    np.testing.assert_allclose(good.points, 0.0, atol=1e-8)
    np.testing.assert_allclose(good.eigenvalues[0].real, [2.5], rtol=1e-8)


def _tiny_models():
    data = np.array([[-1.0], [1.0]])
    feats = ProductFeatures.uniform("gaussian", 1, 8, 4, (EPS, 1.0))
    lin = train_linear_ensemble(data, feats, 2, 1000, EPS, ridge=1e-3, seed=0)
    ker = train_kernel_ensemble(data, 20, 2, EPS, [5.0], activation="erf", ridge=1e-3, seed=0)
    traj = train_two_layer_ensemble(data, 16, 2, 30, EPS, 0.05, [2.0], activation="erf", seed=0)
    return lin, ker, traj


def test_fixed_points_of_trained_models_check_against_their_own_denoisers():
    lin, ker, traj = _tiny_models()
    t, tol = 0.3, 1e-8
    own = {
        "linear": lambda x: lin.denoise(x, t)[1],
        "kernel": lambda x: ker.denoiser(x, t)[1],
        "two-layer": lambda x: traj.denoise(x, t)[-1, 1],
    }
    for name, ens in (("linear", lin), ("kernel", ker), ("two-layer", traj)):
        den = ModelDenoiser(ens, 1)
        att = find_attractors(den, t, attractor_starts(den, 12, seed=0), tol=tol)
        assert att.n_converged > 0, name
        y = att.points
        a = _alpha(t)
        res = np.linalg.norm(own[name](a * y) - y, axis=1)
        assert np.all(res < tol), (name, res)
        # 1-D: I - J_G = 1 - a D'(a y), by central differences of the ensemble's own denoiser.
        h = 1e-5
        slope = a * (own[name](a * y + h) - own[name](a * y - h))[:, 0] / (2 * h)
        np.testing.assert_allclose(att.eigenvalues[:, 0].real, 1 - slope, atol=1e-6)
        assert np.array_equal(att.stable, 1 - slope > 0)


def test_end_map_of_the_exact_score_lands_on_the_memories():
    rng = np.random.default_rng(4)
    mem = rng.uniform(-1, 1, size=(4, 2)) * 2
    den = ExactDenoiser(mem, "vp-linear", 1e-3)
    res = end_map_attractors(den, 200, seed=0, n_steps=100, method="heun")
    assert np.all(res.is_memory) and res.memory_share == 1.0
    assert np.isclose(res.basin_share.sum(), 1.0)
    np.testing.assert_allclose(res.end_points, mem[res.memory_index[res.assignment]], atol=1e-6)
    assert res.n_attractors <= 4


def test_end_map_of_a_linear_member_equals_the_ensemble_sampler():
    lin, _, _ = _tiny_models()
    den = ModelDenoiser(lin, 1)
    res = end_map_attractors(den, 50, seed=3, n_steps=20, final_denoise=False, dedup_tol=0.05)
    ref = sample_linear_ensemble(lin, 50, n_steps=20, seed=3)[1] / _alpha(EPS)
    np.testing.assert_allclose(res.end_points, ref, rtol=1e-10, atol=1e-12)
    # Heun from t_start to t_end equals two chained halves only approximately; check grid use:
    x = np.array([[0.2], [-0.4]])
    one = integrate_pf_ode(den, x, 0.5, 0.1, n_steps=4)
    two = integrate_pf_ode(den, integrate_pf_ode(den, x, 0.5, 0.3, n_steps=2), 0.3, 0.1, 2)
    np.testing.assert_allclose(one, two, rtol=1e-12)


def test_starts_follow_the_documented_stream_protocol():
    mem = np.array([[0.0, 0.0], [2.0, 1.0], [1.0, -1.0]])
    starts = attractor_starts(mem, 7, seed=5, spread=0.2)
    rng = stream_rng(5, "memory-starts")
    R = np.sqrt(np.mean(np.sum((mem - mem.mean(0)) ** 2, axis=1)))
    near = mem[rng.integers(0, 3, 4)] + 0.2 * R * rng.standard_normal((4, 2))
    lo, hi = mem.min(0) - 0.2 * R, mem.max(0) + 0.2 * R
    box = lo + (hi - lo) * rng.random((3, 2))
    np.testing.assert_array_equal(starts, np.concatenate([near, box]))
    assert not np.array_equal(starts, attractor_starts(mem, 7, seed=6, spread=0.2))


def test_bad_input():
    den = ExactDenoiser(np.eye(2))
    ok = np.zeros((3, 2))
    for kw, name in [
        ({"tol": 0.0}, "tol"), ({"tol": -1.0}, "tol"), ({"dedup_tol": 0.0}, "dedup_tol"),
        ({"memory_tol": np.nan}, "memory_tol"), ({"damping": 1.5}, "damping"),
        ({"damping": 0.0}, "damping"), ({"max_iter": 0}, "max_iter"),
    ]:  # fmt: skip
        with pytest.raises(ValueError, match=name):
            find_attractors(den, 0.5, ok, **kw)
    for t in (0.0, -0.1, 2.0):
        with pytest.raises(ValueError, match="^t must"):
            find_attractors(den, t, ok)
    with pytest.raises(ValueError, match="starts"):
        find_attractors(den, 0.5, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="starts"):
        find_attractors(den, 0.5, [[np.nan, 0.0]])
    with pytest.raises(TypeError, match="denoiser"):
        find_attractors(np.eye(2), 0.5, ok)
    with pytest.raises(ValueError, match="n_starts"):
        attractor_starts(den, 0, seed=0)
    with pytest.raises(ValueError, match="spread"):
        attractor_starts(den, 3, seed=0, spread=-1)
    with pytest.raises(ValueError, match="denoiser_or_memories"):
        attractor_starts(np.empty((0, 2)), 3, seed=0)
    with pytest.raises(ValueError, match="t_end"):
        integrate_pf_ode(den, ok, 0.2, 0.5)
    with pytest.raises(ValueError, match="method"):
        integrate_pf_ode(den, ok, 0.5, 0.2, method="rk4")
    with pytest.raises(ValueError, match="n_starts"):
        end_map_attractors(den, 0, seed=0)
