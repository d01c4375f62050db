"""Choosing ``exact_below`` from the field alone: where its prediction stops moving.

Shared by the linear models' occupancy fields (:func:`choose_exact_below`) and the lazy (kernel)
networks' member fields (:func:`ladder_choice` on
:meth:`gtv.numerics.kernel.FiniteKernelTheoryAt.stratified_field`). Such a field keeps every
triple with ``t < t_c`` exact in each member (for the linear fields
:func:`gtv.numerics.linear.occupancy.occupancy_split`; docs/math/finite_fp.md, *[q] with the early
triples exact*). As ``t_c`` grows the field's [q] moves and then stops: above ``T`` every triple
is exact and each member is the model trained on its own triples (a trained ensemble drawn from
the field's streams), the limit of the ladder. :func:`ladder_choice` samples the field on a
ladder of ``t_c`` and returns the **plateau start**: the smallest rung whose gap mass and core
mass (within :data:`CORE_RADIUS` of a training point) both stay within one of their own
member-level standard errors of those of every larger rung (:func:`plateau_start`). No trained
model enters: the rule is a property of the theory's field, so the chosen ``t_c`` is a
prediction, not a fit.

The one-standard-error tolerance and the ladder were fixed before the rule was scored against any
trained ensemble (docs/math/finite_fp.md, *Choosing t_c from the field alone*). The rungs share
their members (the same streams); :func:`choose_exact_below` draws the occupancy and consistent
fields' rungs together
(:func:`gtv.numerics.linear.prediction.occupancy_fields_together`: each member's triples,
features and leverages once), the same members to the last bit as drawing each rung alone.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from gtv.numerics.checks import check_choice, check_count, check_nonnegative_time
from gtv.numerics.streams import check_seed
from gtv.validation.ensembles import DENSITIES, TransportSettings
from gtv.validation.shells import SHELLS, shell_masses
from gtv.validation.stats import standard_error
from gtv.validation.theory_densities import gaussian_field_densities

__all__ = [
    "CORE_RADIUS",
    "LADDER",
    "ExactBelowChoice",
    "check_auto_grid",
    "check_core_bins",
    "check_exact_below",
    "choose_exact_below",
    "ladder_choice",
    "plateau_start",
]

#: The rungs of ``t_c`` below the schedule's ``T``; :func:`ladder_choice` adds a last rung above
#: ``T`` (every triple exact).
LADDER = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.6)
#: The core of a peak: samples within this distance of a training point (the first shell of
#: :data:`gtv.validation.shells.SHELLS`).
CORE_RADIUS = SHELLS[1]


@dataclass(frozen=True)
class ExactBelowChoice:
    """Result of :func:`ladder_choice` (and :func:`choose_exact_below`).

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
            {"t_c": t, "gap": g, "gap_se": gs, "core": c, "core_se": cs, "chosen": t == self.t_c}
            for t, g, gs, c, cs in zip(
                self.ladder, self.gap, self.gap_se, self.core, self.core_se, strict=True
            )
        ]

    def to_dict(self) -> dict:
        """JSON-ready form (saved in a comparison's ``meta``)."""
        return {"t_c": self.t_c, "rows": self.rows()}

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


