"""sepconv.layers as documented: every docstring example runs and prints what it shows; every exported name exists."""

from __future__ import annotations

import doctest
import importlib

import pytest
import torch

import sepconv.layers as L


@pytest.mark.parametrize(
    "module", ["padding", "conv", "depthwise", "grouped", "segmented", "spatial", "squeeze_excite", "blocks", "inception", "residual", "norm"]
)
def test_docstring_examples(module):
    mod = importlib.import_module(f"sepconv.layers.{module}")
    result = doctest.testmod(mod, extraglobs={"torch": torch}, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_public_api_is_complete():
    assert [n for n in L.__all__ if not hasattr(L, n)] == []
    assert {"SeparableConv2d", "DepthwiseConv2d", "make_divisible", "MaxPool2d"} <= set(L.__all__)
