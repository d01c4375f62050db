"""Trained finite-width two-layer networks vs the lazy infinite-width (NTK) theory (issue 6).

docs/math/kernel.md (lazy networks), docs/math/predictions.md (predictions of [q]),
docs/engineering.md (the model is the unit).

For one configuration (1-D data ``{-1, 0, 1}``, ``vp-linear``, eps, P, an activation) and a list
of training times ``tau``, :func:`compare_ntk`

1. draws N independent DSM training sets and trains, on each, one two-layer network per width
   (NTK parameterization, antisymmetric initialization so that ``D^_0 = 0``) by full-batch
   gradient descent with one learning rate ``eta`` for all widths and models
   (:mod:`gtv.numerics.two_layer`), recording a checkpoint at every ``tau``. For each width the
   training sets are *the same* (each model's stream draws its triples first), so the widths
   differ only by their random features;
2. fits, on the same N training sets, the infinite-width networks: kernel regression with the
   closed-form NTK trained by the same gradient descent
   (:func:`gtv.numerics.kernel.fit_kernel_regression`) — the exact ``width -> infinity`` limit
   of every trained model, so the difference to it is the finite-width error alone;
3. computes the first-order-in-1/P population theory (:func:`gtv.numerics.kernel.ntk_theory`,
   bound to each ``tau`` and P as a :class:`gtv.numerics.kernel.KernelTheoryAt`, the theory
   contract): the ensemble-mean denoiser, the across-model (co)variance split into its
   proxy-noise and misfit parts, the Gaussian-field ensemble and the white-noise Fokker-Planck
   density of [q]; with ``theory="finite-p"`` the finite-P cavity equivalent
   (:class:`gtv.numerics.kernel.FiniteKernelTheoryAt`, docs/math/kernel.md "Finite P") instead,
   and with ``theory="occupancy-field"`` (``"stratified-field"``) the same moments with its
   small-occupancy field (:mod:`gtv.numerics.kernel.occupancy`; its stratified form,
   :mod:`gtv.numerics.kernel.strata`) as the field ensemble of [q];
4. compares, per ``tau``: (a) the across-model mean and variance of ``D^(x, t)`` at query points
   (model-level bootstrap CIs) and their relative errors vs width; (b) the learned distributions:
   every network's PF-ODE density (per-model histograms and gap masses), the gap-mass curve
   vs ``tau`` with model-level CIs next to the theory's and the baselines ``p(x|eps)`` and the
   exact-Bayes PF-ODE (:mod:`gtv.validation.predictions`).

Learned densities
-----------------
With ``density="transport"`` (the default) every per-model density -- the trained networks of
each width, the infinite-width networks, the field members and the exact-Bayes baseline -- is the
model's PF-ODE map carried over the quantile grid of ``n_points`` start points, refined at the bin
width up to ``max_points`` per model, with the Gaussian mass binned exactly
(:func:`gtv.validation.ensembles.transported_densities`, docs/math/transport.md, "The NTK
comparison"); the largest per-model error estimate and the mean point count of every ensemble are
in ``meta["transport_error_tv"]`` and ``meta["transport_points"]``. With ``density="mc"``
``n_samples`` Monte Carlo samples per model are binned (``n_bayes_samples`` for the exact-Bayes
baseline), bit for bit as before the option existed.

Time convention (the mapping between the two halves of issue 6)
-----------------------------------------------------------------
The networks take ``k`` gradient steps of rate ``eta``; their training time is ``tau = eta k``
(gradient-flow time at unit rate, :mod:`gtv.numerics.two_layer`), and this is the ``tau`` of
every table and file here. In the lazy limit a network follows its linearization, whose
residual shrinks by ``(1 - eta g / P)**k`` along each eigenvector of
``G = Lambda^1/2 Theta Lambda^1/2`` (eigenvalue ``g``). The kernel code
(:mod:`gtv.numerics.kernel`) writes the same filter on ``s = g / P``; its two flows read ``tau``
differently: ``flow="gradient-descent"`` takes ``k = tau / lr`` steps of ``(1 - lr s)`` (so
``tau`` is time at unit rate), ``flow="gradient-flow"`` applies ``exp(-lr tau s)``
(docs/math/kernel.md's ``exp(-eta tau Theta Lambda / P)``, so ``tau`` is time at rate ``lr``).
The networks at ``(eta, k)`` are therefore compared with the kernel regression and the theory at
``lr = eta, tau = eta k, flow = "gradient-descent"`` -- exactly the networks' discrete filter; the
continuous flow would be ``lr = 1, tau = eta k`` (or ``lr = eta, tau = k``).
tests/validation/ntk/test_compare.py checks both mappings against
:func:`gtv.numerics.two_layer.linearized_predictions` on the same Gram matrix (to round-off).

Learning rate
-------------
Gradient descent on a training set is stable iff ``eta < 2P / lambda_max(Lambda^1/2 Theta
Lambda^1/2)``. The limit is computed for every model and width from its empirical tangent kernel
at initialization (:func:`gtv.numerics.two_layer.stability_limit`), for every model's
infinite-width kernel (:attr:`gtv.numerics.kernel.KernelRegression.lr_max`) and for the
population kernel of the theory (:attr:`gtv.numerics.kernel.NTKTheory.lr_max`); ``eta`` is
``lr_fraction`` times the smallest of them, or a given ``learning_rate``, which must be below
it (``ValueError`` with the limit otherwise). Requested ``tau`` are rounded to whole steps; the
times reached (``eta k``) are reported and used everywhere.

Relative errors (per ``tau``, over the Q query points, ``||.||`` the Euclidean norm over them)
----------------------------------------------------------------------------------------------
* ``model``: ``sqrt(sum_{n,q} (D^_net - D^_ker)**2 / sum_{n,q} D^_ker**2)``, the per-model
  distance to the infinite-width network trained on the same triples;
* ``mean vs kernel``: ``||m_net - m_ker|| / ||m_ker||`` (ensemble means; paired, so sampling noise
  cancels and only the finite-width error remains); ``Var vs kernel`` likewise for the
  across-model variances;
* ``mean vs theory``, ``Var vs theory``: the same against the first-order theory; these contain
  the 1/P error of the theory and the sampling error of N models, whose expected size alone
  (``noise``: ``sqrt(sum_q v_q / N) / ||m_th||`` and ``sqrt(sum_q 2 v_q**2 / (N - 1)) / ||v_th||``)
  is printed next to them.

CIs resample models (the same resample for every width, kernel and theory column); they are
percentile intervals of a norm, which resampling biases upward (it adds noise to the differences),
so an estimate can lie below its interval: read them as the spread under model resampling.

Streams (given ``seed``; :mod:`gtv.numerics.streams`)
-----------------------------------------------------
Training sets and initial weights ``stream(seed, "training").spawn(N)`` (triples first, so they
are shared by every width and by the kernel regression); Gaussian-field draws
``stream(seed, "field").spawn(N)`` (the same for every ``tau``, as a trained model is the same
model at every checkpoint); with ``density="mc"`` only (transport draws no start point): PF-ODE
start points of the networks *and* of the kernel regression ``stream(seed, "sampling").spawn(N)``
(paired), of the field ``stream(seed, "field-sampling").spawn(N)``, of the exact-Bayes baseline
``stream(seed, "bayes-sampling")``; bootstrap intervals
``stream(seed, "bootstrap")``, the resampling tables ``stream(seed, "bootstrap", 1)``
(:mod:`gtv.validation.stats`) and the mass-by-distance table's ``stream(seed, "bootstrap", 3)``
(:mod:`gtv.validation.shells`).

Resuming
--------
With ``checkpoint=`` (``gtv validate ntk`` passes
``DIR/ntk_<activation>_eps<eps>_P<P>.partial.npz``) the run is a list of tasks -- per width,
its N models (trained in chunks of ``model_chunk``, :mod:`gtv.validation.ntk.training`) and its
K sampling runs; the K sampling runs of the infinite-width networks and the K of the Gaussian
field -- whose outputs (parameters at every
``tau``, histograms, outside and gap masses; with transport also the per-model error estimates
and point counts) are written atomically after each chunk or run
(:class:`gtv.validation.checkpoint.TaskCheckpoint`). Every task draws from its own streams, so a
rerun after an interruption skips the finished tasks and ends bit-identical to an uninterrupted
run; setup, theory, kernel regression, Fokker-Planck and tables are recomputed (deterministic).

Modules: :mod:`gtv.validation.ntk.config` (:class:`NTKCompareConfig`),
:mod:`gtv.validation.ntk.tables` (the statistics), :mod:`gtv.validation.ntk.result`
(:class:`NTKComparison`), :mod:`gtv.validation.ntk.plot` (its figure) and this one (the run).
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

import numba
import numpy as np
from tqdm import tqdm

from gtv.numerics.checks import check_budget, check_count
from gtv.numerics.kernel import (
    FiniteKernelTheoryAt,
    KernelEnsemble,
    KernelTheoryAt,
    fit_kernel_regression,
    ntk_theory,
)
from gtv.numerics.schedules import get_schedule
from gtv.numerics.streams import stream_rng
from gtv.numerics.two_layer import (
    init_two_layer_ensemble,
    sample_two_layer_ensemble,
    stability_limit,
)
from gtv.validation.checkpoint import TaskCheckpoint
from gtv.validation.ensembles import LearnedDensities, sampled_densities, transported_densities
from gtv.validation.exact_below import LADDER, ExactBelowChoice, ladder_choice, plateau_start
from gtv.validation.figures.figure2 import FIGURE2_DATA
from gtv.validation.ntk.config import FIELD_LABELS, NTKCompareConfig
from gtv.validation.ntk.result import NTKComparison
from gtv.validation.ntk.tables import denoiser_rows, density_rows, error_rows
from gtv.validation.ntk.training import train_width
from gtv.validation.predictions import (
    bin_mixture_density,
    exact_gap_mass,
    fokker_planck_grid,
    fokker_planck_on_edges,
    markov_fokker_planck,
)
from gtv.validation.shells import shell_rows
from gtv.validation.stats import bootstrap_ci, resampling_rng
from gtv.validation.theory_densities import exact_bayes_densities, gaussian_field_densities

__all__ = ["NTKCompareConfig", "NTKComparison", "compare_ntk"]


# -- computation --------------------------------------------------------------------------------
_PARTIAL = "ntk-comparison-partial"


def _checkpoint(c: NTKCompareConfig, d_in: int, D: int, path) -> tuple[TaskCheckpoint, dict]:
    """The run's resume file (module docstring, "Resuming") and where each task sits in it."""
    W_, K, N, nb = len(c.widths), len(c.taus), c.n_models, c.n_bins
    n_k = K if c.sample_kernel else 0
    arrays = {}
    for i, w in enumerate(c.widths):
        arrays.update(
            {f"W{i}": np.zeros((K, N, w, d_in)), f"A{i}": np.zeros((K, N, w, D)),
             f"loss{i}": np.zeros((K, N))}
        )  # fmt: skip
    for pre, lead in (("", (W_, K)), ("k_", (n_k,)), ("g_", (K,))):
        arrays.update(
            {f"{pre}hist": np.zeros((*lead, N, nb)), f"{pre}out": np.zeros((*lead, N)),
             f"{pre}gap": np.zeros((*lead, N))}
        )  # fmt: skip
        if c.density == "transport":  # per-model error estimates and points (transport only)
            arrays.update({f"{pre}err": np.zeros((*lead, N)), f"{pre}pts": np.zeros((*lead, N))})
    if c.exact_below == "auto":  # per tau and rung: t_c, gap, gap SE, core, core SE
        arrays["g_ladder"] = np.zeros((K, len(LADDER) + 1, 5))
    # tasks: per width its N models (training) then its K sampling runs; then the K sampling
    # runs of the infinite-width networks and the K of the Gaussian field
    per = N + K
    tasks = {
        "train": np.arange(W_ * per).reshape(W_, per)[:, :N],
        "sample": np.arange(W_ * per).reshape(W_, per)[:, N:],
        "kernel": W_ * per + np.arange(n_k),
        "field": W_ * per + n_k + np.arange(K),
    }
    n_tasks = W_ * per + n_k + K
    # a Monte Carlo run records the settings it had before the density options existed
    return TaskCheckpoint(path, _PARTIAL, c.run_settings(), arrays, n_tasks), tasks


