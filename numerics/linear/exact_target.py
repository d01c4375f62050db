"""First-order theory of linear ensembles trained on the exact target (docs/math/linear.md).

With the regression target ``mu_bar(x, t) = E[x0 | x, t]`` instead of the noisy DSM target
``x0`` (``train_linear_ensemble(..., target="exact")``), one triple's gradient at ``W_inf`` is

    ``g = lam (mu_bar - W_inf phi) phi^T = lam m phi^T = E[g_noisy | x, t]``,

the conditional mean of the noisy-target gradient. The population solution is unchanged
(``A = E[lam mu_bar phi^T]``, so ``W_inf`` and ``E g = rho W_inf`` are the same), the exact
identity ``W - W_inf = (g_bar - E g) Sigma_P^{-1}`` still holds, and

    ``Cov(vec g) = E[lam**2 phi phi^T (x) m m^T] - vec(E g) vec(E g)^T``,

which is exactly the **misfit** part of :class:`~gtv.numerics.linear.theory.LinearTheory`. The
first-order theory of the exact-target ensemble is therefore :class:`FirstOrderLinear` with the
proxy (label-noise) part removed: :class:`ExactTargetLinear` forwards every covariance query to
the misfit part. It implements :class:`gtv.numerics.contract.EnsembleTheory`; its ``part``
argument accepts ``"total"`` and ``"misfit"`` (the same thing here) and rejects ``"proxy"``.
"""

from __future__ import annotations

import numpy as np

from gtv.numerics.linear.prediction import FirstOrderLinear, LinearField

__all__ = ["ExactTargetLinear"]


def _misfit(part: object) -> str:
    if part not in ("total", "misfit"):
        raise ValueError(
            f"part must be 'total' or 'misfit' for the exact-target theory (its covariance is "
            f"the misfit part only; there is no proxy part), got {part!r}"
        )
    return "misfit"


class ExactTargetLinear(FirstOrderLinear):
    """First order in 1/P for ensembles trained on ``mu_bar`` (module docstring).

    Parameters
    ----------
    theory : LinearTheory
        The population theory (the same object as for the noisy target).
    P : float
        DSM design points per model.
    """

    _KIND = "exact_target_first_order_linear"

    def denoiser_covariance(
        self, z: object, z2: object = None, *, part: str = "total", paired: bool = False
    ) -> np.ndarray:
        return self.theory.denoiser_covariance(z, z2, self.P, _misfit(part), paired)

    def v_kernel(
        self, z: object, z2: object = None, *, part: str = "total", paired: bool = False
    ) -> np.ndarray:
        return self.theory.v_kernel(z, z2, self.P, _misfit(part), paired)

    def markov_intensity(self, x: object, t: object, *, part: str = "total") -> np.ndarray:
        return self.theory.markov_intensity(x, t, self.P, _misfit(part))

    def weight_moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean ``W_inf`` (D, F) and the misfit-only ``Cov(vec W)`` (F D, F D)."""
        return self.theory.W_inf, self.theory.cov_W(self.P, "misfit")

    def gaussian_field(
        self, n_models: int, seed: int | np.random.SeedSequence = 0, part: str = "total"
    ) -> LinearField:
        """``W ~ N(W_inf, Cov W(P)_misfit)``; member ``n`` draws from
        ``stream(seed, "field").spawn(N)[n]``."""
        return super().gaussian_field(n_models, seed, _misfit(part))
