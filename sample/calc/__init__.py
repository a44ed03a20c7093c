"""calc: a tiny calculator library used by the selftest-core demo."""

from calc.arith import add, divide, multiply, subtract
from calc.stats import mean, median

__all__ = ["add", "subtract", "multiply", "divide", "mean", "median"]
