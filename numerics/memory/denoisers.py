"""The denoiser map of one model, the object every attractor search works on.

docs/memorization.md ("Attractors of any model"). A :class:`DenoiserMap` is one denoiser ``D^(x,
t)`` together with what an attractor search needs to know about it: the data dimension, the noise
schedule, the smallest time ``eps`` the model was trained for and its training points (the
*memories*, shape (K, D)). In data coordinates ``y`` the map whose fixed points are the attractors
at time ``t`` is

    ``G_t(y) = D^(alpha_t y, t)``,      ``J_G(y) = alpha_t (dD^/dx)(alpha_t y, t)``.

Adapters:

* :class:`ExactDenoiser` -- the exact empirical posterior mean over the memories
  (:func:`gtv.numerics.posterior.posterior_stats`), with the exact Jacobian
  ``dm/dx = (alpha_t / sigma_t**2) Sigma_post``;
* :class:`ModelDenoiser` -- one member of a trained ensemble (linear, kernel, two-layer) or of
  any :class:`gtv.numerics.contract.FieldEnsemble`;
* :class:`FunctionDenoiser` -- any callable ``f(x, t) -> (n, D)``.

Jacobians default to central finite differences (:meth:`DenoiserMap.jacobian`).
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np

from gtv.numerics.checks import (
    check_choice,
    check_count,
    check_eps,
    check_points,
    check_query_points,
)
from gtv.numerics.memory.hopfield import hopfield_fixed_points
from gtv.numerics.posterior import posterior_stats
from gtv.numerics.schedules import NumericSchedule, resolve_schedule

__all__ = [
    "AUTO_NUMPY_MAX",
    "FD_STEP",
    "DenoiserMap",
    "ExactDenoiser",
    "FunctionDenoiser",
    "ModelDenoiser",
    "memory_radius",
]

#: Relative step of the central finite-difference Jacobian (about the cube root of the machine
#: epsilon, which balances the O(h**2) truncation and the O(eps/h) rounding error).
FD_STEP = 1e-5

#: Largest (query points) x (memories) for which :class:`ExactDenoiser` uses the numpy backend.
AUTO_NUMPY_MAX = 200_000


def memory_radius(memories: np.ndarray) -> float:
    """RMS distance of the memories from their centroid, the length scale of default tolerances.

    ``R = sqrt(mean_mu |xi_mu - mean(xi)|**2)``; for a single memory (or identical ones) the RMS
    norm ``sqrt(mean_mu |xi_mu|**2)``, and 1 if that is 0 too.
    """
    m = np.asarray(memories, dtype=np.float64)
    r = float(np.sqrt(np.mean(np.sum((m - m.mean(axis=0)) ** 2, axis=1))))
    if r > 0:
        return r
    r = float(np.sqrt(np.mean(np.sum(m**2, axis=1))))
    return r if r > 0 else 1.0


class DenoiserMap(ABC):
    """A denoiser ``D^(x, t)`` of one model, with its schedule, ``eps`` and training points.

    Subclasses implement :meth:`evaluate` (and may override :meth:`jacobian` with an exact one).

    Attributes
    ----------
    memories : ndarray, shape (K, D)
        Training points, K >= 1.
    schedule : NumericSchedule
    eps : float
        Smallest time of the model (the PF-ODE end point), ``0 < eps < T``.
    """

    def __init__(self, memories: object, schedule: object, eps: float):
        self.memories = check_points(memories, "memories")
        self.schedule: NumericSchedule = resolve_schedule(schedule)
        self.eps = check_eps(eps, self.schedule.T)

    @property
    def dim(self) -> int:
        """D, the data dimension."""
        return self.memories.shape[1]

    @property
    def n_memories(self) -> int:
        """K, the number of training points."""
        return self.memories.shape[0]

    # -- to implement ---------------------------------------------------------------------------
    @abstractmethod
    def evaluate(self, x: np.ndarray, t: float) -> np.ndarray:
        """``D^(x, t)`` at checked points ``x`` (n, D) (C-contiguous float64), one time ``t``.

        No input checks (the public methods check); returns (n, D).
        """

    # -- public ---------------------------------------------------------------------------------
    def check_time(self, t: object, argname: str = "t") -> float:
        """``t`` as a float, or ``ValueError`` naming ``argname`` unless it is a scalar in
        ``(0, T]``."""
        arr = np.asarray(t, dtype=np.float64) if _is_number(t) else None
        if arr is None or arr.ndim != 0:
            raise ValueError(f"{argname} must be a scalar time in (0, T], got {t!r}")
        return float(self.schedule.check_times(arr, argname))

    def check_points(self, x: object, argname: str = "x") -> np.ndarray:
        """Points ``x`` as a checked (n, D) float64 array (``(n,)`` accepted when D = 1)."""
        return check_query_points(x, argname, self.dim)

    def denoise(self, x: object, t: object) -> np.ndarray:
        """``D^(x, t)``: shape (n, D) for ``x`` (n, D) and a scalar ``t`` in ``(0, T]``."""
        t = self.check_time(t)
        out = np.asarray(self.evaluate(self.check_points(x), t), dtype=np.float64)
        if not np.all(np.isfinite(out)):
            raise ValueError(f"the denoiser returned non-finite values at t = {t:g}")
        return out

    def fixed_point_map(self, y: object, t: object) -> np.ndarray:
        """``G_t(y) = D^(alpha_t y, t)`` in data coordinates: shape (n, D)."""
        t = self.check_time(t)
        y = self.check_points(y, "y")
        return self.denoise(float(self.schedule.alpha(t)) * y, t)

    def fd_step(self, t: float) -> float:
        """Finite-difference step at time ``t``: ``FD_STEP * (alpha_t R + sigma_t)``.

        ``R`` is :func:`memory_radius`: noisy points at time ``t`` vary on the scale
        ``alpha_t R + sigma_t``.
        """
        s = self.schedule
        scale = float(s.alpha(t)) * memory_radius(self.memories) + float(np.sqrt(s.sigma2(t)))
        return FD_STEP * scale

    def jacobian(self, x: object, t: object) -> np.ndarray:
        """``dD^/dx`` at noisy points ``x`` (n, D): shape (n, D, D), ``J[i, a, b] = dD^_a/dx_b``.

        Default: central differences ``(D^(x + h e_b) - D^(x - h e_b)) / (2h)`` with the step
        ``h`` of :meth:`fd_step` (error ``O(h**2)`` for smooth denoisers; at a kink of a relu
        network it returns the average of the two one-sided slopes). All ``2 D n`` points are
        evaluated in one call.
        """
        t = self.check_time(t)
        x = self.check_points(x)
        n, d = x.shape
        h = self.fd_step(t)
        shift = h * np.eye(d)
        pts = np.concatenate([(x[:, None, :] + shift).reshape(n * d, d),
                              (x[:, None, :] - shift).reshape(n * d, d)])  # fmt: skip
        vals = np.asarray(self.evaluate(np.ascontiguousarray(pts), t), dtype=np.float64)
        plus, minus = vals[: n * d].reshape(n, d, d), vals[n * d :].reshape(n, d, d)
        # plus[i, b, a] = D^_a(x_i + h e_b): transpose to J[i, a, b].
        jac = np.swapaxes(plus - minus, 1, 2) / (2.0 * h)
        if not np.all(np.isfinite(jac)):
            raise ValueError(f"the denoiser's Jacobian is not finite at t = {t:g}")
        return jac

    def plain_iteration(
        self, t: float, starts: np.ndarray, *, tol: float, max_iter: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        """A specialized undamped iteration ``y <- G_t(y)`` from every start, or ``None`` (the
        default): :func:`gtv.numerics.memory.attractors.iterate_fixed_point` then runs its
        generic loop. Returns ``(points, converged, residual, n_iter)`` like that loop.
        """
        return None

    def map_jacobian(self, y: object, t: object) -> np.ndarray:
        """``J_G(y) = alpha_t (dD^/dx)(alpha_t y, t)``: shape (n, D, D)."""
        t = self.check_time(t)
        y = self.check_points(y, "y")
        a = float(self.schedule.alpha(t))
        return a * self.jacobian(a * y, t)


def _is_number(t: object) -> bool:
    try:
        np.asarray(t, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return True


class ExactDenoiser(DenoiserMap):
    """The exact empirical denoiser: the posterior mean over the memories.

    ``m(x) = sum_mu softmax_mu(-|x - alpha_t xi_mu|**2 / (2 sigma_t**2)) xi_mu``; its fixed-point
    iteration in data coordinates is the CCCP / modern-Hopfield update (docs/math/memorization.md).

    Parameters
    ----------
    memories : array_like, shape (K, D)
    schedule : str or NumericSchedule, default "vp-linear"
    eps : float, default 1e-3
    backend : {"auto", "numba", "numpy"}, default "auto"
        Backend of :func:`gtv.numerics.posterior.posterior_stats`. ``"auto"`` takes the
        vectorized numpy reference when ``n K <= AUTO_NUMPY_MAX`` (query points times memories)
        and the parallel numba kernel above: the iterations call the denoiser many times on
        small batches, where a parallel launch costs more than the arithmetic.
    """

    def __init__(
        self,
        memories: object,
        schedule: object = "vp-linear",
        eps: float = 1e-3,
        *,
        backend: str = "auto",
    ):
        super().__init__(memories, schedule, eps)
        self.backend = check_choice(backend, "backend", ("auto", "numba", "numpy"))

    def _backend(self, n: int) -> str:
        if self.backend != "auto":
            return self.backend
        return "numpy" if n * self.n_memories <= AUTO_NUMPY_MAX else "numba"

    def evaluate(self, x: np.ndarray, t: float) -> np.ndarray:
        b = self._backend(x.shape[0])
        return posterior_stats(self.memories, x, t, self.schedule, backend=b).mean

    def plain_iteration(
        self, t: float, starts: np.ndarray, *, tol: float, max_iter: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        """The compiled modern-Hopfield kernel :func:`gtv.numerics.memory.hopfield_fixed_points`
        (the same CCCP update; per-start early exit, parallel over starts) unless the backend is
        ``"numpy"``. Its stopping rule is the generic loop's, measured one step earlier: the point
        returned is ``G_t(y)`` of the last point whose residual was ``<= tol``.
        """
        if self.backend == "numpy":
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # unconverged starts are reported
            res = hopfield_fixed_points(
                self.memories, starts, t, self.schedule, tol=tol, max_iter=max_iter
            )
        return res.points, res.converged, res.step, res.iterations

    def jacobian(self, x: object, t: object) -> np.ndarray:
        """Exact ``dm/dx = (alpha_t / sigma_t**2) Sigma_post(x)`` (symmetric), shape (n, D, D).

        Differentiating the softmax weights gives ``d w_mu / dx = w_mu alpha_t (xi_mu - m) /
        sigma_t**2``, hence ``dm/dx = (alpha_t / sigma_t**2) sum_mu w_mu (xi_mu - m)
        (xi_mu - m)^T``.
        """
        t = self.check_time(t)
        x = self.check_points(x)
        st = posterior_stats(
            self.memories, x, t, self.schedule, full_cov=True, backend=self._backend(x.shape[0])
        )
        return float(self.schedule.alpha(t) / self.schedule.sigma2(t)) * st.cov


class FunctionDenoiser(DenoiserMap):
    """Any callable ``fn(x, t) -> (n, D)`` as a denoiser map (finite-difference Jacobian).

    Parameters
    ----------
    fn : callable
        ``fn(x, t)`` with ``x`` (n, D) and a float ``t``.
    memories : array_like, shape (K, D)
    schedule : str or NumericSchedule
    eps : float
    """

    def __init__(self, fn: Callable, memories: object, schedule: object, eps: float):
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        super().__init__(memories, schedule, eps)
        self.fn = fn

    def evaluate(self, x: np.ndarray, t: float) -> np.ndarray:
        return np.asarray(self.fn(x, t), dtype=np.float64).reshape(x.shape)


class ModelDenoiser(DenoiserMap):
    """One member of a trained (or Gaussian-field) ensemble as a denoiser map.

    Supported ensembles, and what is evaluated (only member ``model`` where the API allows it):

    * :class:`gtv.numerics.linear.LinearEnsemble` -- ``ensemble.denoise(x, t, model=model)``;
    * :class:`gtv.numerics.kernel.KernelEnsemble` -- ``Theta(z, centres_model) beta_model,tau``
      (the member's row of :meth:`~gtv.numerics.kernel.KernelEnsemble.denoiser`);
    * :class:`gtv.numerics.two_layer.TwoLayerTrajectory` (at ``checkpoint``) and
      :class:`gtv.numerics.two_layer.TwoLayerNetworks` -- the forward pass of network ``model``;
    * a :class:`gtv.numerics.contract.FieldEnsemble` -- unwrapped to its ``ensemble`` when that
      is a linear or kernel ensemble (``LinearField``, ``KernelField``), otherwise
      ``denoise(x, t)[model]`` (all members evaluated).

    Parameters
    ----------
    ensemble : one of the above
    model : int, default 0
        The member, ``0 <= model < N``.
    tau : float, optional
        Training time of a kernel ensemble holding several.
    checkpoint : int, default -1
        Checkpoint of a two-layer trajectory.
    memories, schedule, eps : optional
        Training points, schedule and ``eps``; default: the ensemble's own (``data``,
        ``schedule``, ``eps``). ``memories`` is required for ensembles that do not hold their
        training points (``TwoLayerNetworks``, a generic field).
    """

    def __init__(
        self,
        ensemble: object,
        model: int = 0,
        *,
        tau: float | None = None,
        checkpoint: int = -1,
        memories: object = None,
        schedule: object = None,
        eps: float | None = None,
    ):
        from gtv.numerics.contract import FieldEnsemble
        from gtv.numerics.kernel import KernelEnsemble
        from gtv.numerics.linear import LinearEnsemble
        from gtv.numerics.two_layer import TwoLayerNetworks, TwoLayerTrajectory

        inner = getattr(ensemble, "ensemble", None)
        if isinstance(inner, (LinearEnsemble, KernelEnsemble)):
            ensemble = inner
        data = None
        if isinstance(ensemble, TwoLayerTrajectory):
            data = ensemble.init.data
            ensemble = ensemble.networks(checkpoint)
        n_models = getattr(ensemble, "n_models", None)
        if not isinstance(ensemble, (LinearEnsemble, KernelEnsemble, TwoLayerNetworks)) and not (
            isinstance(ensemble, FieldEnsemble)
        ):
            raise TypeError(
                "ensemble must be a LinearEnsemble, KernelEnsemble, TwoLayerNetworks, "
                f"TwoLayerTrajectory or FieldEnsemble, got {type(ensemble).__name__}"
            )
        self.model = check_count(model, "model", 0)
        if self.model >= n_models:
            raise ValueError(f"model must be in [0, {n_models}) (the ensemble's N), got {model}")
        data = getattr(ensemble, "data", data) if memories is None else memories
        if data is None:
            raise ValueError(
                f"memories is required: a {type(ensemble).__name__} does not hold its training "
                "points"
            )
        sched = getattr(ensemble, "schedule", None) if schedule is None else schedule
        e = getattr(ensemble, "eps", None) if eps is None else eps
        if sched is None or e is None:
            raise ValueError(f"schedule and eps are required for a {type(ensemble).__name__}")
        super().__init__(data, sched, e)
        if isinstance(ensemble, KernelEnsemble):
            if tau is None and ensemble.taus.size != 1:
                raise ValueError("tau is required: the kernel ensemble holds several taus")
            self.tau_index = 0 if tau is None else ensemble.tau_index(tau)
        if getattr(ensemble, "dim", self.dim) != self.dim:
            raise ValueError(
                f"memories must have D = {ensemble.dim} columns (the ensemble's), got {self.dim}"
            )
        self.ensemble = ensemble
        self._kind = type(ensemble)

    def evaluate(self, x: np.ndarray, t: float) -> np.ndarray:
        from gtv.numerics.kernel import KernelEnsemble, ntk_gram
        from gtv.numerics.linear import LinearEnsemble
        from gtv.numerics.two_layer import TwoLayerNetworks, forward

        ens, n = self.ensemble, self.model
        if issubclass(self._kind, LinearEnsemble):
            return ens.denoise(x, t, model=n)
        if issubclass(self._kind, KernelEnsemble):
            centres = ens.centres[0] if ens.centres.shape[0] == 1 else ens.centres[n]
            return (
                ntk_gram(ens.inputs(x, t), centres, ens.activation) @ ens.coeffs[n, self.tau_index]
            )
        if issubclass(self._kind, TwoLayerNetworks):
            z = ens.inputs(x, t)
            return forward(ens.W[n : n + 1], ens.A[n : n + 1], z, ens.activation)[0]
        return np.asarray(ens.denoise(x, t))[n]
