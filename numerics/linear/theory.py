"""First-order-in-1/P theory of linear-feature ensembles by quadrature (docs/math/linear.md).

Model and notation
------------------
A model is trained on P DSM triples ``(t, x0, x)``, ``t ~ U[eps, T]``, ``x0`` uniform over the
training points ``mu_m``, ``x = alpha_t x0 + sigma_t xi`` (see :mod:`gtv.numerics.linear.model`),
with weight ``lam = alpha**2 / sigma**2`` (``dsm_weight``) and ridge ``rho``:
``W = A_P Sigma_P^{-1}``, ``D^ = W phi`` (``W`` is ``D x F``). Population quantities (``E`` over
``t``, ``x0``, ``x``):

* ``Sigma = E[lam phi phi^T]``, ``A = E[lam x0 phi^T] = E[lam mu_bar phi^T]``,
  ``Sigma_r = Sigma + rho I``, ``W_inf = A Sigma_r^{-1}``;
* the mean denoiser ``D_bar(z) = W_inf phi(z)``, the mean score
  ``s_avg = (alpha D_bar - x)/sigma**2``;
* ``g = lam (x0 - D_bar) phi^T`` (one triple's gradient at ``W_inf``), ``E g = rho W_inf``;
* ``W - W_inf = (g_bar - E g) Sigma_P^{-1}`` exactly, so to first order
  ``Cov(vec W) = (1/P) (Sigma_r^{-1} (x) I_D) Cov(vec g) (Sigma_r^{-1} (x) I_D)``
  (derived symbolically in :mod:`gtv.theory.linear`).

Conventions
-----------
* ``vec`` stacks columns: entry ``(d, f)`` of a ``D x F`` matrix sits at ``f * D + d``, so
  ``vec(g) = lam phi (x) r`` (``r = x0 - D_bar``) and
  ``D^(z) - D_bar(z) = (phi(z)^T (x) I_D) vec(W - W_inf)``. Covariances over ``vec W`` are stored
  as 4-index tensors ``C[f, d, f', d']``; ``.reshape(F*D, F*D)`` is the matrix in this
  convention, and a vector ``v`` of length ``F*D`` is the matrix ``v.reshape(F, D).T``.
  Feature index ``f = i * F_t + a`` (space index ``i``, time index ``a``: time fastest, as in
  :class:`~gtv.numerics.features.ProductFeatures`).
* **Proxy / misfit split** (law of total covariance over the design point ``(x, t)``):
  ``Cov(vec g) = E[Cov(vec g | x,t)] + Cov(E[vec g | x,t])`` with
  ``E[(x0 - D_bar)(x0 - D_bar)^T | x,t] = Sigma_post + (mu_bar - D_bar)(mu_bar - D_bar)^T``:

  - ``proxy  = E[lam**2 phi phi^T (x) Sigma_post]`` (the proxy-target noise;
    ``E[g | x,t]`` drops out);
  - ``misfit = E[lam**2 phi phi^T (x) m m^T] - vec(E g) vec(E g)^T`` with ``m = mu_bar - D_bar``:
    the fluctuation of the conditional mean ``E[g|x,t] = lam m phi^T`` over the sampled design
    points.
    **The outer product of ``E g = rho W_inf`` goes here**, because ``E g = E[E[g|x,t]]`` is the
    mean of the misfit term; both parts are then covariances (PSD) on their own. With ``rho = 0``
    ``E g = 0``; with an exact model (``D_bar = mu_bar``) the misfit part vanishes.
* ``Cov[D^(z), D^(z')] = (phi(z)^T (x) I) Cov(vec W) (phi(z') (x) I)`` (``D x D``), and the V-kernel
  of docs/math/path_integral.md is ``V(x,t; x',t') = D_t Cov[s^(x,t), s^(x',t')] D_t'`` with
  ``s^ = (alpha D^ - x)/sigma**2``, i.e. ``V = c_t Cov[D^(z), D^(z')] c_t'``,
  ``c_t = D_t alpha_t / sigma_t**2`` (``diffusion * score_mean_coeff``).
* Markov intensity (docs/math/predictions.md): ``Q(x, t) = int_eps^T V(x, t; x, t') dt'`` (the
  two-sided lag integral over the model's time range), symmetrized. It need not be PSD
  (anticorrelated times).

The population moments come from deterministic quadrature (:mod:`gtv.numerics.linear.population`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gtv.numerics.blas import serial_blas
from gtv.numerics.checks import (
    check_choice,
    check_count,
    check_eps,
    check_points,
    check_query_pair,
    check_query_points,
    check_ridge,
    check_samples_per_model,
    set_checked_arrays,
)
from gtv.numerics.dsm import dsm_weights
from gtv.numerics.features import ProductFeatures, check_data_and_features
from gtv.numerics.io import load_result_of_kind, result_file, save_result
from gtv.numerics.linear.population import (
    PSD_RTOL,
    check_psd,
    moments_numba,
    moments_reference,
    population_solution,
    time_panel_width,
)
from gtv.numerics.quadrature import default_n_hermite, hermite_quadrature, time_quadrature
from gtv.numerics.schedules import NumericSchedule, get_schedule, resolve_schedule
from gtv.numerics.streams import check_seed, model_rngs

__all__ = [
    "PARTS",
    "LinearTheory",
    "linear_model_theory",
    "v_kernel_factor",
]

#: Parts of ``Cov(vec g)`` (and everything derived from it).
PARTS = ("total", "proxy", "misfit")


def _check_part(part: object) -> str:
    return check_choice(part, "part", PARTS)


def v_kernel_factor(schedule: object, t: object) -> np.ndarray:
    """``c_t = D_t alpha_t / sigma_t**2``: ``V(x,t; x',t') = c_t Cov[D^(x,t), D^(x',t')] c_t'``.

    From ``s^ = (alpha D^ - x)/sigma**2`` and ``V = D_t Cov[s^, s^'] D_t'`` (derived in
    :func:`gtv.theory.linear.score_covariance_factor`); equal to the schedule's ``pf_mean_coeff``.
    """
    sched = resolve_schedule(schedule)
    t = sched.check_times(t)
    return sched.diffusion(t) * sched.score_mean_coeff(t)


# -- result -------------------------------------------------------------------------------------
@dataclass
class LinearTheory:
    """Population solution and first-order ensemble covariance of linear-feature models.

    Main methods: :meth:`cov_W` (``Cov(vec W)`` at a given P), :meth:`mean_denoiser`,
    :meth:`mean_score`, :meth:`denoiser_covariance`, :meth:`v_kernel`, :meth:`v_kernel_grid`,
    :meth:`markov_intensity`, :meth:`sample_weights` (Gaussian-field ensemble), :meth:`save` /
    :meth:`load`.

    Attributes
    ----------
    features : ProductFeatures
    data : ndarray, shape (M, D)
    schedule : NumericSchedule
    eps, ridge : float
    n_t, n_hermite : int
        Gauss-Legendre nodes per time panel; Gauss-Hermite nodes per axis.
    sigma : ndarray, shape (F, F)
        Population ``Sigma = E[lam phi phi^T]`` (no ridge).
    A : ndarray, shape (D, F)
        ``E[lam mu_bar phi^T]``.
    A_x0 : ndarray, shape (D, F)
        ``E[lam x0 phi^T]`` with ``x0`` the mixture component (equal to ``A`` exactly; their
        difference measures the quadrature error).
    cov_g_proxy, cov_g_misfit : ndarray, shape (F, D, F, D)
        The two parts of ``Cov(vec g)`` (module docstring; ``E g``'s outer product is in the misfit
        part).
    t_nodes, t_weights : ndarray
        The time quadrature used.
    sigma_r, sigma_r_inv, W_inf : ndarray
        ``Sigma + rho I``, its inverse, ``W_inf = A Sigma_r^{-1}`` (computed on construction).
    eigenvalue_range : dict
        ``{"proxy": (min, max), "misfit": (min, max)}`` eigenvalues of the two parts (checked PSD
        up to round-off on construction).
    """

    features: ProductFeatures
    data: np.ndarray
    schedule: NumericSchedule
    eps: float
    ridge: float
    n_t: int
    n_hermite: int
    sigma: np.ndarray
    A: np.ndarray
    A_x0: np.ndarray
    cov_g_proxy: np.ndarray
    cov_g_misfit: np.ndarray
    t_nodes: np.ndarray
    t_weights: np.ndarray
    sigma_r: np.ndarray = field(init=False, repr=False)
    sigma_r_inv: np.ndarray = field(init=False, repr=False)
    W_inf: np.ndarray = field(init=False, repr=False)
    eigenvalue_range: dict = field(init=False, repr=False)
    _unit: dict = field(init=False, repr=False)

    def __post_init__(self) -> None:
        F, D = self.features.n_features, self.data.shape[1]
        shapes = {
            "sigma": (F, F),
            "A": (D, F),
            "A_x0": (D, F),
            "cov_g_proxy": (F, D, F, D),
            "cov_g_misfit": (F, D, F, D),
        }
        set_checked_arrays(self, shapes)
        self.sigma_r, self.sigma_r_inv, self.W_inf = population_solution(
            self.sigma, self.A, self.ridge
        )
        n = F * D
        eg = self.mean_g.T.reshape(-1)
        # Round-off scale of each part: its largest eigenvalue; the misfit part is a difference
        # E[v v^T] - vec(Eg) vec(Eg)^T, whose first term is bounded by lambda_max + |vec Eg|**2.
        with serial_blas():
            ev_p = np.linalg.eigvalsh(self.cov_g_proxy.reshape(n, n))
            ev_m = np.linalg.eigvalsh(self.cov_g_misfit.reshape(n, n))
        check_psd(ev_p, "cov_g_proxy (Cov(vec g), proxy part)", float(ev_p[-1]))
        check_psd(ev_m, "cov_g_misfit (Cov(vec g), misfit part)", float(ev_m[-1] + eg @ eg))
        self.eigenvalue_range = {
            "proxy": (float(ev_p[0]), float(ev_p[-1])),
            "misfit": (float(ev_m[0]), float(ev_m[-1])),
        }
        self._unit = {}

    # -- basic quantities ---------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return self.data.shape[1]

    @property
    def n_features(self) -> int:
        return self.features.n_features

    @property
    def mean_g(self) -> np.ndarray:
        """``E g = A - W_inf Sigma = rho W_inf`` (D, F)."""
        return self.ridge * self.W_inf

    def cov_g(self, part: str = "total") -> np.ndarray:
        """``Cov(vec g)`` or one part of it, as an ``(F D, F D)`` matrix (column-stacking vec)."""
        part = _check_part(part)
        c = {"proxy": self.cov_g_proxy, "misfit": self.cov_g_misfit}.get(part)
        if c is None:
            c = self.cov_g_proxy + self.cov_g_misfit
        n = self.n_features * self.dim
        return c.reshape(n, n)

    def _unit_cov4(self, part: str) -> np.ndarray:
        """``P Cov(vec W)`` as an (F, D, F, D) tensor (cached)."""
        part = _check_part(part)
        if part not in self._unit:
            if part == "total":
                self._unit[part] = self._unit_cov4("proxy") + self._unit_cov4("misfit")
            else:
                C = self.cov_g_proxy if part == "proxy" else self.cov_g_misfit
                Si = self.sigma_r_inv
                X = np.tensordot(Si, C, axes=(1, 0))  # (F, D, F, D)
                X = np.tensordot(X, Si, axes=(2, 0)).transpose(0, 1, 3, 2)
                n = self.n_features * self.dim
                m = X.reshape(n, n)
                self._unit[part] = ((m + m.T) / 2).reshape(X.shape)
        return self._unit[part]

    def cov_W(self, P: float, part: str = "total") -> np.ndarray:
        """First-order ``Cov(vec W) = (1/P) (Sigma_r^-1 (x) I) Cov(vec g) (Sigma_r^-1 (x) I)``.

        Returns an ``(F D, F D)`` matrix in the column-stacking vec convention (entry ``(d, f)`` of
        ``W`` at index ``f D + d``).
        """
        P = check_samples_per_model(P, required=True)
        n = self.n_features * self.dim
        return self._unit_cov4(part).reshape(n, n) / P

    # -- evaluation at query points -----------------------------------------------------------
    def _query(self, z: object, argname: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``z = (x, t)``: x (n, D) (or (n,) when D = 1), t scalar or (n,). Returns x, t, phi."""
        x, t = check_query_pair(z, argname, self.dim, self.schedule)
        return x, t, self.features.evaluate(x, t)

    def mean_denoiser(self, x: object, t: object) -> np.ndarray:
        """``D_bar(x, t) = W_inf phi(x, t)``: shape (n, D)."""
        _, _, phi = self._query((x, t), "z")
        return phi @ self.W_inf.T

    def mean_score(self, x: object, t: object) -> np.ndarray:
        """Ensemble-mean score ``s_avg = (alpha D_bar - x) / sigma**2``: shape (n, D)."""
        xx, tt, phi = self._query((x, t), "z")
        s = self.schedule
        return (
            s.score_mean_coeff(tt)[:, None] * (phi @ self.W_inf.T) - s.inv_sigma2(tt)[:, None] * xx
        )

    def _blocks(self, phi1, phi2, C4, paired):
        n1 = phi1.shape[0]
        F, D = self.n_features, self.dim
        T1 = (phi1 @ C4.reshape(F, -1)).reshape(n1, D, F, D)
        if paired:
            return np.einsum("idge,ig->ide", T1, phi2)
        out = T1.transpose(0, 1, 3, 2).reshape(n1 * D * D, F) @ phi2.T
        return np.ascontiguousarray(out.reshape(n1, D, D, -1).transpose(0, 3, 1, 2))

    def denoiser_covariance(
        self,
        z: object,
        z2: object = None,
        P: float | None = None,
        part: str = "total",
        paired: bool = False,
    ) -> np.ndarray:
        """``Cov[D^(z), D^(z')] = (phi(z)^T (x) I) Cov(vec W) (phi(z') (x) I)``.

        Parameters
        ----------
        z, z2 : (x, t) pairs
            ``x`` of shape (n, D) (or (n,) for D = 1), ``t`` a scalar or shape (n,). ``z2``
            defaults to ``z``.
        P : float
            DSM samples per model (required; ``P = 1`` gives ``P Cov``).
        part : {"total", "proxy", "misfit"}
        paired : bool
            If True, ``z`` and ``z2`` must have the same length and the result is
            ``Cov[D^(z_i), D^(z2_i)]`` of shape (n, D, D); otherwise all pairs, shape (n, n2, D, D).
        """
        P = check_samples_per_model(P, required=True)
        C4 = self._unit_cov4(part)
        _, _, phi1 = self._query(z, "z")
        phi2 = phi1 if z2 is None else self._query(z2, "z2")[2]
        if paired and phi1.shape[0] != phi2.shape[0]:
            raise ValueError("z2: with paired=True z and z2 must have the same number of points")
        return self._blocks(phi1, phi2, C4, paired) / P

    def score_factor(self, t: object) -> np.ndarray:
        """``c_t = D_t alpha_t / sigma_t**2`` (:func:`v_kernel_factor`)."""
        return v_kernel_factor(self.schedule, t)

    def v_kernel(
        self,
        z: object,
        z2: object = None,
        P: float | None = None,
        part: str = "total",
        paired: bool = False,
    ) -> np.ndarray:
        """V-kernel ``V(x,t; x',t') = c_t Cov[D^(x,t), D^(x',t')] c_t'`` (shapes as
        :meth:`denoiser_covariance`)."""
        z2 = z if z2 is None else z2
        cov = self.denoiser_covariance(z, z2, P, part, paired)
        _, t1, _ = self._query(z, "z")
        _, t2, _ = self._query(z2, "z2")
        c1, c2 = self.score_factor(t1), self.score_factor(t2)
        if paired:
            return cov * (c1 * c2)[:, None, None]
        return cov * c1[:, None, None, None] * c2[None, :, None, None]

    def v_kernel_grid(self, x: object, times: object, P: float, part: str = "total") -> np.ndarray:
        """``V(x_i, t_a; x_i, t_b)`` for every point and every pair of times: (n_x, n_t, n_t, D, D).

        The time-correlation structure at fixed ``x`` (what the white-noise approximation
        integrates). Cost ``n_x n_t F (F D**2 + n_t D**2)``.
        """
        P = check_samples_per_model(P, required=True)
        x = check_query_points(x, "x", self.dim)
        times = np.atleast_1d(self.schedule.check_times(times, "times"))
        if times.ndim != 1:
            raise ValueError(f"times must be 1-D, got shape {times.shape}")
        nx, nt, F, D = x.shape[0], times.size, self.n_features, self.dim
        phi = self.features.evaluate(np.repeat(x, nt, axis=0), np.tile(times, nx))
        C4 = self._unit_cov4(part)
        T1 = (phi @ C4.reshape(F, -1)).reshape(nx, nt, D, F, D)
        T1 = T1.transpose(0, 1, 2, 4, 3).reshape(nx, nt * D * D, F)
        out = T1 @ phi.reshape(nx, nt, F).transpose(0, 2, 1)  # (nx, nt D D, nt)
        out = out.reshape(nx, nt, D, D, nt).transpose(0, 1, 4, 2, 3)
        c = self.score_factor(times)
        return np.ascontiguousarray(out * (c[:, None] * c[None, :])[None, :, :, None, None] / P)

    def space_features(self, x: object) -> np.ndarray:
        """Spatial features ``phi_space(x)`` at points ``x`` (n, D): (n, F_space)."""
        return self.features.evaluate_space(x)

    def markov_intensity(self, x: object, t: object, P: float, part: str = "total") -> np.ndarray:
        """White-noise intensity ``Q(x, t) = int_eps^T V(x, t; x, t') dt'``, symmetrized: (n, D, D).

        ``int c_t' phi_time(t') dt'`` uses the theory's own time quadrature. ``Q`` need not be PSD
        (V can be negative between distant times); callers that need a covariance must check.
        """
        P = check_samples_per_model(P, required=True)
        xx, tt, phi = self._query((x, t), "z")
        lam_t = self.score_factor(self.t_nodes) * self.t_weights * (self.schedule.T - self.eps)
        h = lam_t @ self.features.time.evaluate(self.t_nodes)  # (F_t,)
        psi2 = (self.space_features(xx)[:, :, None] * h[None, None, :]).reshape(xx.shape[0], -1)
        Q = self._blocks(phi, psi2, self._unit_cov4(part), True) / P
        Q = (Q + Q.transpose(0, 2, 1)) / 2
        return Q * self.score_factor(tt)[:, None, None]

    # -- Gaussian-field ensemble ----------------------------------------------------------------
    def sample_weights(
        self,
        P: float,
        n_models: int,
        seed: int | np.random.SeedSequence = 0,
        part: str = "total",
        mean_shift: np.ndarray | None = None,
        extra_cov: np.ndarray | None = None,
    ) -> np.ndarray:
        """Draw ``W ~ N(W_inf + mean_shift, Cov(vec W) + extra_cov)``: shape (N, D, F).

        Without the optional terms this is the first-order Gaussian field; the second-order one
        passes ``(mean_shift, extra_cov)`` from
        :meth:`gtv.numerics.linear.second_order.SecondOrderMoments.weight_moments` (``D x F``
        and ``FD x FD`` in the ``vec`` convention of the module docstring). Model ``n`` draws from
        ``stream(seed, "field").spawn(N)[n]``; the covariance is factorized by an eigendecomposition
        (round-off negative eigenvalues clipped to 0; anything more negative raises).
        """
        n_models = check_count(n_models, "n_models")
        seed = check_seed(seed)
        F, D = self.n_features, self.dim
        C = self.cov_W(P, part).reshape(F * D, F * D)
        mean = self.W_inf
        if extra_cov is not None:
            extra_cov = np.asarray(extra_cov, dtype=np.float64)
            if extra_cov.shape != C.shape:
                raise ValueError(f"extra_cov must have shape {C.shape}, got {extra_cov.shape}")
            C = C + (extra_cov + extra_cov.T) / 2
        if mean_shift is not None:
            mean_shift = np.asarray(mean_shift, dtype=np.float64)
            if mean_shift.shape != (D, F):
                raise ValueError(f"mean_shift must have shape {(D, F)}, got {mean_shift.shape}")
            mean = mean + mean_shift
        ev, vecs = np.linalg.eigh(C)
        if ev[0] < -PSD_RTOL * max(ev[-1], np.finfo(float).tiny):
            raise ValueError(
                f"Cov(vec W) at P = {float(P):g} is not positive semi-definite (smallest "
                f"eigenvalue {ev[0]:.3e} vs largest {ev[-1]:.3e}); with a second-order extra_cov "
                "P is too small for the 1/P expansion"
            )
        L = vecs * np.sqrt(np.clip(ev, 0.0, None))[None, :]
        out = np.empty((n_models, D, F))
        for n, rng in enumerate(model_rngs(seed, "field", n_models)):
            v = L @ rng.standard_normal(L.shape[1])
            out[n] = mean + v.reshape(F, D).T
        return out

    # -- persistence ----------------------------------------------------------------------------
    def config(self) -> dict:
        return {
            "features": self.features.config(),
            "data": self.data.tolist(),
            "schedule": self.schedule.name,
            "T": self.schedule.T,
            "eps": self.eps,
            "ridge": self.ridge,
            "n_t": self.n_t,
            "n_hermite": self.n_hermite,
        }

    def save(self, path: str | Path) -> Path:
        """Save to ``.npz`` (arrays + JSON configuration; loading never unpickles)."""
        arrays = {k: getattr(self, k) for k in self._ARRAYS}
        return save_result(path, arrays, self.config(), kind=self._KIND)

    _KIND = "linear_theory"
    _ARRAYS = ("sigma", "A", "A_x0", "cov_g_proxy", "cov_g_misfit", "t_nodes", "t_weights")

    @classmethod
    def load(cls, path: str | Path) -> LinearTheory:
        """Read a file written by :meth:`save`; ``ValueError`` naming the file if it is corrupt,
        of another kind, or inconsistent (shapes, non-finite arrays, ``eps`` outside (0, T))."""
        arrays, cfg = load_result_of_kind(
            path, cls._KIND, "a LinearTheory", legacy=lambda c: {"features", "n_hermite"} <= set(c)
        )
        with result_file(path, "LinearTheory"):
            schedule = get_schedule(cfg["schedule"], cfg["T"])
            tn, tw = arrays["t_nodes"], arrays["t_weights"]
            if tn.ndim != 1 or tw.shape != tn.shape or not np.all(np.isfinite(tn + tw)):
                raise ValueError("t_nodes and t_weights must be finite 1-D arrays of one length")
            return cls(
                features=ProductFeatures.from_config(cfg["features"]),
                data=check_points(cfg["data"], "data"),
                schedule=schedule,
                eps=check_eps(cfg["eps"], schedule.T),
                ridge=check_ridge(cfg["ridge"]),
                n_t=check_count(cfg["n_t"], "n_t"),
                n_hermite=check_count(cfg["n_hermite"], "n_hermite"),
                **{k: arrays[k] for k in cls._ARRAYS},
            )


def linear_model_theory(
    data: object,
    features: ProductFeatures,
    eps: float,
    schedule: object = "vp-linear",
    ridge: float = 0.1,
    n_t: int = 12,
    n_hermite: int | None = None,
    *,
    backend: str = "numba",
    return_diagnostics: bool = False,
) -> LinearTheory | tuple[LinearTheory, dict]:
    """Population solution and first-order ensemble covariance by deterministic quadrature.

    Parameters
    ----------
    data : array_like, shape (M, D)
        Training points.
    features : ProductFeatures
        Features over ``(x, t)`` with spatial dimension D.
    eps : float
        Smallest training time, ``0 < eps < T``.
    schedule : str or NumericSchedule, default "vp-linear"
    ridge : float, default 0.1
        ``rho >= 0`` (``rho = 0`` needs a non-singular population ``Sigma``).
    n_t : int, default 12
        Gauss-Legendre nodes per time panel (:func:`time_quadrature`).
    n_hermite : int, optional
        Gauss-Hermite nodes per spatial axis; default :func:`default_n_hermite`.
    backend : {"numba", "numpy"}
        ``"numpy"`` runs the plain reference (slow; for tests).
    return_diagnostics : bool
        Also return a dict with ``"total_direct"``: ``Cov(vec g)`` from ``E[lam**2 phi phi^T (x)
        (x0 - D_bar)(x0 - D_bar)^T] - vec(Eg) vec(Eg)^T`` with ``x0`` the mixture component (no
        posterior; numpy backend only), ``"eigenvalue_range"`` of the two parts and the node
        counts ``"n_time_nodes"``, ``"n_xi_nodes"``.

    Returns
    -------
    LinearTheory

    Raises
    ------
    ValueError
        For bad ``data``, ``eps``, ``ridge``, ``n_t``, ``n_hermite``, ``backend``, a singular
        ``Sigma + ridge I``, or a covariance part that is not PSD beyond round-off.
    """
    sched = resolve_schedule(schedule)
    data = check_data_and_features(data, features)
    eps = check_eps(eps, sched.T)
    ridge = check_ridge(ridge)
    n_t = check_count(n_t, "n_t")
    check_choice(backend, "backend", ("numba", "numpy"))
    T = sched.T
    t_nodes, t_w = time_quadrature(eps, T, n_t, time_panel_width(features, eps, T))
    alpha = np.asarray(sched.alpha(t_nodes), dtype=float)
    sigma = np.sqrt(np.asarray(sched.sigma2(t_nodes), dtype=float))
    lam = dsm_weights(sched, t_nodes)
    if n_hermite is None:
        n_hermite = default_n_hermite(features, float(sigma.max()))
    n_hermite = check_count(n_hermite, "n_hermite")
    xi, xw = hermite_quadrature(n_hermite, data.shape[1])
    M, D = data.shape
    F = features.n_features
    c1, c2 = t_w * lam, t_w * lam**2
    diag = {}
    if backend == "numba":
        phit = features.time.evaluate(t_nodes)
        Sig, A, A_x0, proxy2 = moments_numba(features, data, alpha, sigma, xi, xw, phit, c1, c2)
    else:
        res = moments_reference(features, data, sched, t_nodes, t_w, xi, xw, None)
        Sig, A, A_x0, proxy2 = res[:4]
    Sig = (Sig + Sig.T) / 2
    _, _, W_inf = population_solution(Sig, A, ridge)
    if backend == "numba":
        misfit2 = moments_numba(features, data, alpha, sigma, xi, xw, phit, c1, c2, W_inf)
    else:
        res = moments_reference(features, data, sched, t_nodes, t_w, xi, xw, W_inf)
        misfit2 = res[4]
    n = F * D
    eg = (ridge * W_inf).T.reshape(-1)  # vec(E g), column stacking
    mis = misfit2.reshape(n, n) - np.outer(eg, eg)
    mis = (mis + mis.T) / 2
    if backend == "numpy":
        diag["total_direct"] = res[5].reshape(n, n) - np.outer(eg, eg)
    theory = LinearTheory(
        features=features,
        data=data,
        schedule=sched,
        eps=eps,
        ridge=ridge,
        n_t=n_t,
        n_hermite=n_hermite,
        sigma=Sig,
        A=A,
        A_x0=A_x0,
        cov_g_proxy=proxy2,
        cov_g_misfit=mis.reshape(F, D, F, D),
        t_nodes=t_nodes,
        t_weights=t_w,
    )
    diag["eigenvalue_range"] = theory.eigenvalue_range
    diag["n_time_nodes"] = int(t_nodes.size)
    diag["n_xi_nodes"] = int(xi.shape[0])
    return (theory, diag) if return_diagnostics else theory
