"""sepconv's version is declared once: the package, sepconv._util.version and pyproject.toml agree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import sepconv
from sepconv._util.version import __version__

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


@pytest.mark.skipif(not PYPROJECT.is_file(), reason="pyproject.toml is not beside the tests (an installed package)")
def test_the_version_is_the_one_pyproject_declares():
    declared = re.search(r'^version = "([^"]+)"', PYPROJECT.read_text(), re.M).group(1)
    assert __version__ == sepconv.__version__ == declared
