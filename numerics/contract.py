"""The theory contract: what a theory of a trained ensemble must provide (docs/architecture.md).

A *theory* here predicts what an ensemble of models, each trained on its own ``P`` DSM triples
(and, for kernel models, for a training time ``tau``), learns: the ensemble-mean denoiser and
score, the across-model covariance of the denoiser and the V-kernel built from it
(docs/math/path_integral.md), the white-noise (Markov) intensity, and a Gaussian field of
denoisers with these moments that samplers treat like a trained ensemble
(docs/math/predictions.md). :class:`EnsembleTheory` declares this as a runtime-checkable
:class:`typing.Protocol`; the predictions of :mod:`gtv.validation.predictions` (the
Gaussian-field ``[q]``, the white-noise Fokker-Planck density) and the comparisons of
:mod:`gtv.validation` are written once against it.

Design: bound theories
----------------------
The population objects compute their quadratures once and answer for *any* budget:
:class:`~gtv.numerics.linear.theory.LinearTheory` takes ``P`` per call,
:class:`~gtv.numerics.kernel.theory.NTKTheory` takes ``tau`` and ``P``, and the second-order
moments (:class:`~gtv.numerics.linear.second_order.SecondOrderMoments`) are a separate object.
The contract is implemented by small *bound* objects that fix the budget and forward to those
per-call methods (so they agree with them to the last digit); :class:`BoundTheory` holds what
they all forward unchanged:

* :class:`gtv.numerics.linear.prediction.FirstOrderLinear` ``(theory, P)`` -- first order in 1/P;
* :class:`gtv.numerics.linear.prediction.SecondOrderLinear` ``(theory, moments, P)`` -- mean to
  ``O(1/P)`` and covariance to ``O(1/P**2)``;
* :class:`gtv.numerics.kernel.prediction.KernelTheoryAt` ``(theory, tau, P)`` -- lazy NTK
  ensembles after training time ``tau``.
* :class:`gtv.numerics.linear.prediction.CavityLinear` ``(theory, moments, field)`` -- the
  finite-P cavity moments, with a Gaussian or the non-Gaussian cavity field
  (docs/math/finite_fp.md);
* :class:`gtv.numerics.linear.exact_target.ExactTargetLinear` ``(theory, P)`` -- first order for
  models trained on the exact (noise-free) target;
* :class:`gtv.numerics.kernel.finite_prediction.FiniteKernelTheoryAt` -- the finite-P lazy NTK
  theory (docs/math/kernel.md).

A new theory (e.g. a finite-F/P theory) plugs in by implementing the members below; nothing in
:mod:`gtv.validation` needs to change. ``isinstance(obj, EnsembleTheory)`` checks that every
member exists (not their signatures).

Conventions (shared by every implementation)
--------------------------------------------
* Query points are ``(x, t)``: ``x`` of shape (n, D) (or (n,) when D = 1), ``t`` a scalar or
  shape (n,); a pair ``z = (x, t)``.
* ``part`` selects ``"total"`` or one of the parts of the covariance an implementation defines
  (the linear and kernel theories: ``"proxy"`` and ``"misfit"``).
* ``paired=True`` gives ``Cov[D^(z_i), D^(z2_i)]`` of shape (n, D, D); otherwise all pairs,
  (n, n2, D, D).
* ``V(x,t; x',t') = c_t Cov[D^(x,t), D^(x',t')] c_t'`` with the score factor
  ``c_t = D_t alpha_t / sigma_t**2``; the Markov intensity is the two-sided lag integral
  ``Q(x, t) = int_eps^T V(x, t; x, t') dt'`` (symmetrized; need not be PSD).
* Random streams (:mod:`gtv.numerics.streams`): :meth:`EnsembleTheory.gaussian_field` draws
  model ``n``'s weights from ``stream(seed, "field").spawn(N)[n]``; :meth:`FieldEnsemble.sample`
  of a Gaussian field draws model ``n``'s PF-ODE start points from
  ``stream(seed, "field-sampling").spawn(N)[n]``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from gtv.numerics.schedules import NumericSchedule

__all__ = ["BoundTheory", "EnsembleTheory", "FieldEnsemble"]


@runtime_checkable
class FieldEnsemble(Protocol):
    """N denoisers that the PF-ODE samplers sample like a trained ensemble.

    What :meth:`EnsembleTheory.gaussian_field` returns (e.g. a wrapped
    :class:`~gtv.numerics.linear.LinearEnsemble` or
    :class:`~gtv.numerics.kernel.KernelEnsemble` at one ``tau``).
    """

    @property
    def n_models(self) -> int:
        """Number of members N."""
        ...

    @property
    def dim(self) -> int:
        """Data dimension D."""
        ...

    def denoise(self, x: object, t: object) -> np.ndarray:
        """``D^_n(x, t)`` of every member: (N, n, D)."""
        ...

    def sample(
        self,
        n_samples: int,
        *,
        n_steps: int = 30,
        method: str = "euler",
        seed: int | np.random.SeedSequence = 0,
    ) -> np.ndarray:
        """PF-ODE samples at ``t = eps`` of every member: (N, n_samples, D).

        The grid ``linspace(T, eps, n_steps + 1)``, Euler or Heun, as for trained ensembles;
        member ``n`` starts from ``stream(seed, "field-sampling").spawn(N)[n]``.

        A field whose ``sample`` also takes explicit start points -- keywords ``x_T``
        (N, n_samples, D) and ``models`` (row ``r`` of ``x_T`` carried by member ``models[r]``),
        as :class:`gtv.numerics.linear.LinearField` does -- can be transported
        (``density="transport"`` in :mod:`gtv.validation.predictions`, docs/math/transport.md).
        """
        ...


@runtime_checkable
class EnsembleTheory(Protocol):
    """A theory of what an ensemble trained at a given budget learns (module docstring).

    Attributes
    ----------
    data : ndarray (M, D)
        Training points.
    schedule : NumericSchedule
    eps : float
        Smallest training time (samplers stop there).
    P : float
        DSM triples per model (the budget; kernel theories also fix a training time).
    dim : int
        D.
    """

    data: np.ndarray
    schedule: NumericSchedule
    eps: float
    P: float

    @property
    def dim(self) -> int: ...

    def mean_denoiser(self, x: object, t: object) -> np.ndarray:
        """Ensemble-mean denoiser ``E D^(x, t)``: (n, D)."""
        ...

    def mean_score(self, x: object, t: object) -> np.ndarray:
        """Ensemble-mean score ``(alpha E D^ - x) / sigma**2``: (n, D)."""
        ...

    def denoiser_covariance(
        self, z: object, z2: object = None, *, part: str = "total", paired: bool = False
    ) -> np.ndarray:
        """``Cov[D^(z), D^(z2)]`` across models: (n, n2, D, D), or (n, D, D) if ``paired``."""
        ...

    def score_factor(self, t: object) -> np.ndarray:
        """``c_t = D_t alpha_t / sigma_t**2``: (n,)."""
        ...

    def v_kernel(
        self, z: object, z2: object = None, *, part: str = "total", paired: bool = False
    ) -> np.ndarray:
        """``V(z; z2) = c_t Cov[D^(z), D^(z2)] c_t'`` (shapes as :meth:`denoiser_covariance`)."""
        ...

    def markov_intensity(self, x: object, t: object, *, part: str = "total") -> np.ndarray:
        """White-noise intensity ``Q(x, t) = int_eps^T V(x, t; x, t') dt'``: (n, D, D)."""
        ...

    def white_noise_coefficients(
        self,
    ) -> tuple[
        Callable[[np.ndarray, float], np.ndarray], Callable[[np.ndarray, float], np.ndarray]
    ]:
        """``(mean_score, intensity)`` for a 1-D Fokker-Planck solver.

        ``mean_score(x, t)`` -> (n, 1) and ``intensity(x, t)`` -> (n,) (``Q`` total, at points
        ``x`` (n,) or (n, 1) and one time ``t``), equal to :meth:`mean_score` and
        :meth:`markov_intensity` up to round-off. The solver evaluates them at the same point
        sets every step, so implementations may cache per point set.
        """
        ...

    def gaussian_field(
        self, n_models: int, seed: int | np.random.SeedSequence = 0
    ) -> FieldEnsemble:
        """N denoisers with this theory's mean and covariance (Gaussian in the weights).

        Member ``n`` draws from ``stream(seed, "field").spawn(N)[n]``, so the first members of
        a larger field are the same members.
        """
        ...

    def config(self) -> dict[str, Any]:
        """JSON-safe description (the theory's configuration and its budget)."""
        ...

    def save(self, path: str | Path) -> Path:
        """Save to ``.npz`` (arrays + JSON configuration; loading never unpickles)."""
        ...

    @classmethod
    def load(cls, path: str | Path) -> EnsembleTheory:
        """Reload what :meth:`save` wrote."""
        ...


class BoundTheory:
    """Base of the bound theories: a population theory ``self.theory`` at a fixed budget.

    Holds what every bound theory forwards unchanged to its population object (``data``,
    ``schedule``, ``eps``, ``dim``); subclasses set ``self.theory`` and ``self.P`` and implement
    the rest of :class:`EnsembleTheory`.
    """

    theory: Any
    P: float

    @property
    def data(self) -> np.ndarray:
        return self.theory.data

    @property
    def schedule(self) -> NumericSchedule:
        return self.theory.schedule

    @property
    def eps(self) -> float:
        return self.theory.eps

    @property
    def dim(self) -> int:
        return self.theory.dim
