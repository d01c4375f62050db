"""The linear-feature theory's population moments by Monte Carlo instead of quadrature.

:func:`gtv.numerics.linear.linear_model_theory` integrates over ``t``, the training points and a
Gauss-Hermite grid in ``xi`` per point; its cost grows like ``M * n_hermite**D``, which is out of
reach for thousands of training points in two dimensions (the memorization experiments,
docs/math/memorization.md). :func:`linear_model_theory_mc` estimates the same expectations

* ``Sigma = E[lam phi phi^T]``, ``A = E[lam mu_bar phi^T]``, ``A_x0 = E[lam x0 phi^T]``,
* ``Cov(vec g)``: proxy part ``E[lam**2 phi phi^T (x) Sigma_post]`` and misfit part
  ``E[lam**2 phi phi^T (x) r r^T] - vec(E g) vec(E g)^T`` with ``r = mu_bar - W_inf phi``,

(docs/math/linear.md) from ``n_mc`` DSM triples of its own random stream (``"population-mc"``),
never from the triples of the models it is compared with, so it stays a prediction. The variance
is reduced by drawing ``t`` stratified in ``log t`` (weights ``t log(T / eps) / (T - eps)``, the
density ratio to ``U[eps, T]``), cycling evenly through the training points, and using the exact
posterior moments ``mu_bar`` and ``Sigma_post`` at each noisy point. Both covariance parts are
sums of positive semi-definite terms (the misfit part minus the rank-one ``vec(E g)``), so the
result passes the theory's PSD checks by construction.
"""

from __future__ import annotations

import math

import numpy as np

from gtv.numerics.blas import serial_blas
from gtv.numerics.checks import check_count, check_eps, check_ridge
from gtv.numerics.dsm import dsm_weights
from gtv.numerics.features import ProductFeatures, check_data_and_features
from gtv.numerics.linear.population import population_solution, time_panel_width
from gtv.numerics.linear.theory import LinearTheory
from gtv.numerics.posterior import posterior_stats
from gtv.numerics.quadrature import time_quadrature
from gtv.numerics.schedules import resolve_schedule
from gtv.numerics.streams import check_seed, stream_rng

__all__ = ["linear_model_theory_mc", "population_triples"]

#: Triples per chunk of the accumulation (bounds memory at ~ chunk * F * D floats).
_CHUNK = 8192


