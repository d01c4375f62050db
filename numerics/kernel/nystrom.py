"""The Nystrom discretization of the population behind the kernel theory (docs/math/kernel.md).

:func:`ntk_theory` replaces the expectation over one DSM triple ``z' = (x', t')`` by a
quadrature: Gauss-Legendre in ``log t`` (:func:`gtv.numerics.quadrature.log_time_quadrature`; the
weight ``lam ~ 1/t`` makes the integrand smooth in ``log t``) times, per mixture component, the
Gauss-Hermite rule ``x = alpha_t mu_m + sigma_t xi``
(:func:`gtv.numerics.quadrature.hermite_quadrature`), i.e.
nodes ``z_q`` with probabilities ``omega_q``, and stores the posterior moments at the nodes. On
this discrete measure the first-order theory (:class:`gtv.numerics.kernel.theory.NTKTheory`) is
exact linear algebra.
"""

from __future__ import annotations

import numpy as np

from gtv.numerics.checks import check_eps, check_points, check_ridge
from gtv.numerics.kernel.checks import check_activation, check_flow, check_lr
from gtv.numerics.kernel.gram import serial_blas
from gtv.numerics.kernel.inputs import check_embedding
from gtv.numerics.kernel.theory import NTKTheory
from gtv.numerics.posterior import posterior_stats
from gtv.numerics.quadrature import hermite_quadrature, log_time_quadrature
from gtv.numerics.schedules import resolve_schedule

__all__ = ["ntk_theory"]


@serial_blas
def ntk_theory(
    data: object,
    eps: float,
    schedule: object = "vp-linear",
    activation: str = "relu",
    *,
    embedding: str = "linear",
    bias: float = 1.0,
    ridge: float = 0.0,
    lr: float = 1.0,
    flow: str = "gradient-flow",
    n_t: int = 16,
    n_hermite: int = 16,
    rcond: float = 1e-12,
) -> NTKTheory:
    """Population (Nystrom) theory of lazy infinite-width NTK ensembles.

    Parameters
    ----------
    data : array_like (M, D)
        Training points.
    eps : float
        Training cutoff (``t ~ U[eps, T]``).
    schedule : str or NumericSchedule
    activation : {"relu", "erf"}
    embedding, bias
        Network inputs (:func:`gtv.numerics.kernel.inputs.ntk_inputs`).
    ridge : float
        Weight decay ``rho >= 0`` (:mod:`gtv.numerics.kernel.regression`).
    lr : float
        Learning rate (gradient flow depends on ``lr * tau`` only).
    flow : {"gradient-flow", "gradient-descent"}
    n_t : int
        Gauss-Legendre nodes in ``log t``.
    n_hermite : int
        Gauss-Hermite nodes per spatial axis and mixture component. Nodes:
        ``Q = n_t * M * n_hermite**D`` (minus pruned tails); cost ``O(Q**3)``.
    rcond : float
        Relative eigenvalue cutoff (``0 <= rcond < 1``).

    Returns
    -------
    NTKTheory
    """
    sched = resolve_schedule(schedule)
    data = check_points(data, "data")
    eps = check_eps(eps, sched.T)
    activation = check_activation(activation)
    check_embedding(embedding)
    flow = check_flow(flow)
    lr = check_lr(lr)
    ridge = check_ridge(ridge)
    if not (np.isfinite(rcond) and 0 <= rcond < 1):
        raise ValueError(f"rcond must be in [0, 1), got {rcond!r}")
    t_nodes, t_w = log_time_quadrature(eps, sched.T, n_t)
    xi, xw = hermite_quadrature(n_hermite, data.shape[1])
    M, D = data.shape
    alpha = np.asarray(sched.alpha(t_nodes), dtype=float)
    sigma = np.sqrt(np.asarray(sched.sigma2(t_nodes), dtype=float))
    # nodes ordered (time, component, xi)
    x = (
        alpha[:, None, None, None] * data[None, :, None, :]
        + sigma[:, None, None, None] * xi[None, None, :, :]
    ).reshape(-1, D)
    tq = np.repeat(t_nodes, M * xi.shape[0])
    # Node probabilities, normalized so that the node measure is a probability measure (the
    # first-order covariance is that of one triple drawn from it; the log-time rule integrates
    # constants only up to its quadrature error, ~1e-6 at n_t = 4, ~1e-15 at n_t = 16).
    omega = (t_w[:, None, None] * np.full((1, M, 1), 1.0 / M) * xw[None, None, :]).ravel()
    omega = omega / omega.sum()
    post = posterior_stats(data, x, tq, sched, full_cov=True)
    return NTKTheory(
        data=data,
        schedule=sched,
        eps=eps,
        activation=activation,
        embedding=embedding,
        bias=float(bias),
        ridge=ridge,
        lr=lr,
        flow=flow,
        n_t=int(n_t),
        n_hermite=int(n_hermite),
        rcond=float(rcond),
        t_nodes=t_nodes,
        t_weights=t_w,
        nodes_x=x,
        nodes_t=tq,
        omega=omega,
        lam=np.asarray(sched.dsm_weight(tq), dtype=float),
        mu_bar=post.mean,
        sigma_post=post.cov,
    )
