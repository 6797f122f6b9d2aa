"""sepconv.engines.shapes: a deployment's input shape checked, or a zoo model's own; images checked
against the model's C, H and W."""

from __future__ import annotations

import doctest

import pytest
import torch
from torch import nn

from sepconv.engines import shapes
from sepconv.engines.shapes import check_images, check_shape, example_input
from sepconv.models import create_model


@pytest.mark.parametrize("shape", [(1, 3, 8, 8), [2, 1, 4, 5], torch.Size([1, 3, 2, 2])])
def test_check_shape_gives_a_tuple(shape):
    assert check_shape("input_shape", shape) == tuple(shape)


@pytest.mark.parametrize("shape", [(3, 8, 8), (1, 3, 8, 0), (1, 3, 8, 8.0), (1, 3, True, 8), "1x3x8x8", None])
def test_check_shape_refuses_anything_but_4_positive_ints(shape):
    with pytest.raises(ValueError, match=r"^input_shape=.* must be 4 positive integers \(B, C, H, W\)$"):
        check_shape("input_shape", shape)


def test_example_input_from_a_tensor_a_shape_or_the_zoo_models_default():
    x = torch.zeros(1, 3, 4, 4)
    assert example_input(nn.Identity(), x) is x
    a, b = example_input(nn.Identity(), (2, 3, 5, 5)), example_input(nn.Identity(), [2, 3, 5, 5])
    assert a.shape == (2, 3, 5, 5) and torch.equal(a, b)  # random, but the same every time
    assert example_input(create_model("mobilefacenet", img_size=96), None).shape == (1, 3, 96, 96)
    message = "model=Conv2d was not built by sepconv.create_model, so give its input shape"
    with pytest.raises(ValueError, match=message) as err:
        example_input(nn.Conv2d(3, 3, 1), None)
    assert err.value.argument == "input_shape"


def test_check_images_wants_the_models_channels_and_size():
    check_images("calibration", torch.zeros(7, 3, 8, 8), (1, 3, 8, 8))
    for bad in (torch.zeros(7, 1, 8, 8), torch.zeros(7, 3, 8, 9), torch.zeros(3, 8, 8)):
        with pytest.raises(ValueError, match=r"^calibration has shape .*; the model takes \(N, 3, 8, 8\)$"):
            check_images("calibration", bad, (1, 3, 8, 8))


def test_docstring_example():
    result = doctest.testmod(shapes)
    assert result.attempted > 0 and result.failed == 0


def test_check_forward_refuses_a_tuple_and_endless_recursion():
    import pytest
    import torch
    from torch import nn

    from sepconv.engines.shapes import check_forward

    class Pair(nn.Module):
        def forward(self, x):
            return x, x

    class Forever(nn.Module):
        def forward(self, x):
            return self(x)

    x = torch.zeros(1, 3, 4, 4)
    assert torch.equal(check_forward(nn.Identity(), x, "export"), x)
    with pytest.raises(ValueError, match=r"Pair returns a tuple, not a tensor; export needs"):
        check_forward(Pair(), x, "export")
    with pytest.raises(ValueError, match=r"Forever's forward recursed without end"):
        check_forward(Forever(), x, "export")
