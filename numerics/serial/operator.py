"""Forward kernels as fast operators: FFT circular convolutions plus diagonal and rank-one terms.

A kernel built from a family's terms (:mod:`gtv.numerics.serial.families`) is never stored as an
``M x M`` matrix. With ``E`` the ``M x m^dim`` matrix that lifts a torus array to the grid (the
identity on the true torus; on the authors' grid it copies each boundary torus point to its two
grid points) and ``C_k`` the circulant of term ``k`` on the torus, the column-normalised kernel is

    K = sum_k E C_k diag(w_k) E^T + diag(E w_id) + sum_l u_l (E w_l)^T ,

where the column weights ``w`` are torus arrays: the raw column sums of every term depend on the
source only through its torus point (for a circulant term the column sum at torus point ``a`` is
``(C_k^T c)(a)`` with ``c = E^T 1`` the multiplicity of each torus point), so the per-term and the
final column normalisations are diagonal scalings on the torus. ``K p`` and ``K^T v`` then cost one
``rfftn``/``irfftn`` pair per distinct term plus ``O(M)``: the duplicated boundary of the authors'
grid is exact, not approximated (the dense reference in :mod:`gtv.numerics.serial.reference` builds
the same matrix entry by entry).

The posterior (the exact Bayesian denoiser) ``D(s | d) = K(d | s) q(s) / (K q)(d)`` is applied as
``D p = q * K^T (p / K q)``. FFT convolutions carry an absolute error of order machine epsilon
times the largest entry, so a ratio ``p / K q`` at a point where ``K q`` is tiny would spread that
error everywhere. Entries with ``p(d) > RATIO_LIMIT (K q)(d)`` are therefore done exactly from
the kernel's rows (``O(M)`` each), and so are the entries of ``D^T v`` where ``K q`` is below
``FLOOR_LIMIT`` times its maximum. Where ``(K q)(d) = 0`` the posterior is undefined; it falls
back to the prior, ``D(. | d) = q``, so that ``D`` stays a Markov kernel.
"""

from __future__ import annotations

import numpy as np
from scipy import fft as scipy_fft

from gtv.numerics.serial.families import KernelTerm, NoiseFamily, check_kernel_values
from gtv.numerics.serial.grid import Grid

__all__ = ["FLOOR_LIMIT", "RATIO_LIMIT", "KernelOperator"]

#: Posterior entries with ``p(d) > RATIO_LIMIT * (K q)(d)`` are computed from exact rows.
RATIO_LIMIT = 1e3
#: Entries of ``D^T v`` where ``(K q)(d) < FLOOR_LIMIT * max(K q)`` are computed from exact rows.
FLOOR_LIMIT = 1e-3
#: Rows or columns gathered at once by the exact route (bounds its scratch memory).
_CHUNK_ENTRIES = 1 << 19


