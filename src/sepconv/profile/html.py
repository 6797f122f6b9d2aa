"""The profile as one self-contained HTML page: tables and charts, readable offline.

No script, no external stylesheet, font or image: the CSS is inline and the charts are PNGs
embedded as ``data:`` URIs, so the file can be mailed, archived or opened with no network. The
page renders the JSON document of :func:`sepconv.profile.report.to_dict`, with the same numbers
as the terminal tables.

Example::

    >>> save_html(doc, "profile.html")  # doc = to_dict(profile_model(...))
    PosixPath('profile.html')
"""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path
from typing import Any

from .._util.io import atomic_write_text
from . import training_report
from .report import (
    addup_line,
    backend_table,
    ceiling_note,
    fallback_line,
    functional_table,
    kind_table,
    layer_table,
    level_table,
    machine_line,
    peak_table,
    ratio_warning,
    summary_line,
    unmapped_table,
    versions_line,
)

__all__ = ["CSS", "render_html", "rich_table_html", "save_html"]

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.8em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25em 0.6em; text-align: right; white-space: nowrap; }
th { background: #f3f3f3; } td.l, th.l { text-align: left; }
caption { caption-side: bottom; font-size: 0.85em; color: #666; text-align: left; padding-top: 0.3em; }
img { max-width: 100%; border: 1px solid #eee; } p.note { color: #555; } p.warn { color: #a15c00; }
"""


def render_html(doc: dict[str, Any], charts: bool = True) -> str:
    """The page as a string; ``charts=False`` leaves out the embedded PNGs (no matplotlib needed)."""
    warnings = [warning for warning in (ratio_warning(doc), fallback_line(doc), ceiling_note(doc)) if warning]
    notes = [] if ratio_warning(doc) else [addup_line(doc)]
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>sepconv profile: {escape(doc['model']['spec'])}</title><style>{CSS}</style></head><body>",
        f"<h1>sepconv profile: {escape(doc['model']['spec'])}</h1>",
        f"<p>{escape(summary_line(doc))}</p>",
        *(f'<p class="warn">{escape(warning)}</p>' for warning in warnings),
        *(f'<p class="note">{escape(note)}</p>' for note in notes),
        f"<p class=\"note\"><b>Machine</b>: {escape(machine_line(doc))}</p>",
        f"<p class=\"note\">{escape(versions_line(doc))}</p>",
        "<h2>By kind: share of MACs against share of time</h2>", rich_table_html(kind_table(doc)),
    ]
    if charts:
        from .._util.figures import png_bytes
        from .plot import figure

        image = base64.b64encode(png_bytes(figure(doc))).decode("ascii")
        parts += ["<h2>Roofline and shares</h2>",
                  f'<img alt="roofline and MAC/time shares by kind" src="data:image/png;base64,{image}">']
    parts += ["<h2>Whole model per backend</h2>", rich_table_html(backend_table(doc))]
    if doc.get("training"):
        parts += ["<h2>Training</h2>", f"<p>{escape(training_report.summary_line(doc))}</p>"]
        for table in training_report.tables(doc):
            parts += [f"<h3>{escape(str(table.title))}</h3>", rich_table_html(table)]
    parts += ["<h2>Per layer</h2>", rich_table_html(layer_table(doc))]
    for table in (functional_table(doc), unmapped_table(doc)):
        if table is not None:
            parts += [f"<h2>{escape(str(table.title))}</h2>", rich_table_html(table)]
    parts += [
              "<h2>The machine's ceilings</h2>",
              *(f"<h3>{escape(str(table.title))}</h3>{rich_table_html(table)}" for table in (level_table(doc),
                                                                                             peak_table(doc))),
              f"<p class=\"note\">sepconv {escape(str(doc['sepconv_version']))}, JSON schema "
              f"{doc['schema_version']}.</p>", "</body></html>"]
    return "\n".join(parts) + "\n"


def save_html(doc: dict[str, Any], path: str | Path) -> Path:
    """Write :func:`render_html` to ``path`` (atomically)."""
    path = Path(path)
    if path.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"html={str(path)!r} must end in .html")
    atomic_write_text(path, render_html(doc))
    return path


def rich_table_html(table) -> str:  # noqa: ANN001 - a rich.table.Table
    """A rich table as an HTML table: the terminal and the page show the same cells."""
    columns = table.columns
    cells = [list(column.cells) for column in columns]
    align = ["l" if column.justify == "left" else "" for column in columns]
    head = "".join(f'<th class="{a}">{escape(str(c.header))}</th>' for c, a in zip(columns, align))
    rows = []
    for i in range(table.row_count):
        rows.append("<tr>" + "".join(f'<td class="{a}">{escape(str(col[i]))}</td>'
                                      for col, a in zip(cells, align)) + "</tr>")
    caption = f"<caption>{escape(str(table.caption))}</caption>" if table.caption else ""
    return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
