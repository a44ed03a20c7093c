import pytest

from calc.arith import add, divide, multiply, subtract


def test_add():
    assert add(2, 3) == 5


def test_subtract_and_multiply():
    assert subtract(7, 2) == 5
    assert multiply(4, 3) == 12


def test_divide():
    assert divide(9, 3) == 3


def test_divide_by_zero():
    with pytest.raises(ZeroDivisionError):
        divide(1, 0)
