"""sepconv._util.runtime: eval_mode and threads_set_to change the process's state for a block only and
restore it, on an exception too; what the machine offers (cores, CPU name, load, busy)."""

from __future__ import annotations

import doctest

import pytest
import torch
from torch import nn

from sepconv._util import runtime
from sepconv._util.checks import ArgumentError
from sepconv._util.runtime import cores, cpu_name, eval_mode, is_busy, load_average, thread_count, threads_set_to


def test_eval_mode_restores_each_submodules_own_flag():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.Sequential(nn.Dropout(), nn.ReLU()))
    model.train()
    model[1].eval()  # frozen statistics: model.train() afterwards would wrongly wake it
    model[2][0].eval()
    before = {name: m.training for name, m in model.named_modules()}
    with eval_mode(model) as inside:
        assert inside is model
        assert not any(m.training for m in model.modules())
    assert {name: m.training for name, m in model.named_modules()} == before


def test_eval_mode_restores_on_an_exception():
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout()).train()
    with pytest.raises(RuntimeError, match="inside"), eval_mode(model):
        raise RuntimeError("inside")
    assert model.training and model[0].training and model[1].training


def test_threads_set_to_sets_for_the_block_and_restores():
    before = torch.get_num_threads()
    other = 1 if before != 1 else 2
    with threads_set_to(other):
        assert torch.get_num_threads() == other
    assert torch.get_num_threads() == before


def test_threads_set_to_restores_on_an_exception():
    before = torch.get_num_threads()
    other = 1 if before != 1 else 2
    with pytest.raises(KeyboardInterrupt), threads_set_to(other):
        raise KeyboardInterrupt
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("threads", [0, -1, 1.5, True])
def test_threads_set_to_refuses_a_bad_count_before_changing_anything(threads):
    before = torch.get_num_threads()
    with pytest.raises(ArgumentError, match=f"threads={threads!r} must be a positive integer"):
        with threads_set_to(threads):
            pass
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("load, ncores, busy", [
    (1.5, 2, True), (1.49, 2, False), (3.0, 4, True), (0.0, 1, False),
    (None, 2, False), (5.0, None, False), (5.0, 0, False),
])
def test_busy_means_a_load_of_three_quarters_of_the_cores(load, ncores, busy):
    assert is_busy(load, ncores) is busy


def test_what_the_machine_offers():
    assert isinstance(cores(), int) and cores() >= 1
    assert isinstance(cpu_name(), str) and cpu_name()
    load = load_average()
    assert load is None or (load >= 0 and round(load, 2) == load)


def test_docstring_example():
    result = doctest.testmod(runtime, extraglobs={"torch": torch})
    assert result.attempted > 0 and result.failed == 0


def test_threads_set_to_refuses_more_threads_than_cores():
    before = torch.get_num_threads()
    too_many = cores() + 1
    with pytest.raises(ArgumentError, match=f"threads={too_many} is more than the {cores()} cores"):
        with threads_set_to(too_many):
            pass
    assert torch.get_num_threads() == before
    assert thread_count("threads", cores()) == cores()
