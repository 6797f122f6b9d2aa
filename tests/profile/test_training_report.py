"""The training object of the JSON document: its keys (SCHEMA v4), MACs equal to the cost model's
(3x forward, 2x in a first layer), the derived numbers per pass, shares by kind, and the tables."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from sepconv.profile.numbers import ABOVE_CEILING_TOLERANCE
from sepconv.profile.report import SCHEMA, ceiling_note, print_report
from sepconv.profile.training_report import PASSES, tables

CONVS = ("standard", "depthwise", "pointwise", "grouped")


def test_written_keys_are_the_schema(training_doc):
    t = training_doc["training"]
    assert set(t) == set(SCHEMA["training"])
    for name in ("layers", "by_kind", "steps"):
        assert t[name] and all(set(row) == set(SCHEMA[f"training.{name}"]) for row in t[name]), name
    for row in t["layers"]:
        for name in PASSES:
            assert row[name] is None or set(row[name]) == set(SCHEMA["training.pass"]), (row["name"], name)
    assert json.loads(json.dumps(training_doc)) == training_doc  # plain JSON


def test_a_backward_row_for_every_conv_and_its_split(training_doc):
    rows = [row for row in training_doc["training"]["layers"] if row["kind"] in CONVS]
    assert len(rows) == 4
    first, *rest = rows
    assert first["input_grad"] is None and first["weight_grad"]["time_ms"] > 0 and not first["needs_input_grad"]
    for row in rest:
        assert row["backward"]["time_ms"] > 0, row["name"]
        assert row["input_grad"]["time_ms"] > 0 and row["weight_grad"]["time_ms"] > 0, row["name"]
    for row in training_doc["training"]["layers"]:
        assert row["forward"]["time_ms"] > 0 and row["backward"] is not None, row["name"]
        if row["kind"] not in CONVS:  # only convolutions are split: the passes carry MACs and bytes, no time
            for name in ("input_grad", "weight_grad"):
                assert row[name] is None or row[name]["time_ms"] is None, (row["name"], name)


def test_training_macs_are_three_forwards_and_two_in_the_first_layer(training_doc):
    t, layers = training_doc["training"], training_doc["training"]["layers"]
    with_macs = [row for row in layers if row["forward"]["macs"]]
    first, *rest = with_macs
    assert first["backward"]["macs"] == first["forward"]["macs"] == first["weight_grad"]["macs"]
    for row in rest:
        assert row["input_grad"]["macs"] == row["weight_grad"]["macs"] == row["forward"]["macs"], row["name"]
        assert row["backward"]["macs"] == 2 * row["forward"]["macs"]
    assert t["forward_macs"] == training_doc["model"]["macs"]
    assert t["macs"] == 3 * t["forward_macs"] - first["forward"]["macs"]
    assert t["input_grad_macs"] + first["forward"]["macs"] == t["weight_grad_macs"] == t["forward_macs"]
    assert [row["name"] for row in layers] == [row["name"] for row in training_doc["layers"]]


def test_derived_numbers(training_doc):
    for row in training_doc["training"]["layers"]:
        for name in PASSES:
            p = row[name]
            if p is None:
                continue
            assert p["intensity_flops_per_byte"] == pytest.approx(2 * p["macs"] / p["bytes"] if p["bytes"] else 0.0)
            bound_ms = max(2 * p["macs"] / 100e9, p["bytes"] / 20e9) * 1e3
            assert p["roofline_ms"] == pytest.approx(bound_ms)
            # The fixture machine measured DRAM alone; a pass's working set is the bytes it moves.
            assert (p["precision"], p["working_set_bytes"], p["memory_level"]) == ("fp32", p["bytes"], "DRAM")
            assert (p["ceiling_gb_per_s"], p["ceiling_gflops_per_s"]) == (20.0, 100.0)
            assert p["above_ceiling"] == (None if p["time_ms"] is None else
                                          p["roofline_fraction"] > 1 + ABOVE_CEILING_TOLERANCE)
            if p["time_ms"] is not None:
                assert p["gflops_per_s"] == pytest.approx(2 * p["macs"] / (p["time_ms"] * 1e-3) / 1e9)
                assert p["roofline_fraction"] == pytest.approx(bound_ms / p["time_ms"])
        assert row["forward"]["bytes"] == next(r["bytes"] for r in training_doc["layers"] if r["name"] == row["name"])
        assert row["saved_activation_bytes"] >= 0
    t = training_doc["training"]
    assert t["saved_activation_bytes"] > 0 and t["memory_method"].startswith("torch.profiler")
    assert t["model_time_ms"] > 0 and t["layers_to_model_ratio"] == pytest.approx(t["layers_time_ms"] / t["model_time_ms"])


def test_by_kind_shares(training_doc):
    kinds = training_doc["training"]["by_kind"]
    assert {"standard", "depthwise", "pointwise", "grouped", "norm", "activation", "linear"} <= {k["kind"] for k in kinds}
    assert sum(k["forward_macs_share"] + k["backward_macs_share"] for k in kinds) == pytest.approx(1.0)
    assert sum(k["forward_time_share"] + k["backward_time_share"] for k in kinds) == pytest.approx(1.0)
    assert sum(k["forward_macs"] + k["backward_macs"] for k in kinds) == training_doc["training"]["macs"]
    depthwise = next(k for k in kinds if k["kind"] == "depthwise")
    assert depthwise["backward_macs"] == 2 * depthwise["forward_macs"]  # not the first layer


def test_steps(training_doc):
    steps = training_doc["training"]["steps"]
    assert [(r["backend"], r["precision"], r["batch"], r["status"]) for r in steps] == [
        ("eager", "fp32", 2, "ok"), ("eager", "fp32", 4, "ok")]
    assert all(r["peak_memory_bytes"] > 0 and r["speedup_vs_eager"] == 1.0 for r in steps)


def test_tables(training_doc):
    console = Console(record=True, width=400)
    print_report(training_doc, console)
    text = console.export_text()
    for title in ("Training, per layer: forward and backward", "Training, by kind: share of training MACs against "
                  "share of training time", "Training step per backend", "training step of small_net at batch 2"):
        assert title in text
    assert len(tables(training_doc)) == 3 and tables({**training_doc, "training": None}) == []
    assert "fwd level" in text and "w-grad roofline %" in text


def test_a_pass_above_its_ceiling_is_flagged(training_doc):
    import copy

    doc = copy.deepcopy(training_doc)
    for row in doc["layers"]:
        row["above_ceiling"] = False
    for row in doc["training"]["layers"]:
        for name in PASSES:
            if row[name] is not None:
                row[name]["above_ceiling"] = False
    assert ceiling_note(doc) is None
    row = next(r for r in doc["training"]["layers"] if r["weight_grad"] is not None)
    row["weight_grad"].update(above_ceiling=True, roofline_fraction=2.0)
    assert ceiling_note(doc).startswith(f"! 1 training passes ({row['name']} weight-grad) measured above their ceiling")
    table = tables(doc)[0]
    assert table.caption.endswith("an anomaly (1 passes here); kept MB = activations saved for backward")
    column = next(c for c in table.columns if c.header == "w-grad roofline %")
    assert list(column.cells)[[r["name"] for r in doc["training"]["layers"]].index(row["name"])] == "200!"
