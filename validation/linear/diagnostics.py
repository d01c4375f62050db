"""Moment error and closure error of a linear ensemble (docs/math/predictions.md, "Moment error
and closure error").

A Gaussian-field theory can miss a trained ensemble's density for two different reasons: its
*moments* (the mean and covariance of the weights ``W``) are wrong, or the ensemble is not
Gaussian (the *closure* ``W ~ N(mean, Cov)`` fails). This module separates them:

* the **moment-matched Gaussian field** (:func:`moment_matched_ensemble`): ``M`` members
  ``W ~ N(W_mean, S)`` with the trained ensemble's own mean ``W_mean`` and sample covariance
  ``S`` (``ddof = 1``) of its ``D x F`` weights, drawn as

      ``W_m = W_mean + (N - 1)**(-1/2) sum_n g_mn (W_n - W_mean)``,   ``g_mn ~ N(0, 1)`` iid.

  Then ``E W_m = W_mean`` and ``Cov(vec W_m) = (N-1)^-1 sum_n vec(W_n - W_mean) vec(W_n -
  W_mean)^T = S`` exactly: no factorization of ``S``, which is rank-deficient whenever
  ``N <= F`` (and near-singular for ``N`` not much larger than ``F``); the members span the same
  subspace as the centred trained weights. Sampled with the same PF-ODE sampler
  (:func:`gtv.numerics.linear.sampler.sample_linear_ensemble`) as the trained ensemble and the
  theory's Gaussian field, it gives its own per-member histograms and gap masses
  (:func:`moment_matched_histograms`; :func:`moment_matched_densities` also transports it).
  **Moment error** = theory's Gaussian field vs moment-matched field; **closure error** =
  moment-matched field vs trained ensemble (:func:`closure_rows`).
* the **distribution of** ``D^(x, t)`` **across models** at query points
  (:func:`distribution_statistics`): skewness ``g1 = m3 / m2**1.5`` and excess kurtosis
  ``g2 = m4 / m2**2 - 3`` (the moment estimators, = ``scipy.stats.skew`` / ``kurtosis`` with
  their defaults) with model-level percentile bootstrap intervals, quantiles, and the share of
  ``sum_n (D_n - mean)**2`` carried by the top ``fraction`` of models (largest squared
  deviations). A Gaussian has ``g1 = g2 = 0`` and a top share of :func:`gaussian_top_share`.

Streams (:mod:`gtv.numerics.streams`): the moment-matched weights of member ``m`` come from
``stream(seed, "moment-field").spawn(M)[m]``, its PF-ODE start points from
``stream(seed, "moment-field-sampling").spawn(M)[m]``; the intervals of this module are drawn
from a generator passed in (in :func:`gtv.validation.linear.compare.compare_linear`:
``stream(seed, "bootstrap", 2)``).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr, ndtri

from gtv.numerics.checks import check_choice, check_count
from gtv.numerics.linear import LinearEnsemble, sample_linear_ensemble
from gtv.numerics.pfode import initial_points
from gtv.numerics.streams import check_seed, model_rngs
from gtv.validation.ensembles import (
    DENSITIES,
    LearnedDensities,
    TransportSettings,
    sampled_densities,
    transported_densities,
)
from gtv.validation.stats import DISTANCES, boot_mean, interval_masses

__all__ = [
    "QUANTILE_LEVELS",
    "TOP_FRACTION",
    "closure_rows",
    "distribution_rows",
    "distribution_statistics",
    "format_diagnostics",
    "gaussian_statistics",
    "gaussian_top_share",
    "moment_matched_densities",
    "moment_matched_ensemble",
    "moment_matched_histograms",
    "moment_matched_weights",
    "pair_distance_ci",
    "top_share",
]

#: Quantile levels of the distribution table.
QUANTILE_LEVELS = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
#: Fraction of models whose share of the variance is reported.
TOP_FRACTION = 0.01


# -- moment-matched Gaussian field ----------------------------------------------------------------
def moment_matched_weights(
    W: np.ndarray, n_members: int, seed: int | np.random.SeedSequence = 0
) -> np.ndarray:
    """``n_members`` weights ``W_m ~ N(mean W, sample Cov W)`` (module docstring).

    Parameters
    ----------
    W : ndarray, shape (N, D, F)
        The trained weights, ``N >= 2``.
    n_members : int
        ``M``, the number of members (>= 1).
    seed : int or SeedSequence
        Member ``m`` draws its ``N`` coefficients ``g_m`` from
        ``stream(seed, "moment-field").spawn(M)[m]``.

    Returns
    -------
    ndarray, shape (M, D, F)
    """
    W = np.asarray(W, dtype=float)
    if W.ndim != 3 or W.shape[0] < 2:
        raise ValueError(f"W must have shape (N >= 2, D, F), got {W.shape}")
    if not np.all(np.isfinite(W)):
        raise ValueError("W must be finite")
    m = check_count(n_members, "n_members")
    seed = check_seed(seed)
    n = W.shape[0]
    mean = W.mean(axis=0)
    centred = (W - mean).reshape(n, -1)
    g = np.stack([rng.standard_normal(n) for rng in model_rngs(seed, "moment-field", m)])
    return mean + (g @ centred / math.sqrt(n - 1)).reshape(m, *W.shape[1:])


def moment_matched_ensemble(
    ensemble: LinearEnsemble,
    n_members: int | None = None,
    seed: int | np.random.SeedSequence = 0,
) -> LinearEnsemble:
    """The moment-matched Gaussian field of a linear ensemble, as a :class:`LinearEnsemble`
    with the same features, data, schedule, eps, P, ridge and target (weights:
    :func:`moment_matched_weights`; ``n_members`` defaults to the ensemble size)."""
    if not isinstance(ensemble, LinearEnsemble):
        raise TypeError("ensemble must be a LinearEnsemble")
    m = ensemble.n_models if n_members is None else n_members
    W = moment_matched_weights(ensemble.W, m, seed)
    return LinearEnsemble(
        W,
        ensemble.features,
        ensemble.data,
        ensemble.schedule,
        ensemble.eps,
        ensemble.n_samples,
        ensemble.ridge,
        seed,
        target=ensemble.target,
    )


def moment_matched_densities(
    ensemble: LinearEnsemble,
    edges: np.ndarray,
    gap_distance: float,
    *,
    density: str = "mc",
    n_samples: int | None = None,
    transport: TransportSettings | None = None,
    n_members: int | None = None,
    n_steps: int = 30,
    method: str = "euler",
    seed: int | np.random.SeedSequence = 0,
) -> tuple[LinearEnsemble, LearnedDensities]:
    """The moment-matched field of ``ensemble`` (1-D) and its per-member densities.

    ``density="mc"``: member ``m`` starts the PF-ODE (``n_steps``, ``method``, ``n_samples``
    points) from ``stream(seed, "moment-field-sampling").spawn(M)[m]``; ``density="transport"``:
    every member carries the transport grid (``transport``, default
    :class:`~gtv.validation.ensembles.TransportSettings`, refined to the bin width of ``edges``;
    :func:`gtv.validation.ensembles.transported_densities`).

    Returns
    -------
    (field, LearnedDensities)
        The field (:func:`moment_matched_ensemble`) and its per-member densities on the uniform
        ``edges``, mass outside them and gap masses (fraction farther than ``gap_distance`` from
        every training point).
    """
    check_choice(density, "density", DENSITIES)
    field = moment_matched_ensemble(ensemble, n_members, seed)
    if field.features.dim != 1:
        raise ValueError(f"ensemble: only 1-D data is supported, got D = {field.features.dim}")
    edges = np.asarray(edges, dtype=float)
    if density == "transport":

        def run(x_T: np.ndarray, models: np.ndarray | None = None) -> np.ndarray:
            return sample_linear_ensemble(
                field, x_T.shape[1], n_steps=n_steps, method=method, x_T=x_T, models=models
            )

        sigma_T = math.sqrt(float(field.schedule.sigma2(field.schedule.T)))
        return field, transported_densities(
            run, field.n_models, sigma_T, field.data, edges, gap_distance, transport
        )
    n_samples = check_count(n_samples, "n_samples")
    x_T = initial_points(
        None, seed, field.n_models, n_samples, 1, field.schedule, stream="moment-field-sampling"
    )
    xs = sample_linear_ensemble(field, n_samples, n_steps=n_steps, method=method, x_T=x_T)
    return field, sampled_densities(xs, field.data, edges, gap_distance)


def moment_matched_histograms(
    ensemble: LinearEnsemble,
    n_samples: int,
    edges: np.ndarray,
    gap_distance: float,
    *,
    n_members: int | None = None,
    n_steps: int = 30,
    method: str = "euler",
    seed: int | np.random.SeedSequence = 0,
) -> tuple[LinearEnsemble, np.ndarray, np.ndarray, np.ndarray]:
    """Sample the moment-matched field of ``ensemble`` (1-D) and summarize it like a trained one.

    Member ``m`` starts the PF-ODE (``n_steps``, ``method``, ``n_samples`` points) from
    ``stream(seed, "moment-field-sampling").spawn(M)[m]`` (:func:`moment_matched_densities`
    with ``density="mc"``).

    Returns
    -------
    (field, histograms (M, B), outside (M,), gap (M,))
        The field (:func:`moment_matched_ensemble`), per-member density histograms on the
        uniform ``edges``, mass outside them, and gap masses (fraction farther than
        ``gap_distance`` from every training point).
    """
    field, d = moment_matched_densities(
        ensemble, edges, gap_distance, density="mc", n_samples=n_samples, n_members=n_members,
        n_steps=n_steps, method=method, seed=seed,
    )  # fmt: skip
    return field, d.histograms, d.outside, d.gap


# -- two ensembles' mean densities and gap masses -------------------------------------------------
def pair_distance_ci(
    a: tuple[np.ndarray, np.ndarray, np.ndarray],
    b: tuple[np.ndarray, np.ndarray, np.ndarray],
    width: float,
    n_boot: int,
    rng: np.random.Generator,
    confidence: float = 0.95,
) -> dict:
    """Distances between the mean densities of two ensembles, and their gap masses.

    ``a`` and ``b`` are ``(histograms (N, B), outside (N,), gap (N,))`` of two ensembles (any
    sizes) on one grid of bin width ``width``. Each ensemble's models are resampled
    independently (``n_boot`` percentile resamples from ``rng``).

    Returns
    -------
    dict
        ``tv``, ``hellinger`` (each with ``_lo``/``_hi``), ``gap_a``, ``gap_b`` (means, with
        ``_lo``/``_hi``) and ``gap_ratio = gap_a / gap_b - 1`` (with ``_lo``/``_hi``; NaN-free:
        ``None`` when ``gap_b`` is 0).
    """
    q = ((1 - confidence) / 2, (1 + confidence) / 2)
    ma = interval_masses(a[0].mean(axis=0), width, a[1].mean())
    mb = interval_masses(b[0].mean(axis=0), width, b[1].mean())
    ba = interval_masses(boot_mean(a[0], n_boot, rng), width, boot_mean(a[1], n_boot, rng))
    bb = interval_masses(boot_mean(b[0], n_boot, rng), width, boot_mean(b[1], n_boot, rng))
    row: dict = {}
    for name, fn in DISTANCES.items():
        lo, hi = np.quantile(fn(ba, bb), q)
        row.update({name: float(fn(ma, mb)), f"{name}_lo": float(lo), f"{name}_hi": float(hi)})
    ga, gb = boot_mean(a[2], n_boot, rng), boot_mean(b[2], n_boot, rng)
    for key, vals, boots in (("gap_a", a[2], ga), ("gap_b", b[2], gb)):
        lo, hi = np.quantile(boots, q)
        row.update({key: float(vals.mean()), f"{key}_lo": float(lo), f"{key}_hi": float(hi)})
    if b[2].mean() > 0 and np.all(gb > 0):
        lo, hi = np.quantile(ga / gb - 1.0, q)
        row.update(
            {
                "gap_ratio": float(a[2].mean() / b[2].mean() - 1.0),
                "gap_ratio_lo": float(lo),
                "gap_ratio_hi": float(hi),
            }
        )
    else:
        row.update({"gap_ratio": None, "gap_ratio_lo": None, "gap_ratio_hi": None})
    return row


def closure_rows(
    trained: tuple[np.ndarray, np.ndarray, np.ndarray],
    theory_field: tuple[np.ndarray, np.ndarray, np.ndarray],
    moment_field: tuple[np.ndarray, np.ndarray, np.ndarray],
    width: float,
    n_boot: int,
    rng: np.random.Generator,
) -> list[dict]:
    """The three comparisons ``total`` (theory field vs trained), ``moment`` (theory field vs
    moment-matched field) and ``closure`` (moment-matched field vs trained), each a
    :func:`pair_distance_ci` row with ``comparison``, ``a`` and ``b`` names added.

    Each argument is ``(histograms, outside, gap)`` of one ensemble.
    """
    pairs = (
        ("total", "gaussian_field", theory_field, "trained", trained),
        ("moment", "gaussian_field", theory_field, "moment_matched_gf", moment_field),
        ("closure", "moment_matched_gf", moment_field, "trained", trained),
    )
    return [
        {"comparison": c, "a": na, "b": nb, **pair_distance_ci(a, b, width, n_boot, rng)}
        for c, na, a, nb, b in pairs
    ]


# -- distribution of D^ across models -------------------------------------------------------------
def _shape_moments(values: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Moment estimators of skewness and excess kurtosis along ``axis``."""
    d = values - values.mean(axis=axis, keepdims=True)
    m2 = (d * d).mean(axis=axis)
    m3 = (d**3).mean(axis=axis)
    m4 = (d**4).mean(axis=axis)
    with np.errstate(divide="ignore", invalid="ignore"):
        return m3 / m2**1.5, m4 / m2**2 - 3.0


