"""The JSON document: its keys and units, MACs equal to the cost model's, and the derived numbers."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
import torch
from torch import nn

from sepconv.cost import analyze
from sepconv.profile import SCHEMA_VERSION, profile_model, to_dict
from sepconv.profile.html import render_html
from sepconv.profile.layers import ADDUP_TOLERANCE
from sepconv.profile.numbers import ABOVE_CEILING_TOLERANCE
from sepconv.profile.report import (
    SCHEMA,
    addup_line,
    ceiling_note,
    fallback_line,
    layer_table,
    machine_document,
    print_machine,
    print_report,
    ratio_warning,
    summary_line,
    write_json,
)

TOP_KEYS = set(SCHEMA["top"])
LAYER_TIME_KEYS = {"time_ms", "p90_ms", "gflops_per_s", "gb_per_s", "precision", "working_set_bytes", "memory_level",
                   "ceiling_gb_per_s", "ceiling_gflops_per_s", "roofline_ms", "roofline_fraction", "bound",
                   "above_ceiling", "kind_source", "status", "fused_into", "in_model_ms"}
KIND_KEYS = {"kind", "layers", "params", "macs", "bytes", "time_ms", "macs_share", "time_share", "gflops_per_s"}
README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture
def doc(small_net, machine):
    profile = profile_model(small_net, (1, 3, 32, 32), spec="small_net", backends=["eager", "channels_last"],
                            batch=2, threads=1, repeats=3, warmup=1, machine=machine)
    return to_dict(profile)


def test_keys_and_units(doc, small_net):
    assert set(doc) == TOP_KEYS and doc["schema_version"] == SCHEMA_VERSION == 4 and doc["training"] is None
    assert doc["input_shape"] == [1, 3, 32, 32] and doc["batch"] == 2 and doc["threads"] == 1
    assert set(doc["model"]) == {"spec", "description", "impl", "params", "macs", "flops", "bytes"}
    assert doc["model"]["impl"] == "native"
    assert {"peak_gflops_per_s", "bandwidth_gb_per_s", "ridge_flops_per_byte", "cpu", "threads", "torch_version",
            "measured_at", "remeasure_command", "busy"} <= set(doc["machine"])
    assert doc["machine"]["remeasure_command"] == "sepconv profile --machine-only --remeasure --threads 1"
    assert set(doc["timing"]) == set(SCHEMA["timing"])
    assert doc["timing"]["layers_engine"] == "eager" and doc["timing"]["engine_version"] == torch.__version__
    assert doc["timing"]["unmapped_time_ms"] == 0 and doc["unmapped"] == [] and doc["fallback"] == []
    cost_keys = set(analyze(small_net, (1, 3, 32, 32)).layers[0].to_dict())
    for row in doc["layers"]:
        assert set(row) == cost_keys | LAYER_TIME_KEYS
        assert row["flops"] == 2 * row["macs"]
        assert row["bound"] in ("memory", "compute", "none")
        assert row["precision"] == "fp32" and row["memory_level"] in ("L1", "L2", "L3", "DRAM")
        assert isinstance(row["above_ceiling"], bool)
        assert row["status"] == "executed" and row["fused_into"] is None and row["kind_source"] == "type"
        assert row["in_model_ms"] > 0
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
        # The fixture machine measured DRAM alone: every call is held against DRAM and the fp32 peak.
        assert row["working_set_bytes"] == row["weight_bytes"] + row["act_bytes_read"] + row["act_bytes_written"]
        assert (row["memory_level"], row["ceiling_gb_per_s"], row["ceiling_gflops_per_s"]) == ("DRAM", 20.0, 100.0)
        assert row["above_ceiling"] == (row["roofline_fraction"] > 1 + ABOVE_CEILING_TOLERANCE)
    kinds = {r["kind"]: r for r in doc["by_kind"]}
    assert {"standard", "depthwise", "pointwise", "grouped", "linear", "norm", "activation"} <= set(kinds)
    assert kinds["depthwise"]["layers"] == 2 and kinds["grouped"]["layers"] == 1
    assert sum(r["time_share"] for r in doc["by_kind"]) == pytest.approx(1.0)
    assert sum(r["macs_share"] for r in doc["by_kind"]) == pytest.approx(1.0)
    t = doc["timing"]
    assert sum(r["time_ms"] for r in doc["by_kind"]) == pytest.approx(t["accounted_time_ms"])
    assert t["accounted_time_ms"] == pytest.approx(t["layers_time_ms"] + t["functional_time_ms"] + t["unmapped_time_ms"])
    assert t["unaccounted_ms"] == pytest.approx(t["model_time_ms"] - t["accounted_time_ms"])
    assert t["layers_to_model_ratio"] == pytest.approx(t["layers_time_ms"] / t["model_time_ms"])
    assert t["in_model_time_ms"] == pytest.approx(sum(r["in_model_ms"] for r in doc["layers"]))
    assert doc["by_kind"][-1]["kind"] == "functional" and doc["by_kind"][-1]["macs"] == 0


def test_tables_and_json_file(doc, tmp_path):
    from rich.console import Console

    console = Console(record=True, width=220)
    print_report(doc, console)
    text = console.export_text()
    for title in ("Per layer", "By kind: share of MACs against share of time", "Whole model per backend"):
        assert title in text
    assert "depthwise" in text and "peaks fp32 100.0 GFLOP/s (given)" in text and "DRAM 20.0 GB/s" in text
    assert "level" in text and "versions: torch " in text
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
    machine = doc["machine"]
    assert [lv["name"] for lv in machine["levels"]] == ["L1", "L2", "L3", "DRAM"]
    assert all(set(lv) == set(SCHEMA["machine.levels"]) for lv in machine["levels"])
    assert [p["precision"] for p in machine["peaks"]] == ["fp32", "bf16", "fp16", "int8"]
    assert all(set(p) == set(SCHEMA["machine.peaks"]) for p in machine["peaks"])
    assert list(machine["versions"]) == list(SCHEMA["machine.versions"])
    for name in ("layers", "by_kind", "backends"):
        assert doc[name] and all(set(row) == set(SCHEMA[name]) for row in doc[name]), name
    for name in ("functional", "unmapped", "fallback"):  # lists that may be empty: their rows are checked below
        assert all(set(row) == set(SCHEMA[name]) for row in doc[name]), name
    assert [name for name in SCHEMA if name in SCHEMA["top"]] == ["model", "machine", "timing", "layers", "functional",
                                                                  "unmapped", "fallback", "by_kind", "backends",
                                                                  "training"]


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


def with_share(doc: dict, share: float, threads: int = 2) -> dict:
    """The document as if ``share`` of the whole model's time had gone unaccounted."""
    doc = copy.deepcopy(doc)
    doc["threads"] = threads
    t = doc["timing"]
    t["unaccounted_ms"] = share * t["model_time_ms"]
    t["addup"] = f"layers add up to the rest; {share:.0%} unaccounted (synthetic)"
    return doc


