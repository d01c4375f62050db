"""Spliced ensembles: at which sampler times does a predicted density part from the trained one?

docs/math/finite_fp.md ("Where the density errors sit"). A *splice* samples every member with the
PF-ODE but switches its denoiser at a time ``t_switch``: member ``n`` of one ensemble drives the
steps at grid times ``t > t_switch`` ("early"), member ``n`` of another the steps below ("late")
(:class:`gtv.numerics.linear.LinearSampler` with ``early``/``t_switch``). For a trained ensemble
and a predicted one (a theory field's members) three splices per ``t_switch`` are compared with
the trained ensemble by the mass-by-distance table (:func:`gtv.validation.shells.shell_rows`):

* ``late field``: field members below ``t_switch``, trained ones above;
* ``late trained``: the converse;
* ``trained shuffled``: trained members on both sides, but above ``t_switch`` a *different*
  trained member (a derangement from ``stream(seed, "splice")``). Its law at every step is the
  trained one; what it removes is the coherence of one member's denoiser across ``t_switch``;
* ``field shuffled``: the same for the field's members.

If ``trained shuffled`` shows the field's difference and ``field shuffled`` adds little to it,
the field's error is a coherence across that time that its members lack, not a wrong law at
any one time. Every splice starts from the same points as the
ensembles' own densities (``stream(seed, "sampling")``, model by model), so differences between
rows are not start-point noise.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from gtv.numerics.checks import check_count
from gtv.numerics.linear import LinearEnsemble, LinearSampler
from gtv.numerics.linear.prediction import LinearField
from gtv.numerics.linear.sampler import check_splice
from gtv.numerics.pfode import check_method
from gtv.numerics.streams import stream_rng
from gtv.validation.ensembles import sampled_densities
from gtv.validation.shells import SHELLS, shell_rows

__all__ = ["SPLICES", "derangement", "format_splices", "splice_rows"]

#: The splices of :func:`splice_rows`: (name, late ensemble, early ensemble), by role.
SPLICES = (
    ("late field", "field", "trained"),
    ("late trained", "trained", "field"),
    ("trained shuffled", "trained", "trained other"),
    ("field shuffled", "field", "field other"),
)


def derangement(n: int, rng: np.random.Generator) -> np.ndarray:
    """A random permutation of ``range(n)`` with no fixed point (``n >= 2``): a random cycle."""
    n = check_count(n, "n")
    if n < 2:
        raise ValueError(f"n must be >= 2 for a derangement, got {n}")
    order = rng.permutation(n)
    out = np.empty(n, dtype=np.int64)
    out[order] = np.roll(order, -1)
    return out


def splice_rows(
    trained: LinearEnsemble,
    field: LinearEnsemble,
    t_switch: Sequence[float],
    edges: np.ndarray,
    *,
    n_samples: int,
    gap_distance: float = 0.25,
    n_steps: int = 30,
    method: str = "euler",
    seed: int = 0,
    n_boot: int = 1000,
    shells=SHELLS,
) -> list[dict]:
    """The field and its splices with the trained ensemble, against the trained ensemble.

    Parameters
    ----------
    trained : LinearEnsemble
        1-D, at least 2 models.
    field : LinearEnsemble or LinearField
        The predicted members (e.g. ``CavityLinear(...).gaussian_field(N, seed)``): same features,
        schedule, ``eps`` and number of models.
    t_switch : sequence of float
        Switching times, each inside ``(eps, T)``.
    edges : ndarray
        Uniform histogram edges.
    n_samples : int
        PF-ODE samples per member.
    gap_distance, n_steps, method
        As :func:`gtv.validation.linear.densities.linear_ensemble_densities`.
    seed : int
        Start points ``stream(seed, "sampling")``, the derangement ``stream(seed, "splice")``,
        the bootstrap ``stream(seed, "bootstrap", 4)``.
    n_boot : int
        Bootstrap resamples of the shell table.
    shells : sequence of float
        Shell edges (:data:`gtv.validation.shells.SHELLS`).

    Returns
    -------
    list of dict
        ``name`` ("field" or a name of :data:`SPLICES`), ``t_switch`` (None for the field),
        ``gap`` (mean gap mass) and ``shells`` (the rows of
        :func:`gtv.validation.shells.shell_rows`, predicted = this ensemble).
    """
    if isinstance(field, LinearField):
        field = field.ensemble
    for name, e in (("trained", trained), ("field", field)):
        if not isinstance(e, LinearEnsemble):
            raise TypeError(f"{name} must be a LinearEnsemble (field also a LinearField)")
    if trained.features.dim != 1:
        raise ValueError(f"trained: only 1-D data is supported, got D = {trained.features.dim}")
    if trained.n_models < 2:
        raise ValueError(f"trained needs at least 2 models, got {trained.n_models}")
    taus = np.asarray(t_switch, dtype=float)
    T = trained.schedule.T
    if taus.ndim != 1 or taus.size == 0 or not np.all((taus > trained.eps) & (taus < T)):
        raise ValueError(
            f"t_switch must be a non-empty sequence of times in (eps, T) = ({trained.eps:g}, "
            f"{T:g}), got {t_switch!r}"
        )
    n_samples = check_count(n_samples, "n_samples")
    n_boot = check_count(n_boot, "n_boot")
    check_splice(trained, field, float(taus[0]))  # before any sampling
    check_method(method)
    perm = derangement(trained.n_models, stream_rng(seed, "splice"))
    roles = {
        "trained": trained,
        "field": field,
        "trained other": dataclasses.replace(trained, W=trained.W[perm], gram=None, rhs=None),
        "field other": dataclasses.replace(field, W=field.W[perm], gram=None, rhs=None),
    }
    data = trained.data

    def density(late, early=None, tau=None):
        sampler = LinearSampler(late, n_steps=n_steps, method=method, early=early, t_switch=tau)
        return sampled_densities(sampler.sample(n_samples, seed=seed), data, edges, gap_distance)

    ref = density(trained)
    rng = stream_rng(seed, "bootstrap", 4)

    def row(name, tau, d):
        sh = shell_rows(
            (ref.histograms, ref.outside), (d.histograms, d.outside), edges, data[:, 0], n_boot,
            rng, shells,
        )  # fmt: skip
        return {"name": name, "t_switch": tau, "gap": float(d.gap.mean()), "shells": sh}

    rows = [row("trained", None, ref), row("field", None, density(field))]
    for tau in taus:
        for name, late, early in SPLICES:
            rows.append(row(name, float(tau), density(roles[late], roles[early], float(tau))))
    return rows


def format_splices(rows: list[dict]) -> str:
    """The table of :func:`splice_rows`: per row the gap mass and each shell's difference from
    the trained ensemble with its z."""
    sh = rows[0]["shells"]
    heads = [f"[{r['lo']:g},{r['hi']:g})" if r["hi"] is not None else f">={r['lo']:g}" for r in sh]
    lines = [
        "spliced sampling: late = members driving t <= t_switch, early = t > t_switch; "
        "shell mass minus trained (z)",
        f"{'ensemble':>18} | {'t_switch':>8} | {'gap':>6} | "
        + " | ".join(f"{h:>15}" for h in heads),
    ]
    for r in rows:
        tau = f"{r['t_switch']:g}" if r["t_switch"] is not None else "-"
        cells = []
        for s in r["shells"]:
            z = f"{s['z']:+.1f}" if s["z"] is not None else "-"
            cells.append(f"{s['diff']:+.4f} ({z:>5})")
        lines.append(f"{r['name']:>18} | {tau:>8} | {r['gap']:.4f} | " + " | ".join(cells))
    return "\n".join(lines)
