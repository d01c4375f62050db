"""PF-ODE sampling of a linear-feature ensemble (docs/math/conventions.md, docs/math/linear.md).

The denoiser ``D^_n(x, t) = W[n] phi(x, t)`` of a
:class:`~gtv.numerics.linear.model.LinearEnsemble` is evaluated **exactly** at every sample
(``lookup="exact"``, default) or, to reproduce the paper, at a point of a uniform spatial grid
(``lookup="grid"``: the first grid point at or above the sample, the paper's
``searchsorted``); the steps are those of :mod:`gtv.numerics.pfode`.

On the uniform time grid every sample of a step shares ``t``, so the time features are contracted
into the weights once per step: ``W_k = W . phi_t(t_k)`` (``D x F_space``). Memory is
O(models x samples x D); nothing is stored per step. Three denoiser kernels:

* the general one (any bases, any D): per sample, the axis values and their Kronecker product;
* 1-D Gaussian bumps: a block of samples at a time in Horner form (vectorized by LLVM);
* grid lookup: a table of ``D^`` on the grid per model and step.

Model ``n`` draws its start points from ``stream(seed, "sampling").spawn(N)[n]``
(:func:`gtv.numerics.pfode.initial_points`).
"""

from __future__ import annotations

import types

import numba
import numpy as np

from gtv.numerics.checks import check_choice, check_count
from gtv.numerics.fastexp import exp_block, exp_inline
from gtv.numerics.features import (
    EXP_MINUS_4,
    axis_offsets,
    axis_params,
    axis_values_fast,
    kron_into,
)
from gtv.numerics.linear.model import LinearEnsemble
from gtv.numerics.pfode import (
    BLOCK,
    abs_max,
    check_method,
    drift_coefficients,
    initial_points,
    make_pf_ode,
    model_rows,
    pf_ode_time_grid,
    warn_if_diverged,
)

__all__ = [
    "LOOKUPS",
    "LinearSampler",
    "check_splice",
    "sample_linear_ensemble",
    "time_contracted_weights",
]

LOOKUPS = ("exact", "grid")

# Largest |z| (in bump spacings from the central bump) at which the Horner form below is used:
# its intermediate values grow like exp(2 z**2) and must stay far below the double range.
_HORNER_ZMAX = 17.0
# Largest basis size for the Horner form: its coefficients carry exp(-2 j (j-1)) for
# j <= size/2, which must not underflow (j = 17 gives exp(-544), j = 20 would give exp(-760)).
_HORNER_MAX_SIZE = 34


def time_contracted_weights(ensemble: LinearEnsemble, ts: np.ndarray) -> np.ndarray:
    """``W_k[n] = W[n] . phi_t(t_k)`` for every grid time: shape (N, K+1, D, F_space)."""
    feats = ensemble.features
    phi_t = feats.time.evaluate(ts)  # (K+1, F_t)
    n, d, _ = ensemble.W.shape
    w = ensemble.W.reshape(n, d, feats.n_space_features, feats.time.size)
    return np.ascontiguousarray(np.einsum("ndst,kt->nkds", w, phi_t))


# -- general kernel: one point at a time --------------------------------------------------------
@numba.njit(cache=True, error_model="numpy", inline="always")
def _linear_point(args, n, k, x, out, ws):
    """``out = W_k[n] . phi_space(x)`` for one point ``x`` (D,)."""
    wts, kinds, sizes, params, offsets, rows = args
    vals, phi = ws
    wk = wts[rows[n], k]
    n_axes = kinds.shape[0]
    for a in range(n_axes):
        axis_values_fast(
            kinds[a], sizes[a], params[a, 0], params[a, 1], params[a, 2], x[a], vals[offsets[a] :]
        )
    if n_axes == 1:
        f = sizes[0]
        for c in range(wk.shape[0]):
            acc = 0.0
            for i in range(f):
                acc += wk[c, i] * vals[i]
            out[c] = acc
    else:
        f = kron_into(vals, offsets, sizes, n_axes, phi)
        for c in range(wk.shape[0]):
            acc = 0.0
            for i in range(f):
                acc += wk[c, i] * phi[i]
            out[c] = acc


@numba.njit(cache=True, error_model="numpy", inline="always")
def _linear_workspace(args, d):
    wts, _, sizes, _, offsets, _ = args
    return np.empty(offsets[-1] + sizes[-1]), np.empty(wts.shape[3])


_pf_ode_linear = make_pf_ode(_linear_point, _linear_workspace, pointwise=True)


