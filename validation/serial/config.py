"""Configurations of the serial-reproduction experiments: one chain condition, one experiment.

A :class:`Condition` is one run of the paper's grid simulation: a noise family, a schedule of
``T`` noise levels, the sampler (with or without noise injection) and the terminal density the
backward pass starts from. An :class:`ExperimentConfig` is a named list of conditions on one grid
(the authors' grid with its duplicated boundary, or the true torus). :data:`EXPERIMENTS` builds the
paper's experiments and the fixed-total-noise control (docs/serial.md lists their parameters).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from gtv.numerics.checks import check_choice, check_field_types
from gtv.numerics.serial import schedule

__all__ = [
    "DEFAULT_STEPS",
    "EXPERIMENTS",
    "FAMILIES",
    "GRIDS",
    "SCHEDULES",
    "TERMINALS",
    "Condition",
    "ExperimentConfig",
    "experiment_config",
    "fixed_total_fade",
    "paper_total",
]

#: Noise families a condition can name (``"fade"`` replaces the state by a draw of the terminal).
FAMILIES = ("gaussian", "bimodal", "trimodal", "fade", "laplace", "box")
#: Schedule shapes: the authors' linear ramp in sigma, constant, geometric, cosine, and the
#: linear ramp rescaled to a fixed total noise (:meth:`Condition.sigmas`).
SCHEDULES = ("linear", "constant", "geometric", "cosine", "fixed-total")
#: Densities the backward pass can start from (and that ``fade`` noise fades to).
TERMINALS = ("uniform", "three-modes")
#: The two grids: the authors' ``round(1/h) + 1`` points per axis including both ends of
#: [-0.5, 0.5] (duplicated boundary on the torus), or the true ``round(1/h)``-point torus.
GRIDS = ("authors", "torus")
#: The number-of-steps sweep of Fig. 3, S1 and S5.
DEFAULT_STEPS = (2, 3, 6, 12, 24, 48, 100)


def fixed_total_fade(T: int, start: float, stop: float, total: float) -> np.ndarray:
    """Fade probabilities ``c * linspace(start, stop, T)`` with ``1 - prod(1 - s_t) = total``."""
    if not (0 < total <= 1):
        raise ValueError(f"total must be in (0, 1] for fade noise, got {total!r}")
    shape = np.linspace(start, stop, int(T))
    if total == 1.0:
        return shape / shape.max()
    lo, hi = 0.0, 1.0 / shape.max()
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        reached = 1.0 - np.prod(1.0 - mid * shape)
        lo, hi = (mid, hi) if reached < total else (lo, mid)
    return 0.5 * (lo + hi) * shape


@dataclass(frozen=True)
class Condition:
    """One chain of an experiment.

    Attributes
    ----------
    label : str
        Name in tables and figures (``"2A gaussian"``).
    family : str
        One of :data:`FAMILIES`.
    schedule : str
        One of :data:`SCHEDULES`.
    start, stop : float
        First and last noise level (for ``"constant"``: ``start``; for ``"fixed-total"``: the
        shape of the ramp, rescaled to ``total``).
    T : int
        Number of steps.
    inject_noise : bool
        ``True``: the serial-reproduction sampler ``p <- D_t K_t p``; ``False``: denoise only.
    terminal : str
        One of :data:`TERMINALS`: where the backward pass starts, and what fade noise fades to.
    shift : float
        Offset of the bimodal and trimodal kernels along the diagonal, ``+-(shift, shift)``.
    total : float or None
        Total noise of a ``"fixed-total"`` schedule (:meth:`sigmas`).
    keep_trajectory : bool
        Keep every ``q_t`` and ``p_t`` (for image rows); otherwise only the generated density.
    """

    label: str
    family: str = "gaussian"
    schedule: str = "linear"
    start: float = 0.03
    stop: float = 0.10
    T: int = 10
    inject_noise: bool = True
    terminal: str = "uniform"
    shift: float = 0.05
    total: float | None = None
    keep_trajectory: bool = False

    def __post_init__(self) -> None:
        check_field_types(self)
        check_choice(self.family, "family", FAMILIES)
        check_choice(self.schedule, "schedule", SCHEDULES)
        check_choice(self.terminal, "terminal", TERMINALS)
        if isinstance(self.T, bool) or int(self.T) != self.T or self.T < 1:
            raise ValueError(f"T must be an integer >= 1, got {self.T!r}")
        object.__setattr__(self, "T", int(self.T))
        for name in ("start", "stop", "shift"):
            v = float(getattr(self, name))
            if not (math.isfinite(v) and v >= 0) or (name != "shift" and v <= 0):
                raise ValueError(f"{name} must be finite and > 0, got {getattr(self, name)!r}")
            object.__setattr__(self, name, v)
        if self.family == "fade" and max(self.start, self.stop) > 1:
            raise ValueError("start and stop are fade probabilities for family 'fade': <= 1")
        if self.schedule == "fixed-total" and self.total is None:
            raise ValueError("total must be given for schedule 'fixed-total'")

    def sigmas(self) -> np.ndarray:
        """The ``T`` noise levels ``sigma_1 .. sigma_T`` (:func:`gtv.numerics.serial.schedule`).

        ``"fixed-total"``: the ramp ``linspace(start, stop, T)`` rescaled so that
        ``sum sigma_t**2 = total`` (the per-axis variances of Gaussian, Laplace and box steps
        add up, so every ``T`` reaches the same ``q_T``); for fade noise, rescaled so that the
        probability of at least one replacement is ``total`` (:func:`fixed_total_fade`).
        """
        T, a, b = self.T, self.start, self.stop
        if self.schedule == "fixed-total":
            if self.family == "fade":
                return fixed_total_fade(T, a, b, float(self.total))
            return schedule(
                "fixed-total-variance", T, a, b, total_variance=float(self.total), shape="linear"
            )
        if self.schedule == "constant":
            return schedule("constant", T, a)
        return schedule(self.schedule, T, a, b)


@dataclass(frozen=True)
class ExperimentConfig:
    """A named experiment: conditions on one grid.

    Attributes
    ----------
    name : str
        Key of :data:`EXPERIMENTS` (``"fig2"``, ``"fig3"``...).
    grid : str
        One of :data:`GRIDS`.
    h : float
        Grid spacing of the authors' grid (0.025: 41 x 41; 0.04: 26 x 26); the torus has
        ``round(1/h)`` points per axis.
    conditions : tuple of Condition
    """

    name: str
    grid: str
    h: float
    conditions: tuple[Condition, ...]

    def __post_init__(self) -> None:
        check_field_types(self)
        check_choice(self.grid, "grid", GRIDS)
        if not (math.isfinite(self.h) and 0 < self.h <= 0.5):
            raise ValueError(f"h must be in (0, 0.5] (grid size >= 2), got {self.h!r}")
        object.__setattr__(self, "conditions", tuple(self.conditions))
        if not self.conditions:
            raise ValueError("conditions must not be empty")

    @property
    def n(self) -> int:
        """Points per axis."""
        k = int(round(1.0 / self.h))
        return k + 1 if self.grid == "authors" else k

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["conditions"] = [dataclasses.asdict(c) for c in self.conditions]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ExperimentConfig:
        conds = tuple(Condition(**c) for c in d["conditions"])
        return cls(d["name"], d["grid"], float(d["h"]), conds)


def _fig2() -> tuple[float, list[Condition]]:
    keep = {"T": 10, "keep_trajectory": True}
    return 0.025, [
        Condition("2A-B gaussian", "gaussian", "linear", 0.03, 0.10, **keep),
        Condition("2C bimodal", "bimodal", "linear", 0.02, 0.07, **keep),
        Condition("2D fade-uniform", "fade", "linear", 0.01, 1.0, **keep),
        Condition("2E fade-3modes", "fade", "linear", 0.01, 1.0, terminal="three-modes", **keep),
    ]


def _sweep(family: str, start: float, stop: float, steps) -> list[Condition]:
    return [Condition(f"T={T}", family, "linear", start, stop, T) for T in steps]


def _fig3(steps=DEFAULT_STEPS) -> tuple[float, list[Condition]]:
    return 0.04, _sweep("gaussian", 0.01, 0.05, steps)


def _s5(steps=DEFAULT_STEPS) -> tuple[float, list[Condition]]:
    return 0.04, _sweep("bimodal", 0.02, 0.07, steps)


def _s2() -> tuple[float, list[Condition]]:
    keep = {"T": 10, "keep_trajectory": True}
    return 0.025, [
        Condition("with noise injection", "gaussian", "linear", 0.03, 0.10, **keep),
        Condition("denoise only", "gaussian", "linear", 0.03, 0.10, inject_noise=False, **keep),
    ]


def _s4() -> tuple[float, list[Condition]]:
    return 0.025, [
        Condition(
            "gaussian 0.01, T=10", "gaussian", "constant", 0.01, 0.01, 10, keep_trajectory=True
        ),
        Condition("bimodal 1e-4, T=10", "bimodal", "constant", 1e-4, 1e-4, 10),
        Condition(
            "fade-3modes 1e-4, T=10", "fade", "constant", 1e-4, 1e-4, 10,
            terminal="three-modes", keep_trajectory=True,
        ),
        Condition("gaussian 0.01, T=100", "gaussian", "constant", 0.01, 0.01, 100),
    ]  # fmt: skip


def paper_total(start: float = 0.01, stop: float = 0.05, T: int = 100) -> float:
    """``sum sigma_t**2`` of the paper's longest Fig-3 chain (the default fixed total)."""
    return float(np.sum(np.linspace(start, stop, T) ** 2))


