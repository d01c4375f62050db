"""The tables of the NTK comparison: relative errors, denoiser moments, density distances.

Model-level statistics (:mod:`gtv.validation.stats`): every interval resamples the trained
models; relative errors are Euclidean norms over the query points (module docstring of
:mod:`gtv.validation.ntk.compare`).
"""

from __future__ import annotations

import numpy as np

from gtv.validation.stats import bootstrap_ci, interval_masses, total_variation, variance_ci

__all__ = ["denoiser_rows", "density_rows", "error_rows"]


def _rel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``||a - b|| / ||b||`` over the last axis (the query points); ``ValueError`` if ``||b||`` is
    at round-off level (1e-10 per point; the data are O(1))."""
    den = np.linalg.norm(b, axis=-1)
    if np.any(den <= 1e-10 * np.sqrt(b.shape[-1])):
        raise ValueError(
            "query_x: the reference values vanish at every query point (e.g. only x = 0, where "
            "the mean denoiser of the symmetric data is 0), so relative errors are undefined; "
            "add query points away from 0"
        )
    return np.linalg.norm(a - b, axis=-1) / den


def _rel_resampled(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """:func:`_rel` for model resamples: NaN where ``||b||`` vanishes (a resample that drew one
    model N times has zero across-model variance; with few models this happens by chance)."""
    den = np.linalg.norm(b, axis=-1)
    num = np.linalg.norm(a - b, axis=-1)
    ok = den > 1e-10 * np.sqrt(b.shape[-1])
    return np.divide(num, den, out=np.full(num.shape, np.nan), where=ok)


def _ci(boot: np.ndarray, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval over the resamples (axis 0), ignoring undefined (NaN) resamples."""
    a = (1 - confidence) / 2
    lo, hi = np.nanquantile(boot, [a, 1 - a], axis=0)
    return lo, hi


def error_rows(
    net: np.ndarray,
    ker: np.ndarray,
    th_mean: np.ndarray,
    th_var: np.ndarray,
    widths: tuple[int, ...],
    taus: np.ndarray,
    idx: np.ndarray,
    field_var: np.ndarray | None = None,
    n_members: int | None = None,
) -> list[dict]:
    """Relative errors per (tau, width) (module docstring) with model-bootstrap CIs.

    ``net`` (W, K, N, Q), ``ker`` (K, N, Q), ``th_*`` (K, Q), ``idx`` (n_boot, N). With a member
    field's own variance ``field_var`` (K, Q) over ``n_members`` members, also ``var_vs_field``
    (the same relative error against it) and ``field_noise``, its expected size from the
    models' and the members' sampling alone, ``sqrt(sum_q 2 v_q**2 / (N - 1) + 2 f_q**2 /
    (n_members - 1)) / ||f||``.
    """
    n = ker.shape[1]
    km, kv = ker.mean(1), ker.var(1, ddof=1)  # (K, Q)
    kb = ker[:, idx]  # (K, B, N, Q)
    kbm, kbv = kb.mean(2), kb.var(2, ddof=1)  # (K, B, Q)
    rows = []
    entries = [(w, net[i]) for i, w in enumerate(widths)] + [("inf", None)]
    for w, vals in entries:
        if vals is None:
            m, v, bm, bv = km, kv, kbm, kbv
        else:
            m, v = vals.mean(1), vals.var(1, ddof=1)
            vb = vals[:, idx]
            bm, bv = vb.mean(2), vb.var(2, ddof=1)
        stats = {
            "mean_vs_theory": (_rel(m, th_mean), _rel_resampled(bm, th_mean[:, None])),
            "var_vs_theory": (_rel(v, th_var), _rel_resampled(bv, th_var[:, None])),
        }
        if field_var is not None:
            stats["var_vs_field"] = (_rel(v, field_var), _rel_resampled(bv, field_var[:, None]))
            field_noise = np.sqrt(
                (2 * v**2).sum(-1) / (n - 1) + (2 * field_var**2).sum(-1) / (n_members - 1)
            ) / np.linalg.norm(field_var, axis=-1)
        if vals is not None:
            stats["mean_vs_kernel"] = (_rel(m, km), _rel_resampled(bm, kbm))
            stats["var_vs_kernel"] = (_rel(v, kv), _rel_resampled(bv, kbv))
            model = np.sqrt(((vals - ker) ** 2).sum(axis=(1, 2)) / (ker**2).sum(axis=(1, 2)))
        mean_noise = np.sqrt(v.sum(-1) / n) / np.linalg.norm(th_mean, axis=-1)
        var_noise = np.sqrt((2 * v**2).sum(-1) / (n - 1)) / np.linalg.norm(th_var, axis=-1)
        for k, tau in enumerate(taus):
            row = {"tau": float(tau), "width": w}
            row["model"] = float(model[k]) if vals is not None else None
            for name, (est, boot) in stats.items():
                lo, hi = _ci(boot[k])
                row[name] = float(est[k])
                row[f"{name}_lo"] = float(lo)
                row[f"{name}_hi"] = float(hi)
            row["mean_noise"] = float(mean_noise[k])
            row["var_noise"] = float(var_noise[k])
            if field_var is not None:
                row["field_noise"] = float(field_noise[k])
            rows.append(row)
    return rows


