"""The linear-feature theories at one budget: the theory contract for linear ensembles.

:class:`FirstOrderLinear` binds a :class:`~gtv.numerics.linear.theory.LinearTheory` (which takes
``P`` per call) to ``P`` DSM triples per model; :class:`SecondOrderLinear` adds the
second-order moments (:class:`~gtv.numerics.linear.second_order.SecondOrderMoments`). Both
implement :class:`gtv.numerics.contract.EnsembleTheory` (docs/math/linear.md,
docs/math/predictions.md).

* **First order**: every method forwards to the :class:`LinearTheory` method of the same name
  with this ``P`` (so they agree to the last digit). The Gaussian field is
  ``W ~ N(W_inf, Cov W(P))`` (:meth:`LinearTheory.sample_weights`).
* **Second order** (``D = 1`` for everything built on the weight moments): the mean
  ``E D^ = D_bar + mean_correction`` and the variance ``Var D^ = var_first + var_second`` at
  query points are those of :meth:`SecondOrderMoments.denoiser_moments` (to the last digit);
  the weight moments ``E W = W_inf + dW``, ``Cov(vec W) = Cov W(P) + C2``
  (:meth:`SecondOrderMoments.weight_moments`) give the covariance between two different points,
  the Markov intensity and the Gaussian field ``W ~ N(W_inf + dW, Cov W(P) + C2)`` (the same
  sampler, :meth:`LinearTheory.sample_weights` with ``mean_shift`` and ``extra_cov``). The
  second-order covariance has no proxy/misfit split: ``part`` must be ``"total"``.

Each Gaussian field is a :class:`LinearField` (a :class:`~gtv.numerics.linear.model.LinearEnsemble`
with the theory's features, data, schedule, eps and ridge) sampled by the same PF-ODE sampler as
trained ensembles. Streams: weights ``stream(seed, "field").spawn(N)[n]`` (through
:meth:`LinearTheory.sample_weights`), PF-ODE start points
``stream(seed, "field-sampling").spawn(N)[n]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gtv.numerics.checks import (
    check_choice,
    check_nonnegative_time,
    check_query_pair,
    check_samples_per_model,
)
from gtv.numerics.contract import BoundTheory
from gtv.numerics.io import load_result_of_kind, result_file, save_result
from gtv.numerics.linear.cavity import CavityMoments, sample_cavity_weights
from gtv.numerics.linear.model import LinearEnsemble
from gtv.numerics.linear.nodes import PopulationNodes
from gtv.numerics.linear.occupancy import (
    OccupancySplit,
    occupancy_split,
    sample_occupancy_weights,
    sample_occupancy_weights_ladder,
)
from gtv.numerics.linear.second_order import SecondOrderMoments
from gtv.numerics.linear.strata import STRATA
from gtv.numerics.linear.theory import LinearTheory

__all__ = [
    "FIELDS",
    "CavityLinear",
    "FirstOrderLinear",
    "LinearField",
    "SecondOrderLinear",
    "occupancy_fields_together",
]

#: The fields :class:`CavityLinear` can predict.
#: The fields drawn from an occupancy split (the ones ``exact_below`` and ``split`` apply to).
OCCUPANCY_FIELDS = ("occupancy", "stratified", "consistent")
FIELDS = ("gaussian", "cavity", *OCCUPANCY_FIELDS)


class LinearField:
    """A Gaussian field of linear-feature denoisers (:class:`gtv.numerics.contract.FieldEnsemble`).

    Attributes
    ----------
    ensemble : LinearEnsemble
        The members (``n_samples`` records ``P``).
    """

    def __init__(self, ensemble: LinearEnsemble):
        if not isinstance(ensemble, LinearEnsemble):
            raise TypeError("ensemble must be a LinearEnsemble")
        self.ensemble = ensemble

    @property
    def n_models(self) -> int:
        return self.ensemble.n_models

    @property
    def dim(self) -> int:
        return self.ensemble.features.dim

    @property
    def W(self) -> np.ndarray:
        """Weights (N, D, F)."""
        return self.ensemble.W

    def denoise(self, x: object, t: object) -> np.ndarray:
        """``D^_n(x, t)`` of every member: (N, n, D)."""
        return self.ensemble.denoise(x, t)

    def sample(
        self,
        n_samples: int,
        *,
        n_steps: int = 30,
        method: str = "euler",
        seed: int | np.random.SeedSequence = 0,
        x_T: np.ndarray | None = None,
        models: np.ndarray | None = None,
    ) -> np.ndarray:
        """PF-ODE samples (N, n_samples, D) by
        :func:`gtv.numerics.linear.sampler.sample_linear_ensemble`; member ``n`` starts from
        ``stream(seed, "field-sampling").spawn(N)[n]``.

        Explicit start points ``x_T`` (N, n_samples, D) replace the random ones (``seed`` is then
        unused); with ``models`` (R,), ``x_T`` is (R, n_samples, D) and row ``r`` is carried by
        member ``models[r]`` (as in ``sample_linear_ensemble``; e.g. the refinement rows of
        :func:`gtv.numerics.transport.transport_1d`)."""
        from gtv.numerics.linear.sampler import sample_linear_ensemble

        if x_T is None and models is not None:
            raise ValueError("models needs explicit start points x_T")
        return sample_linear_ensemble(
            self.ensemble, n_samples, n_steps=n_steps, method=method, seed=seed, x_T=x_T,
            models=models, stream="field-sampling",
        )  # fmt: skip


def _field(theory: LinearTheory, W: np.ndarray, P: float, seed: object) -> LinearField:
    s = seed if isinstance(seed, int) else -1
    ens = LinearEnsemble(
        W, theory.features, theory.data, theory.schedule, theory.eps, int(round(float(P))),
        theory.ridge, s,
    )  # fmt: skip
    return LinearField(ens)


def _markov_time_features(theory: LinearTheory) -> np.ndarray:
    """``h = int_eps^T c_t' phi_time(t') dt'`` (F_t,) by the theory's own time quadrature."""
    lam_t = (
        theory.score_factor(theory.t_nodes) * theory.t_weights * (theory.schedule.T - theory.eps)
    )
    return lam_t @ theory.features.time.evaluate(theory.t_nodes)


class _SeparableCoefficients:
    """``s_avg`` and the Markov intensity ``Q`` (D = 1) using ``phi = phi_space (x) phi_time``.

    For weights with mean ``W`` (1, F) and covariance ``C`` (F, F). The solver calls the drift at
    fixed faces and the noise at fixed centres every step, so the spatial contractions are cached
    per point set; each step then costs ``O(n F_t)``: ``D_bar(x, t) = B(x) phi_t(t)`` with
    ``B = phi_s(x) W`` reshaped (F_s, F_t), and ``Q(x, t) = c_t G(x) phi_t(t)`` with
    ``G[x, a] = sum_{i j b} phi_s_i(x) C[(i a), (j b)] phi_s_j(x) h_b``, ``h = int c_t' phi_t(t')``
    (the same quadrature as :meth:`LinearTheory.markov_intensity`, which it reproduces).
    """

    def __init__(self, theory: LinearTheory, W: np.ndarray, C: np.ndarray):
        self.th = theory
        fs, ft = theory.features.n_space_features, theory.features.time.size
        self.C = C.reshape(fs, ft, fs, ft)
        self.h = _markov_time_features(theory)  # (F_t,)
        self.Wr = W[0].reshape(fs, ft)
        self._cache: dict = {}

    def _space(self, x: np.ndarray, kind: str) -> np.ndarray:
        key = (kind, x.shape, x.tobytes())
        hit = self._cache.get(kind)
        if hit is not None and hit[0] == key:
            return hit[1]
        phis = self.th.features.evaluate_space(np.asarray(x, dtype=float).reshape(-1, 1))
        if kind == "mean":
            val = phis @ self.Wr  # (n, F_t)
        else:
            ch = np.tensordot(self.C, self.h, axes=(3, 0))  # (fs, ft, fs)
            val = np.einsum("ni,iaj,nj->na", phis, ch, phis)
        self._cache[kind] = (key, val)
        return val

    def mean_score(self, x: np.ndarray, t: float) -> np.ndarray:
        x = np.asarray(x, dtype=float).reshape(-1, 1)
        s = self.th.schedule
        phit = self.th.features.time.evaluate(np.array([float(t)]))[0]
        dbar = self._space(x, "mean") @ phit
        return (float(s.score_mean_coeff(t)) * dbar - float(s.inv_sigma2(t)) * x[:, 0])[:, None]

    def markov_intensity(self, x: np.ndarray, t: float) -> np.ndarray:
        x = np.asarray(x, dtype=float).reshape(-1, 1)
        phit = self.th.features.time.evaluate(np.array([float(t)]))[0]
        c = float(self.th.score_factor(np.array([float(t)]))[0])
        return c * (self._space(x, "noise") @ phit)


def _check_1d(theory: LinearTheory) -> None:
    if theory.dim != 1:
        raise ValueError(f"theory: only 1-D data is supported here, got D = {theory.dim}")


class FirstOrderLinear(BoundTheory):
    """:class:`LinearTheory` at ``P`` DSM triples per model, first order in 1/P (module docstring).

    Parameters
    ----------
    theory : LinearTheory
    P : float
        DSM triples per model (``>= 1``; fractional values are allowed: the theory is analytic
        in 1/P).
    """

    _KIND = "first_order_linear"

    def __init__(self, theory: LinearTheory, P: float):
        if not isinstance(theory, LinearTheory):
            raise TypeError("theory must be a LinearTheory")
        self.theory = theory
        self.P = check_samples_per_model(P, required=True)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(LinearTheory(F={self.theory.n_features}), P={self.P!r})"

    @property
    def n_features(self) -> int:
        return self.theory.n_features

    # -- moments --------------------------------------------------------------------------------
    def mean_denoiser(self, x: object, t: object) -> np.ndarray:
        return self.theory.mean_denoiser(x, t)

    def mean_score(self, x: object, t: object) -> np.ndarray:
        return self.theory.mean_score(x, t)

    def denoiser_covariance(
        self, z: object, z2: object = None, *, part: str = "total", paired: bool = False
    ) -> np.ndarray:
        return self.theory.denoiser_covariance(z, z2, self.P, part, paired)

    def score_factor(self, t: object) -> np.ndarray:
        return self.theory.score_factor(t)

    def v_kernel(
        self, z: object, z2: object = None, *, part: str = "total", paired: bool = False
    ) -> np.ndarray:
        return self.theory.v_kernel(z, z2, self.P, part, paired)

    def markov_intensity(self, x: object, t: object, *, part: str = "total") -> np.ndarray:
        return self.theory.markov_intensity(x, t, self.P, part)

    def weight_moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean (D, F) and covariance ``Cov(vec W)`` (F D, F D) of the weights."""
        return self.theory.W_inf, self.theory.cov_W(self.P)

    def white_noise_coefficients(self):
        """``(mean_score, intensity)`` using the product structure of the features (D = 1)."""
        _check_1d(self.theory)
        W, C = self.weight_moments()
        fast = _SeparableCoefficients(self.theory, W, C)
        return fast.mean_score, fast.markov_intensity

    def gaussian_field(
        self, n_models: int, seed: int | np.random.SeedSequence = 0, part: str = "total"
    ) -> LinearField:
        """``W ~ N(W_inf, Cov W(P))`` (:meth:`LinearTheory.sample_weights`); member ``n`` draws
        from ``stream(seed, "field").spawn(N)[n]``."""
        W = self.theory.sample_weights(self.P, n_models, seed=seed, part=part)
        return _field(self.theory, W, self.P, seed)

    # -- persistence ----------------------------------------------------------------------------
    def config(self) -> dict:
        return {"kind": self._KIND, "P": self.P, "theory": self.theory.config()}

    def _files(self, path: str | Path) -> tuple[Path, dict]:
        path = Path(path)
        stem = path.with_suffix("") if path.suffix == ".npz" else path
        th = self.theory.save(stem.with_name(stem.name + "_theory.npz"))
        return stem, {"kind": self._KIND, "P": self.P, "theory_file": th.name}

    def save(self, path: str | Path) -> Path:
        """``path.npz`` (``P``) and the population theory in ``path_theory.npz``."""
        stem, cfg = self._files(path)
        return save_result(stem, {}, cfg)

    @classmethod
    def load(cls, path: str | Path) -> FirstOrderLinear:
        _, cfg = load_result_of_kind(path, cls._KIND, f"a {cls.__name__}")
        with result_file(path, cls.__name__):
            return cls(LinearTheory.load(Path(path).with_name(cfg["theory_file"])), cfg["P"])


