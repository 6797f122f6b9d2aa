"""The JSON document: its keys and units, MACs equal to the cost model's, and the derived numbers."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from sepconv.cost import analyze
from sepconv.profile import SCHEMA_VERSION, profile_model, to_dict
from sepconv.profile.html import render_html
from sepconv.profile.report import RATIO_RANGE, SCHEMA, print_report, ratio_warning, summary_line, write_json

TOP_KEYS = set(SCHEMA["top"])
LAYER_TIME_KEYS = {"time_ms", "p90_ms", "gflops_per_s", "gb_per_s", "roofline_ms", "roofline_fraction", "bound"}
KIND_KEYS = {"kind", "layers", "params", "macs", "bytes", "time_ms", "macs_share", "time_share", "gflops_per_s"}
README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture
def doc(small_net, machine):
    profile = profile_model(small_net, (1, 3, 32, 32), spec="small_net", backends=["eager", "channels_last"],
                            batch=2, threads=1, repeats=3, warmup=1, machine=machine)
    return to_dict(profile)


def test_keys_and_units(doc, small_net):
    assert set(doc) == TOP_KEYS and doc["schema_version"] == SCHEMA_VERSION == 3 and doc["training"] is None
    assert doc["input_shape"] == [1, 3, 32, 32] and doc["batch"] == 2 and doc["threads"] == 1
    assert set(doc["model"]) == {"spec", "description", "impl", "params", "macs", "flops", "bytes"}
    assert doc["model"]["impl"] == "native"
    assert {"peak_gflops_per_s", "bandwidth_gb_per_s", "ridge_flops_per_byte", "cpu", "threads", "torch_version",
            "measured_at", "remeasure_command", "busy"} <= set(doc["machine"])
    assert doc["machine"]["remeasure_command"] == "sepconv profile --machine-only --remeasure --threads 1"
    assert {"repeats", "warmup", "statistic", "layers_time_ms", "model_time_ms", "layers_to_model_ratio",
            "budget_s", "load_average", "cores", "busy"} == set(doc["timing"])
    cost_keys = set(analyze(small_net, (1, 3, 32, 32)).layers[0].to_dict())
    for row in doc["layers"]:
        assert set(row) == cost_keys | LAYER_TIME_KEYS
        assert row["flops"] == 2 * row["macs"]
        assert row["bound"] in ("memory", "compute", "none")
    assert all(set(row) == KIND_KEYS for row in doc["by_kind"])
    assert [(r["backend"], r["batch"]) for r in doc["backends"]] == [
        ("eager", 1), ("eager", 2), ("channels_last", 1), ("channels_last", 2)]
    assert [r["bn_folded"] for r in doc["backends"]] == [False] * 4  # a profile runs the model as given
    assert all(r["max_abs_diff"] < 1e-4 for r in doc["backends"])
    assert json.loads(json.dumps(doc)) == doc  # plain JSON: no tuples, no NaN, no objects


def test_macs_equal_the_cost_model(doc, small_net):
    cost = analyze(small_net, (1, 3, 32, 32))
    assert doc["model"]["macs"] == cost.macs > 0
    assert doc["model"]["params"] == cost.params
    assert [(r["name"], r["macs"], r["bytes"]) for r in doc["layers"]] == [
        (r.name, r.macs, r.bytes) for r in cost.layers]
    assert sum(r["macs"] for r in doc["by_kind"]) == cost.macs


def test_derived_numbers(doc, machine):
    for row in doc["layers"]:
        seconds = row["time_ms"] / 1e3
        assert row["gflops_per_s"] == pytest.approx(row["flops"] / seconds / 1e9)
        assert row["gb_per_s"] == pytest.approx(row["bytes"] / seconds / 1e9)
        bound_ms = max(row["flops"] / 100e9, row["bytes"] / 20e9) * 1e3  # the fixture's 100 GFLOP/s, 20 GB/s
        assert row["roofline_ms"] == pytest.approx(bound_ms)
        assert row["roofline_fraction"] == pytest.approx(bound_ms / row["time_ms"])
        if row["bytes"]:
            assert row["bound"] == ("memory" if row["intensity_flops_per_byte"] < 5 else "compute")
    kinds = {r["kind"]: r for r in doc["by_kind"]}
    assert {"standard", "depthwise", "pointwise", "grouped", "linear", "norm", "activation"} <= set(kinds)
    assert kinds["depthwise"]["layers"] == 2 and kinds["grouped"]["layers"] == 1
    assert sum(r["time_share"] for r in doc["by_kind"]) == pytest.approx(1.0)
    assert sum(r["macs_share"] for r in doc["by_kind"]) == pytest.approx(1.0)
    assert sum(r["time_ms"] for r in doc["by_kind"]) == pytest.approx(doc["timing"]["layers_time_ms"])
    assert doc["timing"]["layers_to_model_ratio"] == pytest.approx(
        doc["timing"]["layers_time_ms"] / doc["timing"]["model_time_ms"])


def test_tables_and_json_file(doc, tmp_path):
    from rich.console import Console

    console = Console(record=True, width=220)
    print_report(doc, console)
    text = console.export_text()
    for title in ("Per layer", "By kind: share of MACs against share of time", "Whole model per backend"):
        assert title in text
    assert "depthwise" in text and "100 GFLOP/s" not in text and "peak 100.0 GFLOP/s" in text
    backend_rows = text[text.index("Whole model per backend"):].splitlines()
    assert "BN folded" in text and any(line.replace("│", " ").split()[:3] == ["eager", "1", "no"]
                                       for line in backend_rows)
    path = tmp_path / "out" / "profile.json"
    write_json(doc, path)
    assert json.loads(path.read_text()) == doc


def test_written_keys_are_the_schema(doc):
    """Every object of the document has exactly SCHEMA's keys: a key added, renamed or dropped
    anywhere (the cost model's per-layer keys included) fails here and must change SCHEMA and README.
    (The training object's keys: tests/profile/test_training_report.py.)"""
    assert set(doc) == set(SCHEMA["top"])
    for name in ("model", "machine", "timing"):
        assert set(doc[name]) == set(SCHEMA[name]), name
    for name in ("layers", "by_kind", "backends"):
        assert doc[name] and all(set(row) == set(SCHEMA[name]) for row in doc[name]), name
    assert [name for name in SCHEMA if name in SCHEMA["top"]] == ["model", "machine", "timing", "layers", "by_kind",
                                                                  "backends", "training"]


def readme_schema(text: str) -> dict[str, list[str]]:
    """README's "JSON schema" subsection as ``{object: [keys]}``: one bullet per object, keys in
    backticks after the bullet's bold title; values in parentheses (`ok` | `failed`) are not keys."""
    section = re.search(r"^### JSON schema.*?\n(.*?)(?=^#)", text, re.S | re.M)
    assert section, "README has no '### JSON schema' subsection"
    bullets = re.split(r"^- ", section.group(1), flags=re.M)[1:]
    out = {}
    for bullet in bullets:
        title, _, body = bullet.partition(":**")
        name = title.strip("*` []") if "`" in title else "top"
        out[name] = re.findall(r"`(\w+)`", re.sub(r"\([^)]*\)", "", body))
    return out


@pytest.mark.skipif(not README.is_file(), reason="README.md is not beside the tests (an installed package)")
def test_readme_documents_exactly_the_schema():
    documented = readme_schema(README.read_text())
    objects = [name for name in SCHEMA if name in SCHEMA["top"]]  # the top level's objects, in order
    assert sorted(documented) == sorted(SCHEMA)
    assert documented["top"] + objects == list(SCHEMA["top"])  # the top level's scalars, then its objects
    for name in SCHEMA:
        if name != "top":
            assert documented[name] == list(SCHEMA[name]), name


def test_readme_parser_sees_a_missing_key():
    """The README check has power: a key dropped from the text is noticed."""
    text = README.read_text() if README.is_file() else ""
    if not text:
        pytest.skip("README.md is not beside the tests")
    assert "`speedup_vs_eager`" in text
    assert "speedup_vs_eager" not in readme_schema(text.replace("`speedup_vs_eager`", ""))["backends"]
    assert "`saved_activation_bytes`" in text
    assert "saved_activation_bytes" not in readme_schema(text.replace("`saved_activation_bytes`", ""))["training"]


def with_ratio(doc: dict, ratio: float | None, threads: int = 2) -> dict:
    """The document as if its layers had added up to ``ratio`` of the whole model's time."""
    doc = copy.deepcopy(doc)
    doc["threads"] = threads
    doc["timing"]["layers_to_model_ratio"] = ratio
    if ratio is not None:
        doc["timing"]["layers_time_ms"] = ratio * doc["timing"]["model_time_ms"]
    return doc


@pytest.mark.parametrize("ratio, warned", [
    (1.0, False), (RATIO_RANGE[0], False), (RATIO_RANGE[1], False), (None, False),
    (0.095, True), (0.69, True), (1.31, True), (3.0, True),
])
def test_ratio_outside_the_range_warns(doc, ratio, warned):
    """Layers 6.7 ms against a model of 240.7 ms (2 threads on 2 loaded cores, OpenMP spinning):
    the summary says so and names the remedies."""
    synthetic = with_ratio(doc, ratio)
    warning = ratio_warning(synthetic)
    assert (warning is not None) == warned
    if warned:
        assert f"{ratio:.0%} of the whole model's time, outside 70%-130%" in warning
        if synthetic["threads"] > 1:
            assert "--threads 1" in warning and "OMP_WAIT_POLICY=PASSIVE" in warning
        else:
            assert "profile an idle machine" in warning and "--threads 1" not in warning
        assert warning not in summary_line(synthetic)  # its own line, not buried in the summary


def test_ratio_warning_on_one_thread_blames_other_processes(doc):
    one = with_ratio(doc, 0.39)
    one["threads"] = 1
    assert ratio_warning(one).endswith("other processes took the core in between: profile an idle machine")
    two = with_ratio(doc, 0.39)
    two["threads"] = 2
    assert "with 2 threads on a shared machine" in ratio_warning(two)


def test_ratio_warning_is_printed_and_on_the_page(doc):
    from rich.console import Console

    low = with_ratio(doc, 6.7 / 240.7)
    console = Console(record=True, width=200)
    print_report(low, console)
    assert ratio_warning(low) in console.export_text()
    assert ratio_warning(low).replace("'", "&#x27;") in render_html(low, charts=False)
    console = Console(record=True, width=200)
    print_report(with_ratio(doc, 1.0), console)
    assert "warning:" not in console.export_text()
    assert 'class="warn"' not in render_html(with_ratio(doc, 1.0), charts=False)
