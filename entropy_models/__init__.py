"""Probabilistic models of latents and the range coder that turns their probabilities into bits."""

from .cdf_tables import CdfTables
from .factorized import FactorizedPrior
from .gaussian import GaussianConditional
from .multi_reference import MultiReferenceEntropyModel
from .range_coder import RangeDecoder, RangeEncoder, StreamError

__all__ = [
    "CdfTables",
    "FactorizedPrior",
    "GaussianConditional",
    "MultiReferenceEntropyModel",
    "RangeDecoder",
    "RangeEncoder",
    "StreamError",
]
