"""Moments of the small-occupancy field, by Monte Carlo over its members.

docs/math/finite_fp.md, section on the small-occupancy field. The field
(:mod:`gtv.numerics.linear.occupancy`) keeps the heavy triples (cavity leverage ``q > q_star``)
of every member exactly and replaces the light ones by their cavity equivalent. Its mean and
covariance of ``W`` have no closed form (each member is a ratio with a random inverse), so they
are estimated here from ``n_members`` members drawn on their own stream
``stream(seed, "occupancy-moments").spawn(n_members)[n]`` (never a trained model), member ``n``
built exactly as :func:`~gtv.numerics.linear.occupancy.sample_occupancy_weights` builds its
members.

The members are cut into ``n_batches`` contiguous batches; the spread of the batch moments gives
the Monte Carlo standard errors of the predicted mean and variance of ``D^`` at any point
(:meth:`OccupancyMoments.standard_errors`). :class:`OccupancyLinear` is the theory built on these
moments (a :class:`~gtv.numerics.linear.prediction.CavityLinear` whose mean, covariance,
V-kernel and Markov intensity are the occupancy field's; its field is the occupancy field by
default). As ``P -> inf`` no triple is heavy and the field is Gaussian with the light-part
moments, which tend to the first-order ones. D = 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gtv.numerics.checks import check_count, check_query_pair
from gtv.numerics.io import load_result_of_kind, result_file, save_result
from gtv.numerics.linear.cavity import CavityMoments
from gtv.numerics.linear.nodes import PopulationNodes
from gtv.numerics.linear.occupancy import (
    HEAVY_LEVERAGE,
    OccupancySplit,
    member_chunk,
    occupancy_members,
    occupancy_split,
)
from gtv.numerics.linear.prediction import CavityLinear
from gtv.numerics.linear.strata import STRATA
from gtv.numerics.linear.theory import LinearTheory
from gtv.numerics.streams import check_seed, stream

__all__ = ["OCCUPANCY_MEMBERS", "OccupancyLinear", "OccupancyMoments", "occupancy_moments"]

#: Default number of Monte Carlo members (relative MC error of Var D^ about
#: ``sqrt((kurtosis + 2) / n_members)``: 1.6 % at an excess kurtosis of 24).
OCCUPANCY_MEMBERS = 100_000


@dataclass(frozen=True)
class OccupancyMoments:
    """Monte Carlo moments of the small-occupancy field at one ``P`` (module docstring).

    Attributes
    ----------
    P : float
    q_star : float
    n_members : int
    W_bar : ndarray (1, F)
        Sample mean of ``W`` over the members.
    cov_W : ndarray (F, F)
        Sample covariance of ``W`` (``ddof = 1``).
    batch_W_bar : ndarray (B, F)
    batch_cov_W : ndarray (B, F, F)
        The same per batch of contiguous members (for the Monte Carlo errors).
    strata : (int, int) or None
        The cells of the field's light part (:mod:`gtv.numerics.linear.strata`), or None.
    consistent : bool
        The members' heavy sets are closed under their own leverage (the split's ``consistent``).
    exact_below : float
        Every triple below this time is exact in each member (the split's ``exact_below``).
    """

    P: float
    q_star: float
    n_members: int
    W_bar: np.ndarray
    cov_W: np.ndarray
    batch_W_bar: np.ndarray
    batch_cov_W: np.ndarray
    strata: tuple[int, int] | None = None
    consistent: bool = False
    exact_below: float = 0.0

    def standard_errors(self, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Monte Carlo standard errors of the predicted ``E D^`` and ``Var D^`` at points with
        features ``phi`` (n, F): the spread of the batch values over ``sqrt(B)``."""
        phi = np.asarray(phi, dtype=float)
        if phi.ndim != 2 or phi.shape[1] != self.W_bar.shape[1]:
            raise ValueError(f"phi must have shape (n, {self.W_bar.shape[1]}), got {phi.shape}")
        B = self.batch_W_bar.shape[0]
        means = self.batch_W_bar @ phi.T  # (B, n)
        variances = np.einsum("if,bfg,ig->bi", phi, self.batch_cov_W, phi, optimize=True)
        return means.std(axis=0, ddof=1) / np.sqrt(B), variances.std(axis=0, ddof=1) / np.sqrt(B)

    def save(self, path: str | Path) -> Path:
        arrays = {
            "W_bar": self.W_bar,
            "cov_W": self.cov_W,
            "batch_W_bar": self.batch_W_bar,
            "batch_cov_W": self.batch_cov_W,
        }
        cfg = {
            "kind": "occupancy_moments",
            "P": self.P,
            "q_star": self.q_star,
            "n_members": self.n_members,
            "strata": None if self.strata is None else list(self.strata),
            "consistent": self.consistent,
            "exact_below": self.exact_below,
        }
        return save_result(path, arrays, cfg)

    @classmethod
    def load(cls, path: str | Path) -> OccupancyMoments:
        arrays, cfg = load_result_of_kind(path, "occupancy_moments", "an OccupancyMoments")
        with result_file(path, "OccupancyMoments"):
            return cls(
                cfg["P"], cfg["q_star"], cfg["n_members"], arrays["W_bar"], arrays["cov_W"],
                arrays["batch_W_bar"], arrays["batch_cov_W"],
                None if cfg.get("strata") is None else tuple(cfg["strata"]),
                bool(cfg.get("consistent", False)), float(cfg.get("exact_below", 0.0)),
            )  # fmt: skip


def occupancy_moments(
    theory: LinearTheory,
    moments: CavityMoments,
    n_members: int = OCCUPANCY_MEMBERS,
    seed: int | np.random.SeedSequence = 0,
    *,
    split: OccupancySplit | None = None,
    q_star: float = HEAVY_LEVERAGE,
    nodes: PopulationNodes | None = None,
    n_batches: int = 20,
    strata: tuple[int, int] | None = None,
) -> OccupancyMoments:
    """Mean and covariance of ``W`` over ``n_members`` members of the small-occupancy field.

    Parameters
    ----------
    theory : LinearTheory
    moments : CavityMoments
        :func:`~gtv.numerics.linear.cavity.cavity_moments` of ``theory`` (integer ``P``).
    n_members : int, default OCCUPANCY_MEMBERS
        Members drawn (``>= 2 n_batches``).
    seed : int or SeedSequence
        Member ``n`` draws from ``stream(seed, "occupancy-moments").spawn(n_members)[n]``.
    split : OccupancySplit, optional
        :func:`~gtv.numerics.linear.occupancy.occupancy_split` of ``theory`` at ``moments``
        (computed with ``q_star``, ``nodes`` and ``strata`` when not given; its own ``q_star``,
        strata, ``consistent`` and ``exact_below`` otherwise, e.g. the consistent field with
        the early triples exact).
    q_star : float, default HEAVY_LEVERAGE
    nodes : PopulationNodes, optional
    n_batches : int, default 20
        Batches of contiguous members for the Monte Carlo errors (``>= 2``).
    strata : (int, int), optional
        Condition the light part on the members' cell counts
        (:data:`gtv.numerics.linear.strata.STRATA` cells, say; docs/math/finite_fp.md).

    Returns
    -------
    OccupancyMoments
    """
    if not isinstance(theory, LinearTheory):
        raise TypeError("theory must be a LinearTheory")
    if not isinstance(moments, CavityMoments):
        raise TypeError("moments must be a CavityMoments")
    if moments.P != int(moments.P):
        raise ValueError(f"moments.P must be an integer to draw triples, got {moments.P!r}")
    n_batches = check_count(n_batches, "n_batches", 2)
    n_members = check_count(n_members, "n_members", 2 * n_batches)
    seed = check_seed(seed)
    if split is None:
        split = occupancy_split(theory, moments, nodes=nodes, q_star=q_star, strata=strata)
    elif not isinstance(split, OccupancySplit):
        raise TypeError("split must be an OccupancySplit (from occupancy_split)")
    F = split.A_light.size
    if moments.W_bar.shape != (1, F):
        raise ValueError("split: the split of a different feature set")
    shift = moments.W_bar[0]  # centre the sums on the cavity mean (fewer cancellations)
    parent = stream(seed, "occupancy-moments")
    chunk = member_chunk(int(moments.P), F)
    sums = np.zeros((n_batches, F))
    outer = np.zeros((n_batches, F, F))
    counts = np.zeros(n_batches)
    for b in range(n_batches):
        lo, hi = b * n_members // n_batches, (b + 1) * n_members // n_batches
        for m0 in range(lo, hi, chunk):
            # successive spawns continue one another: member n is parent.spawn(N)[n]
            rngs = [np.random.default_rng(s) for s in parent.spawn(min(chunk, hi - m0))]
            d = occupancy_members(theory, moments, split, rngs) - shift
            sums[b] += d.sum(axis=0)
            outer[b] += d.T @ d
        counts[b] = hi - lo
    mean_d = sums / counts[:, None]
    batch_cov = (outer - counts[:, None, None] * np.einsum("bf,bg->bfg", mean_d, mean_d)) / (
        counts[:, None, None] - 1
    )
    total = sums.sum(axis=0) / n_members
    cov = (outer.sum(axis=0) - n_members * np.outer(total, total)) / (n_members - 1)
    return OccupancyMoments(
        float(moments.P), float(split.q_star), int(n_members), (shift + total)[None, :],
        (cov + cov.T) / 2, shift + mean_d, (batch_cov + batch_cov.transpose(0, 2, 1)) / 2,
        None if split.strata is None else tuple(split.strata.shape), bool(split.consistent),
        float(split.exact_below),
    )  # fmt: skip


class OccupancyLinear(CavityLinear):
    """:class:`LinearTheory` at ``P`` with the small-occupancy moments (module docstring).

    ``E W`` and ``Cov(vec W)`` are those of an :class:`OccupancyMoments` (Monte Carlo over the
    occupancy field); the mean, the covariance, the V-kernel and the Markov intensity are built
    on them. The field is the occupancy field itself (``field="occupancy"``: the field the
    moments were drawn from, with their split's ``q_star``, cells, ``consistent`` and
    ``exact_below``), the field with the default cells
    (``field="stratified"``), or the Gaussian field with these moments (``field="gaussian"``),
    or the cavity field. ``part`` must be ``"total"``.

    Parameters
    ----------
    theory : LinearTheory
    moments : CavityMoments
        The cavity solution the occupancy split is made at.
    occupancy : OccupancyMoments
        :func:`occupancy_moments` of ``theory`` at ``moments``.
    field : {"occupancy", "stratified", "gaussian", "cavity"}, default "occupancy"
    nodes : PopulationNodes, optional
    """

    _KIND = "occupancy_linear"

    def __init__(
        self,
        theory: LinearTheory,
        moments: CavityMoments,
        occupancy: OccupancyMoments,
        field: str = "occupancy",
        nodes: PopulationNodes | None = None,
    ):
        if not isinstance(occupancy, OccupancyMoments):
            raise TypeError("occupancy must be an OccupancyMoments")
        own = field == "occupancy"  # the field the moments were drawn from
        below = occupancy.exact_below if own else 0.0
        super().__init__(theory, moments, field, nodes, exact_below=below)
        if occupancy.W_bar.shape != moments.W_bar.shape or occupancy.P != moments.P:
            raise ValueError("occupancy: the moments of a different feature set or P")
        self.occupancy = occupancy
        strata = {"occupancy": occupancy.strata, "stratified": STRATA}.get(field)
        consistent = own and occupancy.consistent
        if field == "stratified" or (
            own
            and (occupancy.q_star != HEAVY_LEVERAGE or strata is not None or consistent or below)
        ):
            self._split = occupancy_split(
                theory, moments, nodes=nodes, q_star=occupancy.q_star, strata=strata,
                consistent=consistent, exact_below=below,
            )  # fmt: skip

    def __repr__(self) -> str:
        occ = self.occupancy
        return (
            f"OccupancyLinear(LinearTheory(F={self.theory.n_features}), P={self.P!r}, "
            f"q_star={occ.q_star!r}, members={occ.n_members}, "
            f"field={self.field!r}"
            + (", consistent" if occ.consistent else "")
            + (f", exact_below={occ.exact_below!r}" if occ.exact_below else "")
            + ")"
        )

    def weight_moments(self) -> tuple[np.ndarray, np.ndarray]:
        """``(W_bar, cov_W)`` of the occupancy field (Monte Carlo)."""
        return self.occupancy.W_bar, self.occupancy.cov_W

    def mean_denoiser(self, x: object, t: object) -> np.ndarray:
        xx, tt = check_query_pair((x, t), "z", 1, self.schedule)
        return (self.theory.features.evaluate(xx, tt) @ self.occupancy.W_bar[0])[:, None]

    def denoiser_covariance(
        self, z: object, z2: object = None, *, part: str = "total", paired: bool = False
    ) -> np.ndarray:
        """``phi(z)^T cov_W phi(z2)``: (n, 1, 1) when ``paired``, else (n, n2, 1, 1)."""
        self._total(part)
        phi1 = self.theory.features.evaluate(*check_query_pair(z, "z", 1, self.schedule))
        phi2 = (
            phi1
            if z2 is None
            else self.theory.features.evaluate(*check_query_pair(z2, "z2", 1, self.schedule))
        )
        C = self.occupancy.cov_W
        if paired:
            if phi1.shape != phi2.shape:
                raise ValueError("z2: paired=True needs as many points as z")
            return np.einsum("if,fg,ig->i", phi1, C, phi2)[:, None, None]
        return (phi1 @ C @ phi2.T)[:, :, None, None]

    def config(self) -> dict:
        return {
            **super().config(),
            "q_star": self.occupancy.q_star,
            "n_members": self.occupancy.n_members,
            "consistent": self.occupancy.consistent,
        }

    def save(self, path: str | Path) -> Path:
        """``path.npz`` with the theory, the cavity and the occupancy moments beside it."""
        stem, cfg = self._files(path)
        mom = self.moments.save(stem.with_name(stem.name + "_moments.npz"))
        occ = self.occupancy.save(stem.with_name(stem.name + "_occupancy.npz"))
        return save_result(
            stem, {}, {**cfg, "moments_file": mom.name, "occupancy_file": occ.name,
                       "field": self.field},
        )  # fmt: skip

    @classmethod
    def load(cls, path: str | Path) -> OccupancyLinear:
        _, cfg = load_result_of_kind(path, cls._KIND, f"a {cls.__name__}")
        with result_file(path, cls.__name__):
            base = Path(path)
            theory = LinearTheory.load(base.with_name(cfg["theory_file"]))
            moments = CavityMoments.load(base.with_name(cfg["moments_file"]))
            occupancy = OccupancyMoments.load(base.with_name(cfg["occupancy_file"]))
            return cls(theory, moments, occupancy, cfg["field"])