def compare_ntk(
    config: NTKCompareConfig | None = None,
    progress: bool = False,
    cache_dir: str | Path | None = None,
    *,
    checkpoint: str | Path | None = None,
    model_chunk: int | None = None,
) -> NTKComparison:
    """Train, sample, compute the kernel theory and compare (module docstring).

    Parameters
    ----------
    config : NTKCompareConfig, optional
    progress : bool
        Progress bars (training per width, sampling).
    cache_dir : path, optional
        Trained trajectories are saved here (one ``.npz`` per width, keyed by the training
        configuration) and reused or resumed (later ``tau``) by a later call.
    checkpoint : path, optional
        Resume file (kind ``"ntk-comparison-partial"``), written atomically after every chunk of
        trained models and every sampling run and read at the start, so an interrupted run
        (Ctrl-C, a killed process) continues where it stopped and gives the same numbers as an
        uninterrupted one. A checkpoint of another configuration raises ``ValueError``; a
        damaged one is reported in one warning line and ignored. Removed when the run completes.
    model_chunk : int, optional
        Models trained per call and per checkpoint write (default: twice the numba thread count;
        it changes no number, :mod:`gtv.validation.ntk.training`).

    Raises
    ------
    ValueError
        ``learning_rate`` at or beyond the stability limit (message gives the limit); ``taus``
        shorter than one step or two ``taus`` rounding to the same step; bad configuration
        (:class:`NTKCompareConfig`).
    """
    c = config or NTKCompareConfig()
    if not isinstance(c, NTKCompareConfig):
        raise TypeError("config must be an NTKCompareConfig")
    chunk = 2 * numba.get_num_threads() if model_chunk is None else model_chunk
    chunk = check_count(chunk, "model_chunk")
    sched = get_schedule(c.schedule)
    data = FIGURE2_DATA
    D = data.shape[1]
    ckpt, tasks = _checkpoint(c, D + 2, D, checkpoint)
    timings: dict[str, float] = {}
    kw = dict(activation=c.activation, embedding=c.embedding, bias=c.bias, seed=c.seed)

    # 1. training sets and initial weights (triples shared by all widths), stability limits
    t0 = time.perf_counter()
    inits = [
        init_two_layer_ensemble(data, w, c.n_models, c.P, c.eps, sched, **kw) for w in c.widths
    ]
    base = inits[0]
    limits = np.stack([stability_limit(ini) for ini in inits])  # (W, N)
    kernels = [
        fit_kernel_regression(base.z[m], base.x0[m], base.weight[m], c.activation)
        for m in range(c.n_models)
    ]
    kernel_limits = np.array([kr.lr_max for kr in kernels])
    th_opts = dict(
        embedding=c.embedding, bias=c.bias, n_t=c.theory_n_t, n_hermite=c.theory_n_hermite
    )
    theory_limit = ntk_theory(data, c.eps, sched, c.activation, **th_opts).lr_max
    eta_max = float(min(limits.min(), kernel_limits.min(), theory_limit))
    where = (
        f"min over {len(c.widths)} widths x {c.n_models} models of the empirical tangent kernel "
        f"at initialization ({limits.min():.6g}), the infinite-width kernels of the same "
        f"training sets ({kernel_limits.min():.6g}) and the population kernel ({theory_limit:.6g})"
    )
    if c.learning_rate is None:
        eta = c.lr_fraction * eta_max
    else:
        eta = float(c.learning_rate)
        if not eta < eta_max:
            raise ValueError(
                f"learning_rate = {eta:.6g} is at or beyond the stability limit of gradient "
                f"descent for this kernel: eta_max = 2P / lambda_max(Lambda^1/2 Theta "
                f"Lambda^1/2) = {eta_max:.6g} ({where}); use learning_rate < eta_max"
            )
    req = np.asarray(c.taus, dtype=float)
    steps = np.rint(req / eta).astype(np.int64)
    if np.any(steps < 1):
        bad = req[steps < 1]
        raise ValueError(
            f"taus {bad.tolist()} are shorter than one gradient step (eta = {eta:.6g}); "
            "use larger taus or a larger learning rate"
        )
    if np.any(np.diff(steps) <= 0):
        raise ValueError(
            f"taus {req.tolist()} round to repeated step counts {steps.tolist()} at eta = "
            f"{eta:.6g}; use more widely spaced taus"
        )
    check_budget(
        "taus", f"{req.tolist()} (up to {int(steps.max())} gradient steps at eta = {eta:.3g})",
        n_ops=4.0 * float(steps.max()) * c.n_models * sum(c.widths) * c.P, what="training",
    )  # fmt: skip
    taus = eta * steps.astype(float)
    timings["setup_s"] = time.perf_counter() - t0

    # 2. theory (the same gradient-descent filter: lr = eta, k = tau / eta steps)
    t0 = time.perf_counter()
    theory = ntk_theory(
        data, c.eps, sched, c.activation, lr=eta, flow="gradient-descent", **th_opts
    )
    qx, qt = c.query_points()
    K, Q = taus.size, qx.size
    bound_cls = KernelTheoryAt if c.theory == "first-order" else FiniteKernelTheoryAt
    bound = [bound_cls(theory, tau, c.P) for tau in taus]  # the theory contract
    th = {k: np.empty((K, Q)) for k in ("mean", "var", "var_proxy", "var_misfit")}
    for k, b in enumerate(bound):
        th["mean"][k] = b.mean_denoiser(qx, qt)[:, 0]
        for part, key in (("total", "var"), ("proxy", "var_proxy"), ("misfit", "var_misfit")):
            th[key][k] = b.denoiser_covariance((qx, qt), part=part, paired=True)[:, 0, 0]
    d_eff = [b.effective_dimension() for b in bound]
    timings["theory_s"] = time.perf_counter() - t0

    # 3. infinite-width networks on the same triples
    t0 = time.perf_counter()
    coeffs = np.stack([kr.coefficients(taus, eta, "gradient-descent") for kr in kernels])
    kens = KernelEnsemble(
        base.z, coeffs, taus, c.activation, data, sched, c.eps, c.embedding, c.bias,
        {"kind": "kernel-regression", "P": c.P, "lr": eta, "flow": "gradient-descent",
         "seed": c.seed},
    )  # fmt: skip
    ker = np.empty((K, c.n_models, Q))
    for k, tau in enumerate(taus):
        for t in np.unique(qt):
            sel = qt == t
            ker[k][:, sel] = kens.denoiser(qx[sel], t, tau)[:, :, 0]
    timings["kernel_s"] = time.perf_counter() - t0

    # 4. train the networks
    t0 = time.perf_counter()
    cache = None if cache_dir is None else Path(cache_dir)
    trajs, cache_status = [], []
    for i, ini in enumerate(inits):
        names = (f"W{i}", f"A{i}", f"loss{i}")
        tr, status = train_width(
            ini, eta, steps, ckpt, names, tasks["train"][i], chunk, cache, progress
        )
        trajs.append(tr)
        cache_status.append(status)
    net = np.empty((len(c.widths), K, c.n_models, Q))
    for i, tr in enumerate(trajs):
        for t in np.unique(qt):
            sel = qt == t
            net[i][:, :, sel] = tr.denoise(qx[sel], t)[..., 0]
    timings["train_s"] = time.perf_counter() - t0

    # 5. sampling: networks, infinite-width networks, Gaussian field; FP; baselines
    t0 = time.perf_counter()
    edges = np.linspace(c.hist_range[0], c.hist_range[1], c.n_bins + 1)
    bw = float(edges[1] - edges[0])
    W_ = len(c.widths)
    n_k = K if c.sample_kernel else 0
    arr = ckpt.arrays
    hist, outside, gap = arr["hist"], arr["out"], arr["gap"]
    k_hist, k_out, k_gap = arr["k_hist"], arr["k_out"], arr["k_gap"]
    g_hist, g_out, g_gap = arr["g_hist"], arr["g_out"], arr["g_gap"]
    samp = dict(n_steps=c.n_steps, method=c.method)
    transport = c.density_settings()
    sigma_T = float(np.sqrt(sched.sigma2(sched.T)))
    n_jobs = K * (W_ + 1 + int(c.sample_kernel))
    bar = tqdm(total=n_jobs, desc="sampling", disable=not progress, leave=False)

    def learned(sample) -> LearnedDensities:
        """Per-model densities of an ensemble whose sampler is ``sample(n, x_T=, models=,
        seed=)``: its Monte Carlo samples or its map carried over the transport grid."""
        if transport is None:
            return sampled_densities(sample(c.n_samples, seed=c.seed), data, edges, c.gap_distance)

        def run(x_T, models=None):
            return sample(x_T.shape[1], x_T=x_T, models=models)

        return transported_densities(
            run, c.n_models, sigma_T, data, edges, c.gap_distance, transport
        )

    def store(pre, where, d: LearnedDensities) -> None:
        arr[pre + "hist"][where], arr[pre + "out"][where] = d.histograms, d.outside
        arr[pre + "gap"][where] = d.gap
        if transport is not None:
            arr[pre + "err"][where], arr[pre + "pts"][where] = d.error, d.points

    def run(task, fill) -> None:
        if not ckpt.done[task]:
            fill()
            ckpt.mark_done(int(task))
        bar.update()

    def networks(i, k):
        nets = trajs[i].networks(k)
        store("", (i, k), learned(lambda n, **kw: sample_two_layer_ensemble(nets, n, **samp, **kw)))

    def kernel(k):
        store("k_", k, learned(lambda n, **kw: kens.sample(n, taus[k], **samp, **kw)))

    def field_at(k, t_c):
        return _MemberField(bound[k], c.theory, exact_below=t_c, centre=c.centre)

    def field(k):
        below = c.exact_below
        if below == "auto":
            choice = ladder_choice(
                lambda t_c: field_at(k, t_c), float(sched.T), data, n_members=c.n_models,
                edges=edges, gap_distance=c.gap_distance, density=c.density,
                n_samples=c.n_samples, transport=transport, seed=c.seed, **samp,
            )  # fmt: skip
            arr["g_ladder"][k] = np.column_stack(
                [choice.ladder, choice.gap, choice.gap_se, choice.core, choice.core_se]
            )
            below = choice.t_c
        src = field_at(k, below) if c.theory in FIELD_LABELS else bound[k]
        d = gaussian_field_densities(
            src, c.n_models, edges, c.gap_distance, density=c.density, n_samples=c.n_samples,
            transport=transport, seed=c.seed, **samp,
        )  # fmt: skip
        store("g_", k, d)

    for i in range(W_):
        for k in range(K):
            run(tasks["sample"][i, k], lambda i=i, k=k: networks(i, k))
    timings["sample_networks_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    for k in range(n_k):
        run(tasks["kernel"][k], lambda k=k: kernel(k))
    timings["sample_kernel_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    for k in range(K):
        run(tasks["field"][k], lambda k=k: field(k))
    bar.close()
    timings["sample_gaussian_field_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    h = c.fp_half_width
    lo, hi, n_cells = fokker_planck_grid(edges, sched, None if h is None else (-h, h), c.fp_refine)
    fp_d = np.empty((K, c.n_bins))
    fp0_d = np.empty((K, c.n_bins))
    fp_gap = np.empty(K)
    fp0_gap = np.empty(K)
    fp_info = []
    for k in range(K):
        res, info = markov_fokker_planck(bound[k], (lo, hi), n_cells, c.fp_steps)
        _, _, fp_d[k], fp_gap[k] = fokker_planck_on_edges(res, edges, data, c.gap_distance)
        res0, _ = markov_fokker_planck(bound[k], (lo, hi), n_cells, c.fp_steps, with_noise=False)
        _, _, fp0_d[k], fp0_gap[k] = fokker_planck_on_edges(res0, edges, data, c.gap_distance)
        info["effective_dimension"] = d_eff[k]
        fp_info.append(info)
    timings["fokker_planck_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    exact = bin_mixture_density(data, edges, c.eps, sched)
    exact_gap = exact_gap_mass(data, c.eps, sched, c.gap_distance)
    nb = c.n_bayes_samples or min(c.n_models * c.n_samples, 10**6)
    bayes_d = exact_bayes_densities(
        data, edges, c.eps, sched, c.gap_distance, density=c.density, n_samples=nb,
        transport=transport, seed=c.seed, **samp,
    )  # fmt: skip
    bayes, bayes_gap = bayes_d.histograms[0], float(bayes_d.gap[0])
    timings["baselines_s"] = time.perf_counter() - t0

    # 6. tables
    t0 = time.perf_counter()
    rng = resampling_rng(c.seed)
    idx = rng.integers(0, c.n_models, (c.n_boot, c.n_models))
    fvar = None
    if c.theory in FIELD_LABELS:
        fvar = _field_variances(c, arr, taus, qx, qt, field_at)
    e_rows = error_rows(net, ker, th["mean"], th["var"], c.widths, taus, idx, fvar, c.n_models)
    d_rows = denoiser_rows(net[-1], ker, th, qx, qt, taus, c.n_boot, c.seed, rng)
    if fvar is not None:
        _add_field_variance(d_rows, taus, fvar)
    gap_rows, dens_rows = [], []
    for k, tau in enumerate(taus):
        row = {"tau": float(tau)}
        for i, w in enumerate(c.widths):
            row[f"width {w}"] = bootstrap_ci(gap[i, k], n_resamples=c.n_boot, seed=c.seed)
        if c.sample_kernel:
            row["infinite width"] = bootstrap_ci(k_gap[k], n_resamples=c.n_boot, seed=c.seed)
        row[c.field_label] = bootstrap_ci(g_gap[k], n_resamples=c.n_boot, seed=c.seed)
        row["white-noise FP"] = float(fp_gap[k])
        row["FP, Q = 0"] = float(fp0_gap[k])
        gap_rows.append(row)
        others = {}
        if c.sample_kernel:
            others["kernel"] = (k_hist[k].mean(0), float(k_out[k].mean()))
        others["gaussian_field"] = (g_hist[k].mean(0), float(g_out[k].mean()))
        others["white_noise_fp"] = (fp_d[k], float(1.0 - fp_d[k].sum() * bw))
        others["mean_score_fp_Q0"] = (fp0_d[k], float(1.0 - fp0_d[k].sum() * bw))
        others["p(x|eps)"] = (exact, float(1.0 - exact.sum() * bw))
        others["bayes"] = (bayes, float(1.0 - bayes.sum() * bw))
        dens_rows += density_rows(
            hist[-1, k], outside[-1, k], others, bw, c.n_boot, rng, float(tau)
        )
    shells = []  # mass by distance from the data: the field against the reference networks
    srng = stream_rng(c.seed, "bootstrap", 3)
    ref = "infinite width" if c.sample_kernel else f"width {c.widths[-1]}"
    for k, tau in enumerate(taus):
        ref_d = (k_hist[k], k_out[k]) if c.sample_kernel else (hist[-1, k], outside[-1, k])
        for r in shell_rows(ref_d, (g_hist[k], g_out[k]), edges, data[:, 0], c.n_boot, srng):
            shells.append({"tau": float(tau), "reference": ref, **r})
    timings["statistics_s"] = time.perf_counter() - t0

    meta = {
        "stability_limit": eta_max,
        "limit_by_width_min": [float(v) for v in limits.min(axis=1)],
        "kernel_limit_min": float(kernel_limits.min()),
        "theory_limit": float(theory_limit),
        "lr_fraction_used": float(eta / eta_max),
        "requested_taus": [float(v) for v in req],
        "effective_dimension": d_eff,
        "theory_nodes": int(theory.n_nodes),
        "theory_rank": int(theory.rank),
        "train_loss_final": [float(tr.train_loss[-1].mean()) for tr in trajs],
        "baseline_gap": {"p(x|eps)": float(exact_gap), "bayes": float(bayes_gap)},
        "n_bayes_samples": int(nb) if transport is None else None,
        "density": c.density,
        "fp_info": fp_info,
        "fp_grid": [lo, hi, int(n_cells)],
        "cache": cache_status,
        "checkpoint_resumed": [ckpt.resumed, int(ckpt.done.size)],
        "timings": timings,
    }
    if transport is not None:
        meta.update(_transport_meta(c, arr, bayes_d))
    if c.exact_below == "auto":  # the choice per tau, from the ladders kept in the resume file
        meta["exact_below_choice"] = [
            ExactBelowChoice(
                plateau_start(*lad.T), *(tuple(map(float, v)) for v in lad.T)
            ).to_dict()
            for lad in arr["g_ladder"]
        ]
    ckpt.finish()
    return NTKComparison(
        c, float(eta), steps, taus, net, ker, th, hist, outside, gap, k_hist, k_out, k_gap,
        g_hist, g_out, g_gap, fp_d, fp0_d, fp_gap, fp0_gap, exact, bayes, d_rows,
        e_rows, gap_rows, dens_rows, meta, shells,
    )  # fmt: skip


def _field_variances(c: NTKCompareConfig, arr: dict, taus, qx, qt, field_at) -> np.ndarray:
    """The variance of ``D^`` over the member field's own members at the query points, per tau
    (K, Q): the same ``n_models`` members, seed and ``t_c`` as its densities, drawn again; the
    field's moments, where ``theory_var`` is the cavity moments' (docs/math/finite_fp.md,
    *Early nodes exact*)."""
    out = np.empty((len(taus), qx.size))
    for k in range(len(taus)):
        below = c.exact_below
        if below == "auto":
            below = plateau_start(*arr["g_ladder"][k].T)
        members = field_at(k, below).gaussian_field(c.n_models, c.seed)
        for t in np.unique(qt):
            sel = qt == t
            out[k, sel] = members.denoise(qx[sel], t)[..., 0].var(axis=0, ddof=1)
    return out


def _add_field_variance(rows: list, taus, fvar: np.ndarray) -> None:
    """Add ``field_var`` and ``field_ratio`` = trained / field to each denoiser row (the rows of
    one tau in the order of the query points)."""
    for k, tau in enumerate(taus):
        q = 0
        for r in rows:
            if r["tau"] == float(tau):
                v = fvar[k, q]
                r["field_var"] = float(v)
                r["field_ratio"] = float(r["var"] / v) if v > 0 else float("inf")
                q += 1


def _transport_meta(c: NTKCompareConfig, arr: dict, bayes: LearnedDensities) -> dict:
    """``transport_error_tv`` and ``transport_points``: per ensemble (every width, the infinite
    width, the field, the exact-Bayes baseline) the largest per-model error estimate over the
    ``tau`` and the mean number of points per model."""
    err, pts = {}, {}
    ens = [(f"width {w}", arr["err"][i], arr["pts"][i]) for i, w in enumerate(c.widths)]
    if c.sample_kernel:
        ens.append(("infinite width", arr["k_err"], arr["k_pts"]))
    ens += [(c.field_label, arr["g_err"], arr["g_pts"]), ("bayes", bayes.error, bayes.points)]
    for name, e, p in ens:
        err[name], pts[name] = float(np.max(e)), float(np.mean(p))
    return {"transport_error_tv": err, "transport_points": pts}


class _MemberField:
    """A bound finite-P theory whose field ensemble is its small-occupancy or stratified field
    (the ``gaussian_field`` the [q] summary calls), with every node below ``exact_below`` exact
    and, for the stratified field, centred or not."""

    def __init__(
        self, bound: FiniteKernelTheoryAt, theory: str, exact_below: float = 0.0, centre=True
    ):
        self.bound = bound
        if theory == "occupancy-field":
            self._draw = functools.partial(bound.occupancy_field, exact_below=exact_below)
        else:
            self._draw = functools.partial(
                bound.stratified_field, exact_below=exact_below, centre=centre
            )

    def __getattr__(self, name: str):  # data, schedule, ... of the bound theory
        return getattr(self.bound, name)

    def gaussian_field(self, n_models: int, seed=0):
        return self._draw(n_models, seed)
