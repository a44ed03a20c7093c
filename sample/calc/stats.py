"""Small statistics helpers built on calc.arith."""

from calc.arith import add, divide


def mean(values):
    values = list(values)
    if not values:
        raise ValueError("mean of empty sequence")
    total = 0
    for v in values:
        total = add(total, v)
    return divide(total, len(values))


def median(values):
    values = sorted(values)
    if not values:
        raise ValueError("median of empty sequence")
    mid = len(values) // 2
    if len(values) % 2:
        return values[mid]
    return divide(add(values[mid - 1], values[mid]), 2)
