"""The probability-flow ODE: time grid, start points and the one Euler/Heun stepper.

The PF-ODE ``dx/dt = -beta_t x - D_t s(x, t)`` with the denoiser parameterization
``s = (alpha_t D^(x, t) - x) / sigma_t**2`` has drift ``pf_x_coeff(t) x - pf_mean_coeff(t) D^``
(docs/math/conventions.md, docs/math/linear.md). Every sampler in gtv integrates it from ``t = T``
down to
``t = eps`` on the uniform grid ``t_k = linspace(T, eps, n_steps + 1)[k]`` (the paper's default:
Euler, 30 steps), starting from ``x_T ~ N(0, sigma_T**2 I)``:

* Euler: ``x <- x + dt (a_k x - b_k D^(x, t_k))``;
* Heun: the Euler point ``x~`` is corrected to
  ``x <- x + dt/2 ((a_k x - b_k D^(x, t_k)) + (a_{k+1} x~ - b_{k+1} D^(x~, t_{k+1})))``,

with ``dt = t_{k+1} - t_k < 0``, ``a = pf_x_coeff``, ``b = pf_mean_coeff``.

Two drivers carry out these steps for any model; the model supplies only its denoiser:

* :func:`make_pf_ode` compiles a numba driver specialised to a jitted denoiser (inlined into the
  step loop). Work is split into (model, block of :data:`BLOCK` samples) jobs run in parallel;
  each job's arithmetic is fixed, so results do not depend on the thread count.
* :func:`pf_ode_reference` is the plain-numpy loop over models and steps (for tests).

Start points: model ``n`` draws ``x_T`` from the ``n``-th child of the named stream
``stream(seed, "sampling")`` (:mod:`gtv.numerics.streams`); other ensembles pass their own stream
name (``"field-sampling"``, ``"bayes-sampling"``).
"""

from __future__ import annotations

import hashlib
import inspect
import math
import re
import types
import warnings
from collections.abc import Callable

import numba
import numpy as np

from gtv.numerics.checks import check_budget, check_choice, check_eps
from gtv.numerics.schedules import NumericSchedule
from gtv.numerics.streams import model_rngs

__all__ = [
    "BLOCK",
    "METHODS",
    "DivergenceWarning",
    "abs_max",
    "divergence_bound",
    "warn_if_diverged",
    "check_method",
    "drift_coefficients",
    "euler_step",
    "heun_correct",
    "initial_points",
    "make_pf_ode",
    "model_rows",
    "no_workspace",
    "pf_ode_reference",
    "pf_ode_time_grid",
]

METHODS = ("euler", "heun")

#: Samples advanced together through every step (one parallel job = one model x one block).
BLOCK = 256


class DivergenceWarning(RuntimeWarning):
    """A PF-ODE sampler left samples far outside the data (see :func:`warn_if_diverged`)."""


def divergence_bound(radius: float, schedule: NumericSchedule) -> float:
    """``10 (radius + sigma_T)``: no sample of a working sampler ends this far out.

    ``radius`` is ``max |x|`` over the data (or the region the model was fitted on). The PF-ODE
    carries ``N(0, sigma_T**2)`` to the data, so final samples stay within a few ``sigma_T`` of
    it; a factor 10 leaves room for poorly trained models (docs/reliability.md).
    """
    return 10.0 * (float(radius) + math.sqrt(float(schedule.sigma2(schedule.T))))


def abs_max(x: np.ndarray) -> float:
    """``max |x|`` without the temporary array of ``np.abs(x)`` (the start points' size: for
    ``10**7`` samples a fresh 80 MB allocation, which costs about as much as a quarter of the
    PF-ODE run); NaN if ``x`` has a NaN."""
    return float(max(x.max(), -x.min()))


def warn_if_diverged(
    x: np.ndarray,
    radius: float,
    schedule: NumericSchedule,
    method: str,
    n_steps: int,
    start: float = 0.0,
    sampler: str = "PF-ODE sampler",
) -> int:
    """Warn (:class:`DivergenceWarning`) when samples ``x`` (N, S, D) ended non-finite or beyond
    ``max(divergence_bound(radius, schedule), 2 start)``; returns the number of such samples.

    ``start`` is ``max |x_T|`` of the start points: explicit far-out start points (``x_T``) may
    legitimately end far out, so they widen the bound; random ones (``|x_T| ~ 4.5 sigma_T``) do not.
    ``sampler`` names the sampler in the message (e.g. ``"PF-ODE sampler of the Gaussian-field
    ensemble"``).

    The samples are returned unchanged (a warning, not an error, so that a run can be inspected);
    statistics of non-finite samples (gap mass, histograms in :mod:`gtv.validation.ensembles`)
    raise instead of counting them.
    """
    bound = max(divergence_bound(radius, schedule), 2.0 * float(start))
    with np.errstate(invalid="ignore"):
        far = ~(np.abs(x) <= bound).all(axis=-1)  # NaN compares False: counted as diverged
    n_far = int(np.count_nonzero(far))
    if n_far:
        advice = "use more steps" + (", or method='euler'" if method == "heun" else "")
        warnings.warn(
            f"the {method} {sampler} ({n_steps} steps) diverged: {n_far} of {far.size} "
            f"samples ({n_far / far.size:.2%}) ended beyond |x| = {bound:.3g} (10 x (data "
            f"radius {float(radius):.3g} + sigma_T), or 2 max|x_T|) or non-finite; "
            f"{advice}",
            DivergenceWarning,
            stacklevel=3,
        )
    return n_far


