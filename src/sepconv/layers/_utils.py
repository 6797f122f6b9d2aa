"""Channel rounding shared by the MobileNet families."""

from __future__ import annotations

from .._util.checks import positive_int


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None, round_limit: float = 0.9) -> int:
    """Round ``value`` to the nearest multiple of ``divisor``, never going below ``round_limit`` of it.

    The rule of the TensorFlow MobileNet reference code, kept by torchvision and timm; needed for
    their exact channel counts at fractional widths.
    """
    positive_int("divisor", divisor)
    min_value = min_value or divisor
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new < round_limit * value:
        new += divisor
    return new
