"""Several models side by side: the summary document (SCHEMA v3), its table, chart and page."""

from __future__ import annotations

import copy
import re

import pytest
from rich.console import Console

from sepconv.profile.report import SCHEMA
from sepconv.profile.summary import (
    file_stems,
    render_summary_html,
    save_summary_plot,
    summary_dict,
    summary_figure,
    summary_table,
)

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def docs(training_doc):
    other = copy.deepcopy(training_doc)
    other["model"]["spec"] = "other:conv=standard"
    return [training_doc, other]


def test_summary_keys_and_numbers(docs):
    summary = summary_dict(docs, ["small_net", "other-conv=standard"])
    assert list(summary) == list(SCHEMA["summary"]) and summary["train"] is True
    assert [row["spec"] for row in summary["models"]] == ["small_net", "other:conv=standard"]
    for row, doc in zip(summary["models"], docs):
        assert list(row) == list(SCHEMA["summary.models"])
        assert row["training_macs"] == doc["training"]["macs"] and row["macs"] == doc["model"]["macs"]
        dw = next(k for k in doc["training"]["by_kind"] if k["kind"] == "depthwise")
        assert row["depthwise_macs_share"] == pytest.approx(dw["forward_macs_share"] + dw["backward_macs_share"])
        assert row["depthwise_time_share"] == pytest.approx(dw["forward_time_share"] + dw["backward_time_share"])
        assert [(s["backend"], s["precision"], s["batch"]) for s in row["steps"]] == [("eager", "fp32", 4)]
        assert all(list(s) == list(SCHEMA["summary.steps"]) for s in row["steps"])
        assert row["peak_memory_bytes"] == row["steps"][0]["peak_memory_bytes"] > 0


def test_summary_of_inference_profiles(docs):
    inference = [{**doc, "training": None} for doc in docs]
    summary = summary_dict(inference)
    assert summary["train"] is False and all(row["training_macs"] is None for row in summary["models"])
    steps = summary["models"][0]["steps"]
    assert steps and all(s["peak_memory_bytes"] is None for s in steps)
    assert steps[0]["batch"] == max(r["batch"] for r in docs[0]["backends"])


def test_table_chart_and_page(docs, tmp_path):
    summary = summary_dict(docs, ["small_net", "other-conv=standard"])
    console = Console(record=True, width=250)
    console.print(summary_table(summary))
    text = console.export_text()
    assert "small_net" in text and "other:conv=standard" in text and "eager fp32" in text
    fig = summary_figure(summary)
    assert len(fig.axes) == 2
    assert save_summary_plot(summary, tmp_path / "s.png").read_bytes()[:8] == PNG
    page = render_summary_html(summary)
    assert 'href="small_net.html"' in page and 'href="other-conv=standard.html"' in page
    assert not re.search(r"""src=["'](?!data:)""", page)


def test_file_stems_are_safe_and_unique():
    assert file_stems(["mobilenet_v1", "mobilenet_v1:conv=standard", "a/b c", "mobilenet_v1", "summary"]) == [
        "mobilenet_v1", "mobilenet_v1-conv=standard", "a_b_c", "mobilenet_v1-2", "summary-2"]


def test_bad_input():
    with pytest.raises(ValueError, match="docs=\\[\\] must hold at least one"):
        summary_dict([])
