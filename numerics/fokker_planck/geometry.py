"""Faces and lines of the finite-volume sweeps, shared by both backends (no numerics here)."""

from __future__ import annotations

import numba
import numpy as np

from gtv.numerics.fokker_planck.grid import FVGrid

__all__ = ["Geometry", "direction_chains"]


@numba.njit(cache=True, error_model="numpy")
def direction_chains(nx, ny, a, b):
    """Lines of cells ``z, z + e, z + 2e, ...`` of direction ``e = (a, b)`` on an nx x ny grid.

    Returns ``ptr`` (n_chains + 1) and ``idx`` (nx * ny): chain ``c`` holds the flat cell indices
    ``idx[ptr[c]:ptr[c+1]]`` (C order, ``i * ny + j``). Chains are ordered by their first cell.
    """
    ptr = np.empty(nx * ny + 1, dtype=np.int64)
    idx = np.empty(nx * ny, dtype=np.int64)
    nc = 0
    pos = 0
    for i in range(nx):
        for j in range(ny):
            pi = i - a
            pj = j - b
            if 0 <= pi < nx and 0 <= pj < ny:
                continue
            ptr[nc] = pos
            nc += 1
            ii = i
            jj = j
            while 0 <= ii < nx and 0 <= jj < ny:
                idx[pos] = ii * ny + jj
                pos += 1
                ii += a
                jj += b
    ptr[nc] = pos
    return ptr[: nc + 1].copy(), idx


class Geometry:
    """Faces and lines of the axis sweeps (shared by both backends; no numerics here).

    The faces of axis ``k`` are ordered like the lines of :func:`direction_chains` with the unit
    vector of axis ``k``: face ``f`` of line ``c`` at position ``q`` (between its cells ``q`` and
    ``q + 1``) has index ``ptr[c] - c + q``.
    """

    def __init__(self, grid: FVGrid):
        self.grid = grid
        self.ndim = grid.ndim
        self.shape = grid.shape
        nx = self.shape[0]
        ny = self.shape[1] if self.ndim == 2 else 1
        self.nx, self.ny = nx, ny
        self.vol = np.ascontiguousarray(grid.volumes.ravel())
        cen, edg, wid = grid.centres, grid.edges, grid.widths
        self.axes = []
        for k in range(self.ndim):
            e = (1, 0) if k == 0 else (0, 1)
            ptr, idx = direction_chains(nx, ny, *e)
            c, ed = cen[k], edg[k]
            h = np.diff(c)
            theta = (ed[1:-1] - c[:-1]) / h
            if self.ndim == 1:
                pts = ed[1:-1][:, None].copy()
                area = np.ones(nx - 1)
                hf, th = h, theta
            elif k == 0:  # lines j, faces i: point (edge_x[i+1], centre_y[j])
                X, Y = np.meshgrid(ed[1:-1], cen[1], indexing="xy")  # (ny, nx-1)
                pts = np.stack([X.ravel(), Y.ravel()], axis=1)
                area = np.repeat(wid[1], nx - 1)
                hf, th = np.tile(h, ny), np.tile(theta, ny)
            else:  # lines i, faces j: point (centre_x[i], edge_y[j+1])
                X, Y = np.meshgrid(cen[0], ed[1:-1], indexing="ij")  # (nx, ny-1)
                pts = np.stack([X.ravel(), Y.ravel()], axis=1)
                area = np.repeat(wid[0], ny - 1)
                hf, th = np.tile(h, nx), np.tile(theta, nx)
            self.axes.append(
                {
                    "e": e,
                    "ptr": ptr,
                    "idx": idx,
                    "points": pts,
                    "h": np.ascontiguousarray(hf),
                    "theta": np.ascontiguousarray(th),
                    "area": np.ascontiguousarray(area),
                }
            )
        self.face_points = np.concatenate([ax["points"] for ax in self.axes], axis=0)
        self.face_split = np.cumsum([ax["points"].shape[0] for ax in self.axes])[:-1]
        self.cell_points = grid.points()
        self.uniform = all(grid.is_uniform(k) for k in range(self.ndim))
        self.spacing = tuple(float(w.mean()) for w in wid)
