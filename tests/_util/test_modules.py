"""sepconv._util.modules: replace a submodule wherever it is held, and find every tensor in a nested value."""

from __future__ import annotations

import torch
from torch import nn

from sepconv._util.modules import replace_module, tensors_in


def test_replace_module_points_every_parent_at_the_new_module():
    shared = nn.Conv2d(3, 3, 1)
    root = nn.Sequential(shared, nn.ModuleDict({"a": shared, "b": nn.ReLU()}), nn.Sequential(nn.ReLU(), shared))
    new = nn.Identity()
    replace_module(root, shared, new)
    assert root[0] is new and root[1]["a"] is new and root[2][1] is new
    assert shared not in list(root.modules())
    assert isinstance(root[1]["b"], nn.ReLU) and isinstance(root[2][0], nn.ReLU)  # the rest is untouched


def test_replace_module_of_an_absent_module_changes_nothing():
    root = nn.Sequential(nn.ReLU(), nn.Tanh())
    before = list(root)
    replace_module(root, nn.ReLU(), nn.Identity())  # an equal module, but not the same object
    assert list(root) == before


def test_tensors_in_finds_every_tensor_in_order():
    a, b, c, d = (torch.full((1,), float(i)) for i in range(4))
    value = (a, [b, {"x": c, "y": "not a tensor", "z": (None, d)}], 3)
    assert [t.item() for t in tensors_in(value)] == [0.0, 1.0, 2.0, 3.0]
    assert list(tensors_in(a))[0] is a
    assert list(tensors_in(None)) == [] and list(tensors_in("text")) == [] and list(tensors_in({})) == []
