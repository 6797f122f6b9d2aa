"""make_divisible: the channel rounding of the TensorFlow MobileNet reference code (kept by torchvision and timm)."""

from __future__ import annotations

import pytest

from sepconv.layers import make_divisible


# Expected values worked by hand from the TF rule: new = max(8, int(v + 4) // 8 * 8), plus 8 if new < 0.9 v.
@pytest.mark.parametrize(
    "value, expected",
    [
        (32 * 0.35, 16),  # int(15.2) // 8 * 8 = 8 < 10.08 -> 16
        (16 * 0.5, 8),  # int(12.0) // 8 * 8 = 8
        (24 * 0.75, 24),  # 16 < 16.2 -> 24
        (96 * 0.35, 32),  # int(37.6) // 8 * 8 = 32 >= 30.24
        (1280 * 1.4, 1792),
        (3, 8),  # int(7) // 8 * 8 = 0 -> the minimum 8
        (12, 16),  # halves round up
        (36, 40),
        (35.9, 40),  # 32 < 32.31 -> 40
        (72 // 4, 24),  # MobileNetV3's SE squeeze for 72 channels
        (120 // 4, 32),
        (240 // 4, 64),
        (960 // 4, 240),
    ],
)
def test_make_divisible_known_values(value, expected):
    assert make_divisible(value, 8) == expected


def test_make_divisible_other_divisors_and_minimum():
    assert make_divisible(10, 4) == 12  # int(12) // 4 * 4
    assert make_divisible(3, 8, min_value=4) == 4
    assert make_divisible(100, 1) == 100