# -- 1-D Gaussian bumps: a block at a time ------------------------------------------------------
def _gauss1d_block_template(args, n, k, z, m, out, work):  # pragma: no cover - compiled
    """``out[0, :m] = D^(z[0, :m])`` of model ``n`` at step ``k`` for 1-D Gaussian bumps.

    With ``z = (u - c_kc)/h`` measured from the central bump ``kc``,
    ``phi_{kc+j} = phi_kc r**j exp(-2 j (j-1))`` with ``phi_kc = norm exp(-2 z**2)`` and
    ``r = exp(4 z - 2)`` (``exp(-4 z - 2) = exp(-4)/r`` going down), so
    ``D^ = phi_kc (P_up(r) + r_down P_down(r_down))`` with per-step coefficients
    ``cu[j] = w[kc+j] exp(-2 j (j-1))``, ``cd[j] = w[kc-j] exp(-2 j (j-1))``, evaluated by Horner's
    rule: two exponentials and ``size`` fused multiply-adds per point.

    Points with ``|z| > _HORNER_ZMAX`` (where those Horner intermediates, which grow like
    ``exp(2 z**2)``, would leave the double range) lie beyond the outermost bumps; they are
    gathered and evaluated by the same expansion around the nearest *end* bump, where the ratio
    ``r = exp(-4 |v| - 2) < 1`` (``v``: how far past that bump, in spacings) and nothing
    overflows: ``D^ = phi_end * sum_i ce[i] r**i`` with ``cl[i] = w[i] exp(-2 i (i-1))``
    from the lowest bump, ``cr[i] = w[top-i] exp(-2 i (i-1))`` from the highest, ``top = F - 1``
    (``phi_end`` is set to 0 once ``-2 v**2 < -708``, below the normal double range).

    A template: :func:`_gauss1d_driver` compiles it with the polynomial degrees ``_NU``, ``_ND``
    (the sizes of ``cu`` and ``cd``) and ``_NF`` (of ``cl``, ``cr``; see :func:`_horner_class`)
    bound as compile-time constants, so the Horner loops unroll and each point's exponentials
    (:func:`gtv.numerics.fastexp.exp_inline`) and whole polynomial are evaluated in registers, in
    one loop over the block that LLVM vectorizes (one pass over memory instead of one per
    coefficient and exponential).
    """
    cu, cd, cl, cr, lo, inv_h, norm, kc, top, rows = args
    u = z[0]
    res = out[0]
    fwork, iwork = work
    y1, y2, e1, e2, scratch = fwork[0], fwork[1], fwork[2], fwork[3], fwork[4]
    mdl = rows[n]
    c_up = cu[mdl, k]
    c_dn = cd[mdl, k]
    n_far = 0
    for i in range(m):
        zi = (u[i] - lo) * inv_h - kc
        if abs(zi) > _HORNER_ZMAX:
            n_far += 1
        zi = min(max(zi, -_HORNER_ZMAX), _HORNER_ZMAX)
        r = exp_inline(4.0 * zi - 2.0)
        pu = c_up[_NU - 1]  # noqa: F821 - bound by _gauss1d_driver
        for j in range(_NU - 2, -1, -1):  # noqa: F821
            pu = pu * r + c_up[j]
        pd = 0.0
        if _ND > 1:  # noqa: F821
            # r_down = exp(-4) / r once per point (a division per coefficient would be the
            # slowest instruction of the kernel)
            rdown = EXP_MINUS_4 / r
            pd = c_dn[_ND - 1]  # noqa: F821
            for j in range(_ND - 2, 0, -1):  # noqa: F821
                pd = pd * rdown + c_dn[j]
            pd *= rdown
        res[i] = norm * exp_inline(-2.0 * zi * zi) * (pu + pd)
    if n_far > 0:
        # y1, y2, e1, e2 and scratch are free again: the far points, gathered
        idx = iwork
        nf = 0
        for i in range(m):
            zz = (u[i] - lo) * inv_h
            if abs(zz - kc) > _HORNER_ZMAX:
                v = zz if zz < kc else zz - top  # from the nearest end bump: < 0 low, > 0 high
                idx[nf] = i
                y1[nf] = max(-2.0 * v * v, -708.0)
                # (clamped where r underflows: there -2 v**2 < -708 too, so the point's D^ is 0)
                y2[nf] = max(-4.0 * abs(v) - 2.0, -708.0)
                e2[nf] = v
                nf += 1
        exp_block(y1, e1, nf)
        exp_block(y2, y1, nf)
        c_lo = cl[mdl, k]
        c_hi = cr[mdl, k]
        for f in range(nf):
            r = y1[f]
            pl = c_lo[_NF - 1]  # noqa: F821
            ph = c_hi[_NF - 1]  # noqa: F821
            for j in range(_NF - 2, -1, -1):  # noqa: F821
                pl = pl * r + c_lo[j]
                ph = ph * r + c_hi[j]
            v = e2[f]
            phi = 0.0 if -2.0 * v * v <= -708.0 else norm * e1[f]
            scratch[f] = phi * (pl if v < 0.0 else ph)
        for f in range(nf):
            res[idx[f]] = scratch[f]


