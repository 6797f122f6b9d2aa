"""What separation did to each layer and to the whole model: a rich table and JSON.

Units: parameters as counts, MACs = multiply-accumulates per image (FLOPs would be 2x),
times in milliseconds per image at batch 1 (median, see :mod:`sepconv._util.timing`).
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from rich.table import Table


@dataclass
class LayerReport:
    """One ``nn.Conv2d`` of the model: separated, or skipped with the reason."""

    name: str
    conv: str  # e.g. "3x3 64->128 s2"
    status: str  # "separated" | "skipped"
    reason: str = ""  # why skipped, or a note on the separation (kept energy for grouped)
    setting: int | None = None  # d, r or G
    weight_error: float | None = None  # ||W - W_hat||_F / ||W||_F
    output_error: float | None = None  # ||y - y_hat|| / ||y|| on the calibration batch, same input
    params_before: int = 0
    params_after: int = 0
    macs_before: int | None = None  # per image
    macs_after: int | None = None
    time_before_ms: float | None = None  # batch 1: the layer's input for the first calibration image
    time_after_ms: float | None = None


@dataclass
class SeparationReport:
    """Per-layer rows plus model totals; ``plan`` rebuilds the separated structure on load."""

    to: str
    setting_name: str  # "depth_multiplier" | "rank" | "groups"
    layers: list[LayerReport]
    params_before: int
    params_after: int
    macs_before: int | None = None
    macs_after: int | None = None
    output_error: float | None = None  # model output (logits), calibration batch
    input_shape: tuple[int, ...] | None = None
    threads: int | None = None
    time_before_ms: float | None = None  # whole model, batch 1
    time_after_ms: float | None = None
    bn_recalibrated: int = 0  # BatchNorm layers whose statistics were re-estimated afterwards
    plan: dict[str, dict[str, Any]] = field(default_factory=dict)
    accuracy: dict[str, float] = field(default_factory=dict)  # "original", "separated", "finetuned"

    @property
    def separated(self) -> list[LayerReport]:
        return [r for r in self.layers if r.status == "separated"]

    @property
    def skipped(self) -> list[LayerReport]:
        return [r for r in self.layers if r.status == "skipped"]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def table(self) -> Table:
        """Per layer, then the sums over separated layers and the whole model.

        ``a->b`` is before -> after; ``÷`` columns are before / after (MACs saved, speed-up).
        """
        timed = any(r.time_before_ms is not None for r in self.layers)
        symbol = {"depth_multiplier": "d", "rank": "r", "groups": "G"}[self.setting_name]
        title = f"separate to={self.to}, {self.setting_name} {symbol}"
        if self.input_shape:
            title += f", calibration batch {tuple(self.input_shape)}"
        if self.threads:
            title += f", {self.threads} thread{'s' * (self.threads > 1)}"
        t = Table(title=title, caption="weight err = ||W - W^||/||W||; output err on the calibration batch, "
                                       "same input; MACs per image; ms per image (batch 1, median)")
        columns = ["layer", "conv", symbol, "w err", "out err", "params", "MACs", "MACs ÷"]
        columns += ["ms", "speed-up"] if timed else []
        for col in [*columns, "note"]:
            t.add_column(col, justify="left" if col in ("layer", "conv", "note") else "right")
        for r in self.layers:
            done = r.status == "separated"
            cells = [r.name, r.conv, _fmt(r.setting), _pct(r.weight_error), _pct(r.output_error),
                     _arrow(r.params_before, r.params_after, done), _arrow(r.macs_before, r.macs_after, done),
                     _ratio(r.macs_before, r.macs_after) if done else ""]
            if timed:
                cells += [_arrow(r.time_before_ms, r.time_after_ms, done, ".3f"),
                          _ratio(r.time_before_ms, r.time_after_ms) if done else ""]
            t.add_row(*cells, r.reason, style=None if done else "dim")
        t.add_section()
        sep = self.separated
        macs = _sum(r.macs_before for r in sep), _sum(r.macs_after for r in sep)
        cells = ["separated layers", f"{len(sep)} of {len(self.layers)} convs", "", "", "",
                 _arrow(sum(r.params_before for r in sep), sum(r.params_after for r in sep)),
                 _arrow(*macs), _ratio(*macs)]
        if timed:
            ms = _sum(r.time_before_ms for r in sep), _sum(r.time_after_ms for r in sep)
            cells += [_arrow(*ms, spec=".3f"), _ratio(*ms)]
        t.add_row(*cells, "")
        cells = ["whole model", "", "", "", _pct(self.output_error), _arrow(self.params_before, self.params_after),
                 _arrow(self.macs_before, self.macs_after), _ratio(self.macs_before, self.macs_after)]
        if timed:
            cells += [_arrow(self.time_before_ms, self.time_after_ms, spec=".3f"),
                      _ratio(self.time_before_ms, self.time_after_ms)]
        notes = [f"BatchNorm re-estimated ({self.bn_recalibrated} layers)"] if self.bn_recalibrated else []
        t.add_row(*cells, "; ".join([*notes, _accuracy(self.accuracy)]).strip("; "))
        return t

    def __str__(self) -> str:
        from rich.console import Console

        console = Console(width=160, file=io.StringIO())
        console.print(self.table())
        return console.file.getvalue()


def _sum(values) -> float | None:
    values = list(values)
    return None if not values or any(v is None for v in values) else sum(values)


def _fmt(value: Any, spec: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, int) and not spec:
        for scale, unit, start in ((1e9, "G", 1e9), (1e6, "M", 1e6), (1e3, "K", 1e4)):
            if abs(value) >= start:
                return f"{value / scale:.3g}{unit}"
    return format(value, spec)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def _arrow(before: Any, after: Any, changed: bool = True, spec: str = "") -> str:
    if not changed or after is None:
        return _fmt(before, spec)
    return f"{_fmt(before, spec)}->{_fmt(after, spec)}"


def _ratio(before: float | None, after: float | None) -> str:
    return f"{before / after:.2f}x" if before and after else "-"


def _accuracy(acc: dict[str, float]) -> str:
    return ", ".join(f"{k} acc {v:.2%}" for k, v in acc.items())