def top_share(values: np.ndarray, fraction: float = TOP_FRACTION) -> np.ndarray:
    """Share of ``sum_n (v_n - mean)**2`` carried by the ``k = max(1, round(fraction N))``
    models with the largest squared deviations, per column of ``values`` (N, k)."""
    v = np.asarray(values, dtype=float)
    n = v.shape[0]
    k = max(1, int(round(fraction * n)))
    d2 = (v - v.mean(axis=0)) ** 2
    top = -np.partition(-d2, k - 1, axis=0)[:k]
    total = d2.sum(axis=0)
    return np.where(total > 0, top.sum(axis=0) / np.where(total > 0, total, 1.0), 0.0)


def gaussian_top_share(fraction: float) -> float:
    """The share of ``E Z**2`` (``Z ~ N(0, 1)``) from ``|Z| > c`` with ``P(|Z| > c) = fraction``:
    ``2 (c phi(c) + Phi(-c))`` (integration by parts of ``z**2 phi(z)``)."""
    if not (0 < fraction <= 1):
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    c = float(ndtri(1.0 - fraction / 2))
    return float(2.0 * (c * np.exp(-0.5 * c * c) / np.sqrt(2.0 * np.pi) + ndtr(-c)))


def distribution_statistics(
    values: np.ndarray,
    n_boot: int,
    rng: np.random.Generator,
    confidence: float = 0.95,
    levels: tuple[float, ...] = QUANTILE_LEVELS,
    fraction: float = TOP_FRACTION,
) -> dict[str, np.ndarray]:
    """Shape of the across-model distribution of each column of ``values`` (N models, k).

    Returns
    -------
    dict of arrays
        ``skew``, ``kurt`` (excess), each with percentile model-level bootstrap ``_lo``/``_hi``
        (``n_boot`` resamples of the models from ``rng``), ``quantiles`` (len(levels), k) and
        ``top_share`` (:func:`top_share`), all (k,) unless noted.
    """
    v = np.asarray(values, dtype=float)
    if v.ndim != 2 or v.shape[0] < 4:
        raise ValueError(f"values must have shape (N >= 4, k), got {v.shape}")
    n_boot = check_count(n_boot, "n_boot", 10)
    skew, kurt = _shape_moments(v, axis=0)
    if not (np.all(np.isfinite(skew)) and np.all(np.isfinite(kurt))):
        raise ValueError("values: every column must vary across models (skewness undefined)")
    n = v.shape[0]
    bs = np.empty((n_boot, v.shape[1]))
    bk = np.empty_like(bs)
    for b0 in range(0, n_boot, 100):
        idx = rng.integers(0, n, (min(100, n_boot - b0), n))
        s, k = _shape_moments(v[idx], axis=1)
        bs[b0 : b0 + idx.shape[0]], bk[b0 : b0 + idx.shape[0]] = s, k
    q = ((1 - confidence) / 2, (1 + confidence) / 2)
    # A resample that repeats one model N times has no spread (NaN); it is left out.
    slo, shi = np.nanquantile(bs, q, axis=0)
    klo, khi = np.nanquantile(bk, q, axis=0)
    return {
        "skew": skew,
        "skew_lo": slo,
        "skew_hi": shi,
        "kurt": kurt,
        "kurt_lo": klo,
        "kurt_hi": khi,
        "quantiles": np.quantile(v, levels, axis=0),
        "top_share": top_share(v, fraction),
    }


