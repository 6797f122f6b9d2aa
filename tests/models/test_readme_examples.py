"""README's examples print what their comments say (run from the README text itself)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def _python_block(section: str) -> str:
    text = README.read_text(encoding="utf-8")
    body = text[text.index(f"## {section}"):]
    body = body[:body.index("\n## ", 1)]
    return re.search(r"```python\n(.*?)```", body, re.S).group(1)


def test_exact_cost_snippet_prints_its_comments():
    code = _python_block("Exact cost")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md (Exact cost)", "exec"), {})
    printed = out.getvalue().splitlines()
    assert printed[0] == "3504872 300774272"  # print(report.params, report.macs)  # 3504872 300774272
    kinds_comment = next(line[2:] for line in code.splitlines() if line.startswith("# pointwise"))
    assert printed[1] == kinds_comment
