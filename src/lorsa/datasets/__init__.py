"""Data sets: the paper's synthetic generator (SPEC §8) and MovieLens loaders."""

from .synthetic import LRSProblem, make_lrs_regression, random_support

__all__ = ["LRSProblem", "make_lrs_regression", "random_support"]
