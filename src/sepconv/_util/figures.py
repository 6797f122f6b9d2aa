"""Figures without pyplot state: an empty ``Figure``, its PNG bytes, and a clear error when
matplotlib (the optional ``plot`` extra) is missing."""

from __future__ import annotations

import io
from pathlib import Path

__all__ = ["new_figure", "png_bytes", "require_matplotlib"]


def require_matplotlib(option: str, path: str | Path) -> None:
    """A ValueError naming ``--option`` when matplotlib, which draws the charts, is not installed:
    the commands call it before measuring, so a missing extra costs no wasted minutes."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ValueError(f"{option}={str(path)!r} needs matplotlib: pip install 'sepconv[plot]'") from None


def new_figure(size: tuple[float, float]):  # noqa: ANN201 - matplotlib is an optional extra
    """An empty ``matplotlib.figure.Figure`` (no pyplot state); a ValueError when matplotlib is missing."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ValueError("charts need matplotlib: pip install 'sepconv[plot]'") from None
    return Figure(figsize=size, layout="constrained")


def png_bytes(fig) -> bytes:  # noqa: ANN001
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()