class _CorrectedLinear(FirstOrderLinear):
    """Shared by the theories whose mean and covariance replace the first order's: the score and
    the V-kernel follow from their :meth:`mean_denoiser` and :meth:`denoiser_covariance`."""

    def mean_score(self, x: object, t: object) -> np.ndarray:
        xx, tt = check_query_pair((x, t), "z", self.dim, self.schedule)
        s = self.schedule
        return s.score_mean_coeff(tt)[:, None] * self.mean_denoiser(xx, tt) - (
            s.inv_sigma2(tt)[:, None] * xx
        )

    def v_kernel(
        self, z: object, z2: object = None, *, part: str = "total", paired: bool = False
    ) -> np.ndarray:
        cov = self.denoiser_covariance(z, z2, part=part, paired=paired)
        _, t1 = check_query_pair(z, "z", self.dim, self.schedule)
        t2 = t1 if z2 is None else check_query_pair(z2, "z2", self.dim, self.schedule)[1]
        c1, c2 = self.score_factor(t1), self.score_factor(t2)
        if paired:
            return cov * (c1 * c2)[:, None, None]
        return cov * c1[:, None, None, None] * c2[None, :, None, None]


class SecondOrderLinear(_CorrectedLinear):
    """:class:`LinearTheory` at ``P`` with the ``O(1/P**2)`` corrections (module docstring).

    Parameters
    ----------
    theory : LinearTheory
    moments : SecondOrderMoments
        :func:`gtv.numerics.linear.second_order.second_order_moments` of ``theory``.
    P : float
    """

    _KIND = "second_order_linear"

    def __init__(self, theory: LinearTheory, moments: SecondOrderMoments, P: float):
        super().__init__(theory, P)
        if not isinstance(moments, SecondOrderMoments):
            raise TypeError("moments must be a SecondOrderMoments")
        if moments.n_features != theory.n_features or moments.dim != theory.dim:
            raise ValueError("moments: moments of a different feature set or dimension")
        self.moments = moments
        self._raw: tuple[np.ndarray, np.ndarray] | None = None

    @staticmethod
    def _total(part: str) -> None:
        if part != "total":
            raise ValueError(
                f"part must be 'total' for the second-order theory (no proxy/misfit split of "
                f"the 1/P**2 term), got {part!r}"
            )

    def _corrections(self) -> tuple[np.ndarray, np.ndarray]:
        """``(dW, C2)`` of :meth:`SecondOrderMoments.weight_moments` at this ``P`` (cached)."""
        if self._raw is None:
            self._raw = self.moments.weight_moments(self.P)
        return self._raw

    def weight_moments(self) -> tuple[np.ndarray, np.ndarray]:
        """``(W_inf + dW, Cov W(P) + C2)`` (D = 1)."""
        dW, C2 = self._corrections()
        return self.theory.W_inf + dW, self.theory.cov_W(self.P) + C2

    def _c2(self) -> np.ndarray:
        return self._corrections()[1]

    def mean_denoiser(self, x: object, t: object) -> np.ndarray:
        """``D_bar + mean_correction`` (:meth:`SecondOrderMoments.denoiser_moments`)."""
        corr = self.moments.denoiser_moments((x, t), self.P)[0]
        return self.theory.mean_denoiser(x, t) + corr

    def denoiser_covariance(
        self, z: object, z2: object = None, *, part: str = "total", paired: bool = False
    ) -> np.ndarray:
        """``var_first + var_second`` of :meth:`SecondOrderMoments.denoiser_moments` for
        ``z2 = None, paired=True``; otherwise the first-order covariance plus
        ``phi(z)^T C2 phi(z2)`` (D = 1)."""
        self._total(part)
        if z2 is None and paired:
            _, v1, v2 = self.moments.denoiser_moments(z, self.P)
            return v1 + v2
        first = self.theory.denoiser_covariance(z, z2, self.P, part, paired)
        _check_1d(self.theory)
        x1, t1 = check_query_pair(z, "z", 1, self.schedule)
        x2, t2 = (x1, t1) if z2 is None else check_query_pair(z2, "z2", 1, self.schedule)
        phi1 = self.theory.features.evaluate(x1, t1)
        phi2 = self.theory.features.evaluate(x2, t2)
        C2 = self._c2()
        if paired:
            return first + np.einsum("if,fg,ig->i", phi1, C2, phi2)[:, None, None]
        return first + (phi1 @ C2 @ phi2.T)[:, :, None, None]

    def markov_intensity(self, x: object, t: object, *, part: str = "total") -> np.ndarray:
        """First-order ``Q`` plus ``c_t phi(x, t)^T C2 (phi_space(x) (x) h)`` (D = 1)."""
        self._total(part)
        first = self.theory.markov_intensity(x, t, self.P, part)
        _check_1d(self.theory)
        xx, tt = check_query_pair((x, t), "z", 1, self.schedule)
        phi = self.theory.features.evaluate(xx, tt)
        h = _markov_time_features(self.theory)
        psi2 = (self.theory.features.evaluate_space(xx)[:, :, None] * h[None, None, :]).reshape(
            xx.shape[0], -1
        )
        q2 = np.einsum("if,fg,ig->i", phi, self._c2(), psi2) * self.score_factor(tt)
        return first + q2[:, None, None]

    def gaussian_field(
        self, n_models: int, seed: int | np.random.SeedSequence = 0, part: str = "total"
    ) -> LinearField:
        """``W ~ N(W_inf + dW, Cov W(P) + C2)`` (:meth:`LinearTheory.sample_weights` with
        ``mean_shift`` and ``extra_cov``); the same per-member streams as the first order."""
        self._total(part)
        dW, C2 = self._corrections()
        W = self.theory.sample_weights(self.P, n_models, seed=seed, mean_shift=dW, extra_cov=C2)
        return _field(self.theory, W, self.P, seed)

    def save(self, path: str | Path) -> Path:
        """``path.npz`` (``P``), the theory in ``path_theory.npz`` and the moments in
        ``path_moments.npz``."""
        stem, cfg = self._files(path)
        mom = self.moments.save(stem.with_name(stem.name + "_moments.npz"))
        return save_result(stem, {}, {**cfg, "moments_file": mom.name})

    @classmethod
    def load(cls, path: str | Path) -> SecondOrderLinear:
        _, cfg = load_result_of_kind(path, cls._KIND, f"a {cls.__name__}")
        with result_file(path, cls.__name__):
            theory = LinearTheory.load(Path(path).with_name(cfg["theory_file"]))
            moments = SecondOrderMoments.load(Path(path).with_name(cfg["moments_file"]))
            return cls(theory, moments, cfg["P"])


