"""Saving and loading results with their configuration: see :mod:`numerics.results_io`."""

from numerics.results_io import load_result, save_result

__all__ = ["load_result", "save_result"]
