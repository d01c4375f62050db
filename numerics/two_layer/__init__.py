"""Finite-width two-layer networks in NTK parameterization, trained by gradient descent on DSM.

The compiled forward, vector-Jacobian and Jacobian-vector passes and the gradient-descent kernel
(:mod:`.network`, with plain-numpy references in :mod:`.reference`), the ensemble object
(:mod:`.ensemble`), training sets and initial parameters (:mod:`.init`), the stability limit of
gradient descent (:mod:`.stability`), training with checkpoints (:mod:`.training`), the empirical
tangent kernel and the linearized model (:mod:`.linearized`) and the PF-ODE sampler
(:mod:`.sampler`). Inputs are those of the kernel theory (:mod:`gtv.numerics.kernel.inputs`);
the mathematics is in docs/math/kernel.md.
"""

from gtv.numerics.two_layer.checks import INITS, check_learning_rate, check_width, taus_to_steps
from gtv.numerics.two_layer.ensemble import TwoLayerNetworks
from gtv.numerics.two_layer.init import (
    TwoLayerInit,
    init_two_layer_ensemble,
    seed_from_config,
    seed_to_config,
)
from gtv.numerics.two_layer.linearized import (
    empirical_ntk,
    linearized_ensemble_predictions,
    linearized_predictions,
)
from gtv.numerics.two_layer.network import (
    ACTIVATIONS,
    activation_code,
    forward,
    gd_steps,
    jvp,
    vjp,
)
from gtv.numerics.two_layer.reference import (
    forward_reference,
    gd_steps_reference,
    jvp_reference,
    vjp_reference,
)
from gtv.numerics.two_layer.sampler import sample_two_layer_ensemble, sample_two_layer_reference
from gtv.numerics.two_layer.stability import gauss_newton_lmax, stability_limit
from gtv.numerics.two_layer.training import (
    TwoLayerTrajectory,
    train_two_layer,
    train_two_layer_ensemble,
)

__all__ = [
    "ACTIVATIONS",
    "INITS",
    "TwoLayerInit",
    "TwoLayerNetworks",
    "TwoLayerTrajectory",
    "activation_code",
    "check_learning_rate",
    "check_width",
    "empirical_ntk",
    "forward",
    "forward_reference",
    "gauss_newton_lmax",
    "gd_steps",
    "gd_steps_reference",
    "init_two_layer_ensemble",
    "jvp",
    "jvp_reference",
    "linearized_ensemble_predictions",
    "linearized_predictions",
    "sample_two_layer_ensemble",
    "sample_two_layer_reference",
    "seed_from_config",
    "seed_to_config",
    "stability_limit",
    "taus_to_steps",
    "train_two_layer",
    "train_two_layer_ensemble",
    "vjp",
    "vjp_reference",
]
