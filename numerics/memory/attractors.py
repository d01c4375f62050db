"""Attractors of a denoiser map and of the PF-ODE end map.

docs/memorization.md, "Attractors of any model".

In data coordinates ``y`` the denoiser map of one model at time ``t`` is
``G_t(y) = D^(alpha_t y, t)`` (:class:`gtv.numerics.memory.denoisers.DenoiserMap`). Its fixed
points ``y* = G_t(y*)`` are the attractor candidates; ``y*`` is a *stable attractor* when every
eigenvalue of ``I - J_G(y*)`` has a positive real part (the gradient flow ``dy/ds = G(y) - y``
is then locally contracting). For the exact empirical score ``I - J_G`` is the Hessian of the
associative-memory energy ``E_t(alpha_t y) / alpha_t**2``.

* :func:`find_attractors` -- the damped fixed-point iteration ``y <- (1 - lam) y + lam G(y)`` from
  many starts at once, then deduplication, stability and the nearest memory;
* :func:`attractor_starts` -- start points (stream ``"memory-starts"``);
* :func:`integrate_pf_ode` and :func:`end_map_attractors` -- the PF-ODE from ``t = T`` to ``eps``
  of one denoiser, and the clusters of its end points.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from gtv.numerics.checks import check_count, check_positive
from gtv.numerics.memory.denoisers import DenoiserMap, ExactDenoiser, memory_radius
from gtv.numerics.pfode import check_method, drift_coefficients, initial_points, pf_ode_reference
from gtv.numerics.streams import check_seed, stream_rng

__all__ = [
    "Attractors",
    "EndMapAttractors",
    "attractor_starts",
    "cluster_points",
    "end_map_attractors",
    "find_attractors",
    "integrate_pf_ode",
    "iterate_fixed_point",
    "nearest_memory",
    "pf_end_points",
]

#: Default tolerances relative to the memories' RMS radius (:func:`memory_radius`).
DEDUP_REL = 1e-3
MEMORY_REL = 0.05


def _check_denoiser(denoiser: object) -> DenoiserMap:
    if not isinstance(denoiser, DenoiserMap):
        raise TypeError(
            "denoiser must be a DenoiserMap (ExactDenoiser, ModelDenoiser, FunctionDenoiser), "
            f"got {type(denoiser).__name__}"
        )
    return denoiser


def _default_tol(value: object, denoiser: DenoiserMap, rel: float, argname: str) -> float:
    if value is None:
        return rel * memory_radius(denoiser.memories)
    return check_positive(value, argname)


def nearest_memory(points: np.ndarray, memories: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of and distance to the nearest memory of each point: (n,) int, (n,) float."""
    idx = np.empty(points.shape[0], dtype=np.int64)
    dist = np.empty(points.shape[0])
    m2 = np.sum(memories**2, axis=1)
    for i0 in range(0, points.shape[0], 256):
        p = points[i0 : i0 + 256]
        d2 = np.sum(p**2, axis=1)[:, None] - 2.0 * p @ memories.T + m2[None, :]
        j = np.argmin(d2, axis=1)
        idx[i0 : i0 + 256] = j
        # Exact distance to the chosen memory (the expanded form above loses digits).
        dist[i0 : i0 + 256] = np.linalg.norm(p - memories[j], axis=1)
    return idx, dist


