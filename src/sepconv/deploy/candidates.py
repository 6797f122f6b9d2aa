"""The candidates of ``sepconv optimize``: one row per engine × precision, what each was measured at,
whether it passed, and the one rule that chooses among them.

A candidate's ``status`` is one of:

- ``chosen``: passed, and the fastest of those that did;
- ``ok``: passed (within the accuracy budget, or matching PyTorch in fp32-only mode) and timed;
- ``over budget``: ran, but its accuracy drop or top-1 agreement missed the budget (the reason says which);
- ``mismatch``: fp32-only mode, its output differs from PyTorch's beyond the tolerance;
- ``failed``: it could not be built or run here (the reason: the error's first line);
- ``unavailable``: its engine is not installed, or the CPU has no kernels for its precision;
- ``excluded``: not a candidate of this run (e.g. ``inductor`` with data: a compiled model cannot be
  saved, its ``load`` would recompile).

:func:`choose` takes the rows with status ``ok`` and returns the one with the lowest median latency;
it is the only place a choice is made, tested with injected timings.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from .._util.checks import ArgumentError
from ..engines.quantize import sqnr_db

__all__ = ["Accuracy", "Candidate", "STATUSES", "accuracy_of", "candidates_table", "choose", "logits_of"]

STATUSES = ("chosen", "ok", "over budget", "mismatch", "failed", "unavailable", "excluded")


@dataclass(frozen=True)
class Accuracy:
    """A candidate against the fp32 model on the same held-out images: top-1 agreement (percent),
    accuracy drop (points; None without labels), logit SQNR (dB), and both accuracies (percent)."""

    agreement: float
    drop: float | None
    sqnr_db: float
    fp32_accuracy: float | None
    accuracy: float | None

    def misses(self, max_drop: float | None, min_agreement: float | None) -> str | None:
        """Why this misses the budget (None: within it)."""
        reasons = []
        if min_agreement is not None and self.agreement < min_agreement:
            reasons.append(f"top-1 agreement {self.agreement:.2f}% < {min_agreement:g}%")
        if max_drop is not None and self.drop is not None and self.drop > max_drop:
            reasons.append(f"accuracy drop {self.drop:.2f} points > {max_drop:g}")
        return "; ".join(reasons) or None


@dataclass(frozen=True)
class Candidate:
    """One engine × precision (``backend``: its runner's name) and everything measured about it.
    ``speedup`` is plain ONNX Runtime fp32's median over this one's, in the same interleaved rounds
    (> 1: faster); ``max_abs_diff`` the largest logit difference from PyTorch fp32."""

    backend: str
    engine: str
    precision: str
    status: str
    reason: str | None = None
    median_ms: float | None = None
    p90_ms: float | None = None
    speedup: float | None = None
    max_abs_diff: float | None = None
    accuracy: Accuracy | None = None

    def to_dict(self) -> dict[str, object]:
        row = dataclasses.asdict(self)
        accuracy = row.pop("accuracy") or {}
        return {**row, **{k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                          for k, v in accuracy.items()}}


def choose(rows: Sequence[Candidate]) -> Candidate | None:
    """The fastest (lowest median) row with status ``ok``; None when no row passed.

    Example::

        >>> rows = [Candidate("onnxruntime", "onnxruntime", "fp32", "ok", median_ms=5.0),
        ...         Candidate("int8", "onnxruntime", "int8", "ok", median_ms=3.0),
        ...         Candidate("openvino_int8", "openvino", "int8", "over budget", median_ms=1.0)]
        >>> choose(rows).backend
        'int8'
    """
    passed = [row for row in rows if row.status == "ok" and row.median_ms is not None]
    return min(passed, key=lambda row: row.median_ms) if passed else None


@torch.inference_mode()
def logits_of(run: Callable[[torch.Tensor], object], images: torch.Tensor, batch: int = 32,
              advance: Callable[[], None] | None = None) -> torch.Tensor:
    """``run`` over ``images`` in batches of ``batch`` (the last one smaller), outputs concatenated;
    ``advance()`` after each batch."""
    outputs = []
    for part in images.split(batch):
        outputs.append(torch.as_tensor(run(part)).float())
        if advance is not None:
            advance()
    return torch.cat(outputs)


def accuracy_of(logits: torch.Tensor, reference: torch.Tensor, labels: torch.Tensor | None) -> Accuracy:
    """``logits`` of a candidate against the fp32 ``reference`` logits (and ``labels``, if known).

    Example::

        >>> ref = torch.tensor([[2.0, 1.0], [0.0, 1.0]])
        >>> a = accuracy_of(ref + 0.1, ref, torch.tensor([0, 0]))
        >>> a.agreement, a.drop, round(a.sqnr_db, 1)
        (100.0, 0.0, 17.8)
    """
    if logits.shape != reference.shape or logits.dim() != 2:
        raise ArgumentError("logits", f"logits of shape {tuple(logits.shape)} must match the fp32 reference's "
                                      f"{tuple(reference.shape)}, (N, classes)")
    top, top_ref = logits.argmax(1), reference.argmax(1)
    agreement = 100.0 * float((top == top_ref).double().mean())
    fp32_acc = acc = drop = None
    if labels is not None:
        fp32_acc = 100.0 * float((top_ref == labels).double().mean())
        acc = 100.0 * float((top == labels).double().mean())
        drop = fp32_acc - acc
    return Accuracy(agreement, drop, sqnr_db(logits, reference), fp32_acc, acc)


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, fmt)


def candidates_table(rows: Sequence[Candidate], title: str) -> str:
    """The candidates as a plain-text table: engine, precision, median and p90 ms, speed-up over
    plain ONNX Runtime fp32, agreement, drop, SQNR, status and the reason for any failure.

    Example::

        >>> print(candidates_table([Candidate("openvino_bf16", "openvino", "bf16", "unavailable", "no BF16")], "t"))
        t
        backend         engine      precision  median ms   p90 ms  vs plain ORT  agree %  drop pt  SQNR dB  status
        openvino_bf16   openvino    bf16               -        -             -        -        -        -  unavailable: no BF16
    """
    head = (f"{'backend':<15} {'engine':<11} {'precision':<9} {'median ms':>10} {'p90 ms':>8} {'vs plain ORT':>13} "
            f"{'agree %':>8} {'drop pt':>8} {'SQNR dB':>8}  status")
    lines = [title, head]
    for r in rows:
        a = r.accuracy
        speedup = "-" if r.speedup is None else f"{r.speedup:.2f}x"
        status = r.status + (f": {r.reason}" if r.reason else "")
        lines.append(f"{r.backend:<15} {r.engine:<11} {r.precision:<9} {_num(r.median_ms, '.2f'):>10} "
                     f"{_num(r.p90_ms, '.2f'):>8} {speedup:>13} {_num(a and a.agreement, '.2f'):>8} "
                     f"{_num(a and a.drop, '.2f'):>8} {_num(a and a.sqnr_db, '.1f'):>8}  {status}")
    return "\n".join(lines)
