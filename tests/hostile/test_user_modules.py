"""Hostile input, family 6: a user's own module (``package.module:callable``) that returns the wrong
thing, has no convolution, recurses or fails, through the commands that take one. Each must end in
exit code 2 and one line naming the callable and what it returned or did — never a traceback."""

from __future__ import annotations

import pytest
from support.hostile import Case, problems, run_cases_once

SOURCE = '''
import torch
from torch import nn


class Pair(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        y = self.conv(x)
        return y, y


class Forever(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        return self(self.conv(x))


def returns_tuple():
    return Pair()


def no_conv():
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))


def recurses():
    return Forever()


def not_a_module():
    return 42


def raises():
    raise RuntimeError("the user's builder failed")


NOT_CALLABLE = 7
'''

TARGETS = ["returns_tuple", "no_conv", "recurses", "not_a_module", "raises", "NOT_CALLABLE", "missing"]
COMMANDS = {
    "profile": ["profile", "{spec}", "--input", "1x3x32x32", "--budget", "1"],
    "export": ["export", "{spec}", "--input-size", "32", "--out", "m.onnx"],
    "separate": ["separate", "{spec}", "--input-size", "32", "--out", "s.safetensors", "--no-time"],
    "bench": ["bench", "{spec}", "--input-size", "32"],
}
# Models that work are not bad input: no_conv profiles, exports and benches (nothing there needs a
# conv; separating it has nothing to separate, said in one line), and a tuple-returning model can be
# profiled and benched (only export needs one output tensor).
WORKS = {("no_conv", "profile"), ("no_conv", "export"), ("no_conv", "bench"), ("returns_tuple", "profile"),
         ("returns_tuple", "bench")}
# export and profile run the model and name its class; separate and bench name the spec
NAMES = {("returns_tuple", "export"): "Pair", ("recurses", "export"): "Forever", ("recurses", "profile"): "Forever"}
CASES = [Case(f"{command}-{target}", [a.replace("{spec}", f"usermods_{command}_{target}:{target}") for a in argv],
              files={f"usermods_{command}_{target}.py": SOURCE}, names=NAMES.get((target, command), target))
         for command, argv in COMMANDS.items() for target in TARGETS if (target, command) not in WORKS]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return run_cases_once("user_modules", CASES, tmp_path_factory)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_bad_user_module_is_refused_in_one_line(case, results):
    assert problems(results[case.id], case) == []
