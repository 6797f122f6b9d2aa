"""The top-level names the issues promise: ``sepconv.separate(...)``, ``sepconv.weights.load``."""

import torch
from torch import nn

import sepconv


def test_separate_is_callable_from_the_top_level_and_exact_at_full_rank():
    model = nn.Sequential(nn.Conv2d(8, 16, 3, padding=1)).eval()
    new, report = sepconv.separate(model, to="depthwise", depth_multiplier=9, input_shape=(1, 8, 8, 8),
                                   measure_time=False)
    x = torch.randn(2, 8, 8, 8)
    assert torch.allclose(new(x), model(x), atol=1e-5)
    assert type(report).__name__ == "SeparationReport"
    from sepconv.separation import SeparationReport  # the package is still a package

    assert isinstance(report, SeparationReport)


def test_top_level_modules():
    assert callable(sepconv.weights.load) and callable(sepconv.analyze) and callable(sepconv.create_model)