def cluster_points(points: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Greedy leader clustering: a point joins the first earlier leader within ``tol``.

    Returns the leaders (A, D) in order of first appearance and each point's cluster index (n,).
    Deterministic for a given order of ``points``.
    """
    n, d = points.shape
    leaders = np.empty((0, d))
    labels = np.empty(n, dtype=np.int64)
    for i in range(n):
        if leaders.shape[0]:
            dist = np.linalg.norm(leaders - points[i], axis=1)
            j = int(np.argmin(dist))
            if dist[j] <= tol:
                labels[i] = j
                continue
        labels[i] = leaders.shape[0]
        leaders = np.vstack([leaders, points[i]])
    return leaders, labels


# -- the fixed-point iteration ------------------------------------------------------------------
def iterate_fixed_point(
    denoiser: DenoiserMap,
    t: float,
    starts: np.ndarray,
    *,
    tol: float,
    max_iter: int,
    damping: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Damped iteration ``y <- y + lam (G_t(y) - y)`` of every start until ``|G_t(y) - y| <= tol``.

    Vectorized over the starts; a start stops as soon as its residual (Euclidean norm) is at most
    ``tol``, and the point where that residual was measured is returned, so
    ``|G_t(y_i) - y_i| <= tol`` holds exactly for every converged ``y_i``. A start whose map
    value turns non-finite stops unconverged. Arguments are assumed checked. With
    ``damping = 1`` a denoiser may run the iteration itself
    (:meth:`gtv.numerics.memory.DenoiserMap.plain_iteration`: the exact score's compiled
    modern-Hopfield kernel).

    Returns
    -------
    y : ndarray (n, D)
        Final points.
    converged : ndarray of bool (n,)
    residual : ndarray (n,)
        ``|G_t(y) - y|`` at the last evaluation.
    n_iter : ndarray of int (n,)
        Map evaluations of each start.
    """
    if damping == 1.0:
        special = denoiser.plain_iteration(t, starts, tol=tol, max_iter=max_iter)
        if special is not None:
            return special
    alpha = float(denoiser.schedule.alpha(t))
    y = np.array(starts, dtype=np.float64, order="C")
    n = y.shape[0]
    converged = np.zeros(n, dtype=bool)
    residual = np.full(n, np.inf)
    n_iter = np.zeros(n, dtype=np.int64)
    active = np.arange(n)
    for _ in range(max_iter):
        if active.size == 0:
            break
        g = np.asarray(denoiser.evaluate(np.ascontiguousarray(alpha * y[active]), t))
        r = g - y[active]
        res = np.linalg.norm(r, axis=1)
        res = np.where(np.isfinite(res), res, np.inf)
        residual[active] = res
        n_iter[active] += 1
        done = res <= tol
        bad = ~np.isfinite(res)
        converged[active[done]] = True
        move = ~(done | bad)
        y[active[move]] += damping * r[move]
        active = active[move]
    return y, converged, residual, n_iter


@dataclass(frozen=True)
class Attractors:
    """Fixed points of ``G_t(y) = D^(alpha_t y, t)`` found from a set of starts.

    Attributes
    ----------
    t : float
    points : ndarray (A, D)
        Unique fixed points (data coordinates), deduplicated within ``dedup_tol``; each is the
        member of its cluster with the smallest residual.
    residual : ndarray (A,)
        ``|G_t(y*) - y*|`` at each point.
    eigenvalues : ndarray complex (A, D)
        Eigenvalues of ``I - J_G(y*)``, sorted by real part (ascending).
    stable : ndarray of bool (A,)
        Every eigenvalue has a positive real part.
    basin_share : ndarray (A,)
        Fraction of all starts converging to each point (sums to ``n_converged / n_starts``).
    memory_index : ndarray of int (A,)
        Nearest memory when within ``memory_tol``, else -1.
    memory_distance : ndarray (A,)
        Distance to the nearest memory.
    assignment : ndarray of int (n_starts,)
        Index of each start's fixed point, -1 if it did not converge.
    converged : ndarray of bool (n_starts,)
    end_points : ndarray (n_starts, D)
        Where each start's iteration stopped.
    n_iter : ndarray of int (n_starts,)
        Map evaluations per start.
    n_starts, n_converged, n_not_converged : int
    tol, damping, dedup_tol, memory_tol : float
        The settings used.
    """

    t: float
    points: np.ndarray
    residual: np.ndarray
    eigenvalues: np.ndarray
    stable: np.ndarray
    basin_share: np.ndarray
    memory_index: np.ndarray
    memory_distance: np.ndarray
    assignment: np.ndarray
    converged: np.ndarray
    end_points: np.ndarray
    n_iter: np.ndarray
    n_starts: int
    n_converged: int
    n_not_converged: int
    tol: float
    damping: float
    dedup_tol: float
    memory_tol: float

    @property
    def n_attractors(self) -> int:
        """Number of unique fixed points (stable or not)."""
        return self.points.shape[0]

    @property
    def n_stable(self) -> int:
        return int(np.count_nonzero(self.stable))

    @property
    def all_converged(self) -> bool:
        return self.n_not_converged == 0

    @property
    def min_real_eigenvalue(self) -> np.ndarray:
        """Smallest real part of the eigenvalues of ``I - J_G`` at each point (A,)."""
        return self.eigenvalues.real.min(axis=1) if self.points.shape[0] else np.empty(0)

    @property
    def is_memory(self) -> np.ndarray:
        """Fixed points within ``memory_tol`` of a training point (A,)."""
        return self.memory_index >= 0

    @property
    def is_spurious(self) -> np.ndarray:
        """Stable fixed points that are not training points (A,)."""
        return self.stable & ~self.is_memory


def find_attractors(
    denoiser: DenoiserMap,
    t: float,
    starts: object,
    *,
    tol: float = 1e-8,
    max_iter: int = 2000,
    damping: float | None = None,
    dedup_tol: float | None = None,
    memory_tol: float | None = None,
    warn: bool = True,
) -> Attractors:
    """Fixed points of ``G_t(y) = D^(alpha_t y, t)`` reached from ``starts``, with stability.

    Parameters
    ----------
    denoiser : DenoiserMap
    t : float
        Time in ``(0, T]``.
    starts : array_like (n, D)
        Start points in data coordinates (e.g. :func:`attractor_starts`).
    tol : float, default 1e-8
        A start has converged when ``|G_t(y) - y| <= tol`` (absolute, Euclidean, data units).
    max_iter : int, default 2000
        Map evaluations per start.
    damping : float in (0, 1], optional
        ``lam`` of the update ``y <- (1 - lam) y + lam G_t(y)``. Default 1: the plain iteration
        ``y <- G_t(y)``, which for the exact score is the CCCP / modern-Hopfield update (every
        step lowers the energy). Near a fixed point the error is multiplied by
        ``I - lam (I - J_G)``; the plain iteration converges wherever ``J_G`` has its eigenvalues
        in ``(-1, 1)``, which holds at stable fixed points of a denoiser whose Jacobian is
        positive semidefinite (the exact one is ``(alpha_t**2 / sigma_t**2)`` times a
        covariance). Pass ``lam < 1`` for maps with eigenvalues of ``J_G`` below -1
        (oscillation): the iteration converges iff ``|1 - lam nu| < 1`` for every eigenvalue
        ``nu`` of ``I - J_G``.
    dedup_tol : float, optional
        Converged points within this distance are one fixed point (greedy, in start order).
        Default ``1e-3 R`` with ``R`` the memories' RMS radius (:func:`memory_radius`).
    memory_tol : float, optional
        A fixed point within this distance of a training point is that memory. Default
        ``0.05 R``.
    warn : bool, default True
        Emit a ``RuntimeWarning`` when some starts did not converge (always recorded in
        ``converged`` / ``n_not_converged``).

    Returns
    -------
    Attractors

    Raises
    ------
    ValueError
        Naming the argument: ``t`` outside ``(0, T]``, non-finite or mis-shaped ``starts``,
        tolerances ``<= 0``, ``max_iter < 1``, ``damping`` outside ``(0, 1]``.
    """
    denoiser = _check_denoiser(denoiser)
    t = denoiser.check_time(t)
    starts = denoiser.check_points(starts, "starts")
    tol = check_positive(tol, "tol")
    max_iter = check_count(max_iter, "max_iter")
    lam = 1.0 if damping is None else check_positive(damping, "damping")
    if lam > 1:
        raise ValueError(f"damping must lie in (0, 1], got {damping!r}")
    dedup_tol = _default_tol(dedup_tol, denoiser, DEDUP_REL, "dedup_tol")
    memory_tol = _default_tol(memory_tol, denoiser, MEMORY_REL, "memory_tol")

    y, converged, residual, n_iter = iterate_fixed_point(
        denoiser, t, starts, tol=tol, max_iter=max_iter, damping=lam
    )
    n, d = starts.shape
    idx = np.flatnonzero(converged)
    assignment = np.full(n, -1, dtype=np.int64)
    if idx.size:
        leaders, labels = cluster_points(y[idx], dedup_tol)
        assignment[idx] = labels
        n_att = leaders.shape[0]
        # Representative: the member with the smallest residual.
        points = np.empty((n_att, d))
        res = np.empty(n_att)
        for a in range(n_att):
            members = idx[labels == a]
            best = members[np.argmin(residual[members])]
            points[a], res[a] = y[best], residual[best]
        eig = _stability_eigenvalues(denoiser, points, t)
        mem_idx, mem_dist = nearest_memory(points, denoiser.memories)
        mem_idx = np.where(mem_dist <= memory_tol, mem_idx, -1)
        share = np.bincount(labels, minlength=n_att) / n
    else:
        points, res = np.empty((0, d)), np.empty(0)
        eig = np.empty((0, d), dtype=complex)
        mem_idx, mem_dist = np.empty(0, dtype=np.int64), np.empty(0)
        share = np.empty(0)
    n_conv = int(idx.size)
    if warn and n_conv < n:
        warnings.warn(
            f"find_attractors: {n - n_conv} of {n} starts did not converge to tol = {tol:g} "
            f"within max_iter = {max_iter} (see Attractors.converged)",
            RuntimeWarning,
            stacklevel=2,
        )
    return Attractors(
        t, points, res, eig, eig.real.min(axis=1) > 0 if len(points) else np.empty(0, bool),
        share, mem_idx, mem_dist, assignment, converged, y, n_iter, n, n_conv, n - n_conv, tol,
        lam, dedup_tol, memory_tol,
    )  # fmt: skip


def _stability_eigenvalues(denoiser: DenoiserMap, points: np.ndarray, t: float) -> np.ndarray:
    """Eigenvalues of ``I - J_G`` at each point, sorted by real part: complex (A, D)."""
    jac = denoiser.map_jacobian(points, t)
    m = np.eye(points.shape[1])[None] - jac
    if isinstance(denoiser, ExactDenoiser):
        ev = np.linalg.eigvalsh(0.5 * (m + np.swapaxes(m, 1, 2))).astype(complex)
    else:
        ev = np.linalg.eigvals(m).astype(complex)
    order = np.argsort(ev.real, axis=1, kind="stable")
    return np.take_along_axis(ev, order, axis=1)


# -- start points -------------------------------------------------------------------------------
def attractor_starts(
    denoiser_or_memories: object,
    n_starts: int,
    *,
    seed: object,
    spread: float = 0.1,
) -> np.ndarray:
    """Start points for :func:`find_attractors`, from stream ``"memory-starts"``.

    The first ``ceil(n_starts / 2)`` starts are memories drawn uniformly with replacement plus
    Gaussian noise of standard deviation ``spread * R`` per coordinate (``R``: the memories' RMS
    radius, :func:`memory_radius`); they probe the basins of the memories. The rest are uniform
    over the memories' bounding box widened by ``spread * R`` on every side; they probe the space
    between memories, where spurious states live. The draws come from one generator,
    ``stream_rng(seed, "memory-starts")``, in this order: memory indices, Gaussian noise,
    uniform points.

    Parameters
    ----------
    denoiser_or_memories : DenoiserMap or array_like (K, D)
    n_starts : int
    seed : int or SeedSequence
    spread : float, default 0.1
        Relative width (> 0) of the noise and of the box margin.

    Returns
    -------
    ndarray (n_starts, D)
    """
    if isinstance(denoiser_or_memories, DenoiserMap):
        mem = denoiser_or_memories.memories
    else:
        from gtv.numerics.checks import check_points

        mem = check_points(denoiser_or_memories, "denoiser_or_memories")
    n_starts = check_count(n_starts, "n_starts")
    seed = check_seed(seed)
    spread = check_positive(spread, "spread")
    width = spread * memory_radius(mem)
    rng = stream_rng(seed, "memory-starts")
    n_near = (n_starts + 1) // 2
    near = mem[rng.integers(0, mem.shape[0], n_near)]
    near = near + width * rng.standard_normal(near.shape)
    lo, hi = mem.min(axis=0) - width, mem.max(axis=0) + width
    box = lo + (hi - lo) * rng.random((n_starts - n_near, mem.shape[1]))
    return np.concatenate([near, box])


# -- PF-ODE end map -----------------------------------------------------------------------------
def integrate_pf_ode(
    denoiser: DenoiserMap,
    x: object,
    t_start: float,
    t_end: float,
    n_steps: int = 30,
    method: str = "euler",
) -> np.ndarray:
    """Integrate the PF-ODE of one denoiser from ``t_start`` down to ``t_end``.

    Drift ``pf_x_coeff(t) x - pf_mean_coeff(t) D^(x, t)`` on the uniform grid
    ``linspace(t_start, t_end, n_steps + 1)``, Euler or Heun, exactly as the ensemble samplers
    (:mod:`gtv.numerics.pfode`; the steps are :func:`gtv.numerics.pfode.pf_ode_reference`).

    Parameters
    ----------
    denoiser : DenoiserMap
    x : array_like (n, D)
        Points at ``t_start``.
    t_start, t_end : float
        ``0 < t_end < t_start <= T``.
    n_steps : int, default 30
    method : {"euler", "heun"}

    Returns
    -------
    ndarray (n, D)
        The points at ``t_end``.
    """
    denoiser = _check_denoiser(denoiser)
    t0 = denoiser.check_time(t_start, "t_start")
    t1 = denoiser.check_time(t_end, "t_end")
    if not t1 < t0:
        raise ValueError(f"t_end must be < t_start = {t0:g}, got {t1:g}")
    x = denoiser.check_points(x)
    n_steps = check_count(n_steps, "n_steps")
    heun = check_method(method) == "heun"
    ts = np.linspace(t0, t1, n_steps + 1)
    ax, bx = drift_coefficients(denoiser.schedule, ts)
    if not (np.all(np.isfinite(ax)) and np.all(np.isfinite(bx))):
        raise ValueError(f"t_start: the PF-ODE drift is not finite on [{t1:g}, {t0:g}]")

    def den(_n: int, xs: np.ndarray, k: int) -> np.ndarray:
        return denoiser.evaluate(np.ascontiguousarray(xs), float(ts[k]))

    out = pf_ode_reference(den, x[None], ts, ax, bx, heun)[0]
    if not np.all(np.isfinite(out)):
        raise ValueError("the PF-ODE diverged (non-finite end points); use more n_steps")
    return out


def pf_end_points(denoiser: DenoiserMap, x: np.ndarray, final_denoise: bool) -> np.ndarray:
    """Data-coordinate end points of points ``x`` at ``t = eps``: ``D^(x, eps)`` or
    ``x / alpha_eps``."""
    if final_denoise:
        return denoiser.denoise(x, denoiser.eps)
    return x / float(denoiser.schedule.alpha(denoiser.eps))


@dataclass(frozen=True)
class EndMapAttractors:
    """Clusters of the PF-ODE end points of one denoiser.

    Attributes
    ----------
    points : ndarray (A, D)
        Cluster means (data coordinates).
    basin_share : ndarray (A,)
        Fraction of the samples in each cluster (sums to 1).
    memory_index : ndarray of int (A,)
        Nearest memory when within ``memory_tol``, else -1.
    memory_distance : ndarray (A,)
    assignment : ndarray of int (n_starts,)
    end_points : ndarray (n_starts, D)
        Each sample's end point ``y``.
    n_starts : int
    dedup_tol, memory_tol : float
    """

    points: np.ndarray
    basin_share: np.ndarray
    memory_index: np.ndarray
    memory_distance: np.ndarray
    assignment: np.ndarray
    end_points: np.ndarray
    n_starts: int
    dedup_tol: float
    memory_tol: float

    @property
    def n_attractors(self) -> int:
        return self.points.shape[0]

    @property
    def is_memory(self) -> np.ndarray:
        return self.memory_index >= 0

    @property
    def memory_share(self) -> float:
        """Fraction of samples whose cluster is a memory."""
        return float(self.basin_share[self.is_memory].sum())


def end_map_attractors(
    denoiser: DenoiserMap,
    n_starts: int,
    *,
    seed: object,
    n_steps: int = 30,
    method: str = "euler",
    final_denoise: bool = True,
    dedup_tol: float | None = None,
    memory_tol: float | None = None,
) -> EndMapAttractors:
    """Sample one denoiser with the PF-ODE from ``T`` to ``eps`` and cluster the end points.

    Start points ``x_T ~ N(0, sigma_T**2 I)`` come from the stream ``"sampling"`` exactly as
    the trained-ensemble samplers draw them (:func:`gtv.numerics.pfode.initial_points`): child
    ``n`` of the stream, with ``n`` the denoiser's ``model`` (0 for other denoisers), so a
    :class:`~gtv.numerics.memory.denoisers.ModelDenoiser` starts where its ensemble's sampler
    starts that member for the same seed. End points are ``y = D^(x_eps, eps)`` with
    ``final_denoise`` (default), else ``x_eps / alpha_eps``; clusters are greedy within
    ``dedup_tol`` (:func:`cluster_points`), represented by their means.

    Parameters
    ----------
    denoiser : DenoiserMap
    n_starts : int
    seed : int or SeedSequence
    n_steps, method
        The PF-ODE grid (:func:`integrate_pf_ode`).
    final_denoise : bool, default True
    dedup_tol, memory_tol : float, optional
        Defaults ``1e-3 R`` and ``0.05 R`` (:func:`find_attractors`).

    Returns
    -------
    EndMapAttractors
    """
    denoiser = _check_denoiser(denoiser)
    n_starts = check_count(n_starts, "n_starts")
    seed = check_seed(seed)
    check_count(n_steps, "n_steps")
    check_method(method)
    dedup_tol = _default_tol(dedup_tol, denoiser, DEDUP_REL, "dedup_tol")
    memory_tol = _default_tol(memory_tol, denoiser, MEMORY_REL, "memory_tol")
    member = int(getattr(denoiser, "model", 0))
    s = denoiser.schedule
    x_T = initial_points(None, seed, member + 1, n_starts, denoiser.dim, s)[member]
    x_eps = integrate_pf_ode(denoiser, x_T, s.T, denoiser.eps, n_steps, method)
    y = pf_end_points(denoiser, x_eps, final_denoise)
    leaders, labels = cluster_points(y, dedup_tol)
    counts = np.bincount(labels, minlength=leaders.shape[0])
    means = np.stack([y[labels == a].mean(axis=0) for a in range(leaders.shape[0])])
    mem_idx, mem_dist = nearest_memory(means, denoiser.memories)
    mem_idx = np.where(mem_dist <= memory_tol, mem_idx, -1)
    return EndMapAttractors(
        means, counts / n_starts, mem_idx, mem_dist, labels, y, n_starts, dedup_tol, memory_tol
    )