def _fixed_total(steps=DEFAULT_STEPS, total: float | None = None) -> tuple[float, list[Condition]]:
    """Fig. 3's sweep next to the same ramp rescaled to a fixed total variance, both samplers."""
    total = paper_total() if total is None else float(total)
    conds = [Condition(f"paper T={T}", "gaussian", "linear", 0.01, 0.05, T) for T in steps]
    for inject in (True, False):
        sampler = "inject" if inject else "denoise-only"
        conds += [
            Condition(
                f"fixed T={T} {sampler}", "gaussian", "fixed-total", 0.01, 0.05, T, inject,
                total=total,
            )
            for T in steps
        ]  # fmt: skip
    return 0.04, conds


#: The experiments by command name: each builds ``(h, conditions)``.
EXPERIMENTS = {
    "fig2": _fig2,
    "fig3": _fig3,
    "s2": _s2,
    "s4": _s4,
    "s5": _s5,
    "fixed-total": _fixed_total,
}


def experiment_config(
    name: str, grid: str = "authors", h: float | None = None, **kwargs
) -> ExperimentConfig:
    """The configuration of experiment ``name`` on ``grid`` (``kwargs`` go to its builder:
    ``steps`` for the sweeps, ``total`` for ``"fixed-total"``); ``h`` overrides the spacing."""
    check_choice(name, "name", tuple(EXPERIMENTS))
    h0, conds = EXPERIMENTS[name](**kwargs)
    return ExperimentConfig(name, grid, h0 if h is None else float(h), tuple(conds))
