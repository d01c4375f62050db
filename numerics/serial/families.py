"""Noise families of the serial-reproduction chains: one forward kernel per noise level sigma.

A family turns a noise level ``sigma`` (one value of the schedule) into the forward kernel
``K(dest | source)`` on a :class:`~gtv.numerics.serial.grid.Grid`. Every kernel is a weighted sum of
*terms* (:class:`KernelTerm`), which is what makes the fast route possible
(:mod:`gtv.numerics.serial.operator`):

* ``"shift"`` -- a function of the minimum-image displacement ``d = dest - source`` (a circulant on
  the torus): Gaussian, the shifted Gaussians of the bimodal and trimodal families, Laplace, box,
  a user kernel; optionally column-normalised on its own before weighting (the authors normalise
  each mode of the bimodal and trimodal kernels separately);
* ``"identity"`` -- stay at the same grid point (the "stay" part of pure replacement noise);
* ``"replacement"`` -- a fresh draw from a target density, ``target 1^T`` (rank one).

After the weighted sum every column is normalised over destinations. For every width family
``sigma`` is the per-coordinate standard deviation of the continuous kernel (Gaussian: exactly its
width; Laplace ``exp(-|d|/b)`` with ``b = sigma/sqrt(2)`` in 1-D and ``sigma/sqrt(3)`` in 2-D; box:
half-width ``sqrt(3) sigma`` for a square or interval, radius ``2 sigma`` for a disc), except the
bimodal and trimodal families, whose ``sigma`` is the width of each mode as in the authors' code.
For the fade families ``sigma`` is the probability of replacing the state by a draw of the target.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from gtv.numerics.checks import check_choice
from gtv.numerics.serial.grid import Grid

__all__ = [
    "AUTHORS_STAY_SD",
    "BOX_SHAPES",
    "FAMILY_KINDS",
    "KernelTerm",
    "NoiseFamily",
    "check_kernel_values",
]

#: Kinds of noise family (bimodal and trimodal are ``"mixture"`` families).
FAMILY_KINDS = ("gaussian", "mixture", "fade", "laplace", "box", "user")
#: Shapes of the box family.
BOX_SHAPES = ("disc", "square")
#: The authors' "stay" width of their fade kernels (smaller than their grid spacing).
AUTHORS_STAY_SD = 0.01

KernelFunction = Callable[[np.ndarray, Grid], np.ndarray]


@dataclass(frozen=True, eq=False)
class KernelTerm:
    """One term of a forward kernel (see the module docstring).

    Attributes
    ----------
    kind : str
        ``"shift"``, ``"identity"`` or ``"replacement"``.
    weight : float
        Weight of the term before the final column normalisation.
    function : callable, optional
        For ``"shift"``: ``function(k, grid)`` -> non-negative values at integer displacements
        ``k`` (array ``(..., dim)`` in units of the grid spacing, already minimum-image).
    normalise : bool
        For ``"shift"``: normalise each column of this term to 1 before weighting it.
    target : ndarray, optional
        For ``"replacement"``: the density drawn from (grid shape).
    """

    kind: str
    weight: float
    function: KernelFunction | None = None
    normalise: bool = False
    target: np.ndarray | None = None


def check_kernel_values(values: np.ndarray, argname: str) -> np.ndarray:
    """Kernel values must be finite and non-negative with a positive sum (``ValueError``)."""
    v = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{argname} must contain only finite values")
    if np.any(v < 0):
        raise ValueError(f"{argname} must be non-negative (min {v.min()!r})")
    if not v.sum() > 0:
        raise ValueError(f"{argname} must have a positive sum (it is all zero)")
    return v


def _shift_vector(shift: object, dim: int) -> np.ndarray:
    s = np.atleast_1d(np.asarray(shift, dtype=np.float64))
    if s.size == 1:
        s = np.full(dim, s[0])
    if s.shape != (dim,) or not np.all(np.isfinite(s)):
        raise ValueError(
            f"shift (a mode centre) must be a finite number or a {dim}-vector for a {dim}-D "
            f"grid, got {shift!r}"
        )
    return s


def _gaussian(sigma: float, centre: np.ndarray) -> KernelFunction:
    def f(k: np.ndarray, grid: Grid) -> np.ndarray:
        d = k * grid.spacing - centre
        return np.exp(-0.5 * np.sum(d * d, axis=-1) / sigma**2)

    return f


def _radius(k: np.ndarray, grid: Grid) -> np.ndarray:
    d = k * grid.spacing
    return np.sqrt(np.sum(d * d, axis=-1))


@dataclass(frozen=True, eq=False)
class NoiseFamily:
    """A noise family; make one with the class methods (:meth:`gaussian`, :meth:`bimodal`, ...).

    Attributes
    ----------
    kind : str
        One of :data:`FAMILY_KINDS`.
    params : dict
        The family's parameters (see the constructor that made it).
    name : str
        A short label (``"gaussian"``, ``"bimodal"``, ``"fade"``, ...).
    """

    kind: str
    params: dict = field(default_factory=dict)
    name: str = ""

    # -- constructors -------------------------------------------------------------------------

    @classmethod
    def gaussian(cls) -> NoiseFamily:
        """Gaussian noise ``exp(-|d|^2 / (2 sigma^2))`` on the torus (minimum image)."""
        return cls("gaussian", {}, "gaussian")

    @classmethod
    def mixture(
        cls, centres: object, weights: object, name: str = "mixture", normalise_modes: bool = True
    ) -> NoiseFamily:
        """Gaussian modes of width sigma at displacements ``centres`` with ``weights``.

        Each centre is a number (the same on every axis) or a ``dim``-vector. Each mode is
        column-normalised on its own before the weighted sum when ``normalise_modes`` (as the
        authors do); the offsets are not re-wrapped: a mode centred at ``c`` is
        ``exp(-|d - c|^2 / (2 sigma^2))`` of the minimum-image ``d``.
        """
        try:
            cs = [np.atleast_1d(np.asarray(c, dtype=np.float64)) for c in centres]
        except (TypeError, ValueError):
            raise ValueError(
                f"centres must be a list of numbers or vectors, got {centres!r}"
            ) from None
        if not cs or not all(c.ndim == 1 and np.all(np.isfinite(c)) for c in cs):
            raise ValueError("centres must be a non-empty list of finite numbers or vectors")
        w = np.asarray(weights, dtype=np.float64).ravel()
        if w.shape != (len(cs),) or not np.all(np.isfinite(w)) or np.any(w <= 0):
            raise ValueError(f"weights must hold {len(cs)} finite numbers > 0, got {weights!r}")
        params = {
            "centres": [c.tolist() for c in cs],
            "weights": w.tolist(),
            "normalise_modes": bool(normalise_modes),
        }
        return cls("mixture", params, name)

    @classmethod
    def bimodal(cls, shift: object = 0.05) -> NoiseFamily:
        """Two Gaussian modes at ``+shift`` and ``-shift`` (the authors' "STRECH" noise).

        ``shift`` is a number (the same on every axis; default 0.05, i.e. ``(0.05, 0.05)`` in
        2-D) or a vector with one entry per axis.
        """
        s = np.atleast_1d(np.asarray(shift, dtype=np.float64))
        return cls.mixture([s, -s], [0.5, 0.5], name="bimodal")

    @classmethod
    def trimodal(cls, shift: object = 0.05) -> NoiseFamily:
        """Modes at ``+shift``, ``-shift`` and 0 with weights 1/4, 1/4, 1/2 (the authors')."""
        s = np.atleast_1d(np.asarray(shift, dtype=np.float64))
        return cls.mixture([s, -s, 0.0 * s], [0.25, 0.25, 0.5], name="trimodal")

    @classmethod
    def fade(
        cls, target: object = None, stay_sd: float | None = None, normalise_stay: bool = True
    ) -> NoiseFamily:
        """Replacement ("fade") noise: with probability sigma, a fresh draw from ``target``.

        ``K = (1 - sigma) stay + sigma target 1^T``, columns normalised. ``target`` is a density
        on the grid (``None``: uniform). ``stay`` is the identity (``stay_sd=None``, pure
        replacement) or a Gaussian of width ``stay_sd``, column-normalised unless
        ``normalise_stay=False`` (the authors' kernel: see :meth:`fade_authors`).
        """
        if stay_sd is not None:
            sd = float(stay_sd)
            if not (np.isfinite(sd) and sd > 0):
                raise ValueError(f"stay_sd must be None or a finite number > 0, got {stay_sd!r}")
            stay_sd = sd
        t = None if target is None else np.asarray(target, dtype=np.float64)
        params = {"target": t, "stay_sd": stay_sd, "normalise_stay": bool(normalise_stay)}
        return cls("fade", params, "fade")

    @classmethod
    def fade_authors(cls, target: object = None) -> NoiseFamily:
        """The authors' fade kernel: an *unnormalised* Gaussian "stay" of width 0.01.

        On their 0.025 grid that stay term has column mass about 1.18, so the effective
        replacement probability is a little below sigma.
        """
        return cls.fade(target, stay_sd=AUTHORS_STAY_SD, normalise_stay=False)

    @classmethod
    def laplace(cls) -> NoiseFamily:
        """Laplace noise ``exp(-|d|/b)`` (radial in 2-D); per-coordinate sd sigma."""
        return cls("laplace", {}, "laplace")

    @classmethod
    def box(cls, shape: str = "disc") -> NoiseFamily:
        """Uniform noise on a disc (``|d| <= 2 sigma``) or square (``|d_i| <= sqrt(3) sigma``).

        In 1-D both are the interval ``|d| <= sqrt(3) sigma``. The zero displacement is always
        inside, so a box narrower than the grid spacing is the identity.
        """
        check_choice(shape, "shape", BOX_SHAPES)
        return cls("box", {"shape": shape}, "box")

    @classmethod
    def user(cls, kernel: object, centered: bool = True) -> NoiseFamily:
        """A user kernel: an array on the torus displacements, or a callable.

        Parameters
        ----------
        kernel : array_like or callable
            An array of the grid's ``torus_shape`` (the same kernel at every step; the schedule
            values are then only checked, not used), with the zero displacement at index
            ``m // 2`` per axis if ``centered`` else at index 0; or a callable
            ``kernel(d, sigma)`` returning non-negative weights for displacements ``d`` (array
            ``(..., dim)`` in coordinates).
        centered : bool
            Where the zero displacement sits in an array kernel.
        """
        if callable(kernel):
            return cls("user", {"kernel": kernel, "centered": bool(centered)}, "user")
        k = check_kernel_values(kernel, "kernel")
        return cls("user", {"kernel": k, "centered": bool(centered)}, "user")

    # -- properties ----------------------------------------------------------------------------

    @property
    def is_fade(self) -> bool:
        """True for replacement noise, whose schedule values are probabilities in [0, 1]."""
        return self.kind == "fade"

    def check_sigmas(self, sigmas: object, argname: str = "sigmas") -> np.ndarray:
        """Return the schedule as a float64 (T,) array or raise ``ValueError``.

        ``T >= 1`` values; fade families need probabilities in [0, 1], every other family
        finite widths > 0.
        """
        try:
            s = np.array(sigmas, dtype=np.float64).ravel()
        except (TypeError, ValueError):
            raise ValueError(f"{argname} must be a sequence of numbers, got {sigmas!r}") from None
        if s.size < 1:
            raise ValueError(f"{argname} must hold T >= 1 noise levels, got none")
        if not np.all(np.isfinite(s)):
            raise ValueError(f"{argname} must contain only finite values")
        if self.is_fade:
            if np.any((s < 0) | (s > 1)):
                raise ValueError(
                    f"{argname} of a fade family are replacement probabilities and must lie in "
                    f"[0, 1], got min {s.min()!r}, max {s.max()!r}"
                )
        elif np.any(s <= 0):
            raise ValueError(f"{argname} must be > 0 (noise widths), got min {s.min()!r}")
        return s

    def terminal(self, grid: Grid) -> np.ndarray:
        """The terminal density ``p_F``: the fade target, else uniform."""
        if self.is_fade and self.params["target"] is not None:
            return grid.check_density(self.params["target"], "target")
        return grid.uniform()

    # -- kernel terms --------------------------------------------------------------------------

    def terms(self, grid: Grid, sigma: float) -> list[KernelTerm]:
        """The kernel terms at noise level ``sigma`` on ``grid`` (before normalisation)."""
        sigma = float(self.check_sigmas([sigma], "sigma")[0])
        dim = grid.dim
        if self.kind == "gaussian":
            return [KernelTerm("shift", 1.0, _gaussian(sigma, np.zeros(dim)))]
        if self.kind == "mixture":
            centres = [_shift_vector(c, dim) for c in self.params["centres"]]
            norm = self.params["normalise_modes"]
            return [
                KernelTerm("shift", float(w), _gaussian(sigma, c), normalise=norm)
                for c, w in zip(centres, self.params["weights"], strict=True)
            ]
        if self.kind == "fade":
            target = self.terminal(grid)
            sd = self.params["stay_sd"]
            if sd is None:
                stay = KernelTerm("identity", 1.0 - sigma)
            else:
                stay = KernelTerm(
                    "shift",
                    1.0 - sigma,
                    _gaussian(sd, np.zeros(dim)),
                    normalise=self.params["normalise_stay"],
                )
            return [stay, KernelTerm("replacement", sigma, target=target)]
        if self.kind == "laplace":
            b = sigma / np.sqrt(2.0 if dim == 1 else 3.0)
            return [KernelTerm("shift", 1.0, lambda k, g: np.exp(-_radius(k, g) / b))]
        if self.kind == "box":
            if dim == 1 or self.params["shape"] == "square":
                a = np.sqrt(3.0) * sigma * (1 + 1e-12)

                def f(k: np.ndarray, g: Grid) -> np.ndarray:
                    inside = np.max(np.abs(k * g.spacing), axis=-1) <= a
                    return inside.astype(np.float64)
            else:
                r = 2.0 * sigma * (1 + 1e-12)

                def f(k: np.ndarray, g: Grid) -> np.ndarray:
                    return (_radius(k, g) <= r).astype(np.float64)

            return [KernelTerm("shift", 1.0, f)]
        if self.kind == "user":
            return [KernelTerm("shift", 1.0, self._user_function(grid, sigma))]
        raise ValueError(f"kind must be one of {FAMILY_KINDS}, got {self.kind!r}")

    def _user_function(self, grid: Grid, sigma: float) -> KernelFunction:
        kernel = self.params["kernel"]
        if callable(kernel):

            def f(k: np.ndarray, g: Grid) -> np.ndarray:
                v = np.asarray(kernel(k * g.spacing, sigma), dtype=np.float64)
                if v.shape != k.shape[:-1]:
                    raise ValueError(
                        f"kernel(d, sigma) must return one weight per displacement, shape "
                        f"{k.shape[:-1]}, got {v.shape}"
                    )
                return check_kernel_values(v, "kernel(d, sigma)") if v.size else v

            return f
        if kernel.shape != grid.torus_shape:
            raise ValueError(
                f"kernel must have the grid's torus shape {grid.torus_shape} "
                f"(m = {grid.period_points} points per axis), got {kernel.shape}"
            )
        arr = np.fft.ifftshift(kernel) if self.params["centered"] else kernel

        def f(k: np.ndarray, g: Grid) -> np.ndarray:
            idx = np.mod(k, g.period_points)
            return arr[tuple(idx[..., a] for a in range(g.dim))]

        return f

    # -- configuration ---------------------------------------------------------------------------

    def to_config(self) -> dict:
        """The family as a JSON-serialisable dict (arrays as nested lists).

        A callable user kernel cannot be serialised (``ValueError``).
        """
        out: dict = {"kind": self.kind, "name": self.name}
        for key, value in self.params.items():
            if callable(value):
                raise ValueError("kernel: a callable user kernel cannot be written to a config")
            out[key] = value.tolist() if isinstance(value, np.ndarray) else value
        return out

    @classmethod
    def from_config(cls, config: dict) -> NoiseFamily:
        """Inverse of :meth:`to_config`."""
        cfg = dict(config)
        kind = check_choice(cfg.pop("kind", None), "kind", FAMILY_KINDS)
        name = cfg.pop("name", kind)
        for key in ("target", "kernel"):
            if cfg.get(key) is not None:
                cfg[key] = np.asarray(cfg[key], dtype=np.float64)
        return cls(kind, cfg, name)
