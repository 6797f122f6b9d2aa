"""The precisions sepconv names, in one place: ``fp32``, ``bf16`` and ``fp16`` (DESIGN.md: every
figure names its dtype), and the torch dtype each means. Training (``sepconv train --precision``)
and the training profile (``sepconv profile --train --precision``) both read these; each decides
for itself where a precision runs.

Example::

    >>> DTYPES["bf16"]
    torch.bfloat16
"""

from __future__ import annotations

import torch

__all__ = ["DTYPES", "PRECISIONS"]

PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")
DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
