"""fold_bn: exact over the whole zoo, and only where a BN can be folded."""

from __future__ import annotations

import pytest
import torch
from support.deploy import MODELS, randomize_norms, small_model, small_size
from torch import nn

from sepconv.deploy import fold_bn, remaining_norms
from sepconv.engines.fold import find_foldable
from sepconv.layers import ConvNormAct, SeparableConv2d

pytestmark = pytest.mark.usefixtures("threads_unchanged")


@pytest.mark.parametrize("name", MODELS)
def test_fold_every_zoo_model_is_exact_and_leaves_no_norm(name):
    size = small_size(name)
    model = small_model(name)
    x = torch.randn(2, 3, size, size)
    before = remaining_norms(model)
    folded = fold_bn(model, x)
    assert remaining_norms(folded) == []
    with torch.no_grad():
        want, got = model(x), folded(x)
    assert want.std() > 0.1, "activations died: the check would be empty"
    # float32 rounding, which grows with the norms folded (ResNet-152 folds 155 in a row of 50 residual blocks)
    depth = max(1.0, len(before) / 50)
    assert (got - want).abs().max() <= 1e-4 * depth * max(1.0, want.abs().max().item())
    # folded in float64 it is exact to float64 rounding: any real mistake would show here
    model64 = model.double()
    folded64 = fold_bn(model64, x.double())
    with torch.no_grad():
        want, got = model64(x.double()), folded64(x.double())
    assert (got - want).abs().max() <= 1e-10 * max(1.0, want.abs().max().item())
    assert remaining_norms(model) == before, "the original model must be left as it was"


def test_fold_is_not_a_no_op():
    model = randomize_norms(nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4))).eval()
    folded = fold_bn(model, (1, 3, 8, 8))
    assert isinstance(folded[1], nn.Identity)
    assert not torch.equal(folded[0].weight, model[0].weight)
    assert folded[0].bias is not None and model[0].bias is None
    x = torch.randn(1, 3, 8, 8)
    torch.testing.assert_close(folded(x), model(x), rtol=1e-5, atol=1e-6)


class SharedOutput(nn.Module):
    """The conv's output feeds the BN and the residual sum: folding would change the sum."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn = nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)

    def forward(self, x):
        y = self.conv(x)
        return self.bn(y) + y


class ReluBetween(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn = nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4)

    def forward(self, x):
        return self.bn(torch.relu(self.conv(x)))


class CalledTwice(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn = nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4)

    def forward(self, x):
        return self.bn(self.conv(x)) + self.conv(x)


@pytest.mark.parametrize("cls", [SharedOutput, ReluBetween, CalledTwice])
def test_unfoldable_norms_are_left_in_place_and_the_result_stays_exact(cls):
    model = randomize_norms(cls()).eval()
    x = torch.randn(2, 4, 6, 6)
    folded = fold_bn(model, x)
    assert remaining_norms(folded) == ["bn"]
    torch.testing.assert_close(folded(x), model(x))


def test_norm_after_separable_conv_and_after_flattened_conv_and_linear():
    class Head(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.sep, self.bn = SeparableConv2d(4, 8, 3), nn.BatchNorm2d(8)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.embed, self.embed_bn = nn.Conv2d(8, 6, 1, bias=False), nn.BatchNorm1d(6)
            self.fc, self.fc_bn = nn.Linear(6, 5), nn.BatchNorm1d(5)

        def forward(self, x):
            x = self.pool(self.bn(self.sep(x)))
            x = self.embed_bn(self.embed(x).flatten(1))
            return self.fc_bn(self.fc(x))

    model = randomize_norms(Head()).eval()
    x = torch.randn(3, 4, 8, 8)
    pairs = {(p.producer, p.norm) for p in find_foldable(model, x)}
    assert pairs == {("sep.pw", "bn"), ("embed", "embed_bn"), ("fc", "fc_bn")}
    folded = fold_bn(model, x)
    assert remaining_norms(folded) == []
    torch.testing.assert_close(folded(x), model(x), rtol=1e-5, atol=1e-5)


def test_tf_same_padding_and_conv_norm_act():
    model = randomize_norms(ConvNormAct(3, 8, 3, stride=2, padding="tf_same", act_layer=nn.Hardswish)).eval()
    x = torch.randn(1, 3, 9, 10)
    folded = fold_bn(model, x)
    assert isinstance(folded.norm, nn.Identity)
    torch.testing.assert_close(folded(x), model(x), rtol=1e-5, atol=1e-5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="must be a torch.nn.Module"):
        fold_bn("mobilenet_v2")
    with pytest.raises(ValueError, match="give its input shape"):
        fold_bn(nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4)))
    with pytest.raises(ValueError, match="input_shape=.*4 positive integers"):
        fold_bn(nn.Conv2d(3, 4, 1), (3, 8, 8))
