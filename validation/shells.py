"""Mass by distance from the training data: where a predicted density departs from the trained one.

docs/math/finite_fp.md ("Where the density errors sit"). The density range is cut into *shells*
by the distance ``d(x) = min_m |x - x_m|`` of a bin centre to the nearest training point
(default edges :data:`SHELLS`: the peaks' cores, their flanks, the near gap, the gap and the
tails; the gap mass of the comparisons counts ``d > 0.25`` on the continuous ``x``, so the last two
shells are that mass to within the bins that straddle 0.25; a centre on a shell edge, to rounding,
counts in the outer shell). The mass outside the histogram range
is put in the last shell, which must be open and start no farther than the range's distance from
the data. Each ensemble's per-model shell masses are averaged with a model-level percentile
bootstrap (models and members resampled independently), so a shell whose difference interval
excludes 0 is a place where the prediction is off beyond the trained ensemble's own noise.
"""

from __future__ import annotations

import numpy as np

from gtv.numerics.checks import check_count
from gtv.validation.stats import boot_mean

__all__ = ["SHELLS", "format_shells", "shell_masses", "shell_rows"]

#: Shell edges in ``d(x)``, the distance to the nearest training point (the last one open).
SHELLS = (0.0, 0.05, 0.1, 0.25, 0.5, np.inf)
#: A shell whose mass has a smaller standard error holds no mass (its z is not reported).
_EMPTY_SE = 1e-9


def _check_shells(shells, edges: np.ndarray, data: np.ndarray) -> np.ndarray:
    s = np.asarray(shells, dtype=float)
    if s.ndim != 1 or s.size < 2 or s[0] != 0 or not np.all(np.diff(s) > 0):
        raise ValueError(f"shells must be increasing edges starting at 0, got {shells!r}")
    if not np.isinf(s[-1]):
        raise ValueError("shells: the last edge must be inf (it takes the mass outside the range)")
    reach = float(np.min(np.abs(np.asarray([edges[0], edges[-1]])[:, None] - data[None])))
    if s[-2] > reach:
        raise ValueError(
            f"shells: the last shell must start within {reach:g} of the data (the histogram "
            f"range's distance, where the outside mass begins), got {s[-2]:g}"
        )
    return s


def shell_masses(
    histograms: np.ndarray,
    outside: np.ndarray,
    edges: np.ndarray,
    data: np.ndarray,
    shells=SHELLS,
) -> np.ndarray:
    """Per-model mass in each shell: ``(N, len(shells) - 1)``.

    Parameters
    ----------
    histograms : ndarray (N, B)
        Per-model densities on the bins ``edges`` (B + 1 equally spaced edges).
    outside : ndarray (N,)
        Per-model mass outside ``[edges[0], edges[-1]]`` (added to the last shell).
    edges : ndarray (B + 1,)
    data : array_like (M,)
        Training points (1-D).
    shells : sequence of float, default :data:`SHELLS`
        Increasing distance edges from 0 to ``inf``.
    """
    edges = np.asarray(edges, dtype=float)
    data = np.asarray(data, dtype=float).reshape(-1)
    h = np.asarray(histograms, dtype=float)
    out = np.asarray(outside, dtype=float)
    if edges.ndim != 1 or edges.size < 2 or not np.all(np.diff(edges) > 0):
        raise ValueError("edges must be increasing 1-D bin edges")
    if h.ndim != 2 or h.shape[1] != edges.size - 1:
        raise ValueError(
            f"histograms must have shape (N, {edges.size - 1}) for these edges, got {h.shape}"
        )
    if out.shape != (h.shape[0],):
        raise ValueError(f"outside must have shape ({h.shape[0]},), got {out.shape}")
    if data.size == 0:
        raise ValueError("data must hold at least one training point")
    s = _check_shells(shells, edges, data)
    centres = (edges[:-1] + edges[1:]) / 2
    # a centre on a shell edge up to rounding (coarse bins) goes to the outer shell
    dist = np.round(np.min(np.abs(centres[:, None] - data[None, :]), axis=1), 12)
    which = np.searchsorted(s, dist, side="right") - 1  # shell of every bin
    masses = np.zeros((h.shape[0], s.size - 1))
    for k in range(s.size - 1):
        sel = which == k
        masses[:, k] = (h[:, sel] * np.diff(edges)[sel]).sum(axis=1)
    masses[:, -1] += out
    return masses


