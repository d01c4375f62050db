"""Diffusion models as associative memories: energies, attractors and sample classes.

The empirical score of K training points at noise level t is the gradient of a dense
associative-memory energy (docs/math/memorization.md). This subpackage holds that energy with its
gradient and Hessian and the modern-Hopfield (CCCP) fixed-point iteration (:mod:`.energy`,
:mod:`.hopfield`), a general attractor search for any denoiser map ``y -> D^(alpha_t y, t)`` and
for the PF-ODE end map (:mod:`.attractors`), nearest-neighbour distances and the published sample
classifications -- memorized / spurious / generalized (:mod:`.nearest`, :mod:`.classify`,
labels in :mod:`.labels`) -- the critical time of a sample's basin and the attractor criterion
(:mod:`.critical_time`), the denoiser maps of every model class (:mod:`.denoisers`), closed-form
landscapes (:mod:`.landscapes`: the circle's ring, two memories) and the collapse time of
Biroli et al. (:mod:`.collapse`). The experiments built on it are docs/memorization.md.
"""

from gtv.numerics.memory.attractors import (
    Attractors,
    EndMapAttractors,
    attractor_starts,
    end_map_attractors,
    find_attractors,
    integrate_pf_ode,
)
from gtv.numerics.memory.classify import (
    SampleClasses,
    classify_samples,
    classify_samples_ratio,
    default_thresholds,
    ratio_memorized,
)
from gtv.numerics.memory.collapse import (
    MeasuredCollapse,
    collapse_time,
    measured_collapse_time,
    time_at_snr,
)
from gtv.numerics.memory.critical_time import (
    AttractorClasses,
    CriticalTimes,
    classify_by_attractors,
    critical_times,
    log_density_barriers,
)
from gtv.numerics.memory.denoisers import (
    DenoiserMap,
    ExactDenoiser,
    FunctionDenoiser,
    ModelDenoiser,
)
from gtv.numerics.memory.energy import (
    am_energy,
    am_gradient,
    am_hessian,
    data_energy,
    data_gradient,
    data_hessian,
)
from gtv.numerics.memory.hopfield import HopfieldResult, hopfield_fixed_points
from gtv.numerics.memory.labels import GENERALIZED, LABEL_NAMES, MEMORIZED, SPURIOUS
from gtv.numerics.memory.landscapes import (
    circle_energy,
    circle_radial_score,
    circle_radius,
    merge_time,
    two_memory_minimum,
)
from gtv.numerics.memory.nearest import NearestTwo, nearest_two

__all__: list[str] = [
    "AttractorClasses",
    "Attractors",
    "CriticalTimes",
    "log_density_barriers",
    "DenoiserMap",
    "EndMapAttractors",
    "ExactDenoiser",
    "FunctionDenoiser",
    "GENERALIZED",
    "LABEL_NAMES",
    "MEMORIZED",
    "ModelDenoiser",
    "SPURIOUS",
    "attractor_starts",
    "classify_by_attractors",
    "critical_times",
    "end_map_attractors",
    "find_attractors",
    "integrate_pf_ode",
    "NearestTwo",
    "nearest_two",
    "SampleClasses",
    "classify_samples",
    "classify_samples_ratio",
    "default_thresholds",
    "ratio_memorized",
    "am_energy",
    "am_gradient",
    "am_hessian",
    "data_energy",
    "data_gradient",
    "data_hessian",
    "HopfieldResult",
    "hopfield_fixed_points",
    "MeasuredCollapse",
    "collapse_time",
    "measured_collapse_time",
    "time_at_snr",
    "circle_energy",
    "circle_radial_score",
    "circle_radius",
    "merge_time",
    "two_memory_minimum",
]