@pytest.mark.parametrize("share, warned", [
    (0.0, False), (ADDUP_TOLERANCE, False), (-ADDUP_TOLERANCE, False), (0.16, True), (-0.5, True), (0.9, True),
])
def test_addup_outside_the_tolerance_warns(doc, share, warned):
    """The add-up sentence is always there; it is a warning when more than 15% of the model's time
    is unaccounted either way (the parts short of the whole, or longer than it)."""
    synthetic = with_share(doc, share)
    warning = ratio_warning(synthetic)
    assert (warning is not None) == warned
    assert addup_line(synthetic).endswith(synthetic["timing"]["addup"])
    if warned:
        assert warning == f"warning: {synthetic['timing']['addup']}" and warning not in summary_line(synthetic)


def test_addup_sentence_names_the_parts(doc):
    text = doc["timing"]["addup"]
    t = doc["timing"]
    assert text.startswith(f"layers {t['layers_time_ms']:.2f} ms + functional ops {t['functional_time_ms']:.2f} ms")
    assert f"of the whole model's {t['model_time_ms']:.2f} ms" in text
    assert "timed in place in the model the layers take" in text


def test_addup_is_printed_and_on_the_page(doc):
    from rich.console import Console

    low = with_share(doc, 0.9)
    console = Console(record=True, width=200)
    print_report(low, console)
    assert ratio_warning(low) in console.export_text()
    assert ratio_warning(low) in render_html(low, charts=False)
    fine = with_share(doc, 0.0)
    console = Console(record=True, width=200)
    print_report(fine, console)
    text = console.export_text()
    assert "warning:" not in text and f"add-up: {fine['timing']['addup']}" in text
    assert "warning:" not in render_html(fine, charts=False)


