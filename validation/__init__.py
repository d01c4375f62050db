"""Validation layer of gtv: trained ensembles, theory-vs-simulation comparisons, figures, CLI."""
