"""Choosing ``exact_below`` from the field alone: where its prediction stops moving.

The occupancy fields keep every triple with ``t < t_c`` exact in each member
(:func:`gtv.numerics.linear.occupancy.occupancy_split`, docs/math/finite_fp.md, *[q] with the early
triples exact*). As ``t_c`` grows the field's [q] moves and then stops: above ``T`` every triple is
exact and each member is a ridge regression on its own triples (a trained ensemble drawn from the
field's streams), the limit of the ladder. :func:`choose_exact_below` samples the field on a ladder
of ``t_c`` and returns the **plateau start**: the smallest rung whose gap mass and core mass (within
:data:`CORE_RADIUS` of a training point) both stay within one of their own member-level standard
errors of those of every larger rung (:func:`plateau_start`). No trained model enters: the rule is a
property of the theory's field, so the chosen ``t_c`` is a prediction, not a fit.

The one-standard-error tolerance and the ladder were fixed before the rule was scored against any
trained ensemble (docs/math/finite_fp.md, *Choosing t_c from the field alone*).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from gtv.numerics.checks import check_choice, check_count
from gtv.numerics.linear import CavityLinear
from gtv.numerics.linear.prediction import OCCUPANCY_FIELDS
from gtv.numerics.streams import check_seed
from gtv.validation.ensembles import DENSITIES, TransportSettings
from gtv.validation.shells import SHELLS, shell_masses
from gtv.validation.stats import standard_error
from gtv.validation.theory_densities import gaussian_field_densities

__all__ = [
    "CORE_RADIUS",
    "LADDER",
    "ExactBelowChoice",
    "check_exact_below",
    "choose_exact_below",
    "plateau_start",
]

#: The rungs of ``t_c`` below the schedule's ``T``; :func:`choose_exact_below` adds a last rung
#: above ``T`` (every triple exact).
LADDER = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.6)
#: The core of a peak: samples within this distance of a training point (the first shell of
#: :data:`gtv.validation.shells.SHELLS`).
CORE_RADIUS = SHELLS[1]


@dataclass(frozen=True)
class ExactBelowChoice:
    """Result of :func:`choose_exact_below`.

    Attributes
    ----------
    t_c : float
        The plateau start (a rung of ``ladder``).
    ladder : tuple of float
        The rungs, increasing; the last is above ``T`` (every triple exact).
    gap, gap_se, core, core_se : tuple of float
        Per rung: the members' mean gap mass and core mass and their standard errors.
    """

    t_c: float
    ladder: tuple
    gap: tuple
    gap_se: tuple
    core: tuple
    core_se: tuple

    def rows(self) -> list[dict]:
        """One dict per rung: ``t_c``, ``gap``, ``gap_se``, ``core``, ``core_se``, ``chosen``."""
        return [
            {
                "t_c": t,
                "gap": g,
                "gap_se": gs,
                "core": c,
                "core_se": cs,
                "chosen": t == self.t_c,
            }  # fmt: skip
            for t, g, gs, c, cs in zip(
                self.ladder, self.gap, self.gap_se, self.core, self.core_se, strict=True
            )
        ]

    def to_dict(self) -> dict:
        """JSON-ready form (saved in a comparison's ``meta``)."""
        return {
            "t_c": self.t_c,
            "rows": self.rows(),
        }

    def format(self) -> str:
        """The ladder as a markdown table, the chosen rung marked."""
        lines = ["| t_c | gap | core | |", "|---|---|---|---|"]
        for r in self.rows():
            mark = "plateau start" if r["chosen"] else ""
            lines.append(
                f"| {r['t_c']:g} | {r['gap']:.4f} +- {r['gap_se']:.4f} "
                f"| {r['core']:.4f} +- {r['core_se']:.4f} | {mark} |"
            )
        return "\n".join(lines)


def plateau_start(
    ladder: Sequence[float],
    gap: Sequence[float],
    gap_se: Sequence[float],
    core: Sequence[float],
    core_se: Sequence[float],
) -> float:
    """The smallest rung whose gap and core mass stay within one of its own standard errors of
    those of every larger rung (the last rung when none does earlier)."""
    n = len(ladder)
    if n == 0 or any(len(v) != n for v in (gap, gap_se, core, core_se)):
        raise ValueError("ladder, gap, gap_se, core and core_se must have the same length >= 1")
    for k in range(n):
        if all(
            abs(gap[j] - gap[k]) <= gap_se[k] and abs(core[j] - core[k]) <= core_se[k]
            for j in range(k + 1, n)
        ):
            return float(ladder[k])
    raise AssertionError("unreachable: the last rung always qualifies")


def _check_ladder(ladder: Sequence[float], T: float) -> tuple[float, ...]:
    try:
        rungs = tuple(float(t) for t in ladder)
    except (TypeError, ValueError):
        raise TypeError(f"ladder must be a sequence of times, got {ladder!r}") from None
    if (
        not rungs
        or not all(np.isfinite(t) and 0 <= t < T for t in rungs)
        or np.any(np.diff(rungs) <= 0)
    ):
        raise ValueError(f"ladder must be increasing times in [0, T = {T:g}), got {ladder!r}")
    return rungs


def choose_exact_below(
    population,
    moments,
    field: str = "consistent",
    *,
    n_members: int,
    edges: np.ndarray,
    density: str = "mc",
    n_samples: int | None = None,
    transport: TransportSettings | None = None,
    gap_distance: float = 0.25,
    n_steps: int = 30,
    method: str = "euler",
    seed: int | np.random.SeedSequence = 0,
    nodes=None,
    ladder: Sequence[float] = LADDER,
    progress: bool = False,
) -> ExactBelowChoice:
    """The occupancy field's ``exact_below`` where its own [q] stops moving (module docstring).

    Parameters
    ----------
    population : LinearTheory
        The population theory (:func:`gtv.numerics.linear.linear_model_theory`, 1-D data).
    moments : CavityMoments
        Its cavity moments at the configuration's ``P``.
    field : {"occupancy", "stratified", "consistent"}, default "consistent"
        The occupancy field (:class:`gtv.numerics.linear.CavityLinear`).
    n_members : int
        Members of each rung's field.
    edges : ndarray
        Uniform histogram edges; the core mass is read from these bins, so the training points
        +- :data:`CORE_RADIUS` must sit on bin edges.
    density, n_samples, transport
        How each member's density is formed
        (:func:`gtv.validation.theory_densities.gaussian_field_densities`): ``"mc"`` with
        ``n_samples`` PF-ODE samples per member, or ``"transport"`` with ``transport``'s grid.
    gap_distance : float, default 0.25
    n_steps : int, default 30
    method : {"euler", "heun"}, default "euler"
    seed : int or SeedSequence, default 0
        The fields' seed: every rung draws the same members (stream ``"field"``) and start points
        (``"field-sampling"``), so the rungs differ only by ``t_c``.
    nodes : PopulationNodes, optional
        ``population``'s node set (:func:`gtv.numerics.linear.population_nodes`), made once here
        when not given.
    ladder : sequence of float, default :data:`LADDER`
        Increasing rungs in ``[0, T)``; a last rung above ``T`` (every triple exact) is added.
    progress : bool, default False
        A progress bar over the rungs (stderr).

    Returns
    -------
    ExactBelowChoice
    """
    if field not in OCCUPANCY_FIELDS:
        raise ValueError(f"field must be one of {OCCUPANCY_FIELDS}, got {field!r}")
    n_members = check_count(n_members, "n_members", minimum=2)
    check_choice(density, "density", DENSITIES)
    if density == "mc":
        n_samples = check_count(n_samples, "n_samples")
    seed = check_seed(seed)
    T = float(population.schedule.T)
    rungs = _check_ladder(ladder, T) + (2.0 * T,)
    edges = np.asarray(edges, dtype=float)
    data = np.asarray(population.data, dtype=float)
    if data.ndim != 2 or data.shape[1] != 1:
        raise ValueError("population: choose_exact_below needs 1-D data")
    shells = (0.0, CORE_RADIUS, np.inf)
    _check_core_bins(edges, data[:, 0])
    if nodes is None:
        from gtv.numerics.linear import population_nodes

        nodes = population_nodes(population)
    stats = []
    for t_c in tqdm(rungs, desc="exact_below ladder", disable=not progress, leave=False):
        theory = CavityLinear(population, moments, field, nodes, exact_below=t_c)
        d = gaussian_field_densities(
            theory, n_members, edges, gap_distance, density=density, n_samples=n_samples,
            transport=transport, n_steps=n_steps, method=method, seed=seed,
        )  # fmt: skip
        core = shell_masses(d.histograms, d.outside, edges, data[:, 0], shells)[:, 0]
        stats.append((d.gap.mean(), standard_error(d.gap), core.mean(), standard_error(core)))
    gap, gap_se, core, core_se = (tuple(float(s[i]) for s in stats) for i in range(4))
    return ExactBelowChoice(
        plateau_start(rungs, gap, gap_se, core, core_se), rungs, gap, gap_se, core, core_se
    )


def _check_core_bins(edges: np.ndarray, data: np.ndarray) -> None:
    """The core shell is read off whole bins: the training points +- CORE_RADIUS on bin edges."""
    if edges.ndim != 1 or edges.size < 2 or not np.all(np.diff(edges) > 0):
        raise ValueError("edges must be increasing 1-D bin edges")
    width = float(edges[1] - edges[0])
    for x in np.concatenate([data - CORE_RADIUS, data + CORE_RADIUS]):
        k = (x - edges[0]) / width
        if abs(k - round(k)) > 1e-6:
            raise ValueError(
                f"edges: the core (+- {CORE_RADIUS:g} around each training point) must fall on "
                f"bin edges; bin width {width:g} from {edges[0]:g} does not put {x:g} on one"
            )


def check_exact_below(value: object) -> float | str:
    """A configuration's ``exact_below``: ``"auto"`` (:func:`choose_exact_below`) or a finite
    time ``>= 0`` (returned as a float); ``ValueError`` naming the argument otherwise."""
    if value == "auto":
        return "auto"
    if isinstance(value, (bool, str)) or not isinstance(value, (int, float, np.number)):
        raise ValueError(f"exact_below must be 'auto' or a finite time >= 0, got {value!r}")
    if not (np.isfinite(value) and value >= 0):
        raise ValueError(f"exact_below must be 'auto' or a finite time >= 0, got {value!r}")
    return float(value)
