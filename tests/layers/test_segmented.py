"""SegmentedSeparableConv2d (Xception's spectrum): a pointwise conv, then a k x k conv in S segments."""

from __future__ import annotations

import pytest
import torch
from support.layers import conv_ref, depthwise_ref, grouped_ref, pointwise_ref
from torch.testing import assert_close

from sepconv.layers import DepthwiseConv2d, SegmentedSeparableConv2d


def test_segmented_one_segment_is_pointwise_then_full_conv():
    x = torch.randn(2, 6, 8, 8)
    m = SegmentedSeparableConv2d(6, 8, 3, segments=1)
    assert m.spatial.groups == 1 and m.spatial.weight.shape == (8, 8, 3, 3)
    ref = conv_ref(pointwise_ref(x, m.pw.weight), m.spatial.weight, None, "same")
    assert_close(m(x), ref)


@pytest.mark.parametrize("s", [1, 2])
def test_segmented_out_channels_segments_is_pointwise_then_depthwise(s):
    x = torch.randn(2, 6, 8, 8)
    m = SegmentedSeparableConv2d(6, 8, 3, segments=8, stride=s, padding="tf_same")
    assert m.spatial.weight.shape == (8, 1, 3, 3)
    mid = pointwise_ref(x, m.pw.weight)
    assert_close(m(x), depthwise_ref(mid, m.spatial.weight, None, 1, "tf_same", s))
    dw = DepthwiseConv2d(8, 3, stride=s, padding="tf_same")
    with torch.no_grad():
        dw.weight.copy_(m.spatial.weight)
    assert_close(m(x), dw(m.pw(x)))


def test_segmented_intermediate_segments():
    x = torch.randn(1, 4, 7, 7)
    m = SegmentedSeparableConv2d(4, 8, 3, segments=4, bias=True)
    mid = pointwise_ref(x, m.pw.weight)
    assert_close(m(x), grouped_ref(mid, m.spatial.weight, m.spatial.bias, 4, "same"))
    assert m.pw.bias is None and m.spatial.bias is not None
