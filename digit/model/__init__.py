"""The DIGIT network: settings, modules, decoding and the output type."""

from digit.model.config import VARIANTS, NetworkConfig
from digit.model.network import DigitNet, count_parameters, parameter_breakdown
from digit.model.output import DigitOutput

__all__ = [
    "VARIANTS",
    "DigitNet",
    "DigitOutput",
    "NetworkConfig",
    "count_parameters",
    "parameter_breakdown",
]
