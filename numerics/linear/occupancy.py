"""The small-occupancy field: heavy triples exactly, light triples by their cavity equivalent.

docs/math/finite_fp.md. The cavity equations (:mod:`gtv.numerics.linear.cavity`) give every
triple ``z`` a leverage ``q(z) = w phi^T M^{-1} phi / P``. Split the population at
``q_star`` (default 1, where a triple's own weight equals that of all the others along its
feature direction):

* **light** triples (``q <= q_star``) are many per feature and each matters little; their sums
  concentrate, so they are replaced by the deterministic equivalent
  ``M_L = rho I + E[1_L w phi phi^T / (1 + q)]``, ``A_L = E[1_L w mu_bar phi^T / (1 + q)]`` plus a
  Gaussian fluctuation of ``A`` with covariance
  ``K_L / P = (E[1_L w**2 (c + v) phi phi^T / (1 + q)**2] - g_L^T g_L) / P``
  (``c``, ``v`` as in the cavity covariance, ``g_L = A_L - W_bar (M_L - rho I)``);
* **heavy** triples (``q > q_star``) are few per model -- their number is binomial -- and are
  kept exactly, with their own labels ``x0``, so that the few triples that reach an early-time
  feature share one random inverse as they do in a trained model.

Member ``n`` draws ``P`` triples from ``stream(seed, "field").spawn(N)[n]`` (then ``F`` normals
for the light fluctuation), keeps the heavy ones and is

    ``W_n = (A_L + (1/P) sum_H w_j x0_j phi_j^T + xi_n)``
    ``      (M_L + (1/P) sum_H w_j phi_j phi_j^T)^{-1}``.

With ``strata`` (:mod:`gtv.numerics.linear.strata`) the light part is conditioned on the
member's number of light triples in each ``(t, x)`` cell: member ``n`` then draws its ``P``
triples and one normal per noise column of the strata instead of the ``F`` normals, and

    ``W_n = (A_L(n) + xi(n) + (1/P) sum_H w_j x0_j phi_j^T)``
    ``      (M_L(n) + (1/P) sum_H w_j phi_j phi_j^T)^{-1}``

(a light triple in a cell without light quadrature mass joins ``H``).

With ``consistent`` (:func:`occupancy_split`) a member's heavy set is closed under its *own*
leverage: a light triple whose leverage against the member's own matrix
``M_n = M_L + (1/P) sum_H w_j phi_j phi_j^T`` (the light equivalent plus the member's exact heavy
triples; the triple itself is not in it) exceeds ``q_star`` is made heavy too, until none does
(a triple is never made light again). The population leverage ``q(z)`` sees the average member;
a member whose design leaves a feature less occupied than average has triples that dominate
their direction in *that* member although they do not on average (docs/math/finite_fp.md,
"[q]: heavy sets closed under each member's own leverage"). The leverages follow from
``M_L^{-1}`` by the Woodbury identity on the member's heavy triples; only triples with
``w phi^T M_L^{-1} phi / P > q_star`` can qualify (adding heavy triples lowers every leverage).

With ``exact_below = t_c`` (:func:`occupancy_split`) every triple with ``t < t_c`` is heavy in
every member, whatever its leverage, and the light equivalent is taken over the population at
``t >= t_c`` only. Near the data at small ``t`` a member's triples sit on a few points with
almost noise-free labels, and the ridge fit through them has plateaus around each training point
that a Gaussian light part smooths out; the PF-ODE sampler's last steps map those plateaus onto
the peaks (docs/math/finite_fp.md, "Which sampler steps carry the core deficit"). With
``t_c > T`` every triple is exact and each member is the ridge regression on its own ``P``
triples, i.e. a trained model.

As ``P -> inf`` no triple is heavy and this is the Gaussian field of the first-order theory. The
field uses no trained model; its cost is one cavity solve plus, per member, ``P`` feature
evaluations and one ``F x F`` solve. D = 1.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

import numpy as np

from gtv.numerics.blas import serial_blas
from gtv.numerics.checks import check_choice, check_count, check_nonnegative_time
from gtv.numerics.dsm import draw_dsm_triples, dsm_weights
from gtv.numerics.linear.cavity import CavityMoments
from gtv.numerics.linear.member_kernels import (
    member_leverages,
    member_solves,
    member_weights_ladder,
)
from gtv.numerics.linear.nodes import PopulationNodes, population_nodes
from gtv.numerics.linear.strata import LightStrata, light_strata
from gtv.numerics.linear.theory import LinearTheory
from gtv.numerics.streams import model_rngs

__all__ = [
    "HEAVY_LEVERAGE",
    "OccupancySplit",
    "close_heavy_sets",
    "member_chunk",
    "member_heavy_sets",
    "occupancy_members",
    "occupancy_split",
    "sample_occupancy_weights",
    "sample_occupancy_weights_ladder",
]

#: Default leverage above which a triple is treated exactly.
HEAVY_LEVERAGE = 1.0

#: Feature-block size (doubles) of the member sampler.
_MEMBER_CHUNK = 2_000_000


@dataclass(frozen=True)
class OccupancySplit:
    """The light part of the population at one ``P`` (module docstring).

    Attributes
    ----------
    q_star : float
    M_light : ndarray (F, F)
    A_light : ndarray (F,)
    fluctuation : ndarray (F, F)
        A square root of ``K_L / P`` (``xi = fluctuation @ normals``).
    heavy_probability : float
        Population probability of a heavy triple (``P`` times it: the mean heavy count).
    strata : LightStrata or None
        The light part per ``(t, x)`` cell (module docstring), or None (unconditioned).
    consistent : bool
        Close each member's heavy set under its own leverage (module docstring).
    exact_below : float
        Every triple with ``t < exact_below`` is heavy, whatever its leverage, and the light part
        is the population at ``t >= exact_below`` only (module docstring; 0: none).
    """

    q_star: float
    M_light: np.ndarray
    A_light: np.ndarray
    fluctuation: np.ndarray
    heavy_probability: float
    strata: LightStrata | None = None
    consistent: bool = False
    exact_below: float = 0.0

    @functools.cached_property
    def chol_light_inv(self) -> np.ndarray:
        """The lower Cholesky factor ``L`` of ``M_light^{-1}`` (``M_light^{-1} = L L^T``),
        C-contiguous (the members' Woodbury solves; made once per split)."""
        try:
            inv = np.linalg.inv(np.linalg.cholesky(self.M_light))  # (L_M)^{-1}, lower
        except np.linalg.LinAlgError:
            raise ValueError(
                "split: M_L is not numerically positive definite (ridge too small?)"
            ) from None
        # M_L^{-1} = L_M^{-T} L_M^{-1}; its lower Cholesky factor
        return np.ascontiguousarray(np.linalg.cholesky(inv.T @ inv))

    @functools.cached_property
    def light_inv_bound(self) -> float:
        """An upper bound of the largest eigenvalue of ``M_light^{-1}`` (LAPACK's smallest
        eigenvalue of ``M_light``, inverted, times ``1 + 1e-8``): screens the leverages of the
        consistent closure."""
        return float(1.0 / np.linalg.eigvalsh(self.M_light)[0]) * (1 + 1e-8)


def occupancy_split(
    theory: LinearTheory,
    moments: CavityMoments,
    *,
    nodes: PopulationNodes | None = None,
    q_star: float = HEAVY_LEVERAGE,
    strata: tuple[int, int] | None = None,
    min_cell_count: float = 0.0,
    consistent: bool = False,
    exact_below: float = 0.0,
) -> OccupancySplit:
    """The light-part equivalent of ``theory``'s population at ``moments.P``; with ``strata``
    ``(time bins, space bins)`` (e.g. :data:`gtv.numerics.linear.strata.STRATA`) also per cell
    (module docstring); ``min_cell_count``: the diagnostic of
    :func:`gtv.numerics.linear.strata.light_strata` (``min_count``); ``consistent``: members
    close their heavy sets under their own leverage (module docstring; unconditioned light part
    only, ``strata=None``); ``exact_below``: every triple below that time exact (module
    docstring; a finite time >= 0, 0 for none)."""
    if not isinstance(theory, LinearTheory):
        raise TypeError("theory must be a LinearTheory")
    if not isinstance(moments, CavityMoments):
        raise TypeError("moments must be a CavityMoments")
    if not (np.isfinite(q_star) and q_star > 0):
        raise ValueError(f"q_star must be a finite number > 0, got {q_star!r}")
    if strata is not None and (not isinstance(strata, (tuple, list)) or len(strata) != 2):
        raise ValueError(f"strata must be None or (time bins, space bins), got {strata!r}")
    if not isinstance(consistent, (bool, np.bool_)):
        raise TypeError(f"consistent must be a bool, got {consistent!r}")
    if consistent and strata is not None:
        raise ValueError("consistent: only with the unconditioned light part (strata=None)")
    exact_below = check_nonnegative_time(exact_below, "exact_below")
    nodes = population_nodes(theory) if nodes is None else nodes
    # one BLAS thread: many small products (faster on a shared machine) and the same bits for any
    # thread count
    with serial_blas():
        split = _split(theory, moments, nodes, q_star, strata, min_cell_count, exact_below)
    return replace(split, consistent=bool(consistent)) if consistent else split


def _split(
    theory: LinearTheory,
    moments: CavityMoments,
    nodes: PopulationNodes,
    q_star: float,
    strata: tuple[int, int] | None,
    min_cell_count: float = 0.0,
    exact_below: float = 0.0,
) -> OccupancySplit:
    """:func:`occupancy_split` on given nodes."""
    prob, mu, s2 = nodes.prob, nodes.mu, nodes.s2
    w = nodes.w[:, None]
    P = moments.P
    q = w * nodes.quadratic(moments.M_inv) / P
    light = (q <= q_star) & (nodes.t[:, None] >= exact_below)
    F = moments.W_bar.shape[1]
    a = prob * w / (1 + q) * light
    M_light = theory.ridge * np.eye(F) + nodes.gram(a)
    A_light = nodes.vector(a * mu)
    W_bar = moments.W_bar[0]
    resid = mu - nodes.apply(W_bar)
    c = s2 + resid**2
    v = nodes.quadratic(moments.cov_W)
    g = A_light - W_bar @ (M_light - theory.ridge * np.eye(F))
    K = nodes.gram(prob * w**2 * (c + v) / (1 + q) ** 2 * light) - np.outer(g, g)
    ev, U = np.linalg.eigh((K + K.T) / (2 * P))
    cells = None
    if strata is not None:
        coefficients = {
            "gram": w / (1 + q), "vector": w * mu / (1 + q),
            "second": w**2 * (c + v) / (1 + q) ** 2,
            "residual": w * resid / (1 + q),
        }  # fmt: skip
        space = theory.features.space[0]
        cells = light_strata(
            nodes, coefficients, light, eps=theory.eps, T=theory.schedule.T,
            x_range=(space.lo, space.hi), P=float(P), shape=tuple(strata), min_count=min_cell_count,
        )  # fmt: skip
    return OccupancySplit(
        float(q_star), M_light, A_light, U * np.sqrt(np.clip(ev, 0.0, None)),
        float(prob[~light].sum()), cells, exact_below=exact_below,
    )  # fmt: skip


def sample_occupancy_weights(
    theory: LinearTheory,
    moments: CavityMoments,
    n_models: int,
    seed: int | np.random.SeedSequence = 0,
    *,
    split: OccupancySplit | None = None,
    q_star: float = HEAVY_LEVERAGE,
) -> np.ndarray:
    """Weights (N, 1, F) of the small-occupancy field (module docstring); ``P`` must be an
    integer. ``split`` (from :func:`occupancy_split`) is computed when not given."""
    n_models = check_count(n_models, "n_models")
    if not isinstance(moments, CavityMoments):
        raise TypeError("moments must be a CavityMoments")
    if moments.P != int(moments.P):
        raise ValueError(f"moments.P must be an integer to draw triples, got {moments.P!r}")
    if split is None:
        split = occupancy_split(theory, moments, q_star=q_star)
    out = np.empty((n_models, 1, split.A_light.size))
    rngs = model_rngs(seed, "field", n_models)
    # the unconditioned field keeps no (k, P, F) feature block (member_weights_ladder): one call
    chunk = n_models if split.strata is None else member_chunk(int(moments.P), split.A_light.size)
    for m0 in range(0, n_models, chunk):
        out[m0 : m0 + chunk, 0] = occupancy_members(theory, moments, split, rngs[m0 : m0 + chunk])
    return out


def sample_occupancy_weights_ladder(
    theory: LinearTheory,
    moments: CavityMoments,
    splits: list[OccupancySplit],
    n_models: int,
    seed: int | np.random.SeedSequence = 0,
) -> np.ndarray:
    """Weights (R, N, 1, F) of the same ``N`` members under each of ``R`` unconditioned splits
    (e.g. one per ``exact_below`` of a ladder): row ``r`` is
    ``sample_occupancy_weights(theory, moments, N, seed, split=splits[r])`` to the last bit, but
    each member's triples, features and population leverages are made once for all splits
    (:func:`gtv.numerics.linear.member_kernels.member_weights_ladder`). The splits must share
    ``q_star`` and have no strata."""
    n_models = check_count(n_models, "n_models")
    if not isinstance(moments, CavityMoments):
        raise TypeError("moments must be a CavityMoments")
    if moments.P != int(moments.P):
        raise ValueError(f"moments.P must be an integer to draw triples, got {moments.P!r}")
    splits = list(splits)
    if not splits or not all(isinstance(sp, OccupancySplit) for sp in splits):
        raise TypeError("splits must be a non-empty list of OccupancySplit (occupancy_split)")
    if any(sp.strata is not None for sp in splits):
        raise ValueError("splits: only unconditioned splits (strata=None) share their draws")
    if len({sp.q_star for sp in splits}) != 1:
        raise ValueError("splits: every split must have the same q_star")
    F = theory.n_features
    if any(sp.A_light.size != F for sp in splits):
        raise ValueError("splits: a split of a different feature set")
    t, x0, x, normals = _draw(theory, int(moments.P), model_rngs(seed, "field", n_models), F)
    with serial_blas():
        return _shared_members(theory, moments, splits, t, x0, x, normals)


def _shared_members(theory, moments, splits, t, x0, x, normals) -> np.ndarray:
    """Weights (R, k, 1, F) of the members with triples ``(t, x0, x)`` (k, P) and light normals
    (k, F) under each unconditioned split (one BLAS thread expected): the numba kernel
    :func:`~gtv.numerics.linear.member_kernels.member_weights_ladder`, statuses checked."""
    W, status = member_weights_ladder(
        *theory.features.arrays(), np.stack([x, t], axis=2), dsm_weights(theory.schedule, t), x0,
        moments.chol_M_inv, int(moments.P), moments.M_inv_bound, splits[0].q_star,
        np.stack([sp.M_light for sp in splits]), np.stack([sp.chol_light_inv for sp in splits]),
        np.stack([sp.A_light for sp in splits]),
        np.stack([normals @ sp.fluctuation.T for sp in splits]),
        np.array([sp.light_inv_bound if sp.consistent else -1.0 for sp in splits]),
        np.array([sp.exact_below for sp in splits], dtype=float),
    )  # fmt: skip
    _check_status(status)
    return W


def close_heavy_sets(
    phi: np.ndarray,
    w: np.ndarray,
    heavy: np.ndarray,
    q_light: np.ndarray,
    chol_light_inv: np.ndarray,
    q_star: float,
    P: int,
) -> np.ndarray:
    """Each member's heavy set closed under its own leverage (module docstring).

    Parameters
    ----------
    phi : ndarray (k, P, F)
        The members' features.
    w : ndarray (k, P)
        DSM weights.
    heavy : ndarray of bool (k, P)
        The heavy triples by the population leverage.
    q_light : ndarray (k, P)
        ``w phi^T M_L^{-1} phi / P``; exact where it exceeds ``q_star`` (below, a bound will do:
        those triples cannot qualify).
    chol_light_inv : ndarray (F, F)
        The lower Cholesky factor of ``M_L^{-1}`` (:attr:`OccupancySplit.chol_light_inv`).
    q_star : float
    P : int

    Returns
    -------
    ndarray of bool (k, P)
        ``heavy`` with every light triple whose leverage against ``M_L`` plus the member's heavy
        triples exceeds ``q_star`` added, round by round, until none does.
    """
    Minv = chol_light_inv @ chol_light_inv.T
    k = phi.shape[0]
    out = heavy.copy()
    for m in range(k):
        cand = np.flatnonzero(~out[m] & (q_light[m] > q_star))
        while cand.size:  # every round adds at least one candidate or ends
            h = np.flatnonzero(out[m])
            q = q_light[m, cand]
            if h.size:
                # Woodbury: phi^T (M_L + U^T D U)^-1 phi = phi^T M_L^-1 phi - v^T K^-1 v,
                # K = D^-1 + U M_L^-1 U^T, v = U M_L^-1 phi  (U: heavy features, D = w_H / P)
                G = Minv @ phi[m, h].T
                K = np.diag(P / w[m, h]) + phi[m, h] @ G
                V = phi[m, cand] @ G
                q = q - w[m, cand] * np.einsum("ch,ch->c", V, np.linalg.solve(K, V.T).T) / P
            new = q > q_star
            if not new.any():
                break
            out[m, cand[new]] = True
            cand = cand[~new]
    return out


def member_chunk(P: int, F: int) -> int:
    """Members per block of :func:`occupancy_members` (a bounded ``(k P, F)`` feature block)."""
    return max(1, _MEMBER_CHUNK // (P * F))


def occupancy_members(
    theory: LinearTheory,
    moments: CavityMoments,
    split: OccupancySplit,
    rngs: list[np.random.Generator],
    *,
    backend: str = "numba",
) -> np.ndarray:
    """Weights (k, F) of the members drawing from the generators ``rngs`` (one each, module
    docstring): per member ``P`` triples (:func:`gtv.numerics.dsm.draw_dsm_triples`), then ``F``
    normals for the light fluctuation. ``backend="numba"``: the kernels of
    :mod:`gtv.numerics.linear.member_kernels` (parallel over members, Cholesky solves);
    ``"numpy"``: the plain-numpy reference (the features, leverages and heavy sums of all ``k``
    members at once, LU solves). Both use one BLAS thread: the same bits for any thread count."""
    check_choice(backend, "backend", ("numba", "numpy"))
    with serial_blas():
        return _members(theory, moments, split, rngs, backend)


def member_heavy_sets(
    theory: LinearTheory,
    moments: CavityMoments,
    split: OccupancySplit,
    rngs: list[np.random.Generator],
) -> np.ndarray:
    """Which of each member's ``P`` triples are kept exact (heavy): (k, P) bool, for the members
    drawing from ``rngs`` as :func:`occupancy_members` (population-heavy, below
    ``split.exact_below``, and with ``split.consistent`` closed under the member's own leverage;
    the numpy route)."""
    P = int(moments.P)
    t, _, x, _ = _draw(theory, P, rngs, 0)
    w = dsm_weights(theory.schedule, t)
    phi, q = _features_and_leverages(theory, moments, t, x, w)
    return _heavy_sets(split, t, w, phi, q, P)


def _draw(theory: LinearTheory, P: int, rngs: list[np.random.Generator], n_normals: int):
    """Each member's ``P`` triples and then its ``n_normals`` normals, from its own generator:
    ``(t, x0, x)`` (k, P) each and the normals (k, n_normals)."""
    k = len(rngs)
    t, x0, x = np.empty((k, P)), np.empty((k, P)), np.empty((k, P))
    normals = np.empty((k, n_normals))
    for n, rng in enumerate(rngs):
        tn, x0n, xn = draw_dsm_triples(rng, theory.data, P, theory.eps, theory.schedule)
        t[n], x0[n], x[n] = tn, x0n[:, 0], xn[:, 0]
        normals[n] = rng.standard_normal(n_normals)
    return t, x0, x, normals


def _features_and_leverages(theory, moments, t, x, w):
    """The members' features (k, P, F) and population leverages (k, P), in numpy."""
    k, P = t.shape
    phi = theory.features.evaluate(x.reshape(-1, 1), t.reshape(-1)).reshape(k, P, -1)
    q = w * np.einsum("mnf,fg,mng->mn", phi, moments.M_inv, phi, optimize=True) / P
    return phi, q


def _heavy_sets(split: OccupancySplit, t, w, phi, q, P: int) -> np.ndarray:
    """Heavy = population-heavy or below ``split.exact_below``, closed under each member's own
    leverage with ``split.consistent`` (the numpy reference; numba: inside
    :func:`~gtv.numerics.linear.member_kernels.member_weights_shared`)."""
    heavy = (q > split.q_star) | (t < split.exact_below)
    if split.consistent:
        L_light = split.chol_light_inv
        q_light = w * np.einsum("mnf,fg,mng->mn", phi, L_light @ L_light.T, phi) / P
        heavy = close_heavy_sets(phi, w, heavy, q_light, L_light, split.q_star, P)
    return heavy


def _check_status(status: np.ndarray) -> None:
    """Raise for a failed member solve (:func:`gtv.numerics.blas.cholesky_solve_rows`)."""
    if np.any(status != 0):
        raise ValueError(
            "split: a member's M_L + heavy Gram (or, consistent, a closure's capacitance matrix) "
            "is not numerically positive definite (ridge too small?)"
        )


def _members(
    theory: LinearTheory,
    moments: CavityMoments,
    split: OccupancySplit,
    rngs: list[np.random.Generator],
    backend: str = "numba",
) -> np.ndarray:
    """:func:`occupancy_members`."""
    P = int(moments.P)
    k, F = len(rngs), split.A_light.size
    cells = split.strata
    t, x0, x, normals = _draw(theory, P, rngs, F if cells is None else cells.noise.shape[1])
    if backend == "numba" and cells is None:
        # one M_L: features, screened leverages (the consistent closure) and Woodbury solves in
        # one pass per member
        return _shared_members(theory, moments, [split], t, x0, x, normals)[0, :, 0]
    w = dsm_weights(theory.schedule, t)
    if backend == "numba":
        z = np.stack([x, t], axis=2)
        phi, q = member_leverages(*theory.features.arrays(), z, w, moments.chol_M_inv, P)
    else:
        phi, q = _features_and_leverages(theory, moments, t, x, w)
    heavy = _heavy_sets(split, t, w, phi, q, P)
    if cells is not None:
        cell = cells.cells(t, x)
        heavy |= cell < 0  # a light triple where the population has no light mass: exact
        S = cells.probability.size
        flat = (np.arange(k)[:, None] * S + cell)[~heavy]  # member-major cell numbers
        counts = np.bincount(flat, minlength=k * S).reshape(k, S).astype(float)
        M_light, A_light, xi = cells.light_sums(counts, normals, P, theory.ridge)
    else:
        M_light, A_light, xi = split.M_light, split.A_light, normals @ split.fluctuation.T
    if backend == "numba":
        W, status = member_solves(
            phi, heavy, w, x0, np.ascontiguousarray(M_light.reshape(-1, F, F)),
            np.ascontiguousarray(A_light.reshape(-1, F)), np.ascontiguousarray(xi), P,
        )  # fmt: skip
        _check_status(status)
        return W[:, 0]
    # gather each member's heavy triples into the first h_max slots (the rest weigh 0)
    h_max = max(1, int(heavy.sum(axis=1).max()))
    order = np.argsort(~heavy, axis=1, kind="stable")[:, :h_max]
    ph = np.take_along_axis(phi, order[:, :, None], axis=1)  # (k, h_max, F)
    wh = np.take_along_axis(w * heavy, order, axis=1) / P
    xh = np.take_along_axis(x0, order, axis=1)
    M = M_light + np.einsum("mh,mhf,mhg->mfg", wh, ph, ph, optimize=True)
    A = A_light + np.einsum("mh,mhf->mf", wh * xh, ph) + xi
    return np.linalg.solve(M, A[:, :, None])[:, :, 0]
