"""Numeric layer of gtv: numba kernels, each with a plain-numpy reference. Imports no sympy.

Layout (one noun per subpackage, a shared base below them):

* base modules -- :mod:`.schedules` (compiled noise schedules), :mod:`.posterior` (posterior over
  training points, exact score, proxy covariance), :mod:`.features` (product bases),
  :mod:`.quadrature` (time and Gauss-Hermite rules), :mod:`.dsm` (DSM training triples),
  :mod:`.pfode` (time grid, start points and the one Euler/Heun PF-ODE driver every sampler
  uses), :mod:`.exact` (the exact-Bayes baseline sampler), :mod:`.checks` (argument checks),
  :mod:`.streams` (named random streams), :mod:`.io` (result files), :mod:`.histograms`,
  :mod:`.fastexp`, :mod:`.fasterf`, :mod:`.contract` (the protocol every theory implements);
* model classes -- :mod:`.linear` (linear-feature denoisers and their theory), :mod:`.naive` (the
  naive estimator), :mod:`.binned_affine` (binned affine denoisers on Gaussian data),
  :mod:`.kernel` (infinite-width networks: NTK regression and theory), :mod:`.two_layer`
  (finite-width two-layer networks);
* solvers -- :mod:`.fokker_planck`;
* generated code -- :mod:`._generated` (printed by :mod:`gtv.theory.codegen`; do not edit).

Code outside a subpackage imports from the subpackage (``from gtv.numerics.linear import
LinearTheory``).
"""
