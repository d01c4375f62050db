"""The dense-matrix algorithm of the serial-reproduction paper's MATLAB code, in plain numpy.

Used by ``bench_serial.py`` as the baseline that gtv's FFT chains are timed against. It follows
the authors' data flow: the M x M torus displacement matrix, one dense kernel matrix ``K_t``
(columns = sources, normalised over destinations) per step, the forward marginals
``q_t = K_t q_{t-1}``, one dense posterior matrix ``P_t[src, dst] = K_t[dst, src] q_{t-1}[src] /
(K_t q_{t-1})[dst]`` and one dense sampling matrix ``S_t = P_t K_t`` per step, all kept in memory
(as the MATLAB scripts keep them), the backward pass ``p <- S_t p`` from the terminal density, and
the metrics in bits (error ``KL(p_1 || p_data)``, JSD, complexity ``max_t KL(q_t || q_{t+1})``
over ``t = 1 .. T-1``, the stationarity score).

Written for the benchmark only (gtv's own dense reference for tests lives in the numerics); the
grid is the authors' ``n = round(1/h) + 1`` points per axis on [-0.5, 0.5] including both ends.
"""

from __future__ import annotations

import numpy as np

EPS = 2.2e-16


def grid_points(h: float) -> np.ndarray:
    """The authors' grid: (M, 2) points, both boundaries included (axis 0 runs slowest)."""
    z = np.linspace(-0.5, 0.5, int(round(1.0 / h)) + 1)
    a, b = np.meshgrid(z, z, indexing="ij")
    return np.stack([a.ravel(), b.ravel()], axis=1)


def displacements(points: np.ndarray) -> np.ndarray:
    """Minimum-image displacement ``dest - source`` on the unit torus, (M, M, 2)."""
    d = points[:, None, :] - points[None, :, :]
    return d - np.round(d)


def swiss_roll(points: np.ndarray, width: float = 0.04, floor: float = 0.1) -> np.ndarray:
    """The Swiss-roll density: cells within ``width`` of the curve, mixed with uniform."""
    u = np.linspace(0.0, 1.0, 101)
    t = 1.5 * np.pi * (1.0 + 2.0 * u)
    curve = np.stack([t * np.sin(t), -t * np.cos(t)], axis=1)
    lo, hi = curve.min(axis=0), curve.max(axis=0)
    curve = (curve - lo) / (hi - lo) * 0.8 - 0.4
    dist = np.sqrt(((points[:, None, :] - curve[None, :, :]) ** 2).sum(-1)).min(axis=1)
    roll = (dist < width).astype(float)
    roll /= roll.sum()
    return (1.0 - floor) * roll + floor / points.shape[0]


def three_modes(points: np.ndarray) -> np.ndarray:
    """The authors' 3-mode Gaussian mixture (not periodic), normalised on the grid."""
    w = 8 * 0.04**2
    means = [(0.1, 0.2), (-0.2, -0.1), (0.2, -0.2)]
    covs = [w * np.eye(2), w * np.eye(2), w * np.array([[2.0, 1.0], [1.0, 2.0]])]
    out = np.zeros(points.shape[0])
    for m, c in zip(means, covs, strict=True):
        d = points - np.asarray(m)
        ci = np.linalg.inv(c)
        out += np.exp(-0.5 * np.einsum("mi,ij,mj->m", d, ci, d)) / (
            2 * np.pi * np.sqrt(np.linalg.det(c))
        )
    return out / out.sum()


def kernel_matrix(
    disp: np.ndarray, family: str, sigma: float, terminal: np.ndarray | None = None
) -> np.ndarray:
    """Dense ``K[dest, source]`` of one step, every column normalised."""
    if family == "gaussian":
        k = np.exp(-(disp**2).sum(-1) / (2 * sigma**2))
        return k / k.sum(axis=0, keepdims=True)
    if family == "bimodal":
        shift = np.array([0.05, 0.05])
        k = np.zeros(disp.shape[:2])
        for s in (shift, -shift):
            c = np.exp(-((disp - s) ** 2).sum(-1) / (2 * sigma**2))
            k += 0.5 * c / c.sum(axis=0, keepdims=True)
        return k
    if family == "fade":
        stay = np.exp(-(disp**2).sum(-1) / (2 * 0.01**2))
        k = (1.0 - sigma) * stay + sigma * terminal[:, None]
        return k / k.sum(axis=0, keepdims=True)
    raise ValueError(f"family must be gaussian, bimodal or fade, got {family!r}")


def kl_bits(p: np.ndarray, q: np.ndarray) -> float:
    """``sum p log2((p + eps) / (q + eps))`` (the authors' regularised KL, in bits)."""
    return float(np.sum(p * np.log2((p + EPS) / (q + EPS))))


def jsd_bits(p: np.ndarray, q: np.ndarray) -> float:
    m = 0.5 * (p + q)
    return 0.5 * kl_bits(p, m) + 0.5 * kl_bits(q, m)


def run_dense(
    h: float,
    family: str,
    sigmas: np.ndarray,
    *,
    data: str = "swiss-roll",
    terminal: str = "uniform",
    inject_noise: bool = True,
) -> dict:
    """One condition of the authors' simulation with dense matrices.

    Returns ``{"p": p_1, "q": q_T, "error", "jsd", "complexity", "stationarity", "bytes"}``;
    ``bytes`` is the memory held by the stored K, P and S matrices.
    """
    pts = grid_points(h)
    M = pts.shape[0]
    disp = displacements(pts)
    p_data = swiss_roll(pts) if data == "swiss-roll" else three_modes(pts)
    p_end = np.full(M, 1.0 / M) if terminal == "uniform" else three_modes(pts)
    Ks, Ps, Ss = [], [], []
    q = [p_data]
    for s in np.asarray(sigmas, dtype=float):
        K = kernel_matrix(disp, family, float(s), p_end)
        Ks.append(K)
        q.append(K @ q[-1])
    for t, K in enumerate(Ks):
        prev, nxt = q[t], q[t + 1]
        P = (K.T * prev[:, None]) / nxt[None, :]
        Ps.append(P)
        Ss.append(P @ K)
    ps = []
    p = p_end
    for t in range(len(Ks) - 1, -1, -1):
        p = Ss[t] @ p if inject_noise else Ps[t] @ p
        ps.append(p)  # ps[0] = p_T (first produced), ps[-1] = p_1
    T = len(Ks)
    stationarity = float("nan")
    if T >= 2:
        v = ps[0] / ps[1]
        for t in range(T - 2, -1, -1):  # S_{T-1}^T ... S_1^T
            v = (Ss[t] if inject_noise else Ps[t]).T @ v
        stationarity = float(np.linalg.norm(v - 1.0) / np.sqrt(M))
    complexity = max((kl_bits(q[t], q[t + 1]) for t in range(1, T)), default=float("nan"))
    held = sum(a.nbytes for a in (*Ks, *Ps, *Ss)) + disp.nbytes
    return {
        "p": p,
        "q": q[-1],
        "error": kl_bits(p, p_data),
        "jsd": jsd_bits(p, p_data),
        "complexity": complexity,
        "stationarity": stationarity,
        "bytes": held,
    }