class CavityLinear(_CorrectedLinear):
    """:class:`LinearTheory` at ``P`` with the finite-P cavity moments (D = 1).

    ``E W = W_bar`` and ``Cov(vec W) = cov_W`` of a
    :class:`~gtv.numerics.linear.cavity.CavityMoments` (docs/math/finite_fp.md); every
    prediction is built on them. The field it predicts is either the Gaussian
    ``W ~ N(W_bar, cov_W)`` (``field="gaussian"``, the same sampler and streams as the other
    theories), the non-Gaussian cavity field of
    :func:`~gtv.numerics.linear.cavity.sample_cavity_weights` (``field="cavity"``: each member a
    sum of ``P`` saturated single-triple terms) or the small-occupancy field of
    :func:`~gtv.numerics.linear.occupancy.sample_occupancy_weights` (``field="occupancy"``: heavy
    triples exact, light ones by their cavity equivalent; ``field="stratified"``: the same with
    the light part conditioned on the member's light triples per ``(t, x)`` cell, the cells of
    :data:`gtv.numerics.linear.strata.STRATA`; ``field="consistent"``: the occupancy field with
    each member's heavy set closed under its own leverage). The moments (mean, covariance,
    V-kernel, Markov intensity) are the cavity moments whatever the field. The covariance has no
    proxy/misfit split: ``part`` must be ``"total"``.

    Parameters
    ----------
    theory : LinearTheory
    moments : CavityMoments
        :func:`gtv.numerics.linear.cavity.cavity_moments` of ``theory`` (its ``P`` is used).
    field : {"gaussian", "cavity", "occupancy", "stratified", "consistent"}, default "gaussian"
    nodes : PopulationNodes, optional
        The quadrature nodes of ``theory`` (:func:`~gtv.numerics.linear.nodes.population_nodes`),
        reused by the occupancy fields instead of being recomputed.
    split : OccupancySplit, optional
        The occupancy fields' split (:func:`~gtv.numerics.linear.occupancy.occupancy_split` at
        ``moments``; e.g. another ``q_star`` or cells); default: computed on first use.
    exact_below : float, default 0
        The occupancy fields keep every triple with ``t < exact_below`` exact
        (:func:`~gtv.numerics.linear.occupancy.occupancy_split`); must match ``split``'s.
    """

    _KIND = "cavity_linear"

    def __init__(
        self,
        theory: LinearTheory,
        moments: CavityMoments,
        field: str = "gaussian",
        nodes: PopulationNodes | None = None,
        *,
        split: OccupancySplit | None = None,
        exact_below: float = 0.0,
    ):
        super().__init__(theory, moments.P if isinstance(moments, CavityMoments) else 1)
        if not isinstance(moments, CavityMoments):
            raise TypeError("moments must be a CavityMoments")
        _check_1d(theory)
        if moments.W_bar.shape != (1, theory.n_features):
            raise ValueError("moments: moments of a different feature set")
        self.field = check_choice(field, "field", FIELDS)
        self.moments = moments
        if nodes is not None and not isinstance(nodes, PopulationNodes):
            raise TypeError("nodes must be a PopulationNodes (from population_nodes)")
        self._nodes = nodes
        self.exact_below = check_nonnegative_time(exact_below, "exact_below")
        if self.exact_below > 0 and self.field not in OCCUPANCY_FIELDS:
            raise ValueError(f"exact_below: only for the occupancy fields, not field={field!r}")
        if split is not None:
            if not isinstance(split, OccupancySplit):
                raise TypeError("split must be an OccupancySplit (from occupancy_split)")
            if self.field not in OCCUPANCY_FIELDS:
                raise ValueError(f"split: only for the occupancy fields, not field={field!r}")
            if split.A_light.size != theory.n_features:
                raise ValueError("split: the split of a different feature set")
            if split.exact_below != self.exact_below:
                raise ValueError(
                    f"split: made with exact_below={split.exact_below:g}, the theory has "
                    f"{self.exact_below:g}"
                )
            if split.consistent != (self.field == "consistent"):
                raise ValueError(
                    "split: field='consistent' needs a split made with consistent=True, and the "
                    "other occupancy fields one made without"
                )
        self._split: OccupancySplit | None = split

    def __repr__(self) -> str:
        below = f", exact_below={self.exact_below!r}" if self.exact_below else ""
        return (
            f"CavityLinear(LinearTheory(F={self.theory.n_features}), P={self.P!r}, "
            f"field={self.field!r}{below})"
        )

    @staticmethod
    def _total(part: str) -> None:
        if part != "total":
            raise ValueError(f"part must be 'total' for the cavity theory, got {part!r}")

    def weight_moments(self) -> tuple[np.ndarray, np.ndarray]:
        """``(W_bar, cov_W)``."""
        return self.moments.W_bar, self.moments.cov_W

    def _phi(self, z: object, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x, t = check_query_pair(z, name, 1, self.schedule)
        return x, t, self.theory.features.evaluate(x, t)

    def mean_denoiser(self, x: object, t: object) -> np.ndarray:
        _, _, phi = self._phi((x, t), "z")
        return (phi @ self.moments.W_bar[0])[:, None]

    def denoiser_covariance(
        self, z: object, z2: object = None, *, part: str = "total", paired: bool = False
    ) -> np.ndarray:
        """``phi(z)^T cov_W phi(z2)``: (n, 1, 1) when ``paired``, else (n, n2, 1, 1)."""
        self._total(part)
        _, _, phi1 = self._phi(z, "z")
        phi2 = phi1 if z2 is None else self._phi(z2, "z2")[2]
        C = self.moments.cov_W
        if paired:
            if phi1.shape != phi2.shape:
                raise ValueError("z2: paired=True needs as many points as z")
            return np.einsum("if,fg,ig->i", phi1, C, phi2)[:, None, None]
        return (phi1 @ C @ phi2.T)[:, :, None, None]

    def markov_intensity(self, x: object, t: object, *, part: str = "total") -> np.ndarray:
        """``Q(x, t)`` from ``cov_W`` (the product-structure evaluation of the other theories)."""
        self._total(part)
        xx, tt, _ = self._phi((x, t), "z")
        fast = _SeparableCoefficients(self.theory, *self.weight_moments())
        out = np.array([fast.markov_intensity(xx[i : i + 1], tt[i])[0] for i in range(len(tt))])
        return out[:, None, None]

    def _occupancy_split(self) -> OccupancySplit:
        """The occupancy fields' split, made once per bound theory."""
        if self._split is None:
            strata = STRATA if self.field == "stratified" else None
            self._split = occupancy_split(
                self.theory, self.moments, nodes=self._nodes, strata=strata,
                consistent=self.field == "consistent", exact_below=self.exact_below,
            )  # fmt: skip
        return self._split

    def gaussian_field(
        self, n_models: int, seed: int | np.random.SeedSequence = 0, part: str = "total"
    ) -> LinearField:
        """The predicted field (class docstring); member ``n`` draws from
        ``stream(seed, "field").spawn(N)[n]``."""
        self._total(part)
        if self.field == "cavity":
            W = sample_cavity_weights(self.theory, self.moments, n_models, seed)
            return _field(self.theory, W, self.P, seed)
        if self.field in OCCUPANCY_FIELDS:
            W = sample_occupancy_weights(
                self.theory, self.moments, n_models, seed, split=self._occupancy_split()
            )
            return _field(self.theory, W, self.P, seed)
        W_bar, C = self.weight_moments()
        W = self.theory.sample_weights(
            self.P, n_models, seed=seed, mean_shift=W_bar - self.theory.W_inf,
            extra_cov=C - self.theory.cov_W(self.P),
        )  # fmt: skip
        return _field(self.theory, W, self.P, seed)

    def config(self) -> dict:
        return {**super().config(), "field": self.field, "exact_below": self.exact_below}

    def save(self, path: str | Path) -> Path:
        """``path.npz``, the theory in ``path_theory.npz``, the moments in ``path_moments.npz``."""
        stem, cfg = self._files(path)
        mom = self.moments.save(stem.with_name(stem.name + "_moments.npz"))
        return save_result(
            stem, {},
            {**cfg, "moments_file": mom.name, "field": self.field, "exact_below": self.exact_below},
        )  # fmt: skip

    @classmethod
    def load(cls, path: str | Path) -> CavityLinear:
        _, cfg = load_result_of_kind(path, cls._KIND, f"a {cls.__name__}")
        with result_file(path, cls.__name__):
            theory = LinearTheory.load(Path(path).with_name(cfg["theory_file"]))
            moments = CavityMoments.load(Path(path).with_name(cfg["moments_file"]))
            return cls(theory, moments, cfg["field"], exact_below=cfg.get("exact_below", 0.0))


def occupancy_fields_together(
    fields: Sequence[CavityLinear], n_models: int, seed: int | np.random.SeedSequence = 0
) -> list[LinearField]:
    """``[f.gaussian_field(n_models, seed) for f in fields]`` for occupancy fields of one theory
    and one set of moments that differ by their split (e.g. a ladder of ``exact_below``): the
    same members, drawn together so that each member's triples, features and leverages are made
    once (:func:`gtv.numerics.linear.occupancy.sample_occupancy_weights_ladder`). Stratified
    fields, or fields of different theories, are drawn one by one."""
    fields = list(fields)
    if not fields or not all(isinstance(f, CavityLinear) for f in fields):
        raise TypeError("fields must be a non-empty sequence of CavityLinear")
    first = fields[0]
    shared = all(
        f.field in ("occupancy", "consistent") and f.theory is first.theory
        and f.moments is first.moments
        for f in fields
    )  # fmt: skip
    if not shared:
        return [f.gaussian_field(n_models, seed) for f in fields]
    W = sample_occupancy_weights_ladder(
        first.theory, first.moments, [f._occupancy_split() for f in fields], n_models, seed
    )
    return [_field(first.theory, W[r], first.P, seed) for r in range(len(fields))]
