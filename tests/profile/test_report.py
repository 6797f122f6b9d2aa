"""The JSON document: its keys and units, MACs equal to the cost model's, and the derived numbers."""

from __future__ import annotations

import json

import pytest
import torch

from sepconv.cost import analyze
from sepconv.profile import SCHEMA_VERSION, profile_model, to_dict
from sepconv.profile.report import print_report, write_json

TOP_KEYS = {"schema_version", "sepconv_version", "model", "input_shape", "batch", "threads", "machine", "timing",
            "layers", "by_kind", "backends"}
LAYER_TIME_KEYS = {"time_ms", "p90_ms", "gflops_per_s", "gb_per_s", "roofline_ms", "roofline_fraction", "bound"}
KIND_KEYS = {"kind", "layers", "params", "macs", "bytes", "time_ms", "macs_share", "time_share", "gflops_per_s"}


@pytest.fixture
def doc(small_net, machine):
    profile = profile_model(small_net, (1, 3, 32, 32), spec="small_net", backends=["eager", "channels_last"],
                            batch=2, threads=1, repeats=3, warmup=1, machine=machine)
    return to_dict(profile)


def test_keys_and_units(doc, small_net):
    assert set(doc) == TOP_KEYS and doc["schema_version"] == SCHEMA_VERSION == 1
    assert doc["input_shape"] == [1, 3, 32, 32] and doc["batch"] == 2 and doc["threads"] == 1
    assert set(doc["model"]) == {"spec", "description", "params", "macs", "flops", "bytes"}
    assert {"peak_gflops_per_s", "bandwidth_gb_per_s", "ridge_flops_per_byte", "cpu", "threads", "torch_version",
            "measured_at", "remeasure_command", "busy"} <= set(doc["machine"])
    assert doc["machine"]["remeasure_command"] == "sepconv profile --remeasure --threads 1"
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
    path = tmp_path / "out" / "profile.json"
    write_json(doc, path)
    assert json.loads(path.read_text()) == doc


def test_profile_model_restores_threads(small_net, machine):
    before = torch.get_num_threads()
    profile_model(small_net, (1, 3, 16, 16), threads=1, repeats=1, warmup=0, machine=machine)
    assert torch.get_num_threads() == before
