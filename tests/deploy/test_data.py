"""sepconv.deploy.data, the 0.1 home of the calibration images: its names still work, with a
DeprecationWarning that says where they moved."""

from __future__ import annotations

import pytest

import sepconv.deploy.data as old
from sepconv.data import images


@pytest.mark.parametrize("name", ["digits", "load_images", "BUNDLED"])
def test_moved_names_warn_and_are_the_new_ones(name):
    with pytest.warns(DeprecationWarning, match=f"sepconv.deploy.data.{name} moved to sepconv.data.images.{name}"):
        value = getattr(old, name)
    assert value is getattr(images, name)


def test_other_names_are_attribute_errors():
    with pytest.raises(AttributeError, match="module 'sepconv.deploy.data' has no attribute 'cifar'"):
        old.cifar  # noqa: B018
