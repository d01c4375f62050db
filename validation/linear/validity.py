"""Where the first-order linear theory holds: one summary row per (eps, F/P) configuration.

:func:`validity_row` condenses a :class:`~gtv.validation.linear.compare.LinearComparison` into
the numbers issue 4 asks for (item 7): the ratio of empirical to predicted ``Var D^`` over the
query points whose variance exceeds ``var_floor`` (minimum, median, maximum, and how many are
within ``tolerance``), the Gaussian-field density's distance to the trained ensemble against the
half-vs-half noise floor, and the gap masses. :func:`format_validity_table` prints the rows.

Reading the noise floor: the floor is the distance between the two halves of the trained
ensemble (N/2 models each); the trained-vs-Gaussian-field distance compares two means of N
(random) models each, whose pure-noise level is about ``floor / sqrt(2)``. A Gaussian-field
distance at or below the floor is "within the noise floor"; above it the theory is resolvably off.

The **closure** columns (when the comparison ran its diagnostics,
:mod:`gtv.validation.linear.diagnostics`) give the distance between the trained ensemble and the
moment-matched Gaussian field (the ensemble's own mean and covariance of ``W``) and that field's
gap mass: a closure TV above the floor means no Gaussian field, whatever its moments, reproduces
the trained density (docs/math/predictions.md, "Moment error and closure error").
"""

from __future__ import annotations

import numpy as np

from gtv.validation.linear.comparison import LinearComparison

__all__ = ["format_validity_table", "validity_row"]


def validity_row(
    result: LinearComparison, var_floor: float = 1e-4, tolerance: float = 0.15
) -> dict:
    """Summary of one comparison (see the module docstring).

    Parameters
    ----------
    result : LinearComparison
    var_floor : float, default 1e-4
        Only query points whose empirical ``Var D^`` exceeds this count.
    tolerance : float, default 0.15
        A point "agrees" when ``|emp/pred - 1| <= tolerance``.
    """
    if not isinstance(result, LinearComparison):
        raise TypeError("result must be a LinearComparison")
    if not (np.isfinite(var_floor) and var_floor >= 0):
        raise ValueError(f"var_floor must be a finite number >= 0, got {var_floor!r}")
    if not (np.isfinite(tolerance) and tolerance > 0):
        raise ValueError(f"tolerance must be a finite number > 0, got {tolerance!r}")
    c = result.config
    F = c.n_space * c.n_time
    rows = [r for r in result.denoiser_rows if r["var"] > var_floor and r["var_pred"] > 0]
    ratios = np.array([r["var_ratio"] for r in rows])
    worst = max(rows, key=lambda r: abs(r["var_ratio"] - 1.0)) if rows else None
    dens = {r["theory"]: r for r in result.density_rows}
    gaps = {r["name"]: r for r in result.gap_rows}
    gf = dens["gaussian_field"]
    return {
        "eps": c.eps,
        "P": c.P,
        "F": F,
        "F_over_P": F / c.P,
        "n_models": c.n_models,
        "n_points": int(ratios.size),
        "n_within": int(np.sum(np.abs(ratios - 1.0) <= tolerance)),
        "ratio_min": float(ratios.min()) if ratios.size else float("nan"),
        "ratio_median": float(np.median(ratios)) if ratios.size else float("nan"),
        "ratio_max": float(ratios.max()) if ratios.size else float("nan"),
        "worst_point": (worst["x"], worst["t"]) if worst else None,
        "gf_tv": gf["tv"],
        "gf_tv_lo": gf["tv_lo"],
        "gf_tv_hi": gf["tv_hi"],
        "floor_tv": result.floor["tv"],
        "gf_within_floor": bool(gf["tv"] <= result.floor["tv"]),
        "white_noise_tv": dens["white_noise_fp"]["tv"],
        "gap_trained": (gaps["trained"]["estimate"], gaps["trained"]["lo"], gaps["trained"]["hi"]),
        "gap_gf": (
            gaps["gaussian_field"]["estimate"],
            gaps["gaussian_field"]["lo"],
            gaps["gaussian_field"]["hi"],
        ),
        "gap_white_noise": gaps["white_noise_fp"]["estimate"],
        **_closure_columns(result),
        "var_floor": var_floor,
        "tolerance": tolerance,
    }


def _closure_columns(result: LinearComparison) -> dict:
    """``closure_tv`` (estimate, lo, hi) and ``gap_mm`` (estimate, lo, hi), or None each."""
    rows = {r["comparison"]: r for r in result.closure_rows}
    if "closure" not in rows:
        return {"closure_tv": None, "gap_mm": None}
    r = rows["closure"]
    return {
        "closure_tv": (r["tv"], r["tv_lo"], r["tv_hi"]),
        "gap_mm": (r["gap_a"], r["gap_a_lo"], r["gap_a_hi"]),
    }


def _ci(v: tuple | None) -> str:
    return "n/a" if v is None else f"{v[0]:.4f} [{v[1]:.4f}, {v[2]:.4f}]"


def format_validity_table(rows: list[dict]) -> str:
    """A plain-text (Markdown) table of :func:`validity_row` results."""
    if not rows:
        raise ValueError("rows must hold at least one validity_row result")
    tol = rows[0]["tolerance"]
    head = (
        f"| eps | P | F/P | N | Var emp/pred: min / median / max | within {100 * tol:g} % | "
        "worst (x, t) | TV(trained, GF) [CI] | floor | TV white-noise FP | "
        "gap trained [CI] | gap GF [CI] | gap white-noise | closure: TV(trained, MM GF) [CI] | "
        "gap MM GF [CI] |"
    )
    lines = [head, "|" + "---|" * 15]
    for r in rows:
        w = r["worst_point"]
        gt, gg = r["gap_trained"], r["gap_gf"]
        lines.append(
            f"| {r['eps']:g} | {r['P']} | {r['F_over_P']:.3g} | {r['n_models']} | "
            f"{r['ratio_min']:.2f} / {r['ratio_median']:.2f} / {r['ratio_max']:.2f} | "
            f"{r['n_within']}/{r['n_points']} | "
            f"{'' if w is None else f'({w[0]:+.2f}, {w[1]:g})'} | "
            f"{r['gf_tv']:.4f} [{r['gf_tv_lo']:.4f}, {r['gf_tv_hi']:.4f}] | "
            f"{r['floor_tv']:.4f} | {r['white_noise_tv']:.4f} | "
            f"{gt[0]:.4f} [{gt[1]:.4f}, {gt[2]:.4f}] | {gg[0]:.4f} [{gg[1]:.4f}, {gg[2]:.4f}] | "
            f"{r['gap_white_noise']:.4f} | {_ci(r.get('closure_tv'))} | "
            f"{_ci(r.get('gap_mm'))} |"
        )
    return "\n".join(lines)