# ---------------------------------------------------------------------------------------------
# Functional ops, layers in place, classification by fallback


class Gate(nn.Module):
    """A module of no known type that computes an activation (x * sigmoid(x)): classified by its ops."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x)


@pytest.fixture(scope="module")
def residual_doc():
    from sepconv.machine import Machine
    from sepconv.models import create_model

    machine = Machine(cpu="test CPU", threads=1, torch_version=torch.__version__, peak_gflops_per_s=100.0,
                      bandwidth_gb_per_s=20.0, gemm_n=1024, stream_bytes=3 << 26,
                      measured_at="2026-01-01T00:00:00+00:00", load_average=0.1, cores=2)
    model = create_model("mobilenet_v2", width_mult=0.35, num_classes=10)
    return to_dict(profile_model(model, (1, 3, 32, 32), spec="mobilenet_v2", batch=1, threads=1, repeats=2, warmup=0,
                                 machine=machine))


def test_functional_ops_of_a_registered_model(residual_doc):
    """MobileNetV2's residual adds are its blocks' own: rows with their parent, kind and bytes, in
    the schema, in the by-kind table and their own table; a registered model has no fallback row."""
    doc = residual_doc
    adds = [row for row in doc["functional"] if row["op"].startswith("aten.add")]
    assert len(adds) == 10 and all(row["module"].startswith("blocks.") and row["kind"] == "elementwise"
                                   and row["bytes"] > 0 and row["time_ms"] > 0 and row["fused_into"] is None
                                   for row in adds)
    assert all(set(row) == set(SCHEMA["functional"]) for row in doc["functional"])
    assert doc["fallback"] == [] and fallback_line(doc) is None
    functional = next(row for row in doc["by_kind"] if row["kind"] == "functional")
    assert functional["layers"] == len(doc["functional"]) and functional["macs"] == 0
    assert functional["time_ms"] == pytest.approx(doc["timing"]["functional_time_ms"])
    assert all(row["in_model_ms"] is not None for row in doc["layers"])
    from rich.console import Console

    console = Console(record=True, width=260)
    print_report(doc, console)
    text = console.export_text()
    assert "Functional ops" in text and "in place ms" in text and f"total ({len(doc['functional'])} ops)" in text
    assert "Functional ops" in render_html(doc, charts=False)


def test_a_custom_module_is_listed_as_classified_by_fallback(machine):
    from rich.console import Console

    model = nn.Sequential(nn.Conv2d(3, 8, 3), Gate(), nn.Conv2d(8, 8, 1))
    doc = to_dict(profile_model(model, (1, 3, 16, 16), spec="gated", batch=1, threads=1, repeats=2, warmup=0,
                                machine=machine))
    assert doc["fallback"] == [{"name": "1", "type": "Gate", "kind": "activation", "kind_source": "ops"}]
    assert [row["kind_source"] for row in doc["layers"]] == ["type", "ops", "type"]
    line = fallback_line(doc)
    assert line.startswith("1 module classified by fallback") and "1 (Gate): activation, by the aten ops" in line
    console = Console(record=True, width=260)
    print_report(doc, console)
    assert line in console.export_text()


# ---------------------------------------------------------------------------------------------
# Cache-aware, precision-aware ceilings


@pytest.fixture
def levelled_doc(small_net, levelled_machine):
    profile = profile_model(small_net, (1, 3, 32, 32), spec="small_net", batch=1, threads=1, repeats=2, warmup=0,
                            machine=levelled_machine)
    return to_dict(profile)


def test_each_layer_is_held_against_the_ceiling_of_its_working_set(levelled_doc, levelled_machine):
    """The rule: the smallest measured level whose capacity holds inputs + weights + outputs (fp32
    here), and the fp32 peak; the roofline time, fraction and flag at that ceiling."""
    levels = {lv.name: lv for lv in levelled_machine.levels}
    seen = set()
    for row in levelled_doc["layers"]:
        working_set = row["weight_bytes"] + row["act_bytes_read"] + row["act_bytes_written"]
        fits = [lv for lv in levelled_machine.levels if lv.known and (lv.capacity_bytes is None
                                                                       or working_set <= lv.capacity_bytes)]
        assert row["working_set_bytes"] == working_set and row["memory_level"] == fits[0].name, row["name"]
        bandwidth = levels[row["memory_level"]].bandwidth_gb_per_s
        assert row["ceiling_gb_per_s"] == bandwidth and row["ceiling_gflops_per_s"] == 100.0
        bound_ms = max(row["flops"] / 100e9, row["bytes"] / (bandwidth * 1e9)) * 1e3
        assert row["roofline_ms"] == pytest.approx(bound_ms)
        assert row["roofline_fraction"] == pytest.approx(bound_ms / row["time_ms"])
        assert row["above_ceiling"] == (bound_ms / row["time_ms"] > 1 + ABOVE_CEILING_TOLERANCE)
        seen.add(row["memory_level"])
    assert {"L1", "L2"} <= seen  # a 32 px net at batch 1: its calls fit the caches


def test_a_row_above_its_ceiling_is_flagged_and_counted(levelled_doc):
    from rich.console import Console

    doc = copy.deepcopy(levelled_doc)
    for row in doc["layers"]:
        row["above_ceiling"] = False
    assert ceiling_note(doc) is None
    flagged = doc["layers"][1]
    flagged["above_ceiling"], flagged["roofline_fraction"] = True, 1.5
    note = ceiling_note(doc)
    assert note.startswith(f"! 1 of {len(doc['layers'])} layers ({flagged['name']}) measured above their ceiling")
    console = Console(record=True, width=260)
    print_report(doc, console)
    text = console.export_text()
    caption = layer_table(doc).caption
    assert note in text and caption.endswith("an anomaly (1 here)") and "over 100%" not in caption
    row_line = next(line for line in text.splitlines() if line.startswith(f"│ {flagged['name']} "))
    assert "150!" in row_line
    assert note in render_html(doc, charts=False).replace("&#x27;", "'").replace("&quot;", '"')


def test_machine_tables_and_document(levelled_machine):
    from rich.console import Console

    doc = machine_document(levelled_machine)
    assert set(doc) == set(SCHEMA["machine_only"]) and doc["schema_version"] == SCHEMA_VERSION
    assert set(doc["machine"]) == set(SCHEMA["machine"])
    console = Console(record=True, width=300)
    print_machine(doc, console)
    text = console.export_text()
    for expected in ("Memory levels (1 threads", "Compute peaks (1 threads)", "L1 200.0 GB/s (to 32 KiB)",
                     "L3 50.0 GB/s (to 16 MiB, shared, found by the sweep)", "int8 400.0 GOP/s (onnxruntime)",
                     "fp16 unavailable", "unavailable: oneDNN reports no fp16 support", "unbounded",
                     "versions: torch "):
        assert expected in text, expected