def gaussian_statistics(
    mean: np.ndarray,
    var: np.ndarray,
    n_models: int,
    levels: tuple[float, ...] = QUANTILE_LEVELS,
    fraction: float = TOP_FRACTION,
) -> dict[str, np.ndarray]:
    """The same statistics for ``N(mean, var)`` (columns): skewness 0, excess kurtosis 0,
    quantiles ``mean + sqrt(var) z_p`` and the top share :func:`gaussian_top_share` at the
    fraction ``k / n_models`` actually used by :func:`top_share`."""
    mean, var = np.asarray(mean, dtype=float), np.asarray(var, dtype=float)
    if np.any(var < 0):
        raise ValueError("var must be >= 0")
    k = max(1, int(round(fraction * n_models)))
    z = ndtri(np.asarray(levels, dtype=float))
    return {
        "skew": np.zeros_like(mean),
        "kurt": np.zeros_like(mean),
        "quantiles": mean[None, :] + np.sqrt(var)[None, :] * z[:, None],
        "top_share": np.full_like(mean, gaussian_top_share(k / n_models)),
    }


def distribution_rows(
    ensemble: LinearEnsemble,
    theory,
    theory_field,
    moment_field: LinearEnsemble,
    query_x: tuple[float, ...],
    query_t: tuple[float, ...],
    n_boot: int,
    rng: np.random.Generator,
) -> list[dict]:
    """One row per query point ``(x, t)`` (``t`` outside ``[eps, T]`` skipped): the
    across-model distribution of ``D^(x, t)`` of the trained ensemble
    (:func:`distribution_statistics`) next to the theory's values.

    ``theory`` is a 1-D :class:`gtv.numerics.contract.EnsembleTheory` (Gaussian: its values are
    :func:`gaussian_statistics` of its predicted mean and variance, keys ``*_pred``);
    ``theory_field`` is its Gaussian field (any object with ``denoise(x, t)`` -> (N, n, 1)) whose
    empirical values are the keys ``*_gf``; ``moment_field`` is the moment-matched field
    (empirical variance ``var_mm``, skewness ``skew_mm``, excess kurtosis ``kurt_mm``).
    """
    qx = np.asarray(query_x, dtype=float)
    T = float(ensemble.schedule.T)
    rows = []
    for t in query_t:
        if not (ensemble.eps <= t <= T):
            continue
        vals = ensemble.denoise(qx[:, None], t)[:, :, 0]
        gvals = theory_field.denoise(qx[:, None], t)[:, :, 0]
        mvals = moment_field.denoise(qx[:, None], t)[:, :, 0]
        pm = np.asarray(theory.mean_denoiser(qx, t))[:, 0]
        pv = np.asarray(theory.denoiser_covariance((qx, t), paired=True))[:, 0, 0]
        emp = distribution_statistics(vals, n_boot, rng)
        pred = gaussian_statistics(pm, pv, vals.shape[0])
        gs, gk = _shape_moments(gvals, axis=0)
        ms, mk = _shape_moments(mvals, axis=0)
        for k, x in enumerate(qx):
            rows.append(
                {
                    "x": float(x),
                    "t": float(t),
                    "n_models": int(vals.shape[0]),
                    "mean": float(vals[:, k].mean()),
                    "var": float(vals[:, k].var(ddof=1)),
                    "mean_pred": float(pm[k]),
                    "var_pred": float(pv[k]),
                    "var_gf": float(gvals[:, k].var(ddof=1)),
                    "var_mm": float(mvals[:, k].var(ddof=1)),
                    **{key: float(emp[key][k]) for key in _SHAPE_KEYS},
                    "quantiles": [float(q) for q in emp["quantiles"][:, k]],
                    "top_share": float(emp["top_share"][k]),
                    "quantiles_pred": [float(q) for q in pred["quantiles"][:, k]],
                    "top_share_pred": float(pred["top_share"][k]),
                    "skew_gf": float(gs[k]),
                    "kurt_gf": float(gk[k]),
                    "quantiles_gf": [float(q) for q in np.quantile(gvals[:, k], QUANTILE_LEVELS)],
                    "top_share_gf": float(top_share(gvals[:, k : k + 1])[0]),
                    "skew_mm": float(ms[k]),
                    "kurt_mm": float(mk[k]),
                }
            )
    return rows


