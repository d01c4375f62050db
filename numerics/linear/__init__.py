"""Linear-feature denoisers ``D^(x, t) = W phi(x, t)``: training, sampling and their theory.

Product features over space and time (:mod:`gtv.numerics.features`); closed-form DSM training of
an ensemble (:mod:`.model`); PF-ODE sampling on the shared driver of
:mod:`gtv.numerics.pfode` (:mod:`.sampler`); the population moments by deterministic quadrature
(:mod:`.population`; by Monte Carlo for many training points, :mod:`.monte_carlo`) and the
first-order-in-1/P theory built on them (:mod:`.theory`); the
second-order terms (:mod:`.second_order`); the closed form of a one-point ensemble
(:mod:`.single_point`); and the theories bound to a budget ``P`` as a
:class:`gtv.numerics.contract.EnsembleTheory` (:mod:`.prediction`; for the exact, noise-free
regression target :mod:`.exact_target`). The mathematics is in docs/math/linear.md.
"""

from gtv.numerics.linear.cavity import (
    CavityMoments,
    cavity_moments,
    cavity_moments_reference,
    sample_cavity_weights,
)
from gtv.numerics.linear.exact_target import ExactTargetLinear
from gtv.numerics.linear.model import (
    TARGETS,
    LinearEnsemble,
    normal_equations,
    normal_equations_reference,
    regression_targets,
    train_linear_ensemble,
)
from gtv.numerics.linear.monte_carlo import linear_model_theory_mc, population_triples
from gtv.numerics.linear.nodes import PopulationNodes, population_nodes
from gtv.numerics.linear.occupancy import (
    HEAVY_LEVERAGE,
    OccupancySplit,
    occupancy_split,
    sample_occupancy_weights,
)
from gtv.numerics.linear.occupancy_moments import (
    OCCUPANCY_MEMBERS,
    OccupancyLinear,
    OccupancyMoments,
    occupancy_moments,
)
from gtv.numerics.linear.population import population_solution, time_panel_width
from gtv.numerics.linear.prediction import (
    CavityLinear,
    FirstOrderLinear,
    LinearField,
    SecondOrderLinear,
)
from gtv.numerics.linear.sampler import (
    LOOKUPS,
    LinearSampler,
    sample_linear_ensemble,
    time_contracted_weights,
)
from gtv.numerics.linear.second_order import (
    TERM_NAMES,
    SecondOrderMoments,
    design_moments,
    second_order_denoiser_moments,
    second_order_moments,
)
from gtv.numerics.linear.single_point import constant_feature_index, single_point_ridge_weights
from gtv.numerics.linear.strata import STRATA, LightStrata, light_strata
from gtv.numerics.linear.theory import PARTS, LinearTheory, linear_model_theory, v_kernel_factor

__all__ = [
    "HEAVY_LEVERAGE",
    "OccupancySplit",
    "occupancy_split",
    "sample_occupancy_weights",
    "STRATA",
    "LightStrata",
    "light_strata",
    "OCCUPANCY_MEMBERS",
    "OccupancyLinear",
    "OccupancyMoments",
    "occupancy_moments",
    "CavityLinear",
    "CavityMoments",
    "PopulationNodes",
    "cavity_moments",
    "cavity_moments_reference",
    "population_nodes",
    "population_triples",
    "sample_cavity_weights",
    "LOOKUPS",
    "PARTS",
    "TARGETS",
    "TERM_NAMES",
    "ExactTargetLinear",
    "FirstOrderLinear",
    "LinearEnsemble",
    "LinearField",
    "LinearTheory",
    "SecondOrderLinear",
    "SecondOrderMoments",
    "constant_feature_index",
    "design_moments",
    "linear_model_theory",
    "linear_model_theory_mc",
    "normal_equations",
    "normal_equations_reference",
    "population_solution",
    "regression_targets",
    "LinearSampler",
    "sample_linear_ensemble",
    "second_order_denoiser_moments",
    "second_order_moments",
    "single_point_ridge_weights",
    "time_contracted_weights",
    "time_panel_width",
    "train_linear_ensemble",
    "v_kernel_factor",
]