def population_triples(
    data: np.ndarray, n_mc: int, eps: float, schedule: object, seed: object
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``n_mc`` weighted triples for ``E_{t ~ U[eps, T], x0 ~ data, xi}`` (module docstring).

    Returns times ``t`` (n,), quadrature weights ``w`` (n,) summing to ~1 (exactly ``mean = 1``
    in expectation), clean points ``x0`` (n, D) and noisy points ``x`` (n, D), drawn from
    ``stream(seed, "population-mc")``.
    """
    sched = resolve_schedule(schedule)
    rng = stream_rng(seed, "population-mc")
    lo, hi = math.log(eps), math.log(sched.T)
    u = (np.arange(n_mc) + rng.uniform(size=n_mc)) / n_mc
    t = np.exp(lo + (hi - lo) * u)
    w = t * (hi - lo) / (sched.T - eps) / n_mc
    M = data.shape[0]
    idx = np.resize(rng.permutation(M), n_mc)
    x0 = data[idx]
    xi = rng.standard_normal(x0.shape)
    x = sched.alpha(t)[:, None] * x0 + np.sqrt(sched.sigma2(t))[:, None] * xi
    return t, w, x0, x


def linear_model_theory_mc(
    data: object,
    features: ProductFeatures,
    eps: float,
    schedule: object = "vp-linear",
    ridge: float = 0.1,
    n_mc: int = 200_000,
    *,
    n_t: int = 12,
    seed: int | np.random.SeedSequence = 0,
) -> LinearTheory:
    """:class:`LinearTheory` with Monte Carlo population moments (module docstring).

    Parameters
    ----------
    data : array_like, shape (M, D)
        Training points.
    features : ProductFeatures
    eps : float
        Smallest training time, ``0 < eps < T``.
    schedule : str or NumericSchedule, default "vp-linear"
    ridge : float, default 0.1
    n_mc : int, default 200000
        Monte Carlo triples (cost ``n_mc * (M + (F D)**2)``).
    n_t : int, default 12
        Gauss-Legendre nodes per panel of the time rule the theory keeps for its lag integrals
        (:meth:`LinearTheory.markov_intensity`); the moments themselves do not use it.
    seed : int or SeedSequence, default 0
        The triples come from ``stream(seed, "population-mc")``.

    Returns
    -------
    LinearTheory
        ``n_hermite`` is recorded as 0 (no Gauss-Hermite rule).
    """
    sched = resolve_schedule(schedule)
    data = check_data_and_features(data, features)
    eps = check_eps(eps, sched.T)
    ridge = check_ridge(ridge)
    n_mc = check_count(n_mc, "n_mc", minimum=16)
    n_t = check_count(n_t, "n_t")
    seed = check_seed(seed)
    t, w, x0, x = population_triples(data, n_mc, eps, sched, seed)
    # Many small products: one BLAS thread each is faster and identical for any thread count.
    with serial_blas():
        moments = _mc_moments(data, features, sched, ridge, t, w, x0, x)
    t_nodes, t_w = time_quadrature(eps, sched.T, n_t, time_panel_width(features, eps, sched.T))
    Sig, A, A_x0, proxy, misfit = moments
    F, D = features.n_features, data.shape[1]
    return LinearTheory(
        features=features,
        data=data,
        schedule=sched,
        eps=eps,
        ridge=ridge,
        n_t=n_t,
        n_hermite=0,
        sigma=Sig,
        A=A,
        A_x0=A_x0,
        cov_g_proxy=proxy.reshape(F, D, F, D),
        cov_g_misfit=misfit.reshape(F, D, F, D),
        t_nodes=t_nodes,
        t_weights=t_w,
    )


def _mc_moments(data, features, sched, ridge, t, w, x0, x):
    """The Monte Carlo sums of :func:`linear_model_theory_mc`: ``Sigma, A, A_x0`` and the two
    covariance parts as (F D, F D) matrices."""
    n_mc = t.size
    F, D = features.n_features, data.shape[1]
    chunks = [slice(s, min(n_mc, s + _CHUNK)) for s in range(0, n_mc, _CHUNK)]
    Sig = np.zeros((F, F))
    A = np.zeros((D, F))
    A_x0 = np.zeros((D, F))
    proxy = np.zeros((F * D, F * D))
    cached = []
    for c in chunks:
        phi = features.evaluate(x[c], t[c])
        post = posterior_stats(data, x[c], t[c], sched, full_cov=True)
        lam = dsm_weights(sched, t[c])
        wl = w[c] * lam
        Sig += (phi * wl[:, None]).T @ phi
        A += (post.mean * wl[:, None]).T @ phi
        A_x0 += (x0[c] * wl[:, None]).T @ phi
        # E[lam^2 phi phi^T (x) Sigma_post]: one F x F product per pair d <= e
        _accumulate_kron(proxy, phi, w[c] * lam**2, post.cov)
        cached.append((phi, post.mean, lam))
    Sig = (Sig + Sig.T) / 2
    _, _, W_inf = population_solution(Sig, A, ridge)
    misfit = np.zeros((F * D, F * D))
    for c, (phi, mean, lam) in zip(chunks, cached, strict=True):
        r = mean - phi @ W_inf.T
        _accumulate_kron(misfit, phi, w[c] * lam**2, r[:, :, None] * r[:, None, :])
    eg = (ridge * W_inf).T.reshape(-1)
    misfit -= np.outer(eg, eg)
    proxy = (proxy + proxy.T) / 2
    misfit = (misfit + misfit.T) / 2
    return Sig, A, A_x0, proxy, misfit


def _accumulate_kron(out: np.ndarray, phi: np.ndarray, weight: np.ndarray, S: np.ndarray) -> None:
    """``out[(f, d), (g, e)] += sum_n weight_n phi_nf phi_ng S_nde`` for ``out`` of shape
    (F D, F D) (index ``f D + d``) and a symmetric stack ``S`` (n, D, D)."""
    F, D = phi.shape[1], S.shape[1]
    view = out.reshape(F, D, F, D)
    for d in range(D):
        for e in range(d, D):
            block = (phi * (weight * S[:, d, e])[:, None]).T @ phi
            view[:, d, :, e] += block
            if e != d:
                view[:, e, :, d] += block
