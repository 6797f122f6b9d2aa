"""Per-layer training passes: a forward and a backward for every layer, a conv's backward split in two,
the activations kept for backward, and the model left as it was."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sepconv.cost import analyze
from sepconv.profile.layers import MIN_REPEATS
from sepconv.profile.training import check_batch, check_trainable, saved_bytes, time_training_layers

pytestmark = pytest.mark.usefixtures("one_thread")


def profile(model: nn.Module, shape=(2, 3, 32, 32), **kwargs):
    names = [row.name for row in analyze(model, shape).layers]
    return time_training_layers(model, torch.randn(shape), names, **{"repeats": 2, "warmup": 0, **kwargs})


def test_every_layer_has_a_forward_and_every_conv_a_split_backward(small_net):
    result = profile(small_net)
    cost = analyze(small_net, (2, 3, 32, 32))
    assert [row.name for row in result.layers] == [row.name for row in cost.layers]
    kinds = {row.name: row.kind for row in cost.layers}
    convs = [row for row in result.layers if kinds[row.name] in ("standard", "depthwise", "pointwise", "grouped")]
    assert len(convs) == 6
    for row in result.layers:
        assert len(row.forward.samples_ms) == 2 and row.forward.median_ms > 0
        assert row.backward is not None, row.name  # every layer here has something to differentiate
        assert row.saved_bytes >= 0
    first, *rest = convs
    assert not first.needs_input_grad and first.input_grad is None and first.weight_grad is not None
    for row in rest:
        assert row.needs_input_grad and row.input_grad is not None and row.weight_grad is not None, row.name
        assert row.input_grad.median_ms > 0 and row.weight_grad.median_ms > 0
    others = [row for row in result.layers if row not in convs]
    assert all(row.input_grad is None and row.weight_grad is None for row in others)
    assert result.saved_bytes > 0 and len(result.model.samples_ms) == 2
    assert result.layers_ms == pytest.approx(sum(r.forward.median_ms + r.backward.median_ms for r in result.layers))


def test_saved_bytes_count_activations_not_weights():
    conv = nn.Conv2d(3, 8, 3, bias=False)
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    kept, out = saved_bytes(lambda: conv(x), conv.parameters())
    assert kept == x.numel() * 4 and out.shape == (2, 8, 6, 6)
    relu = nn.ReLU()
    kept, _ = saved_bytes(lambda: relu(conv(x)), conv.parameters())
    assert kept == x.numel() * 4 + 2 * 8 * 6 * 6 * 4  # the conv's input and the ReLU's output


def test_the_model_is_left_as_it_was(small_net):
    small_net.eval()
    state = {k: v.clone() for k, v in small_net.state_dict().items()}
    relu = nn.ReLU(inplace=True)
    model = nn.Sequential(small_net[0], relu, small_net[1])
    profile(model)
    assert not small_net.training and relu.inplace
    assert all(torch.equal(state[k], v) for k, v in small_net.state_dict().items())  # running stats too
    assert all(p.grad is None for p in small_net.parameters())


def test_in_place_activations_are_replayed_out_of_place():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(inplace=True), nn.Conv2d(4, 4, 1))
    result = profile(model, (2, 3, 8, 8))
    assert [row.name for row in result.layers] == ["0", "1", "2", "3"]
    assert result.layers[2].backward is not None


def test_budget_stops_after_the_minimum_rounds(small_net):
    result = profile(small_net, repeats=50, budget_s=0.0)
    assert len(result.model.samples_ms) == MIN_REPEATS


@pytest.mark.parametrize("call, argument, message", [
    (lambda: check_batch((1, 3, 32, 32)), "input_shape", "input_shape=1x3x32x32: a training profile needs a batch "
                                                         "of at least 2"),
    (lambda: check_trainable(nn.ReLU(), "torch.nn:ReLU"), "train",
     "train=True needs a model with trainable parameters, and model='torch.nn:ReLU' has none"),
    (lambda: check_trainable(nn.Conv2d(3, 3, 1).requires_grad_(False)), "train", "model=Conv2d has none"),
    (lambda: profile(nn.Conv2d(3, 3, 1), (1, 3, 8, 8)), "input_shape", "e.g. 8x3x8x8"),
])
def test_bad_input_is_an_argument_error(call, argument, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")) as err:
        call()
    assert err.value.argument == argument
