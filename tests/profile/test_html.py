"""The HTML page: self-contained (one data: PNG, no script, no link), every layer named, and a real render
in headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from sepconv.profile import profile_model, to_dict
from sepconv.profile.html import render_html, save_html

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def doc(small_net, machine):
    return to_dict(profile_model(small_net, (1, 3, 32, 32), spec="small_net", batch=2, threads=1, repeats=2,
                                 warmup=0, machine=machine))


def test_page_is_self_contained(doc, tmp_path):
    page = render_html(doc)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<script" not in page
    assert not re.search(r"""(src|href)=["'](?!data:)""", page)  # no file, no URL: only data: URIs
    assert page.count("data:image/png;base64,") == 1
    for row in doc["layers"]:
        assert f">{row['name']}<" in page
    assert "By kind: share of MACs against share of time" in page and "Whole model per backend" in page
    assert "<img" not in render_html(doc, charts=False)
    path = save_html(doc, tmp_path / "report.html")
    assert path.read_text() == page


def _chromium() -> str | None:
    return shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None)


@pytest.mark.skipif(_chromium() is None, reason="headless Chromium is not installed (`.ci/run` installs it with "
                                                "`apt-get install chromium`); the HTML render test needs it")
def test_page_renders_in_headless_chromium(doc, tmp_path):
    import matplotlib.image

    html = save_html(doc, tmp_path / "report.html")
    shot = tmp_path / "shot.png"
    done = subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1280,2000",
         html.resolve().as_uri()],
        capture_output=True, text=True, errors="replace", timeout=120, check=False)
    said = f"chromium exited {done.returncode}; its stderr ends:\n{done.stderr[-3000:]}"
    assert shot.is_file() and shot.read_bytes()[:8] == PNG, said
    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[:2] == (2000, 1280)
    assert float(np.var(pixels[..., :3])) > 1e-3  # text, tables and the chart, not a blank page
    # The chart's colours reach the screen: some pixels are neither grey nor white.
    rgb = pixels[..., :3]
    assert float((rgb.max(axis=-1) - rgb.min(axis=-1)).max()) > 0.3


def test_training_tables_are_on_the_page(training_doc):
    page = render_html(training_doc, charts=False)
    for title in ("Training, per layer", "Training, by kind", "Training step per backend"):
        assert title in page
    assert page.count("<table>") == 8  # + the machine's memory levels and compute peaks
    assert "The machine's ceilings" in page and "Memory levels" in page and "Compute peaks" in page
    assert "versions: torch " in page