class KernelOperator:
    """A column-normalised forward kernel ``K(dest | source)`` on a grid, applied without a matrix.

    Parameters
    ----------
    grid : Grid
        The grid.
    terms : list of KernelTerm
        The kernel's terms (usually ``family.terms(grid, sigma)``; see :meth:`from_family`).

    Raises
    ------
    ValueError
        If a term has negative or non-finite values, or a column of the kernel sums to zero.
    """

    def __init__(self, grid: Grid, terms: list[KernelTerm]) -> None:
        self.grid = grid
        tshape = grid.torus_shape
        self._axes = tuple(range(grid.dim))
        k_index = grid.displacement_index()
        # multiplicity of each torus point among the grid points (2 or 4 on the authors' boundary)
        count = grid.fold(np.ones(grid.shape))
        colsum = np.zeros(tshape)
        shift: list[list] = []  # [values (FFT order), spectrum, torus weights]
        identity = np.zeros(tshape)
        has_identity = False
        rank_one: list[list] = []  # [u (grid), torus weights]
        for term in terms:
            if term.kind == "shift":
                values = check_kernel_values(term.function(k_index, grid), "kernel")
                spec = scipy_fft.rfftn(values, axes=self._axes)
                if grid.duplicated:  # column sums vary near the duplicated boundary
                    raw = self._conv(spec, count, transpose=True)
                    raw = np.where(raw > 0, raw, 0.0)
                else:  # a circulant: every column sums to the same number
                    raw = np.full(tshape, float(values.sum()))
                if term.normalise:
                    with np.errstate(divide="ignore"):
                        w = np.where(raw > 0, term.weight / raw, 0.0)
                else:
                    w = np.full(tshape, term.weight)
                shift.append([values, spec, w])
                colsum += w * raw
            elif term.kind == "identity":
                identity += term.weight
                has_identity = True
                colsum += term.weight
            elif term.kind == "replacement":
                u = np.asarray(term.target, dtype=np.float64)
                rank_one.append([u, np.full(tshape, term.weight)])
                colsum += term.weight * u.sum()
            else:
                raise ValueError(f"term kind must be shift, identity or replacement: {term.kind!r}")
        if not np.all(colsum > 0):
            raise ValueError("kernel: a column of the kernel sums to zero (nothing to normalise)")
        inv = 1.0 / colsum
        for entry in shift:
            entry[2] = entry[2] * inv
        for entry in rank_one:
            entry[1] = entry[1] * inv
        self._identity = identity * inv if has_identity else None
        # Terms whose torus weights are constant merge into one spectrum (always on the torus).
        self._shift = []
        values_sum = spec_sum = None
        for values, spec, w in shift:
            if np.all(w == w.flat[0]):
                c = w.flat[0]
                values_sum = c * values if values_sum is None else values_sum + c * values
                spec_sum = c * spec if spec_sum is None else spec_sum + c * spec
            else:
                self._shift.append((values, spec, w))
        if values_sum is not None:
            self._shift.insert(0, (values_sum, spec_sum, None))
        self._rank_one = [(u, w) for u, w in rank_one]

    @classmethod
    def from_family(cls, family: NoiseFamily, grid: Grid, sigma: float) -> KernelOperator:
        """The kernel of ``family`` at noise level ``sigma`` on ``grid``."""
        return cls(grid, family.terms(grid, sigma))

    # -- building blocks -----------------------------------------------------------------------

    def _conv(self, spec: np.ndarray, x: np.ndarray, transpose: bool = False) -> np.ndarray:
        xh = scipy_fft.rfftn(x, axes=self._axes)
        xh *= np.conj(spec) if transpose else spec
        return scipy_fft.irfftn(xh, s=self.grid.torus_shape, axes=self._axes)

    def _shape_of(self, x: object, argname: str) -> np.ndarray:
        a = np.asarray(x, dtype=np.float64)
        if a.shape != self.grid.shape:
            raise ValueError(
                f"{argname} must have the grid's shape {self.grid.shape}, got {a.shape}"
            )
        return a

    def _prior(self, prior: object) -> np.ndarray:
        q = self._shape_of(prior, "prior")
        if not np.all(np.isfinite(q)) or np.any(q < 0):
            raise ValueError("prior must be finite and non-negative")
        return q

    # -- K and K^T -----------------------------------------------------------------------------

    def apply(self, p: object) -> np.ndarray:
        """``K p`` (the density of the noisy state when the clean one has density ``p``)."""
        p = self._shape_of(p, "p")
        g = self.grid
        x = g.fold(p)
        out = np.zeros(g.shape)
        if self._shift:
            acc = None
            xh = None
            for _, spec, w in self._shift:
                if w is None:
                    xh = scipy_fft.rfftn(x, axes=self._axes) if xh is None else xh
                    term = spec * xh
                else:
                    term = spec * scipy_fft.rfftn(w * x, axes=self._axes)
                acc = term if acc is None else acc + term
            out += g.lift(scipy_fft.irfftn(acc, s=g.torus_shape, axes=self._axes))
        if self._identity is not None:
            out += g.lift(self._identity) * p
        for u, w in self._rank_one:
            out += u * float(np.sum(w * x))
        return out

    def apply_transpose(self, v: object) -> np.ndarray:
        """``K^T v``: ``(K^T v)(s) = sum_d K(d | s) v(d)``."""
        v = self._shape_of(v, "v")
        g = self.grid
        x = g.fold(v)
        out = np.zeros(g.shape)
        if self._shift:
            xh = scipy_fft.rfftn(x, axes=self._axes)
            acc = np.zeros(g.torus_shape)
            for _, spec, w in self._shift:
                y = scipy_fft.irfftn(np.conj(spec) * xh, s=g.torus_shape, axes=self._axes)
                acc += y if w is None else w * y
            out += g.lift(acc)
        if self._identity is not None:
            out += g.lift(self._identity) * v
        for u, w in self._rank_one:
            out += g.lift(w) * float(np.sum(u * v))
        return out

    # -- exact rows and columns ----------------------------------------------------------------

    def _gather(self, idx: np.ndarray, by_row: bool) -> np.ndarray:
        g = self.grid
        tau = g.torus_index
        m = g.period_points
        fixed = tau[idx]  # (n, dim): the dest (rows) or source (columns) torus points
        diff = (
            fixed[:, None, :] - tau[None, :, :] if by_row else tau[None, :, :] - fixed[:, None, :]
        )
        r = tuple(np.mod(diff[..., a], m) for a in range(g.dim))
        src_t = tuple(tau[:, a] for a in range(g.dim))  # torus point of every grid point
        fix_t = tuple(fixed[:, a] for a in range(g.dim))
        out = np.zeros((idx.size, g.size))
        for values, _, w in self._shift:
            vals = values[r]
            if w is not None:
                vals = vals * (w[src_t][None, :] if by_row else w[fix_t][:, None])
            out += vals
        if self._identity is not None:
            ident = self._identity[fix_t]
            out[np.arange(idx.size), idx] += ident
        for u, w in self._rank_one:
            uf = u.ravel()
            if by_row:
                out += uf[idx][:, None] * w[src_t][None, :]
            else:
                out += w[fix_t][:, None] * uf[None, :]
        return out

    def _chunks(self, idx: np.ndarray, by_row: bool):
        step = max(1, _CHUNK_ENTRIES // self.grid.size)
        for start in range(0, idx.size, step):
            part = idx[start : start + step]
            yield part, self._gather(part, by_row)

    def _check_index(self, idx: object, argname: str) -> np.ndarray:
        i = np.atleast_1d(np.asarray(idx))
        if i.size == 0:
            return np.zeros(0, dtype=np.intp)
        if i.ndim != 1 or not np.issubdtype(i.dtype, np.integer):
            raise ValueError(f"{argname} must be integer flat indices into the grid")
        if i.size and (i.min() < 0 or i.max() >= self.grid.size):
            raise ValueError(f"{argname} must lie in [0, {self.grid.size - 1}]")
        return i.astype(np.intp)

    def rows(self, idx: object) -> np.ndarray:
        """Rows ``K[d, :]`` for flat destination indices ``idx``, computed exactly: (n, M)."""
        idx = self._check_index(idx, "idx")
        return np.concatenate(
            [r for _, r in self._chunks(idx, True)] or [np.zeros((0, self.grid.size))]
        )

    def columns(self, idx: object) -> np.ndarray:
        """Columns ``K[:, s]`` for flat source indices ``idx``, as rows of an (n, M) array."""
        idx = self._check_index(idx, "idx")
        return np.concatenate(
            [c for _, c in self._chunks(idx, False)] or [np.zeros((0, self.grid.size))]
        )

    def dense(self) -> np.ndarray:
        """The ``M x M`` matrix (row = destination), for small grids (``M <= 10000``)."""
        if self.grid.size > 10_000:
            raise ValueError(f"dense() needs a grid of at most 10000 points, got {self.grid.size}")
        return self.rows(np.arange(self.grid.size))

    # -- the Bayesian denoiser -----------------------------------------------------------------

    def pushed(self, prior: object) -> np.ndarray:
        """``K prior`` for a non-negative ``prior``, accurate *relative to each entry*.

        The FFT gives every entry to within machine epsilon times the largest one; entries below
        ``FLOOR_LIMIT`` times the largest are recomputed from the kernel's rows, so that tiny
        (and exactly zero) values stay right. The posterior divides by these values.
        """
        prior = self._prior(prior)
        y = np.maximum(self.apply(prior), 0.0).ravel()
        low = np.flatnonzero(y < FLOOR_LIMIT * y.max())
        if low.size:
            qf = prior.ravel()
            for part, rows in self._chunks(low, by_row=True):
                y[part] = rows @ qf
        return y.reshape(self.grid.shape)

    def posterior(self, p: object, prior: object, pushed: np.ndarray | None = None) -> np.ndarray:
        """The exact Bayesian denoiser applied to ``p``: ``(D p)(s) = sum_d D(s | d) p(d)``.

        ``D(s | d) = K(d | s) prior(s) / (K prior)(d)``; where ``(K prior)(d) = 0`` the prior
        itself (module docstring). ``pushed`` is ``K prior`` if already known (a chain passes its
        next forward marginal, which makes ``D_t q_t = q_{t-1}`` exact to round-off).
        """
        p = self._shape_of(p, "p")
        prior = self._prior(prior)
        y = self.pushed(prior) if pushed is None else self._shape_of(pushed, "pushed")
        pf, yf = p.ravel(), y.ravel()
        nonzero = pf != 0
        good = nonzero & (np.abs(pf) <= RATIO_LIMIT * yf)
        ratio = np.zeros(self.grid.size)
        ratio[good] = pf[good] / yf[good]
        back = self.apply_transpose(ratio.reshape(self.grid.shape)).ravel()
        # posterior undefined where K prior = 0: that mass is reproduced from the prior
        fallback = float(pf[nonzero & (yf <= 0)].sum())
        big = np.flatnonzero(nonzero & ~good & (yf > 0))
        if big.size:
            qf = prior.ravel()
            for part, rows in self._chunks(big, by_row=True):
                yd = rows @ qf
                ok = yd > 0
                back += (pf[part][ok] / yd[ok]) @ rows[ok]
                fallback += float(pf[part][~ok].sum())
        out = prior.ravel() * (back + fallback)
        if np.all(pf >= 0):  # a density stays a density: clip the FFT's round-off
            np.maximum(out, 0.0, out=out)
        return out.reshape(self.grid.shape)

    def posterior_transpose(
        self, v: object, prior: object, pushed: np.ndarray | None = None
    ) -> np.ndarray:
        """``D^T v``: ``(D^T v)(d) = sum_s D(s | d) v(s)``, the posterior mean of ``v`` at ``d``."""
        v = self._shape_of(v, "v")
        prior = self._prior(prior)
        y = self.pushed(prior) if pushed is None else self._shape_of(pushed, "pushed")
        num = self.apply(prior * v).ravel()
        yf = y.ravel()
        qv = prior.ravel() * v.ravel()
        out = np.full(self.grid.size, float(qv.sum()))  # where K prior = 0: the prior mean
        high = yf >= FLOOR_LIMIT * yf.max()
        out[high] = num[high] / yf[high]
        low = np.flatnonzero(~high & (yf > 0))
        if low.size:
            qf = prior.ravel()
            for part, rows in self._chunks(low, by_row=True):
                yd = rows @ qf
                with np.errstate(divide="ignore", invalid="ignore"):
                    out[part] = np.where(yd > 0, (rows @ qv) / np.where(yd > 0, yd, 1.0), out[part])
        return out.reshape(self.grid.shape)
