import pytest

from calc import mean, median


def test_mean():
    assert mean([1, 2, 3, 4]) == 2.5


@pytest.mark.parametrize("values, expected", [([3, 1, 2], 2), ([4, 1, 3, 2], 2.5)])
def test_median(values, expected):
    assert median(values) == expected
