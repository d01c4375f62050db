"""Diffusion as serial reproduction (Marjieh et al., ICML 2023): exact Bayesian chains on grids.

A diffusion sampler is a chain of serial-reproduction units: observe a noisy state, reproduce it
with the exact Bayesian denoiser. This subpackage computes such chains exactly on 1-D and 2-D
grids -- the true periodic torus or the authors' grid with its duplicated boundary
(:mod:`.grid`) -- for several noise families (:mod:`.families`: Gaussian, bimodal, trimodal,
fade to a density, Laplace, box, user kernels) and schedules (:mod:`.schedules`). Kernels are
applied as FFT circular convolutions plus diagonal and rank-one terms (:mod:`.operator`), never as
``M x M`` matrices; :mod:`.chains` holds the forward marginals, the denoisers, the sampling chains
and homogeneous serial-reproduction chains, :mod:`.metrics` the measures in bits, and
:mod:`.reference` the authors' dense algorithm as the plain reference. The theory (the AR(1) form
of the Gaussian chain) is :mod:`gtv.theory.serial`.

Bad input raises ``ValueError`` naming the argument before any work: a density (data, start,
prior, fade target) that has the wrong shape, is negative or non-finite, or does not sum to 1
within 1e-9 is rejected, never renormalised; so are kernels with negative entries, schedules with
a width <= 0 or a fade probability outside [0, 1], grids with fewer than 2 points per axis and
empty schedules (T < 1).
"""

from gtv.numerics.serial.chains import (
    DiffusionChain,
    SerialReproduction,
    check_chain_arguments,
    forward_marginals,
    generate,
    homogeneous_chain,
)
from gtv.numerics.serial.families import (
    AUTHORS_STAY_SD,
    BOX_SHAPES,
    FAMILY_KINDS,
    KernelTerm,
    NoiseFamily,
)
from gtv.numerics.serial.grid import DENSITY_ATOL, LAYOUTS, Grid
from gtv.numerics.serial.metrics import (
    AUTHORS_EPS,
    channel_entropy_bits,
    complexity_bits,
    consecutive_kl_bits,
    entropy_bits,
    jsd_bits,
    kl_bits,
    lag_kl_bits,
    mutual_information_bits,
    stationarity_score,
    step_information_bits,
)
from gtv.numerics.serial.operator import FLOOR_LIMIT, RATIO_LIMIT, KernelOperator
from gtv.numerics.serial.reference import (
    DenseChain,
    DenseSerialReproduction,
    dense_kernel_matrix,
    dense_posterior_matrix,
    pairwise_displacement_index,
)
from gtv.numerics.serial.schedules import SCHEDULE_KINDS, SCHEDULE_SHAPES, schedule

__all__ = [
    "AUTHORS_EPS",
    "AUTHORS_STAY_SD",
    "BOX_SHAPES",
    "DENSITY_ATOL",
    "FAMILY_KINDS",
    "FLOOR_LIMIT",
    "LAYOUTS",
    "RATIO_LIMIT",
    "SCHEDULE_KINDS",
    "SCHEDULE_SHAPES",
    "DenseChain",
    "DenseSerialReproduction",
    "DiffusionChain",
    "Grid",
    "KernelOperator",
    "KernelTerm",
    "NoiseFamily",
    "SerialReproduction",
    "channel_entropy_bits",
    "check_chain_arguments",
    "complexity_bits",
    "consecutive_kl_bits",
    "dense_kernel_matrix",
    "dense_posterior_matrix",
    "entropy_bits",
    "forward_marginals",
    "generate",
    "homogeneous_chain",
    "jsd_bits",
    "kl_bits",
    "lag_kl_bits",
    "mutual_information_bits",
    "pairwise_displacement_index",
    "schedule",
    "stationarity_score",
    "step_information_bits",
]