def ladder_choice(
    field_at: Callable[[float], object],
    T: float,
    data: np.ndarray,
    *,
    n_members: int,
    edges: np.ndarray,
    gap_distance: float = 0.25,
    density: str = "mc",
    n_samples: int | None = None,
    transport: TransportSettings | None = None,
    n_steps: int = 30,
    method: str = "euler",
    seed: int | np.random.SeedSequence = 0,
    ladder: Sequence[float] = LADDER,
    progress: bool = False,
) -> ExactBelowChoice:
    """The plateau start of any field family ``field_at(t_c)`` (module docstring).

    ``field_at(t_c)`` returns a theory whose ``gaussian_field(n, seed)`` draws the field's
    members with every triple below ``t_c`` exact (1-D, ``data`` its training points, ``T`` its
    schedule's end). The checks run before the first field is drawn; the other parameters are
    those of :func:`choose_exact_below`.
    """
    n_members = check_count(n_members, "n_members", minimum=2)
    check_choice(density, "density", DENSITIES)
    if density == "mc":
        n_samples = check_count(n_samples, "n_samples")
    seed = check_seed(seed)
    rungs = _check_ladder(ladder, T) + (2.0 * T,)
    edges = np.asarray(edges, dtype=float)
    data = np.asarray(data, dtype=float)
    if data.ndim != 2 or data.shape[1] != 1:
        raise ValueError("data: the exact_below ladder needs 1-D training points (M, 1)")
    check_core_bins(edges, data[:, 0])
    shells = (0.0, CORE_RADIUS, np.inf)
    stats = []
    for t_c in tqdm(rungs, desc="exact_below ladder", disable=not progress, leave=False):
        d = gaussian_field_densities(
            field_at(t_c), n_members, edges, gap_distance, density=density, n_samples=n_samples,
            transport=transport, n_steps=n_steps, method=method, seed=seed,
        )  # fmt: skip
        core = shell_masses(d.histograms, d.outside, edges, data[:, 0], shells)[:, 0]
        stats.append((d.gap.mean(), standard_error(d.gap), core.mean(), standard_error(core)))
    gap, gap_se, core, core_se = (tuple(float(s[i]) for s in stats) for i in range(4))
    return ExactBelowChoice(
        plateau_start(rungs, gap, gap_se, core, core_se), rungs, gap, gap_se, core, core_se
    )


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
    """The linear occupancy field's ``exact_below`` where its own [q] stops moving (module
    docstring).

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
    from gtv.numerics.linear import CavityLinear, population_nodes
    from gtv.numerics.linear.prediction import OCCUPANCY_FIELDS, occupancy_fields_together

    if field not in OCCUPANCY_FIELDS:
        raise ValueError(f"field must be one of {OCCUPANCY_FIELDS}, got {field!r}")
    T = float(population.schedule.T)
    rungs = _check_ladder(ladder, T) + (2.0 * T,)
    check_core_bins(np.asarray(edges, dtype=float), np.asarray(population.data)[:, 0])
    n_members = check_count(n_members, "n_members", minimum=2)
    check_choice(density, "density", DENSITIES)
    if density == "mc":
        check_count(n_samples, "n_samples")
    seed = check_seed(seed)
    if nodes is None:
        nodes = population_nodes(population)
    fields = [CavityLinear(population, moments, field, nodes, exact_below=t_c) for t_c in rungs]
    # the rungs' members are the same draws under different splits: drawn together
    drawn = dict(zip(rungs, occupancy_fields_together(fields, n_members, seed), strict=True))
    theories = dict(zip(rungs, fields, strict=True))
    return ladder_choice(
        lambda t_c: _Drawn(theories[t_c], drawn[t_c], n_members, seed),
        T, population.data, n_members=n_members, edges=edges, gap_distance=gap_distance,
        density=density, n_samples=n_samples, transport=transport, n_steps=n_steps,
        method=method, seed=seed, ladder=ladder, progress=progress,
    )  # fmt: skip


class _Drawn:
    """``theory`` whose ``gaussian_field(n_members, seed)`` was drawn already (``field``, with
    the other rungs of a ladder); any other call draws anew, every other attribute is
    ``theory``'s."""

    def __init__(self, theory: object, field: object, n_members: int, seed: object):
        self._theory, self._field, self._n, self._seed = theory, field, n_members, seed

    def gaussian_field(self, n_models: int, seed: object = 0) -> object:
        if n_models == self._n and (seed is self._seed or _same_int(seed, self._seed)):
            return self._field
        return self._theory.gaussian_field(n_models, seed)

    def __getattr__(self, name: str) -> object:
        return getattr(self._theory, name)


def _same_int(a: object, b: object) -> bool:
    """Two integer seeds with one value (a SeedSequence is only the same as itself)."""
    return isinstance(a, numbers.Integral) and isinstance(b, numbers.Integral) and a == b


def check_core_bins(edges: np.ndarray, data: np.ndarray) -> None:
    """``ValueError`` unless the training points ``data`` (M,) +- :data:`CORE_RADIUS` fall on
    the bin edges ``edges`` (the core shell is read off whole bins)."""
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
    try:
        return check_nonnegative_time(value, "exact_below")
    except ValueError:
        raise ValueError(
            f"exact_below must be 'auto' or a finite time >= 0, got {value!r}"
        ) from None


def check_auto_grid(exact_below: object, hist_range, n_bins: int, data: np.ndarray) -> None:
    """A configuration's histogram grid, checked when it is made: with ``exact_below="auto"``
    the ladder reads the core mass off its bins (:func:`check_core_bins`)."""
    if exact_below == "auto":
        edges = np.linspace(float(hist_range[0]), float(hist_range[1]), int(n_bins) + 1)
        check_core_bins(edges, np.asarray(data, dtype=float).reshape(-1))
