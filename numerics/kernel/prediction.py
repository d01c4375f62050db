"""The kernel (NTK) theory at one training time and budget: the theory contract for lazy networks.

:class:`KernelTheoryAt` binds an :class:`~gtv.numerics.kernel.theory.NTKTheory` (which takes
``tau`` and ``P`` per call) to one training time ``tau`` and ``P`` DSM triples per model and
implements :class:`gtv.numerics.contract.EnsembleTheory`: every method forwards to the per-call
method of the same name, so the two agree to the last digit. Its Gaussian field draws
``xi_n ~ N(0, C/P)`` per model in the theory's eigen-coordinates; member ``n`` is the kernel
expansion ``D^_n(z) = Theta(z, N)(a_tau + W^(1/2) U xi_n)`` (docs/math/kernel.md,
docs/math/predictions.md), sampled with the PF-ODE like a trained kernel ensemble.

Streams: the field's weights ``stream(seed, "field").spawn(N)[n]``, its PF-ODE start points
``stream(seed, "field-sampling").spawn(N)[n]`` (:mod:`gtv.numerics.streams`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gtv.numerics.checks import check_count, check_samples_per_model
from gtv.numerics.contract import BoundTheory
from gtv.numerics.io import load_result_of_kind, result_file, save_result
from gtv.numerics.kernel.ensemble import KernelEnsemble
from gtv.numerics.kernel.gram import ntk_gram, serial_blas
from gtv.numerics.kernel.theory import NTKTheory, check_part
from gtv.numerics.pfode import initial_points
from gtv.numerics.streams import check_seed, model_rngs

__all__ = ["KernelField", "KernelTheoryAt"]


class KernelField:
    """A Gaussian field of kernel denoisers at one ``tau``.

    Implements :class:`gtv.numerics.contract.FieldEnsemble`.

    Attributes
    ----------
    ensemble : KernelEnsemble
        The members (one ``tau``, centres shared by all members).
    """

    def __init__(self, ensemble: KernelEnsemble):
        if not isinstance(ensemble, KernelEnsemble) or ensemble.taus.size != 1:
            raise TypeError("ensemble must be a KernelEnsemble with one tau")
        self.ensemble = ensemble

    @property
    def n_models(self) -> int:
        return self.ensemble.n_models

    @property
    def dim(self) -> int:
        return self.ensemble.dim

    @property
    def coeffs(self) -> np.ndarray:
        """Kernel coefficients (N, 1, Q, D)."""
        return self.ensemble.coeffs

    def denoise(self, x: object, t: object) -> np.ndarray:
        """``D^_n(x, t)`` of every member: (N, n, D)."""
        return self.ensemble.denoiser(x, t)

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
        """PF-ODE samples (N, n_samples, D); member ``n`` starts from
        ``stream(seed, "field-sampling").spawn(N)[n]``.

        Explicit start points ``x_T`` (N, n_samples, D) replace the random ones (``seed`` is then
        unused); with ``models`` (R,), ``x_T`` is (R, n_samples, D) and row ``r`` is carried by
        member ``models[r]`` (:meth:`KernelEnsemble.sample`; e.g. the refinement rows of
        :func:`gtv.numerics.transport.transport_1d`)."""
        ens = self.ensemble
        if x_T is None:
            if models is not None:
                raise ValueError("models needs explicit start points x_T")
            x_T = initial_points(
                None, seed, ens.n_models, check_count(n_samples, "n_samples"), ens.dim,
                ens.schedule, stream="field-sampling",
            )  # fmt: skip
        return ens.sample(n_samples, n_steps=n_steps, method=method, x_T=x_T, models=models)


class _CachedCoefficients:
    """``s_avg`` and ``Q`` for the solver in node space (no (n, Q) x (Q, r) products per step).

    ``D_bar(x, t) = Theta(z, N) a_tau`` and ``Q(x, t) = c_t sum_q Theta(z, z_q) R[q, x]`` with
    ``R = basis C h(x)^T`` (``h`` from :meth:`NTKTheory.markov_time_features`); the solver
    evaluates at fixed faces / centres every step, so ``R`` is computed once per point set.
    """

    def __init__(self, theory: NTKTheory, tau: float, P: float):
        self.th = theory
        r = theory.rank
        self.C = theory.coefficient_covariance(tau, P).reshape(r, r)  # D = 1
        self.a = theory.node_coefficients(tau)[:, 0]
        self._R: tuple | None = None

    def _gram(self, x: np.ndarray, t: float) -> np.ndarray:
        z = self.th.inputs(x, float(t))
        return ntk_gram(z, self.th.nodes_z, self.th.activation)

    @serial_blas
    def mean_score(self, x: np.ndarray, t: float) -> np.ndarray:
        x = np.asarray(x, dtype=float).reshape(-1, 1)
        s = self.th.schedule
        dbar = self._gram(x, t) @ self.a
        return (float(s.score_mean_coeff(t)) * dbar - float(s.inv_sigma2(t)) * x[:, 0])[:, None]

    @serial_blas
    def markov_intensity(self, x: np.ndarray, t: float) -> np.ndarray:
        x = np.asarray(x, dtype=float).reshape(-1, 1)
        key = (x.shape, x.tobytes())
        if self._R is None or self._R[0] != key:
            h = self.th.markov_time_features(x)  # (n, r)
            self._R = (key, np.ascontiguousarray(self.th.basis @ (self.C @ h.T)))  # (Q, n)
        q = np.einsum("nq,qn->n", self._gram(x, t), self._R[1])
        return q * float(self.th.score_factor(float(t)))


class KernelTheoryAt(BoundTheory):
    """:class:`NTKTheory` at training time ``tau`` and ``P`` triples per model (module docstring).

    Parameters
    ----------
    theory : NTKTheory
    tau : float
        Training time (``inf``: the converged limit; for gradient descent ``tau / lr`` must be
        a whole number of steps).
    P : float
        DSM triples per model.
    """

    def __init__(self, theory: NTKTheory, tau: float, P: float):
        if not isinstance(theory, NTKTheory):
            raise TypeError("theory must be an NTKTheory")
        self.theory = theory
        self.tau = theory.check_training_time(tau)
        self.P = check_samples_per_model(P, required=True)

    def __repr__(self) -> str:
        return f"KernelTheoryAt(NTKTheory(rank={self.theory.rank}), tau={self.tau!r}, P={self.P!r})"

    def effective_dimension(self) -> float:
        """``d_eff(tau)`` (:meth:`NTKTheory.effective_dimension`); the theory needs
        ``d_eff << P``."""
        return float(self.theory.effective_dimension(self.tau))

    # -- moments --------------------------------------------------------------------------------
    def mean_denoiser(self, x: object, t: object) -> np.ndarray:
        return self.theory.mean_denoiser(x, t, self.tau)

    def mean_score(self, x: object, t: object) -> np.ndarray:
        return self.theory.mean_score(x, t, self.tau)

    def denoiser_covariance(
        self, z: object, z2: object = None, *, part: str = "total", paired: bool = False
    ) -> np.ndarray:
        return self.theory.denoiser_covariance(
            z, z2, tau=self.tau, P=self.P, part=part, paired=paired
        )

    def score_factor(self, t: object) -> np.ndarray:
        return self.theory.score_factor(t)

    def v_kernel(
        self, z: object, z2: object = None, *, part: str = "total", paired: bool = False
    ) -> np.ndarray:
        return self.theory.v_kernel(z, z2, tau=self.tau, P=self.P, part=part, paired=paired)

    def markov_intensity(self, x: object, t: object, *, part: str = "total") -> np.ndarray:
        return self.theory.markov_intensity(x, t, tau=self.tau, P=self.P, part=part)

    def white_noise_coefficients(self):
        """``(mean_score, intensity)`` cached in node space for a 1-D solver (D = 1)."""
        if self.dim != 1:
            raise ValueError(f"theory: only 1-D data is supported here, got D = {self.dim}")
        fast = _CachedCoefficients(self.theory, self.tau, self.P)
        return fast.mean_score, fast.markov_intensity

    # -- Gaussian field -------------------------------------------------------------------------
    @serial_blas
    def gaussian_field(
        self, n_models: int, seed: int | np.random.SeedSequence = 0, part: str = "total"
    ) -> KernelField:
        """N denoisers ``Theta(z, N)(a_tau + W^1/2 U xi_n)``, ``xi_n ~ N(0, C/P)``.

        Member ``n`` draws from ``stream(seed, "field").spawn(N)[n]``; the covariance is
        factorized by an eigendecomposition (round-off negative eigenvalues clipped). The
        members form a :class:`KernelEnsemble` with one ``tau`` (``config["kind"] =
        "gaussian-field"``).
        """
        n_models = check_count(n_models, "n_models")
        seed = check_seed(seed)
        part = check_part(part)
        th, tau = self.theory, self.tau
        r, D = th.rank, th.dim
        C = th.coefficient_covariance(tau, self.P, part).reshape(r * D, r * D)
        ev, vecs = np.linalg.eigh(C)
        Lc = vecs * np.sqrt(np.clip(ev, 0.0, None))[None, :]
        a = th.node_coefficients(tau)
        coeffs = np.empty((n_models, 1, th.n_nodes, D))
        for n, rng in enumerate(model_rngs(seed, "field", n_models)):
            xi = (Lc @ rng.standard_normal(r * D)).reshape(r, D)
            coeffs[n, 0] = a + th.basis @ xi
        cfg = {
            "kind": "gaussian-field",
            "P": self.P,
            "part": part,
            "seed": seed if isinstance(seed, int) else -1,
            "theory": th.config(),
        }
        ens = KernelEnsemble(
            th.nodes_z[None], coeffs, np.array([tau]), th.activation, th.data, th.schedule,
            th.eps, th.embedding, th.bias, cfg,
        )  # fmt: skip
        return KernelField(ens)

    # -- persistence ----------------------------------------------------------------------------
    def config(self) -> dict:
        return {"kind": "kernel_theory_at", "tau": self.tau, "P": self.P, **self.theory.config()}

    def save(self, path: str | Path) -> Path:
        """``path.npz`` (tau, P) and the population theory in ``path_theory.npz``."""
        path = Path(path)
        stem = path.with_suffix("") if path.suffix == ".npz" else path
        th_path = self.theory.save(stem.with_name(stem.name + "_theory.npz"))
        cfg = {
            "kind": "kernel_theory_at",
            "tau": self.tau,
            "P": self.P,
            "theory_file": th_path.name,
        }
        return save_result(stem, {}, cfg)

    @classmethod
    def load(cls, path: str | Path) -> KernelTheoryAt:
        _, cfg = load_result_of_kind(path, "kernel_theory_at", "a KernelTheoryAt")
        with result_file(path, "KernelTheoryAt"):
            theory = NTKTheory.load(Path(path).with_name(cfg["theory_file"]))
            return cls(theory, cfg["tau"], cfg["P"])