@numba.njit(cache=True, inline="always")
def _gauss1d_workspace(args, d):
    return np.empty((5, BLOCK)), np.empty(BLOCK, dtype=np.int64)


_GAUSS1D_DRIVERS: dict[tuple[int, int, int], object] = {}


def _gauss1d_driver(n_up: int, n_down: int, size: int):
    """The PF-ODE driver for 1-D Gaussian bumps with Horner degrees ``n_up``, ``n_down`` and
    basis ``size`` (compiled once per triple and cached on disk under a name that carries it)."""
    key = (int(n_up), int(n_down), int(size))
    if key not in _GAUSS1D_DRIVERS:
        tpl = _gauss1d_block_template
        glb = dict(tpl.__globals__)
        glb.update(_NU=key[0], _ND=key[1], _NF=key[2])
        fn = types.FunctionType(tpl.__code__, glb, "gauss1d_block")
        fn.__qualname__ = "gauss1d_block_{}_{}_{}".format(*key)
        fn.__doc__ = tpl.__doc__
        block = numba.njit(cache=True, error_model="numpy", fastmath={"contract"}, inline="always")(
            fn
        )
        _GAUSS1D_DRIVERS[key] = make_pf_ode(block, _gauss1d_workspace, fastmath={"contract"})
    return _GAUSS1D_DRIVERS[key]


def _horner_class(size: int) -> int:
    """The basis size whose compiled kernel serves ``size`` bumps: 16 for up to 16, else
    ``_HORNER_MAX_SIZE``. Two compiled kernels instead of one per size (each takes ~15 s to
    compile); smaller bases run in the larger kernel with zero-padded coefficients."""
    return 16 if size <= 16 else _HORNER_MAX_SIZE


