"""The finite-P kernel theory at one training time and budget (theory contract).

:class:`FiniteKernelTheoryAt` is the counterpart of
:class:`gtv.numerics.kernel.prediction.KernelTheoryAt` with the moments of the cavity
deterministic equivalent (:class:`gtv.numerics.kernel.finite_p.FiniteKernelMoments`,
docs/math/kernel.md "Finite P") instead of the first-order ones. It implements
:class:`gtv.numerics.contract.EnsembleTheory` in the same eigen-coordinates: the mean
``D_bar(z) = psi(z) . m``, ``Cov = psi(z)^T C psi(z')``, the V-kernel, the Markov intensity and a
Gaussian field ``D^_n(z) = Theta(z, N)(a + W^(1/2) U xi_n)``, ``xi_n ~ N(0, C)``. D = 1.

Streams: as :class:`~gtv.numerics.kernel.prediction.KernelTheoryAt` (``"field"``,
``"field-sampling"``, :mod:`gtv.numerics.streams`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gtv.numerics.cells import STRATA
from gtv.numerics.checks import check_count, check_query_pair, check_query_points
from gtv.numerics.contract import BoundTheory
from gtv.numerics.io import load_result_of_kind, result_file, save_result
from gtv.numerics.kernel.ensemble import KernelEnsemble
from gtv.numerics.kernel.finite_p import FiniteKernelMoments
from gtv.numerics.kernel.gram import ntk_gram, serial_blas
from gtv.numerics.kernel.occupancy import KernelOccupancySplit, kernel_occupancy_coefficients
from gtv.numerics.kernel.prediction import KernelField
from gtv.numerics.kernel.strata import KernelStrata, kernel_stratified_coefficients
from gtv.numerics.kernel.theory import NTKTheory, check_part
from gtv.numerics.streams import check_seed, model_rngs

__all__ = ["FiniteKernelTheoryAt"]


class FiniteKernelTheoryAt(BoundTheory):
    """:class:`NTKTheory` nodes with finite-P (cavity) moments at ``tau`` and ``P``.

    Parameters
    ----------
    theory : NTKTheory
        D = 1.
    tau : float
        Training time ``> 0``.
    P : float
        DSM triples per model.
    n_poles : int
        Talbot poles of the filter (:func:`gtv.numerics.kernel.finite_p.filter_poles`).
    """

    def __init__(self, theory: NTKTheory, tau: float, P: float, *, n_poles: int = 16):
        if not isinstance(theory, NTKTheory):
            raise TypeError("theory must be an NTKTheory")
        self.theory = theory
        self.moments = FiniteKernelMoments(theory, tau, P, n_poles=n_poles)
        self.tau = self.moments.tau
        self.P = self.moments.P
        self.n_poles = int(n_poles)
        self._R: tuple | None = None

    def __repr__(self) -> str:
        return (
            f"FiniteKernelTheoryAt(NTKTheory(rank={self.theory.rank}), tau={self.tau!r}, "
            f"P={self.P!r})"
        )

    def effective_dimension(self) -> float:
        """Population ``d_eff(tau)`` (:meth:`NTKTheory.effective_dimension`)."""
        return float(self.theory.effective_dimension(self.tau))

    def max_leverage(self) -> float:
        """Largest cavity leverage ``|q|`` (:meth:`FiniteKernelMoments.max_leverage`)."""
        return self.moments.max_leverage()

    # -- moments --------------------------------------------------------------------------------
    def _split(self, z: object, argname: str) -> tuple[np.ndarray, np.ndarray]:
        return check_query_pair(z, argname, self.dim, self.schedule)

    def mean_denoiser(self, x: object, t: object) -> np.ndarray:
        xx, tt = self._split((x, t), "z")
        return (self.theory.features(xx, tt) @ self.moments.mean)[:, None]

    def mean_score(self, x: object, t: object) -> np.ndarray:
        xx, tt = self._split((x, t), "z")
        s = self.schedule
        dbar = self.mean_denoiser(xx, tt)
        return s.score_mean_coeff(tt)[:, None] * dbar - s.inv_sigma2(tt)[:, None] * xx

    def denoiser_covariance(
        self, z: object, z2: object = None, *, part: str = "total", paired: bool = False
    ) -> np.ndarray:
        C = self.moments.covariance(check_part(part))
        x1, t1 = self._split(z, "z")
        psi1 = self.theory.features(x1, t1)
        if z2 is None:
            psi2 = psi1
        else:
            x2, t2 = self._split(z2, "z2")
            psi2 = self.theory.features(x2, t2)
        if paired:
            if psi1.shape[0] != psi2.shape[0]:
                raise ValueError(
                    "z2: with paired=True z and z2 must have the same number of points"
                )
            return np.einsum("ik,kl,il->i", psi1, C, psi2)[:, None, None]
        return (psi1 @ C @ psi2.T)[:, :, None, None]

    def score_factor(self, t: object) -> np.ndarray:
        return self.theory.score_factor(t)

    def v_kernel(
        self, z: object, z2: object = None, *, part: str = "total", paired: bool = False
    ) -> np.ndarray:
        cov = self.denoiser_covariance(z, z2, part=part, paired=paired)
        _, t1 = self._split(z, "z")
        _, t2 = self._split(z if z2 is None else z2, "z2")
        c1, c2 = self.score_factor(t1), self.score_factor(t2)
        if paired:
            return cov * (c1 * c2)[:, None, None]
        return cov * c1[:, None, None, None] * c2[None, :, None, None]

    def markov_intensity(self, x: object, t: object, *, part: str = "total") -> np.ndarray:
        """``Q(x, t) = int_eps^T V(x, t; x, t') dt'`` (n, 1, 1), by the theory's time rule."""
        xx, tt = self._split((x, t), "z")
        C = self.moments.covariance(check_part(part))
        h = self.theory.markov_time_features(xx)
        q = np.einsum("ik,kl,il->i", self.theory.features(xx, tt), C, h)
        return (q * self.score_factor(tt))[:, None, None]

    def white_noise_coefficients(self):
        """``(mean_score, intensity)`` in node space for a 1-D solver (cached per point set)."""
        th = self.theory
        a = self.moments.node_mean()[:, 0]
        C = self.moments.covariance()
        s = th.schedule

        def gram(x: np.ndarray, t: float) -> np.ndarray:
            return ntk_gram(th.inputs(x, float(t)), th.nodes_z, th.activation)

        @serial_blas
        def mean_score(x: np.ndarray, t: float) -> np.ndarray:
            x = np.asarray(x, dtype=float).reshape(-1, 1)
            dbar = gram(x, t) @ a
            return (float(s.score_mean_coeff(t)) * dbar - float(s.inv_sigma2(t)) * x[:, 0])[:, None]

        @serial_blas
        def intensity(x: np.ndarray, t: float) -> np.ndarray:
            x = check_query_points(np.asarray(x, dtype=float).reshape(-1, 1), "x", 1)
            key = (x.shape, x.tobytes())
            if self._R is None or self._R[0] != key:
                h = th.markov_time_features(x)
                self._R = (key, np.ascontiguousarray(th.basis @ (C @ h.T)))
            q = np.einsum("nq,qn->n", gram(x, t), self._R[1])
            return q * float(th.score_factor(float(t)))

        return mean_score, intensity

    # -- Gaussian field -------------------------------------------------------------------------
    @serial_blas
    def gaussian_field(
        self, n_models: int, seed: int | np.random.SeedSequence = 0, part: str = "total"
    ) -> KernelField:
        """N denoisers ``Theta(z, N)(a + W^1/2 U xi_n)``, ``xi_n ~ N(0, C)`` (member ``n`` from
        ``stream(seed, "field").spawn(N)[n]``; ``config["kind"] = "gaussian-field"``)."""
        n_models = check_count(n_models, "n_models")
        seed = check_seed(seed)
        part = check_part(part)
        th = self.theory
        ev, vecs = np.linalg.eigh(self.moments.covariance(part))
        Lc = vecs * np.sqrt(np.clip(ev, 0.0, None))[None, :]
        a = self.moments.node_mean()
        coeffs = np.empty((n_models, 1, th.n_nodes, 1))
        for n, rng in enumerate(model_rngs(seed, "field", n_models)):
            xi = Lc @ rng.standard_normal(th.rank)
            coeffs[n, 0] = a + (th.basis @ xi)[:, None]
        cfg = {
            "kind": "gaussian-field",
            "P": self.P,
            "part": part,
            "theory_kind": "finite-p",
            "seed": seed if isinstance(seed, int) else -1,
            "theory": th.config(),
        }
        ens = KernelEnsemble(
            th.nodes_z[None], coeffs, np.array([self.tau]), th.activation, th.data, th.schedule,
            th.eps, th.embedding, th.bias, cfg,
        )  # fmt: skip
        return KernelField(ens)

    def occupancy_field(
        self,
        n_models: int,
        seed: int | np.random.SeedSequence = 0,
        *,
        q_star: float = 1.0,
        exact_below: float = 0.0,
    ) -> KernelField:
        """N members of the small-occupancy field (:mod:`gtv.numerics.kernel.occupancy`: nodes
        whose triples have self-influence above ``q_star / (1 + q_star)``, and every node with
        ``t < exact_below``, kept exactly, the rest by their per-pole cavity equivalent); member
        ``n`` from ``stream(seed, "field").spawn(N)[n]``; ``config["kind"] =
        "occupancy-field"``."""
        n_models = check_count(n_models, "n_models")
        seed = check_seed(seed)
        split = KernelOccupancySplit(self.moments, q_star, exact_below)
        c = kernel_occupancy_coefficients(split, n_models, seed)
        extra = {"q_star": float(q_star), "exact_below": split.exact_below}
        return self._member_field(c, "occupancy-field", seed, extra)

    def stratified_field(
        self,
        n_models: int,
        seed: int | np.random.SeedSequence = 0,
        *,
        q_star: float = 1.0,
        strata: tuple[int, int] = STRATA,
        centre: bool = True,
        exact_below: float = 0.0,
    ) -> KernelField:
        """N members of the stratified field (:mod:`gtv.numerics.kernel.strata`: the occupancy
        field with each member's light nodes weighted by its own counts per ``(t, x)`` cell,
        centred on the cavity mean unless ``centre=False``; every node with ``t < exact_below``
        heavy); member ``n`` from ``stream(seed, "field").spawn(N)[n]``; ``config["kind"] =
        "stratified-field"``."""
        n_models = check_count(n_models, "n_models", 2 if centre else 1)
        seed = check_seed(seed)
        cells = KernelStrata(KernelOccupancySplit(self.moments, q_star, exact_below), strata)
        c = kernel_stratified_coefficients(cells, n_models, seed, centre=centre)
        extra = {
            "q_star": float(q_star),
            "strata": [int(v) for v in cells.grid.shape],
            "centre": bool(centre),
            "exact_below": cells.split.exact_below,
        }
        return self._member_field(c, "stratified-field", seed, extra)

    def _member_field(self, c: np.ndarray, kind: str, seed: object, extra: dict) -> KernelField:
        """A :class:`KernelField` of members with eigen-coefficients ``c`` (N, r)."""
        th = self.theory
        coeffs = (c @ th.basis.T)[:, None, :, None]  # node coefficients (N, 1, Q, 1)
        cfg = {
            "kind": kind,
            "P": self.P,
            **extra,
            "theory_kind": "finite-p",
            "seed": seed if isinstance(seed, int) else -1,
            "theory": th.config(),
        }
        ens = KernelEnsemble(
            th.nodes_z[None], np.ascontiguousarray(coeffs), np.array([self.tau]), th.activation,
            th.data, th.schedule, th.eps, th.embedding, th.bias, cfg,
        )  # fmt: skip
        return KernelField(ens)

    # -- persistence ----------------------------------------------------------------------------
    def config(self) -> dict:
        return {
            "kind": "finite_kernel_theory_at",
            "tau": self.tau,
            "P": self.P,
            "n_poles": self.n_poles,
            **self.theory.config(),
        }

    def save(self, path: str | Path) -> Path:
        """``path.npz`` (tau, P, n_poles) and the population theory in ``path_theory.npz``."""
        path = Path(path)
        stem = path.with_suffix("") if path.suffix == ".npz" else path
        th_path = self.theory.save(stem.with_name(stem.name + "_theory.npz"))
        cfg = {
            "kind": "finite_kernel_theory_at",
            "tau": self.tau,
            "P": self.P,
            "n_poles": self.n_poles,
            "theory_file": th_path.name,
        }
        return save_result(stem, {}, cfg)

    @classmethod
    def load(cls, path: str | Path) -> FiniteKernelTheoryAt:
        _, cfg = load_result_of_kind(path, "finite_kernel_theory_at", "a FiniteKernelTheoryAt")
        with result_file(path, "FiniteKernelTheoryAt"):
            theory = NTKTheory.load(Path(path).with_name(cfg["theory_file"]))
            return cls(theory, cfg["tau"], cfg["P"], n_poles=cfg["n_poles"])
