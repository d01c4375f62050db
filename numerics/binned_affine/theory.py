"""First-order theory of binned affine ensembles by quadrature (docs/math/linear.md).

:func:`binned_affine_theory` is the numeric twin of
:func:`gtv.theory.closed_forms.binned_affine_theory` (population moments by Gauss-Legendre instead
of closed forms, derivatives of the flow by forward-mode second-order jets instead of sympy), plus
the white-noise (Markov) approximation of the same noise
(:meth:`BinnedAffineTheory.white_noise_moments`) and a Gaussian-field ensemble
(:meth:`BinnedAffineTheory.gaussian_field_moments`, weights from the stream
``stream(seed, "field")``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from gtv.numerics.binned_affine.flow import (
    BinMapQuadrature,
    affine_ensemble_moments,
    affine_flow,
    bin_map_quadrature,
)
from gtv.numerics.checks import (
    check_bin_edges,
    check_count,
    check_gaussian_1d,
    check_ridge,
    check_samples_per_model,
)
from gtv.numerics.dsm import dsm_weights
from gtv.numerics.quadrature import geometric_panels
from gtv.numerics.schedules import NumericSchedule, resolve_schedule
from gtv.numerics.streams import stream_rng

__all__ = ["BinnedAffineTheory", "binned_affine_theory"]


def _jet_mul(u: tuple, v: tuple) -> tuple:
    """Product of two second-order jets ``(value, gradient, Hessian)``."""
    return (
        u[0] * v[0],
        u[0] * v[1] + v[0] * u[1],
        u[0] * v[2] + v[0] * u[2] + np.outer(u[1], v[1]) + np.outer(v[1], u[1]),
    )


@dataclass
class BinnedAffineTheory:
    """First-order-in-``1/P`` theory of the binned affine model, by quadrature.

    The same construction as :func:`gtv.theory.closed_forms.binned_affine_theory` (see there);
    ``theta`` is ordered ``(a_0, c_0, a_1, c_1, ...)``, bins by increasing time.

    Attributes
    ----------
    S, A : ndarray, shape (K, 2, 2), (K, 2)
        Population ``E[lam 1_b phi phi^T]`` and ``E[lam 1_b x0 phi]``.
    theta_inf : ndarray, shape (2K,)
    unit_cov, unit_cov_proxy : ndarray, shape (2K, 2K)
        ``P Cov(theta)`` and its proxy-noise part (``Var(x0|x,t)`` in place of ``E[r**2|x,t]``).
    unit_bias : ndarray, shape (2K,)
        ``P (E theta - theta_inf)``.
    quad : BinMapQuadrature
    """

    bin_edges: np.ndarray
    mean: float
    s2: float
    schedule: NumericSchedule
    ridge: float
    S: np.ndarray
    A: np.ndarray
    theta_inf: np.ndarray
    unit_cov: np.ndarray
    unit_cov_proxy: np.ndarray
    unit_bias: np.ndarray
    quad: BinMapQuadrature
    _jets: dict = field(default_factory=dict, repr=False)

    @property
    def n_bins(self) -> int:
        return self.S.shape[0]

    def expected_counts(self, P: float) -> np.ndarray:
        """Expected DSM triples per bin, ``P (tau_{b+1} - tau_b)/(T - eps)``: shape (K,)."""
        w = np.diff(self.bin_edges)
        return check_samples_per_model(P) * w / w.sum()

    def cov_theta(self, P: float, finite_sample: bool = False) -> np.ndarray:
        """First-order ``Cov(theta)`` at ``P`` triples per model.

        ``finite_sample=True`` multiplies each bin's diagonal block by ``n/(n - 3)``,
        ``n`` = :meth:`expected_counts`: the exact finite-sample (inverse-Wishart) factor of the
        slope variance for OLS on ``n`` Gaussian design points with an intercept
        (:func:`gtv.theory.closed_forms.gaussian_design_inverse_moment`). Here it is only a
        refinement: the weights ``lam`` and the residual variance change within a bin and the
        counts are random, so it is not exact (measured effect: notebooks/03).
        """
        cov = self.unit_cov / check_samples_per_model(P)
        if finite_sample:
            n = self.expected_counts(P)
            if np.any(n <= 3):
                raise ValueError(
                    f"P: finite_sample needs more than 3 expected triples per bin, got {n.min():g}"
                )
            f = np.sqrt(np.repeat(n / (n - 3), 2))
            blocks = np.kron(np.eye(self.n_bins), np.ones((2, 2))) > 0
            cov = np.where(blocks, cov * np.outer(f, f), cov)
        return cov

    def bias(self, P: float) -> np.ndarray:
        """``E[theta] - theta_inf`` to ``O(1/P)``."""
        return self.unit_bias / check_samples_per_model(P)

    def mean_theta(self, P: float) -> np.ndarray:
        """``E[theta]`` to ``O(1/P)``, shape (K, 2)."""
        return (self.theta_inf + self.bias(P)).reshape(self.n_bins, 2)

    def flow_jets(self) -> tuple[tuple, tuple]:
        """Second-order jets ``(value, gradient, Hessian)`` of ``H`` and ``G**2`` at theta_inf."""
        if not self._jets:
            K, n = self.n_bins, 2 * self.n_bins
            th = self.theta_inf.reshape(K, 2)
            gj = [self.quad.maps(th[:, 1], order) for order in range(3)]
            G = (1.0, np.zeros(n), np.zeros((n, n)))
            H = (0.0, np.zeros(n), np.zeros((n, n)))
            for k in reversed(range(K)):
                ia, ic = 2 * k, 2 * k + 1
                g = (gj[0][0][k], np.zeros(n), np.zeros((n, n)))
                g[1][ic], g[2][ic, ic] = gj[1][0][k], gj[2][0][k]
                a = th[k, 0]
                eta, d1, d2 = gj[0][1][k], gj[1][1][k], gj[2][1][k]
                h = (a * eta, np.zeros(n), np.zeros((n, n)))
                h[1][ia], h[1][ic] = eta, a * d1
                h[2][ia, ic] = h[2][ic, ia] = d1
                h[2][ic, ic] = a * d2
                G = _jet_mul(g, G)
                gH = _jet_mul(g, H)
                H = (gH[0] + h[0], gH[1] + h[1], gH[2] + h[2])
            self._jets = {"H": H, "G2": _jet_mul(G, G)}
        return self._jets["H"], self._jets["G2"]

    def moments(
        self, P: float | None, include_bias: bool = True, finite_sample: bool = False
    ) -> tuple[float, float]:
        """``[q]``'s mean and variance: ``E H`` and ``sigma_T**2 E[G**2] + Var H`` by the delta
        method (``O(1/P)``; ``P=None`` gives the population model). ``include_bias=False`` drops
        the ``O(1/P)`` mean shift of ``theta`` (what ``theta ~ N(theta_inf, Cov)`` gives);
        ``finite_sample`` as :meth:`cov_theta`."""
        H, G2 = self.flow_jets()
        sT2 = self.quad.sigma_T2
        if P is None:
            return float(H[0]), float(sT2 * G2[0])
        cov = self.cov_theta(P, finite_sample)
        b = self.bias(P) if include_bias else np.zeros_like(self.unit_bias)

        def expect(j):
            return j[0] + j[1] @ b + 0.5 * np.sum(j[2] * cov)

        return float(expect(H)), float(sT2 * expect(G2) + H[1] @ cov @ H[1])

    def gaussian_field_moments(
        self,
        P: float,
        n_draws: int = 200_000,
        seed: int | np.random.SeedSequence = 0,
        include_bias: bool = True,
    ) -> tuple[float, float, float, float]:
        """Gaussian-field ensemble: ``theta ~ N(E theta, Cov theta)`` through :func:`affine_flow`.

        Exact in the Gaussian (second-cumulant) approximation, coloured noise included. Returns
        ``(mean, var, se_mean, se_var)`` (standard errors from the draws' own spread).
        """
        n_draws = check_count(n_draws, "n_draws")
        cov = self.cov_theta(P)
        mu = self.theta_inf + (self.bias(P) if include_bias else 0.0)
        vals, vecs = np.linalg.eigh(cov)
        root = vecs * np.sqrt(np.clip(vals, 0.0, None))
        rng = stream_rng(seed, "field")
        z = rng.standard_normal((n_draws, mu.size))
        theta = (mu + z @ root.T).reshape(n_draws, self.n_bins, 2)
        G, H = affine_flow(theta, self.quad)
        mean, var = affine_ensemble_moments(G, H, self.quad.sigma_T2)
        per = self.quad.sigma_T2 * G * G + (H - mean) ** 2
        return mean, var, float(H.std() / math.sqrt(n_draws)), float(per.std() / math.sqrt(n_draws))

    def markov_intensity_coefficients(self, P: float) -> np.ndarray:
        """White-noise intensity ``Q(x, t) = B(t) (q0 + q1 x + q2 x**2)`` per bin: shape (K, 3).

        ``Q(x, t) = int_eps^T V(x, t; x, t') dt'`` (docs/math/predictions.md) with
        ``V = B(t) B(t') phi(x)^T Cov(theta_b, theta_b') phi(x)`` (``B = D alpha/sigma**2``) and
        ``int_{b'} B = J_b'``.
        """
        K = self.n_bins
        C = self.cov_theta(P).reshape(K, 2, K, 2)
        Ct = np.einsum("bicj,c->bij", C, self.quad.J_bin)
        return np.stack([Ct[:, 0, 0], Ct[:, 0, 1] + Ct[:, 1, 0], Ct[:, 1, 1]], axis=1)

    def white_noise_moments(self, P: float, rtol: float = 1e-11) -> tuple[float, float]:
        """Mean and variance under the white-noise (Markov) approximation
        (docs/math/predictions.md).

        Effective SDE ``dx = (A x - B (a_bar + c_bar x)) dt + sqrt(Q) dW`` (reverse time), with
        ``(a_bar, c_bar) = E theta`` and ``Q`` from :meth:`markov_intensity_coefficients`. Drift
        affine and ``Q`` quadratic in ``x``, so the first two moments obey closed linear ODEs
        (integrated bin by bin with ``solve_ivp``, DOP853): ``dmu/dt = k mu - B a_bar``,
        ``dM2/dt = 2 k M2 - 2 B a_bar mu - B (q0 + q1 mu + q2 M2)``, ``k = A - B c_bar``.
        """
        from scipy.integrate import solve_ivp  # on use: it takes ~0.2 s to import

        sched = self.schedule
        th = self.mean_theta(P)
        q = self.markov_intensity_coefficients(P)
        y = np.array([0.0, self.quad.sigma_T2])
        for k in reversed(range(self.n_bins)):
            a_bar, c_bar = th[k]
            q0, q1, q2 = q[k]

            def rhs(tt, yy, a_bar=a_bar, c_bar=c_bar, q0=q0, q1=q1, q2=q2):
                A, B = float(sched.pf_x_coeff(tt)), float(sched.pf_mean_coeff(tt))
                kk = A - B * c_bar
                mu, M2 = yy
                return [
                    kk * mu - B * a_bar,
                    2 * kk * M2 - 2 * B * a_bar * mu - B * (q0 + q1 * mu + q2 * M2),
                ]

            sol = solve_ivp(
                rhs,
                (self.bin_edges[k + 1], self.bin_edges[k]),
                y,
                method="DOP853",
                rtol=rtol,
                atol=1e-14,
            )
            if not sol.success:  # pragma: no cover
                raise RuntimeError(f"moment ODE failed in bin {k}: {sol.message}")
            y = sol.y[:, -1]
        return float(y[0]), float(y[1] - y[0] ** 2)

    def exact_moments(self, start: str = "sampler") -> tuple[float, float]:
        """``p(x|eps)`` (``start="exact"``) or the exact-score PF-ODE from ``N(0, sigma_T**2)``."""
        sched, eps, T = self.schedule, float(self.bin_edges[0]), self.schedule.T
        v_e = float(sched.alpha(eps)) ** 2 * self.s2 + float(sched.sigma2(eps))
        if start == "exact":
            return float(sched.alpha(eps)) * self.mean, v_e
        v_T = float(sched.alpha(T)) ** 2 * self.s2 + float(sched.sigma2(T))
        a_T = float(sched.alpha(T))
        return (
            float(sched.alpha(eps)) * self.mean - math.sqrt(v_e / v_T) * a_T * self.mean,
            v_e / v_T * float(sched.sigma2(T)),
        )


def binned_affine_theory(
    mean: float,
    s2: float,
    bin_edges: object,
    schedule: object = "vp-linear",
    ridge: float = 0.1,
    n_nodes: int = 16,
    n_panels: int = 12,
) -> BinnedAffineTheory:
    """Population solution, first-order ``Cov(theta)``, ``O(1/P)`` mean shift and flow quadrature.

    Per bin, with ``t`` on ``n_panels`` geometric Gauss-Legendre panels (``n_nodes`` each) and
    exact Gaussian moments in ``(x0, x)`` at each ``t`` (Isserlis / Stein, as in
    :func:`gtv.theory.closed_forms.binned_bin_moments`):
    ``S = E[lam 1_b phi phi^T]``, ``A = E[lam 1_b x0 phi]``, ``theta_inf = (S + rho)^{-1} A``,
    ``Egg = E[lam**2 1_b r**2 phi phi^T]`` (``r = x0 - a - c x``), ``Cov g = blockdiag(Egg) -
    vec(Eg) vec(Eg)^T`` with ``E g = rho theta_inf``; ``P Cov theta = Sigma_r^{-1} Cov g
    Sigma_r^{-1}``; ``P (E theta - theta_inf) = -Sigma_r^{-1} (E[lam**2 r (phi^T Sigma_r^{-1} phi)
    phi] - S Sigma_r^{-1} E g)``.
    """
    sched = resolve_schedule(schedule)
    m, s2 = check_gaussian_1d(mean, s2)
    edges = check_bin_edges(bin_edges, sched)
    ridge = check_ridge(ridge)
    K = edges.size - 1
    L = edges[-1] - edges[0]
    S = np.empty((K, 2, 2))
    A = np.empty((K, 2))
    theta = np.empty((K, 2))
    Sr_inv = np.empty((K, 2, 2))
    Egg = np.empty((K, 2, 2))
    proxy = np.empty((K, 2, 2))
    unit_bias = np.empty(2 * K)
    for k in range(K):
        tn, tw = geometric_panels(float(edges[k]), float(edges[k + 1]), n_nodes, n_panels)
        tw = tw / L
        al = sched.alpha(tn)
        sg2 = sched.sigma2(tn)
        lam = dsm_weights(sched, tn)
        v = al * al * s2 + sg2
        mx = al * m
        Ex = [np.ones_like(tn), mx, mx**2 + v, mx**3 + 3 * mx * v, mx**4 + 6 * mx**2 * v + 3 * v**2]
        S[k] = [[tw @ (lam * Ex[0]), tw @ (lam * Ex[1])], [tw @ (lam * Ex[1]), tw @ (lam * Ex[2])]]
        A[k] = [tw @ (lam * m), tw @ (lam * al * (m * m + s2))]
        Sr_inv[k] = np.linalg.inv(S[k] + ridge * np.eye(2))
        theta[k] = Sr_inv[k] @ A[k]
        a, c = theta[k]
        mr = m - a - c * mx  # E r
        Kc = al * s2 - c * v  # Cov(r, x)
        Er2 = s2 - 2 * c * al * s2 + c * c * v + mr * mr
        Er2x = [Er2, mx * Er2 + 2 * mr * Kc, Er2 * (v + mx**2) + 2 * Kc**2 + 4 * mr * mx * Kc]
        Erx = [mr] + [mr * Ex[j] + j * Kc * Ex[j - 1] for j in range(1, 4)]
        w2 = tw * lam * lam
        post = s2 * sg2 / v
        for i in range(2):
            for j in range(2):
                Egg[k, i, j] = w2 @ Er2x[i + j]
                proxy[k, i, j] = w2 @ (post * Ex[i + j])
        M = Sr_inv[k]
        qc = (M[0, 0], 2 * M[0, 1], M[1, 1])
        Eb = np.array([w2 @ sum(qc[i] * Erx[j + i] for i in range(3)) for j in range(2)])
        unit_bias[2 * k : 2 * k + 2] = -M @ (Eb - S[k] @ M @ (ridge * theta[k]))
    n = 2 * K
    cov_g = np.zeros((n, n))
    proxy_g = np.zeros((n, n))
    for k in range(K):
        cov_g[2 * k : 2 * k + 2, 2 * k : 2 * k + 2] = Egg[k]
        proxy_g[2 * k : 2 * k + 2, 2 * k : 2 * k + 2] = proxy[k]
    eg = ridge * theta.ravel()
    cov_g -= np.outer(eg, eg)
    Mfull = np.zeros((n, n))
    for k in range(K):
        Mfull[2 * k : 2 * k + 2, 2 * k : 2 * k + 2] = Sr_inv[k]
    unit_cov = Mfull @ cov_g @ Mfull
    unit_cov_proxy = Mfull @ proxy_g @ Mfull
    return BinnedAffineTheory(
        bin_edges=edges,
        mean=m,
        s2=s2,
        schedule=sched,
        ridge=ridge,
        S=S,
        A=A,
        theta_inf=theta.ravel(),
        unit_cov=(unit_cov + unit_cov.T) / 2,
        unit_cov_proxy=(unit_cov_proxy + unit_cov_proxy.T) / 2,
        unit_bias=unit_bias,
        quad=bin_map_quadrature(sched, edges, n_nodes, n_panels),
    )
