"""sepconv._util.figures: an empty Figure without pyplot state, its PNG bytes, and a one-line error
naming the option when matplotlib (the ``plot`` extra) is missing."""

from __future__ import annotations

import sys

import pytest

from sepconv._util.figures import new_figure, png_bytes, require_matplotlib


def test_a_figure_without_pyplot_and_its_png():
    fig = new_figure((2.0, 1.5))
    assert tuple(fig.get_size_inches()) == (2.0, 1.5) and fig.axes == []
    fig.add_subplot(1, 1, 1).plot([0, 1], [1, 0])
    data = png_bytes(fig)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert "matplotlib.pyplot" not in sys.modules or fig.canvas.manager is None  # not a pyplot figure
    require_matplotlib("plot", "chart.png")  # installed here: nothing to say


def test_without_matplotlib_the_error_names_the_option(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises ImportError
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ValueError, match=r"^html='out/page.html' needs matplotlib: pip install 'sepconv\[plot\]'$"):
        require_matplotlib("html", "out/page.html")
    with pytest.raises(ValueError, match="charts need matplotlib"):
        new_figure((1.0, 1.0))