def denoiser_rows(
    net: np.ndarray,
    ker: np.ndarray,
    th: dict,
    qx: np.ndarray,
    qt: np.ndarray,
    taus: np.ndarray,
    n_boot: int,
    seed: int,
    rng: np.random.Generator,
) -> list[dict]:
    """Per (tau, query): the largest width's and the kernel's mean and variance with CIs and the
    theory's mean and variance (total, proxy, misfit)."""
    rows = []
    for k, tau in enumerate(taus):
        v, vlo, vhi = variance_ci(net[k], n_boot, rng)
        kv, kvlo, kvhi = variance_ci(ker[k], n_boot, rng)
        for q in range(qx.size):
            m, mlo, mhi = bootstrap_ci(net[k, :, q], n_resamples=n_boot, seed=seed)
            km, kmlo, kmhi = bootstrap_ci(ker[k, :, q], n_resamples=n_boot, seed=seed)
            vt = float(th["var"][k, q])
            rows.append(
                {
                    "tau": float(tau),
                    "x": float(qx[q]),
                    "t": float(qt[q]),
                    "mean": m,
                    "mean_lo": mlo,
                    "mean_hi": mhi,
                    "kernel_mean": km,
                    "kernel_mean_lo": kmlo,
                    "kernel_mean_hi": kmhi,
                    "theory_mean": float(th["mean"][k, q]),
                    "var": float(v[q]),
                    "var_lo": float(vlo[q]),
                    "var_hi": float(vhi[q]),
                    "kernel_var": float(kv[q]),
                    "kernel_var_lo": float(kvlo[q]),
                    "kernel_var_hi": float(kvhi[q]),
                    "theory_var": vt,
                    "theory_var_proxy": float(th["var_proxy"][k, q]),
                    "theory_var_misfit": float(th["var_misfit"][k, q]),
                    "var_ratio": float(v[q] / vt) if vt > 0 else float("inf"),
                }
            )
    return rows


def density_rows(
    hist: np.ndarray,
    outside: np.ndarray,
    others: dict,
    width: float,
    n_boot: int,
    rng: np.random.Generator,
    tau: float,
) -> list[dict]:
    """TV between the trained ensemble-mean density and each other density (model bootstrap
    CI over the trained models) and the half-vs-half floor (mean over 10 random splits)."""
    n = hist.shape[0]
    pm = interval_masses(hist.mean(0), width, outside.mean())
    idx = rng.integers(0, n, (n_boot, n))
    boot = interval_masses(hist[idx].mean(1), width, outside[idx].mean(1))
    rows = []
    for name, (dens, out) in others.items():
        q = interval_masses(dens, width, out)
        lo, hi = np.quantile(total_variation(boot, q[None, :]), [0.025, 0.975])
        rows.append(
            {
                "tau": float(tau),
                "name": name,
                "tv": float(total_variation(pm, q)),
                "tv_lo": float(lo),
                "tv_hi": float(hi),
            }
        )
    splits = []
    for _ in range(10):
        perm = rng.permutation(n)
        a, b = perm[: n // 2], perm[n // 2 : 2 * (n // 2)]
        pa = interval_masses(hist[a].mean(0), width, outside[a].mean())
        pb = interval_masses(hist[b].mean(0), width, outside[b].mean())
        splits.append(float(total_variation(pa, pb)))
    f = float(np.mean(splits))
    rows.append({"tau": float(tau), "name": "floor", "tv": f, "tv_lo": f, "tv_hi": f})
    return rows
