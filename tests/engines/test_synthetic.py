"""lively_weights: random weights with trained-looking BatchNorms — statistics of a real batch, a random
affine, He-initialised convs with non-zero biases — so that folding and int8 checks have something to see."""

from __future__ import annotations

import doctest

import torch
from torch import nn

from sepconv.engines import synthetic
from sepconv.engines.synthetic import lively_weights


def net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8, momentum=0.1), nn.ReLU(), nn.Conv2d(8, 8, 3, groups=8),
                         nn.BatchNorm2d(8), nn.Flatten(), nn.Linear(8 * 4 * 4, 5))


def test_norms_take_the_batch_statistics_and_a_random_affine():
    model = net().train()
    x = torch.randn(16, 3, 8, 8)
    out = lively_weights(model, x)
    assert out is model and not any(m.training for m in model.modules())
    assert model[1].momentum == 0.1  # momenta restored
    with torch.no_grad():
        first = model[0](x)
    torch.testing.assert_close(model[1].running_mean, first.mean((0, 2, 3)), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(model[1].running_var, first.var((0, 2, 3)), rtol=1e-4, atol=1e-5)
    for bn in (model[1], model[4]):
        assert bool(((bn.weight >= 0.5) & (bn.weight <= 1.5)).all()) and bool((bn.bias != 0).all())


def test_layers_get_he_initialisation_with_small_biases():
    model = lively_weights(net(), torch.randn(4, 3, 8, 8))
    conv = model[0]
    fan_in = conv.weight[0].numel()
    assert abs(float(conv.weight.detach().std()) - (2.0 / fan_in) ** 0.5) < 0.3 * (2.0 / fan_in) ** 0.5
    assert bool((conv.bias != 0).all()) and float(conv.bias.detach().abs().max()) < 1.0


def test_the_same_seed_gives_the_same_weights():
    x = torch.randn(4, 3, 8, 8)
    a, b, c = lively_weights(net(), x), lively_weights(net(), x), lively_weights(net(), x, seed=1)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a[0].weight, c[0].weight)


def test_docstring_example():
    result = doctest.testmod(synthetic, extraglobs={"torch": torch})
    assert result.attempted > 0 and result.failed == 0