_SHAPE_KEYS = ("skew", "skew_lo", "skew_hi", "kurt", "kurt_lo", "kurt_hi")


def _f(v: float | None, fmt: str) -> str:
    return "n/a" if v is None else format(v, fmt)


def format_diagnostics(
    closure: list[dict], distribution: list[dict], floor_tv: float, floor_hellinger: float
) -> str:
    """The two diagnostic tables (closure rows, distribution rows) as plain text."""
    lines = [
        "moment error and closure error: ensemble-mean densities and gap masses (95 % CI, both "
        "ensembles' models resampled); GF = theory's Gaussian field, MM = moment-matched GF "
        "(the trained ensemble's own mean and covariance of W)",
        f"{'comparison':>24} | {'TV [CI]':>22} | {'Hellinger [CI]':>22} | "
        f"{'gap a [CI]':>22} | {'gap b [CI]':>22} | {'gap a/b - 1 [CI]':>22}",
    ]
    label = {"total": "total: GF vs trained", "moment": "moment: GF vs MM",
             "closure": "closure: MM vs trained"}  # fmt: skip
    for r in closure:
        ratio = (
            "n/a"
            if r["gap_ratio"] is None
            else f"{r['gap_ratio']:+.3f} [{r['gap_ratio_lo']:+.3f},{r['gap_ratio_hi']:+.3f}]"
        )
        lines.append(
            f"{label.get(r['comparison'], r['comparison']):>24} | "
            f"{r['tv']:.4f} [{r['tv_lo']:.4f},{r['tv_hi']:.4f}] | "
            f"{r['hellinger']:.4f} [{r['hellinger_lo']:.4f},{r['hellinger_hi']:.4f}] | "
            f"{r['gap_a']:.4f} [{r['gap_a_lo']:.4f},{r['gap_a_hi']:.4f}] | "
            f"{r['gap_b']:.4f} [{r['gap_b_lo']:.4f},{r['gap_b_hi']:.4f}] | {ratio}"
        )
    lines.append(
        f"{'noise floor (halves)':>24} | {floor_tv:<22.4f} | {floor_hellinger:<22.4f} | "
        "(trained N/2 vs N/2; two N-member ensembles of one law differ by ~ floor/sqrt 2)"
    )
    if not distribution:
        return "\n".join(lines)
    lv = " ".join(f"{100 * q:g}" for q in QUANTILE_LEVELS)
    lines += [
        "distribution of D^(x,t) across models: trained (95 % model-bootstrap CI) vs the "
        "theory (Gaussian: skew 0, excess kurtosis 0) and its field (GF, empirical); "
        f"top share = share of the variance from the top {100 * TOP_FRACTION:g} % of models",
        f"{'x':>6} {'t':>6} | {'skew [CI]':>24} {'GF':>6} | {'ex.kurt [CI]':>24} {'GF':>6} "
        f"{'MM':>6} | {'top share':>9} {'Gauss':>6} | {'Var emp/pred':>12} {'MM/emp':>6} | "
        f"quantiles {lv} % (emp / Gauss pred)",
    ]
    for r in distribution:
        qe = " ".join(f"{q:+.3f}" for q in r["quantiles"])
        qp = " ".join(f"{q:+.3f}" for q in r["quantiles_pred"])
        mm = r["var_mm"] / r["var"] if r["var"] > 0 else None
        pred = r["var"] / r["var_pred"] if r["var_pred"] > 0 else None
        lines.append(
            f"{r['x']:>6.2f} {r['t']:>6.3f} | {r['skew']:>+7.2f} [{r['skew_lo']:+7.2f},"
            f"{r['skew_hi']:+7.2f}] {r['skew_gf']:>+6.2f} | {r['kurt']:>+7.2f} "
            f"[{r['kurt_lo']:+7.2f},{r['kurt_hi']:+7.2f}] {r['kurt_gf']:>+6.2f} "
            f"{r['kurt_mm']:>+6.2f} | {r['top_share']:>9.3f} {r['top_share_pred']:>6.3f} | "
            f"{_f(pred, '12.3f'):>12} {_f(mm, '6.3f'):>6} | {qe} / {qp}"
        )
    return "\n".join(lines)