def shell_rows(
    trained: tuple[np.ndarray, np.ndarray],
    predicted: tuple[np.ndarray, np.ndarray],
    edges: np.ndarray,
    data: np.ndarray,
    n_boot: int,
    rng: np.random.Generator,
    shells=SHELLS,
    confidence: float = 0.95,
) -> list[dict]:
    """One row per shell: the trained and the predicted mass and their difference, with CIs.

    ``trained`` and ``predicted`` are ``(histograms (N, B), outside (N,))`` of two ensembles
    (any sizes, at least 2 each) on the bins ``edges``; their models are resampled independently
    (``n_boot`` percentile resamples from ``rng``).

    Returns
    -------
    list of dict
        ``lo``, ``hi`` (the shell's distance edges; ``hi`` is ``None`` for the open last shell),
        ``trained``, ``predicted``, ``diff = predicted - trained``, each with ``_lo``/``_hi``,
        and ``z = diff / sqrt(se_trained**2 + se_predicted**2)`` (model-level standard errors;
        ``None`` for a shell whose standard error is below ``1e-9``, i.e. that holds no mass).
    """
    n_boot = check_count(n_boot, "n_boot")
    q = ((1 - confidence) / 2, (1 + confidence) / 2)
    ta = shell_masses(*trained, edges, data, shells)
    pa = shell_masses(*predicted, edges, data, shells)
    if ta.shape[0] < 2 or pa.shape[0] < 2:
        raise ValueError("trained and predicted need at least 2 models each")
    tb, pb = boot_mean(ta, n_boot, rng), boot_mean(pa, n_boot, rng)
    s = np.asarray(shells, dtype=float)
    se = np.sqrt(ta.var(axis=0, ddof=1) / ta.shape[0] + pa.var(axis=0, ddof=1) / pa.shape[0])
    rows = []
    for k in range(s.size - 1):
        row: dict = {"lo": float(s[k]), "hi": None if np.isinf(s[k + 1]) else float(s[k + 1])}
        for name, vals, boots in (
            ("trained", ta[:, k], tb[:, k]),
            ("predicted", pa[:, k], pb[:, k]),
            ("diff", None, pb[:, k] - tb[:, k]),
        ):
            est = pa[:, k].mean() - ta[:, k].mean() if vals is None else vals.mean()
            lo, hi = np.quantile(boots, q)
            row.update({name: float(est), f"{name}_lo": float(lo), f"{name}_hi": float(hi)})
        row["z"] = float(row["diff"] / se[k]) if se[k] > _EMPTY_SE else None
        rows.append(row)
    return rows


def format_shells(rows: list[dict], name: str = "prediction", reference: str = "trained") -> str:
    """The table of :func:`shell_rows` (one line per shell; ``name`` and ``reference`` head the
    predicted and the trained column)."""
    lines = [
        "mass by distance d from the nearest training point (bin centres; outside mass in the "
        "last shell; 95 % model-level CIs)",
        f"{'d':>12} | {reference + ' [CI]':>23} | {name + ' [CI]':>23} | {'difference [CI]':>26} | "
        f"{'z':>6}",
    ]
    for r in rows:
        d = f"[{r['lo']:g}, {r['hi']:g})" if r["hi"] is not None else f">= {r['lo']:g}"
        z = f"{r['z']:>6.1f}" if r["z"] is not None else f"{'-':>6}"
        lines.append(
            f"{d:>12} | {r['trained']:.4f} [{r['trained_lo']:.4f}, {r['trained_hi']:.4f}] | "
            f"{r['predicted']:.4f} [{r['predicted_lo']:.4f}, {r['predicted_hi']:.4f}] | "
            f"{r['diff']:+.4f} [{r['diff_lo']:+.4f}, {r['diff_hi']:+.4f}] | {z}"
        )
    return "\n".join(lines)