def _horner_coefficients(w: np.ndarray, kc: int, size: int) -> tuple[np.ndarray, ...]:
    """Coefficients of ``_gauss1d_block_template`` from weights ``w`` (..., F) and the centre
    ``kc``: ``cu``, ``cd`` (around the central bump) and ``cl``, ``cr`` (from the end bumps),
    each padded with zeros at the high-order end to the lengths of a ``size``-bump kernel.

    Horner's rule with leading zero coefficients gives exactly the unpadded result
    (``0 * r + 0 = 0``, then ``0 * r + c = c``), so padding changes no bit of ``D^``.
    """
    f = w.shape[-1]
    ju = np.arange(f - kc)
    jd = np.arange(kc + 1)
    je = np.arange(f)
    cu = w[..., kc:] * np.exp(-2.0 * ju * (ju - 1))
    cd = w[..., kc::-1] * np.exp(-2.0 * jd * (jd - 1))
    cl = w * np.exp(-2.0 * je * (je - 1))
    cr = w[..., ::-1] * np.exp(-2.0 * je * (je - 1))
    lengths = (size - size // 2, size // 2 + 1, size, size)
    out = []
    for c, n in zip((cu, cd, cl, cr), lengths, strict=True):
        padded = np.zeros((*c.shape[:-1], n))
        padded[..., : c.shape[-1]] = c
        out.append(padded)
    return tuple(out)


# -- grid lookup ---------------------------------------------------------------------------------
@numba.njit(cache=True, error_model="numpy", inline="always")
def _grid_point(args, n, k, x, out, ws):
    """The tabulated denoiser at the paper's grid point: per axis the first grid point at or
    above ``x`` (``searchsorted(grid, x)`` clipped to the last point, as the paper's code does);
    ``tables[n, k]`` is (G**D, D)."""
    tables, lo, h, g, rows = args
    d = x.shape[0]
    flat = 0
    for a in range(d):
        j = int(np.ceil((x[a] - lo) / h))
        j = min(max(j, 0), g - 1)
        flat = flat * g + j
    for c in range(d):
        out[c] = tables[rows[n], k, flat, c]


_pf_ode_grid = make_pf_ode(_grid_point, pointwise=True)


# -- public API ---------------------------------------------------------------------------------
class LinearSampler:
    """The PF-ODE sampler of a linear ensemble, prepared once and run on any start points.

    Preparing contracts the time features into the weights on the step grid and, for 1-D
    Gaussian bumps, forms the Horner coefficients (or, with ``lookup="grid"``, tabulates the
    denoiser): work that depends on the models and the grid but not on the start points, so a
    caller that runs the same ensemble several times (the refinement rounds of
    :func:`gtv.numerics.transport.transport_1d`) pays for it once. Arguments as
    :func:`sample_linear_ensemble`, and two for a *spliced* ensemble:

    Parameters
    ----------
    early : LinearEnsemble, optional
        Same features, schedule, ``eps`` and number of models as ``ensemble``. At every grid time
        ``t > t_switch`` model ``n`` steps with ``early``'s model ``n`` instead of its own, so a
        trajectory is driven by one member down to ``t_switch`` and by another below it (which
        sampler times carry a density difference: docs/math/finite_fp.md, *Where the density
        errors sit*).
    t_switch : float, optional
        Required with ``early`` (finite; any value: above ``T`` nothing is switched, below the
        last evaluated time everything is).
    """

    def __init__(
        self,
        ensemble: LinearEnsemble,
        *,
        eps: float | None = None,
        n_steps: int = 30,
        method: str = "euler",
        lookup: str = "exact",
        lookup_grid: tuple[float, float, int] = (-1.5, 1.5, 200),
        early: LinearEnsemble | None = None,
        t_switch: float | None = None,
    ) -> None:
        if not isinstance(ensemble, LinearEnsemble):
            raise TypeError("ensemble must be a LinearEnsemble")
        check_splice(ensemble, early, t_switch)
        check_method(method)
        check_choice(lookup, "lookup", LOOKUPS)
        sched = ensemble.schedule
        ts = pf_ode_time_grid(sched, ensemble.eps if eps is None else eps, n_steps)
        d = ensemble.features.dim
        if lookup == "grid":
            lo, hi, g = float(lookup_grid[0]), float(lookup_grid[1]), int(lookup_grid[2])
            if not (lo < hi and g >= 2):
                raise ValueError(
                    f"lookup_grid must be (lo, hi, G) with lo < hi and G >= 2, got {lookup_grid}"
                )
        self.ensemble, self.method, self.ts = ensemble, method, ts
        self._ax, self._bx = drift_coefficients(sched, ts)
        wts = time_contracted_weights(ensemble, ts)
        if early is not None:
            steps = ts > t_switch
            wts[:, steps] = time_contracted_weights(early, ts[steps])
        feats = ensemble.features
        basis = feats.space[0]
        if (
            lookup == "exact"
            and d == 1
            and basis.kind == "gaussian"
            and (basis.size <= _HORNER_MAX_SIZE)
        ):
            lo, inv_h, norm = axis_params(0, basis.size, basis.lo, basis.hi)
            kc = basis.size // 2
            w1 = np.ascontiguousarray(wts[:, :, 0, :])
            cu, cd, cl, cr = _horner_coefficients(w1, kc, _horner_class(basis.size))
            self._driver = _gauss1d_driver(cu.shape[2], cd.shape[2], cl.shape[2])
            self._args = (cu, cd, cl, cr, lo, inv_h, norm, kc, basis.size - 1)
        elif lookup == "exact":
            kinds, sizes, los, his = (a[:-1].copy() for a in feats.arrays())
            params = np.array([axis_params(*a) for a in zip(kinds, sizes, los, his, strict=True)])
            offsets, _ = axis_offsets(sizes)
            self._driver = _pf_ode_linear
            self._args = (wts, kinds, sizes, params, offsets)
        else:
            axis = np.linspace(lo, hi, g)
            pts = np.stack(np.meshgrid(*([axis] * d), indexing="ij"), axis=-1).reshape(-1, d)
            phi_s = feats.evaluate_space(pts)  # (G**D, Fs)
            tables = np.ascontiguousarray(np.einsum("nkds,gs->nkgd", wts, phi_s))
            self._driver = _pf_ode_grid
            self._args = (tables, lo, (hi - lo) / (g - 1), g)
        # the data lie inside the features' x_range
        self._radius = max(max(abs(a.lo), abs(a.hi)) for a in feats.space)

    def sample(
        self,
        n_samples: int,
        *,
        seed: object = 0,
        x_T: np.ndarray | None = None,
        models: np.ndarray | None = None,
        stream: str = "sampling",
    ) -> np.ndarray:
        """Samples at ``t = eps``: (N, n_samples, D), or (R, n_samples, D) with ``models``
        (parameters as :func:`sample_linear_ensemble`)."""
        ens = self.ensemble
        n_samples = check_count(n_samples, "n_samples")
        rows = model_rows(models, ens.n_models, x_T)
        sched = ens.schedule
        x = initial_points(x_T, seed, rows.size, n_samples, ens.features.dim, sched, stream)
        start = abs_max(x)
        self._driver(x, self.ts, self._ax, self._bx, self.method == "heun", (*self._args, rows))
        warn_if_diverged(x, self._radius, sched, self.method, self.ts.size - 1, start)
        return x


def check_splice(ensemble: LinearEnsemble, early: LinearEnsemble | None, t_switch) -> None:
    """The checks of :class:`LinearSampler`'s ``early``/``t_switch`` (``ValueError``/``TypeError``
    naming the argument), for callers that validate a splice before building any sampler."""
    if early is None:
        if t_switch is not None:
            raise ValueError("t_switch is only used with early (the ensemble driving t > t_switch)")
        return
    if not isinstance(early, LinearEnsemble):
        raise TypeError("early must be a LinearEnsemble (or None)")
    if early.W.shape != ensemble.W.shape or early.features != ensemble.features:
        raise ValueError(
            f"early must have the ensemble's models and features: W {early.W.shape} against "
            f"{ensemble.W.shape}"
        )
    if early.schedule.name != ensemble.schedule.name or early.eps != ensemble.eps:
        raise ValueError("early must have the ensemble's schedule and eps")
    if t_switch is None or isinstance(t_switch, bool) or not np.isfinite(float(t_switch)):
        raise ValueError(f"t_switch must be a finite time with early, got {t_switch!r}")


def sample_linear_ensemble(
    ensemble: LinearEnsemble,
    n_samples: int,
    *,
    eps: float | None = None,
    n_steps: int = 30,
    method: str = "euler",
    lookup: str = "exact",
    lookup_grid: tuple[float, float, int] = (-1.5, 1.5, 200),
    seed: object = 0,
    x_T: np.ndarray | None = None,
    models: np.ndarray | None = None,
    stream: str = "sampling",
) -> np.ndarray:
    """Sample every model of a linear ensemble with the PF-ODE.

    Parameters
    ----------
    ensemble : LinearEnsemble
    n_samples : int
        Samples per model.
    eps : float, optional
        Final time (default: the ensemble's training ``eps``).
    n_steps : int, default 30
        Steps on the uniform grid ``linspace(T, eps, n_steps + 1)``.
    method : {"euler", "heun"}, default "euler"
    lookup : {"exact", "grid"}, default "exact"
        ``"exact"`` evaluates ``D^ = W phi`` at each sample; ``"grid"`` uses the value at a
        point of the uniform grid ``lookup_grid = (lo, hi, G)``: per axis the first grid point at
        or above the sample (clipped to the last), as the paper's code does with
        ``searchsorted`` (kept only to reproduce it).
    seed : int or SeedSequence, default 0
        Model ``n`` draws ``x_T`` from ``stream(seed, stream).spawn(N)[n]``.
    x_T : ndarray, shape (N, n_samples, D), optional
        Initial points (overrides ``seed``; copied).
    models : ndarray of int, shape (R,), optional
        With ``x_T`` of shape (R, n_samples, D): row ``r`` is carried by model ``models[r]``
        (e.g. rows of refinement points, :func:`gtv.numerics.transport.transport_1d`).
    stream : str, default "sampling"
        The named stream of the random start points (e.g. ``"field-sampling"`` for the members
        of a theory's field, :meth:`gtv.numerics.linear.prediction.LinearField.sample`).

    Returns
    -------
    ndarray, shape (N, n_samples, D) (or (R, n_samples, D) with ``models``)
        Samples at ``t = eps``.

    See Also
    --------
    LinearSampler : the same, prepared once for several runs.
    """
    sampler = LinearSampler(
        ensemble, eps=eps, n_steps=n_steps, method=method, lookup=lookup, lookup_grid=lookup_grid
    )
    return sampler.sample(n_samples, seed=seed, x_T=x_T, models=models, stream=stream)
