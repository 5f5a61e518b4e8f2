"""The model language: Python syntax parsed with ``ast``, type-checked, never evaluated."""

from .check import Scope, Symbol, check_code, check_expr
from .functions import FUNCTIONS, RANDOM_FUNCTIONS
from .parse import ModelCodeError, parse_code, parse_expr

__all__ = [
    "FUNCTIONS", "RANDOM_FUNCTIONS", "ModelCodeError", "Scope", "Symbol",
    "check_code", "check_expr", "parse_code", "parse_expr",
]
