"""Continuum effective dynamics of the averaged PF-ODE (docs/math/path_integral.md).

Continuum limit
---------------
The averaged weight ``exp(-S0 + M1 - M2/2)`` of :class:`gtv.theory.path_integral.DiscreteMSR` is
the MSR weight of the Euler scheme ``x_{k+1} = x_k + dt_k b_k + eta_k`` with drift
``b = -beta x - D m`` and Gaussian increments ``Cov(eta_k, eta_l) = dt_k dt_l D_k D_l Sigma_kl``.
With ``m_k = s_avg(x_k, t_k)`` and ``D_k D_l Sigma_kl = V(t_k, t_l)`` this becomes the effective
dynamics of docs/math/path_integral.md,

    ``dx = (-beta x - D s_avg) dt + xi``,  ``<xi(t) xi(t')^T> = V(x, t; x', t')``,

``V = D_t Cov[s_hat(x,t), s_hat(x',t')] D_t'`` (:func:`effective_drift`, :func:`v_kernel`).
Its white-noise (Markov) approximation has intensity ``Q(x,t) = int V(x,t; x,t+tau) dtau``
(two-sided, :func:`white_noise_intensity`).

Effective SDE in reverse time
-----------------------------
:class:`EffectiveSDE` holds ``b(x, t)`` (the coefficient of ``dt``, ``dt < 0``) and ``Q(x, t)``.
One Euler-Maruyama step from ``t`` to ``t - h`` is ``x <- x - h b(x,t) + sqrt(h Q(x,t)) z``; in
``tau = T - t`` the density obeys the (Ito) Fokker-Planck equation

    ``d q/d tau = div(b q) + (1/2) sum_ij d_i d_j (Q_ij q)``

(:meth:`EffectiveSDE.fokker_planck_rhs`). With ``Q = 0`` and ``b`` from the exact score the
noised density ``p(x|t)`` solves it. :meth:`EffectiveSDE.source` / :meth:`EffectiveSDE.compile`
turn ``b`` and ``Q`` into numba functions of ``(x, t, *params)`` with the code printer of
:mod:`gtv.theory.codegen` (:func:`gtv.theory.codegen.function_source`).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from gtv.theory.codegen import function_source
from gtv.theory.path_integral.symbols import space_symbols, t2, tau, x, x2
from gtv.theory.schedules import Schedule, as_schedule, t

__all__ = ["EffectiveSDE", "effective_drift", "v_kernel", "white_noise_intensity"]


def effective_drift(schedule: Schedule | str, s_avg: object, dim: int = 1) -> sp.Expr | sp.Matrix:
    """``b(x, t) = -beta_t x - D_t s_avg(x, t)``: the coefficient of ``dt`` (PF-ODE: ``dt < 0``).

    ``s_avg`` is a sympy expression in :data:`x` (or a ``dim x 1`` Matrix in :func:`space_symbols`)
    and :data:`t`.
    """
    sch = as_schedule(schedule)
    if dim == 1 and not isinstance(s_avg, sp.MatrixBase):
        return -sch.beta * x - sch.diffusion * sp.sympify(s_avg)
    s_avg = sp.Matrix(s_avg)
    xs = sp.Matrix(space_symbols(dim))
    if s_avg.shape != (dim, 1):
        raise ValueError(f"s_avg must be a {dim}x1 matrix, got shape {s_avg.shape}")
    return -sch.beta * xs - sch.diffusion * s_avg


def v_kernel(schedule: Schedule | str, score_cov: object) -> sp.Expr | sp.Matrix:
    """``V(x,t; x',t') = D_t Cov[s_hat(x,t), s_hat(x',t')] D_t'``.

    ``score_cov`` is written in ``x, t`` and ``x2, t2`` (:data:`x2`, :data:`t2`); ``D_t'`` is the
    schedule's diffusion at :data:`t2`.
    """
    sch = as_schedule(schedule)
    return sch.diffusion * sp.sympify(score_cov) * sch.diffusion.subs(t, t2)


def _lag_integral(expr: sp.Expr, lag: sp.Symbol) -> sp.Expr:
    """``int_R expr dlag``.

    Without delta functions as ``int_0^oo [f(u) + f(-u)] du``, so that ``|lag|`` resolves.
    """
    if expr.has(sp.DiracDelta):
        res = sp.integrate(sp.expand(expr), (lag, -sp.oo, sp.oo))
    else:
        u = sp.Dummy("u", positive=True)
        res = sp.integrate(expr.subs(lag, u) + expr.subs(lag, -u), (u, 0, sp.oo), conds="none")
    if res.has(sp.Integral):
        raise ValueError(f"sympy could not integrate the kernel over its time lag: {res}")
    return sp.simplify(res)


def white_noise_intensity(V: object, dim: int = 1) -> sp.Expr | sp.Matrix:
    """Markov approximation ``Q(x, t) = int_R V(x, t; x, t + tau) dtau`` (two-sided).

    ``V`` may be written in ``(x, t, x2, t2)`` (then ``x2 -> x``, ``t2 -> t + tau``) or directly in
    the lag :data:`tau`. For ``dim > 1`` pass a Matrix in :func:`space_symbols` with the second
    point's coordinates named ``x0_2, x1_2, ...`` (real symbols) or already set equal
    (docs/math/predictions.md).
    """
    V = sp.sympify(V)
    xs = space_symbols(dim)
    sub = {t2: t + tau}
    if dim == 1:
        sub[x2] = x
    else:
        sub.update({sp.Symbol(f"{s.name}_2", real=True): s for s in xs})
    if isinstance(V, sp.MatrixBase):
        return V.applyfunc(lambda e: _lag_integral(sp.sympify(e).subs(sub), tau))
    return _lag_integral(V.subs(sub), tau)


@dataclass(frozen=True)
class EffectiveSDE:
    """Reverse-time effective SDE ``dx = b dt + sqrt(Q) dW`` (``dt < 0``; Ito in ``tau = T - t``).

    Attributes
    ----------
    drift : sympy.Expr or Matrix
        ``b(x, t)``, the coefficient of ``dt`` (PF-ODE convention ``-beta x - D s_avg``).
    noise : sympy.Expr or Matrix
        ``Q(x, t)``: covariance per unit ``|dt|`` of the increments.
    dim : int
        Space dimension; the coordinates are :func:`space_symbols` ``(dim)``.
    """

    drift: sp.Expr | sp.MatrixBase
    noise: sp.Expr | sp.MatrixBase
    dim: int = 1

    @property
    def space(self) -> tuple[sp.Symbol, ...]:
        return space_symbols(self.dim)

    @property
    def params(self) -> tuple[sp.Symbol, ...]:
        """Free symbols other than the coordinates and ``t``, sorted by name (extra arguments)."""
        free = set()
        for e in self.components().values():
            free |= e.free_symbols
        free -= set(self.space) | {t}
        return tuple(sorted(free, key=lambda s: s.name))

    @property
    def args(self) -> tuple[sp.Symbol, ...]:
        """Arguments of every compiled function: ``(*space, t, *params)``."""
        return (*self.space, t, *self.params)

    def components(self) -> dict[str, sp.Expr]:
        """``{"drift": b, "noise": Q}`` in 1-D; else ``drift_a`` and ``noise_ab`` (``a <= b``)."""
        if self.dim == 1:
            b = self.drift[0] if isinstance(self.drift, sp.MatrixBase) else self.drift
            q = self.noise[0, 0] if isinstance(self.noise, sp.MatrixBase) else self.noise
            return {"drift": sp.sympify(b), "noise": sp.sympify(q)}
        out = {}
        for a in range(self.dim):
            out[f"drift_{a}"] = sp.sympify(self.drift[a])
        for a in range(self.dim):
            for b in range(a, self.dim):
                out[f"noise_{a}{b}"] = sp.sympify(self.noise[a, b])
        return out

    def fokker_planck_rhs(self, q: sp.Expr) -> sp.Expr:
        """``d q / d tau = div(b q) + (1/2) sum_ij d_i d_j (Q_ij q)`` for a density ``q(x, t)``."""
        comps = self.components()
        xs = self.space
        if self.dim == 1:
            return sp.diff(comps["drift"] * q, x) + sp.diff(comps["noise"] * q, x, 2) / 2
        rhs = sum((sp.diff(comps[f"drift_{a}"] * q, xs[a]) for a in range(self.dim)), sp.Integer(0))
        for a in range(self.dim):
            for b in range(self.dim):
                qab = comps[f"noise_{min(a, b)}{max(a, b)}"]
                rhs += sp.diff(qab * q, xs[a], xs[b]) / 2
        return rhs

    def source(
        self, prefix: str = "sde", decorator: str = "@njit(cache=True, error_model='numpy')"
    ) -> str:
        """Python/numba source of one function ``{prefix}_{component}(*args)`` per component."""
        return "\n\n".join(
            function_source(f"{prefix}_{name}", expr, self.args, decorator=decorator)
            for name, expr in self.components().items()
        )

    def compile(self, prefix: str = "sde") -> dict:
        """Compile the components with numba at run time (no on-disk cache for ``exec``'d code).

        Returns ``{component: function}``; every function takes :attr:`args` (floats or arrays).
        """
        src = "import numpy\nfrom numba import njit\n\n" + self.source(
            prefix, decorator="@njit(error_model='numpy')"
        )
        namespace: dict = {}
        exec(compile(src, f"<gtv effective SDE {prefix}>", "exec"), namespace)
        return {name: namespace[f"{prefix}_{name}"] for name in self.components()}