def check_method(method: object) -> str:
    """Return ``method`` or raise ``ValueError`` unless it is one of :data:`METHODS`."""
    return check_choice(method, "method", METHODS)


def pf_ode_time_grid(schedule: NumericSchedule, eps: float, n_steps: int = 30) -> np.ndarray:
    """The grid ``linspace(T, eps, n_steps + 1)``, checked for finite PF-ODE coefficients."""
    eps = check_eps(eps, schedule.T)
    if isinstance(n_steps, bool) or int(n_steps) != n_steps or n_steps < 1:
        raise ValueError(f"n_steps must be an integer >= 1, got {n_steps!r}")
    ts = np.linspace(schedule.T, eps, int(n_steps) + 1)
    coeffs = np.concatenate([schedule.pf_x_coeff(ts), schedule.pf_mean_coeff(ts)])
    if not np.all(np.isfinite(coeffs)):
        raise ValueError(
            f"T: the PF-ODE drift of schedule {schedule.name!r} is not finite on [eps, T] = "
            f"[{eps:g}, {schedule.T:g}] (for linear-variance use T < 1)"
        )
    return ts


def initial_points(
    x_T: object,
    seed: object,
    n_models: int,
    n_samples: int,
    dim: int,
    schedule: NumericSchedule,
    stream: str = "sampling",
) -> np.ndarray:
    """PF-ODE starting points at ``t = T``: shape (n_models, n_samples, dim), C-contiguous.

    ``x_T`` (checked for shape and finiteness, and copied) when given; otherwise model ``n``
    draws ``N(0, sigma_T**2 I)`` (an (n_samples, dim) standard-normal array times ``sigma_T``)
    from ``model_rngs(seed, stream, n_models)[n]``, the ``n``-th child of the named stream.
    """
    n_bytes = 8.0 * n_models * n_samples * dim
    check_budget("n_samples", n_samples, n_bytes=3 * n_bytes, what=f"{n_models} models' samples")
    if x_T is None:
        sigma_T = math.sqrt(float(schedule.sigma2(schedule.T)))
        rngs = model_rngs(seed, stream, n_models)
        return np.stack([sigma_T * rng.standard_normal((n_samples, dim)) for rng in rngs])
    x = np.array(x_T, dtype=np.float64, order="C")
    if x.shape != (n_models, n_samples, dim):
        raise ValueError(f"x_T must have shape {(n_models, n_samples, dim)}, got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("x_T must be finite")
    return x


def model_rows(models: object, n_models: int, x_T: object) -> np.ndarray:
    """The model carrying each row of start points: ``arange(n_models)`` or ``models``.

    Every ensemble sampler that takes explicit start points ``x_T`` also takes ``models`` (R,):
    ``x_T`` is then (R, S, D) and row ``r`` is carried by model ``models[r]`` (e.g. the packed
    refinement rows of :func:`gtv.numerics.transport.transport_1d`).

    Parameters
    ----------
    models : array_like of int, shape (R,), or None
    n_models : int
        Models of the ensemble.
    x_T : array_like or None
        The start points given to the sampler (``models`` needs them).

    Returns
    -------
    ndarray of int64, shape (R,) (``(n_models,)`` when ``models`` is None)

    Raises
    ------
    ValueError
        ``models`` without ``x_T``, not a non-empty 1-D integer array, or outside
        ``[0, n_models - 1]``.
    """
    if models is None:
        return np.arange(n_models, dtype=np.int64)
    if x_T is None:
        raise ValueError("models needs explicit start points x_T")
    rows = np.asarray(models)
    if rows.ndim != 1 or rows.dtype.kind not in "iu" or rows.size == 0:
        raise ValueError("models must be a non-empty 1-D array of model indices")
    if rows.min() < 0 or rows.max() >= n_models:
        raise ValueError(f"models must lie in [0, {n_models - 1}]")
    return rows.astype(np.int64)


def drift_coefficients(schedule: NumericSchedule, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``a_k = pf_x_coeff(t_k)`` and ``b_k = pf_mean_coeff(t_k)`` as float arrays."""
    a = np.asarray(schedule.pf_x_coeff(ts), dtype=np.float64)
    b = np.asarray(schedule.pf_mean_coeff(ts), dtype=np.float64)
    return a, b


# -- the step -----------------------------------------------------------------------------------
@numba.njit(cache=True, error_model="numpy", inline="always")
def euler_step(x, dn, a, b, dt, out, m):
    """``out[:m] = x + dt (a x - b D^)``: an Euler step of the PF-ODE (also Heun's predictor)."""
    for c in range(m):
        out[c] = x[c] + dt * (a * x[c] - b * dn[c])


@numba.njit(cache=True, error_model="numpy", inline="always")
def heun_correct(x, xt, dn, dn2, a0, b0, a1, b1, dt, m):
    """Heun's corrector in place: ``x += dt/2 (f(x, t_k) + f(xt, t_k+1))``."""
    for c in range(m):
        f0 = a0 * x[c] - b0 * dn[c]
        f1 = a1 * xt[c] - b1 * dn2[c]
        x[c] = x[c] + 0.5 * dt * (f0 + f1)


@numba.njit(cache=True, inline="always")
def no_workspace(args, d):
    """The workspace of a denoiser that needs none."""
    return np.empty(0)


# The driver template. ``_DENOISE``, ``_WORKSPACE`` and ``_POINTWISE`` are not defined in this
# module: :func:`make_pf_ode` binds them in a copy of the module globals, so numba sees them as
# compile-time constants and inlines the denoiser.
def _pf_ode(x, ts, ax, bx, heun, args):  # pragma: no cover - compiled by numba
    n_models, n_samples, d = x.shape
    n_steps = ts.shape[0] - 1
    n_blocks = (n_samples + BLOCK - 1) // BLOCK
    for job in numba.prange(n_models * n_blocks):
        n = job // n_blocks
        i0 = (job % n_blocks) * BLOCK
        m = min(n_samples, i0 + BLOCK) - i0
        ws = _WORKSPACE(args, d)  # noqa: F821
        if _POINTWISE:  # noqa: F821
            # One sample at a time, in place in x (rows x[n, i] are contiguous (D,) vectors).
            dn = np.empty(d)
            dn2 = np.empty(d)
            xt = np.empty(d)  # Heun's predicted point
            for k in range(n_steps):
                dt = ts[k + 1] - ts[k]
                for i in range(i0, i0 + m):
                    xi = x[n, i]
                    _DENOISE(args, n, k, xi, dn, ws)  # noqa: F821
                    if heun:
                        euler_step(xi, dn, ax[k], bx[k], dt, xt, d)
                        _DENOISE(args, n, k + 1, xt, dn2, ws)  # noqa: F821
                        heun_correct(xi, xt, dn, dn2, ax[k], bx[k], ax[k + 1], bx[k + 1], dt, d)
                    else:
                        euler_step(xi, dn, ax[k], bx[k], dt, xi, d)
        else:
            # The block in coordinate-major layout: z[c, i] is coordinate c of sample i0 + i.
            z = np.empty((d, BLOCK))
            zt = np.empty((d, BLOCK))  # Heun's predicted points
            dn = np.empty((d, BLOCK))
            dn2 = np.empty((d, BLOCK))
            for i in range(m):
                for c in range(d):
                    z[c, i] = x[n, i0 + i, c]
            for k in range(n_steps):
                dt = ts[k + 1] - ts[k]
                _DENOISE(args, n, k, z, m, dn, ws)  # noqa: F821
                if heun:
                    for c in range(d):
                        euler_step(z[c], dn[c], ax[k], bx[k], dt, zt[c], m)
                    _DENOISE(args, n, k + 1, zt, m, dn2, ws)  # noqa: F821
                    for c in range(d):
                        a1, b1 = ax[k + 1], bx[k + 1]
                        heun_correct(z[c], zt[c], dn[c], dn2[c], ax[k], bx[k], a1, b1, dt, m)
                else:
                    for c in range(d):
                        euler_step(z[c], dn[c], ax[k], bx[k], dt, z[c], m)
            for i in range(m):
                for c in range(d):
                    x[n, i0 + i, c] = z[c, i]


def _source_digest(*funcs: object) -> str:
    """A short hash of the source files of this module and of ``funcs`` (cache invalidation)."""
    h = hashlib.sha1()
    for f in (_pf_ode, *funcs):
        py = getattr(f, "py_func", f)
        with open(inspect.getfile(py), "rb") as fh:
            h.update(fh.read())
    return h.hexdigest()[:12]


def make_pf_ode(
    denoise: Callable,
    workspace: Callable | None = None,
    *,
    pointwise: bool = False,
    fastmath: bool | set = False,
) -> Callable:
    """Compile the PF-ODE driver for one model class's denoiser.

    Parameters
    ----------
    denoise : numba dispatcher
        The model's denoiser, jitted (``@numba.njit(cache=True, inline="always")``
        recommended). Block form (default)::

            denoise(args, n, k, z, m, out, ws)

        fills ``out[:, :m]`` with ``D^_n(z[:, :m], t_k)``: ``z`` and ``out`` are
        (D, BLOCK) coordinate-major blocks (``z[c, i]``: coordinate ``c`` of sample ``i``),
        ``n`` the model, ``k`` the index of the time on the grid ``ts`` (Heun's second stage
        passes ``k + 1``). With ``pointwise=True`` it is called per sample::

            denoise(args, n, k, x, out, ws)      # x, out: (D,)

    workspace : numba dispatcher, optional
        ``workspace(args, d) -> ws``: scratch memory allocated once per job (an array or a
        tuple of arrays), passed to every ``denoise`` call of the job. Default: none.
    pointwise : bool, default False
        Whether ``denoise`` takes one point instead of a block.
    fastmath : bool or set of str, default False
        numba ``fastmath`` flags of the driver (the step arithmetic is compiled with them).

    Returns
    -------
    callable
        ``driver(x, ts, ax, bx, heun, args)``: integrates ``x`` (N, S, D), C-contiguous
        float64, in place from ``ts[0]`` to ``ts[-1]`` with drift coefficients ``ax``,
        ``bx`` (K+1,) (:func:`drift_coefficients`), Heun if ``heun`` else Euler. ``args`` (a
        tuple of the model's arrays and scalars) is handed to ``denoise`` unchanged.

    Notes
    -----
    The driver is cached on disk (``cache=True``) under a name made of the denoiser's module
    and name and a hash of the source files of this module, the denoiser and the workspace, so
    editing any of them recompiles it.
    """
    if workspace is None:
        workspace = no_workspace
    for name, f in (("denoise", denoise), ("workspace", workspace)):
        if not isinstance(f, numba.core.registry.CPUDispatcher):
            raise TypeError(f"{name} must be a numba.njit function, got {f!r}")
    glb = dict(_pf_ode.__globals__)
    glb.update(_DENOISE=denoise, _WORKSPACE=workspace, _POINTWISE=bool(pointwise))
    fn = types.FunctionType(_pf_ode.__code__, glb, "pf_ode")
    py = denoise.py_func
    tag = re.sub(r"\W", "_", f"{py.__module__}.{py.__qualname__}")
    flags = "fm" + "".join(sorted(fastmath)) if isinstance(fastmath, set) else f"fm{fastmath:d}"
    fn.__qualname__ = f"pf_ode__{tag}__{flags}__{_source_digest(denoise, workspace)}"
    fn.__doc__ = f"PF-ODE driver for the denoiser {py.__module__}.{py.__qualname__}."
    return numba.njit(parallel=True, cache=True, error_model="numpy", fastmath=fastmath)(fn)


def pf_ode_reference(
    denoise: Callable[[int, np.ndarray, int], np.ndarray],
    x: np.ndarray,
    ts: np.ndarray,
    ax: np.ndarray,
    bx: np.ndarray,
    heun: bool,
) -> np.ndarray:
    """Plain-numpy PF-ODE: the reference for every compiled sampler.

    Parameters
    ----------
    denoise : callable
        ``denoise(n, xs, k) -> (S, D)``: model ``n``'s denoiser at the points ``xs`` (S, D) and
        time ``ts[k]``.
    x : ndarray, shape (N, S, D)
        Start points (not modified).
    ts, ax, bx : ndarray, shape (K+1,)
        Time grid and drift coefficients.
    heun : bool

    Returns
    -------
    ndarray, shape (N, S, D)
    """
    out = np.array(x, dtype=np.float64)
    for n in range(out.shape[0]):
        xs = out[n]
        for k in range(ts.size - 1):
            dt = ts[k + 1] - ts[k]
            f0 = ax[k] * xs - bx[k] * denoise(n, xs, k)
            if heun:
                xt = xs + dt * f0
                f1 = ax[k + 1] * xt - bx[k + 1] * denoise(n, xt, k + 1)
                xs = xs + 0.5 * dt * (f0 + f1)
            else:
                xs = xs + dt * f0
        out[n] = xs
    return out
