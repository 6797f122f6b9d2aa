"""``sepconv profile`` end to end: outputs, the default run, and one-line errors with exit code 2."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time

import pytest
from rich.console import Console
from support.cli import run_cli

from sepconv import resolve as spec
from sepconv.cli import profile as command
from sepconv.cost import analyze
from sepconv.machine import cache_path, store
from sepconv.profile.report import SCHEMA, SCHEMA_VERSION, machine_dict
from sepconv.resolve import resolve_model

SMALL = "mobilenet_v2:width_mult=0.35,num_classes=10"


@pytest.fixture
def cached_machine(machine):
    """The fixture machine in the cache for 1 thread, so no micro-benchmark runs."""
    store(machine)
    return machine


def test_outputs(capsys, tmp_path, cached_machine):
    out_json, out_png, out_html = tmp_path / "p.json", tmp_path / "p.png", tmp_path / "p.html"
    code, out, err = run_cli(capsys, "profile", SMALL, "--input", "1x3x64x64", "--batch", "2", "--threads", "1",
                             "--repeats", "3", "--warmup", "0", "--backend", "channels_last",
                             "--json", str(out_json), "--plot", str(out_png), "--html", str(out_html))
    assert code == 0, err
    for title in ("Per layer", "By kind: share of MACs against share of time", "Whole model per backend",
                  "peaks fp32 100.0 GFLOP/s", "sepconv profile --machine-only --remeasure --threads 1"):
        assert title in out
    assert f"wrote {out_json}" in err and "machine measured" not in err
    doc = json.loads(out_json.read_text())
    model = resolve_model(SMALL).model
    cost = analyze(model, (1, 3, 64, 64))
    assert doc["model"]["macs"] == cost.macs and doc["model"]["spec"] == SMALL
    assert [r["macs"] for r in doc["layers"]] == [r.macs for r in cost.layers]
    assert [(r["backend"], r["batch"]) for r in doc["backends"]] == [
        ("eager", 1), ("eager", 2), ("channels_last", 1), ("channels_last", 2)]
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = out_html.read_text()
    assert "data:image/png;base64," in page and "By kind" in page and "blocks.1.dw.conv" in page


def test_json_to_stdout(capsys, cached_machine):
    code, out, err = run_cli(capsys, "profile", SMALL, "--input", "1x3x32x32", "--batch", "1", "--threads", "1",
                             "--repeats", "2", "--warmup", "0", "--json", "-")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["schema_version"] == SCHEMA_VERSION == 4 and doc["input_shape"] == [1, 3, 32, 32]
    assert doc["training"] is None
    assert [r["batch"] for r in doc["backends"]] == [1]


def test_remeasure_measures_and_caches(capsys, monkeypatch, cached_machine):
    from sepconv import machine as machine_mod

    calls = []
    monkeypatch.setattr(machine_mod, "measure_machine", lambda threads: calls.append(threads) or cached_machine)
    code, _, err = run_cli(capsys, "profile", SMALL, "--input", "1x3x32x32", "--batch", "1", "--threads", "1",
                           "--repeats", "1", "--warmup", "0", "--remeasure")
    assert code == 0 and calls == [1]
    assert f"machine measured and cached in {cache_path(1)}" in err


def test_machine_only_measures_the_ceilings_and_nothing_else(capsys, monkeypatch, cached_machine):
    """README's re-measure command (the JSON's remeasure_command) measures the machine alone."""
    from sepconv import machine as machine_mod
    from sepconv.profile import profiler

    calls = []
    monkeypatch.setattr(machine_mod, "measure_machine", lambda threads: calls.append(threads) or cached_machine)
    monkeypatch.setattr(spec, "resolve_model", lambda *a, **k: pytest.fail("--machine-only loaded a model"))
    monkeypatch.setattr(profiler, "profile_model", lambda *a, **k: pytest.fail("--machine-only profiled"))
    code, out, err = run_cli(capsys, "profile", "--machine-only", "--threads", "1")
    assert code == 0 and calls == [] and "machine measured" not in err  # the cache is shown
    assert out.startswith("Machine: test CPU, 1 threads") and "Per layer" not in out
    assert "Memory levels (1 threads" in out and "Compute peaks (1 threads)" in out and "versions: torch" in out
    command = machine_dict(cached_machine)["remeasure_command"]
    code, out, err = run_cli(capsys, *command.split()[1:])
    assert code == 0 and calls == [1] and f"machine measured and cached in {cache_path(1)}" in err
    assert f"(re-measure: {command})" in out


@pytest.mark.parametrize("argv", [["--html", "m.html"], ["--plot", "m.png"], ["mobilenet_v1"],
                                  ["--input", "1x3x32x32"]])
def test_machine_only_refuses_what_needs_a_profile(capsys, cached_machine, argv):
    code, out, err = run_cli(capsys, "profile", "--machine-only", *argv)
    assert code == 2 and out == "" and err.count("\n") == 1 and "--machine-only measures the machine alone" in err


def test_machine_only_writes_every_ceiling_as_json(capsys, tmp_path, monkeypatch, cached_machine):
    """``--machine-only --json FILE`` writes the levels, the peaks and the versions (SCHEMA["machine_only"]);
    ``--json -`` prints that JSON alone. Both from the cache: no micro-benchmark runs."""
    from sepconv import machine as machine_mod

    monkeypatch.setattr(machine_mod, "measure_machine", lambda threads: pytest.fail("measured: the cache was there"))
    path = tmp_path / "out" / "machine.json"
    code, out, err = run_cli(capsys, "profile", "--machine-only", "--threads", "1", "--json", str(path))
    assert code == 0 and f"wrote {path}" in err and "Memory levels" in out
    doc = json.loads(path.read_text())
    assert set(doc) == set(SCHEMA["machine_only"]) and doc["schema_version"] == SCHEMA_VERSION
    assert set(doc["machine"]) == set(SCHEMA["machine"]) and doc["machine"] == machine_dict(cached_machine)
    assert [lv["name"] for lv in doc["machine"]["levels"]] == ["L1", "L2", "L3", "DRAM"]
    assert [p["precision"] for p in doc["machine"]["peaks"]] == ["fp32", "bf16", "fp16", "int8"]
    assert list(doc["machine"]["versions"]) == list(SCHEMA["machine.versions"])
    code, out, err = run_cli(capsys, "profile", "--machine-only", "--threads", "1", "--json", "-")
    assert code == 0 and json.loads(out) == doc


@pytest.mark.parametrize("option, path", [("--plot", "p.png"), ("--html", "p.html")])
def test_charts_without_matplotlib_fail_before_measuring(capsys, monkeypatch, cached_machine, option, path):
    from sepconv.profile import profiler

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    monkeypatch.setattr(profiler, "profile_model", lambda *a, **k: pytest.fail("measured before refusing"))
    code, out, err = run_cli(capsys, "profile", SMALL, option, path)
    assert code == 2 and out == ""
    assert err == f"sepconv: error: {option[2:]}={path!r} needs matplotlib: pip install 'sepconv[plot]'\n"


def test_progress_bar_shows_every_stage_and_its_total(capsys, monkeypatch, cached_machine):
    """The bar, drawn on a terminal: every stage's label, and each counted stage at its total
    (3 rounds of layers; 2 backends x batches 1 and 2 of the whole model)."""

    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=160, color_system=None)
    monkeypatch.setattr(command, "stderr_console", lambda: console)
    code, _, _ = run_cli(capsys, "profile", SMALL, "--input", "1x3x32x32", "--batch", "2", "--threads", "1",
                         "--repeats", "3", "--warmup", "0", "--budget", "0", "--backend", "channels_last")
    assert code == 0
    drawn = screen.getvalue()
    for label in ("loading the model", "the machine's ceilings: memory levels and precision peaks (1 threads)",
                  "timing each layer",
                  "timing the whole model"):
        assert label in drawn, label
    assert re.search(r"timing each layer\s.*\b3/3\b", drawn)
    assert re.search(r"timing the whole model\s.*\b4/4\b", drawn)


def test_progress_is_silent_off_a_terminal():
    from sepconv._util.console import stage_progress

    screen = io.StringIO()
    with stage_progress(Console(file=screen, force_terminal=False)) as step:
        advance = step("timing each layer", 2)
        advance()
        advance()
    assert screen.getvalue() == ""


@pytest.mark.parametrize("argv, message", [
    (["no_such_model"], "model='no_such_model' is not one of"),
    (["mobilenet_v2:alpha=2"], "unknown argument"),
    (["--input", "1x3xbig"], "input='1x3xbig' must be positive integers joined by 'x'"),
    (["--input", "1x1x64x64"], "expected 3 input channels, got 1"),
    (["--input", "3x224x224"], "input must be 4-D"),
    (["--backend", "tensorrt"], "backend='tensorrt' must be 'all' or a comma-separated list"),
    (["--threads", "0"], "threads=0 must be a positive integer"),
    (["--batch", "-1"], "batch=-1 must be a positive integer"),
    (["--plot", "chart.svg"], "plot='chart.svg' must end in .png"),
    (["--html", "page.txt"], "html='page.txt' must end in .html"),
    (["--budget", "nan"], "--budget=nan must be a finite number of seconds >= 0"),
    (["--budget", "inf"], "--budget=inf must be a finite number of seconds >= 0"),
    (["--budget", "-1"], "--budget=-1.0 must be a finite number of seconds >= 0"),
    (["--layers-on", "bogus"], "--layers-on='bogus' must be one of 'eager', 'onnxruntime', 'openvino'"),
    (["--layers-on", "openvino"], "--layers-on='openvino': OpenVINO runs in sepconv as a whole-model engine"),
])
def test_bad_arguments_give_one_line_and_exit_2(capsys, cached_machine, argv, message):
    code, out, err = run_cli(capsys, "profile", *argv)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sepconv: error: ") and message in lines[0], err


def test_layers_on_onnxruntime(capsys, tmp_path, cached_machine):
    """--layers-on onnxruntime: the per-layer rows from ONNX Runtime's profiler, mapped back to the
    cost report's names: every conv executed with a time, every BatchNorm folded into a node, the
    residual adds and the layout changes listed, the document in the schema, the tables printed."""
    out_json, out_html = tmp_path / "o.json", tmp_path / "o.html"
    code, out, err = run_cli(capsys, "profile", "mobilenet_v2:width_mult=0.35", "--input", "1x3x64x64", "--batch", "1",
                             "--threads", "1", "--repeats", "3", "--warmup", "0", "--budget", "2", "--layers-on",
                             "onnxruntime", "--json", str(out_json), "--html", str(out_html))
    assert code == 0, err
    doc = json.loads(out_json.read_text())
    import onnxruntime

    t = doc["timing"]
    assert t["layers_engine"] == "onnxruntime" and t["engine_version"] == onnxruntime.__version__
    assert t["in_model_time_ms"] is None and t["model_time_ms"] > 0 and t["addup"].startswith("onnxruntime ")
    assert set(doc) == set(SCHEMA["top"]) and set(t) == set(SCHEMA["timing"])
    for name in ("layers", "functional", "unmapped", "fallback", "by_kind"):
        assert all(set(row) == set(SCHEMA[name]) for row in doc[name]), name
    assert [r["name"] for r in doc["layers"]] == [r.name for r in analyze(resolve_model(
        "mobilenet_v2:width_mult=0.35").model, (1, 3, 64, 64)).layers]
    convs = [r for r in doc["layers"] if r["type"] == "Conv2d"]
    norms = [r for r in doc["layers"] if r["type"] == "BatchNorm2d"]
    assert convs and all(r["status"] == "executed" and r["time_ms"] is not None and r["fused_into"] is None
                         for r in convs)
    assert norms and all(r["status"] == "folded" and r["fused_into"] and r["time_ms"] is None
                         and r["gflops_per_s"] is None and r["roofline_fraction"] is None for r in norms)
    adds = [r for r in doc["functional"] if r["op"] == "Add"]
    assert len(adds) == 10 and all(r["module"].startswith("blocks.") and r["bytes"] is None for r in adds)
    assert all(r["time_ms"] is None for r in doc["functional"] if r["fused_into"])
    assert isinstance(doc["unmapped"], list) and doc["fallback"] == []
    kinds = [r["kind"] for r in doc["by_kind"]]
    assert "functional" in kinds and ("unmapped" in kinds) == bool(doc["unmapped"])
    assert sum(r["time_share"] for r in doc["by_kind"]) == pytest.approx(1.0)
    assert t["accounted_time_ms"] == pytest.approx(sum(r["time_ms"] for r in doc["by_kind"]))
    assert "Per layer on onnxruntime" in out and "folded into" in out and "Functional ops" in out
    assert "Functional ops" in out_html.read_text()


def test_layers_on_openvino_is_refused_in_the_library():
    from torch import nn

    from sepconv.profile import profile_model

    with pytest.raises(ValueError, match=r"layers_on='openvino': .*per-layer view is not available yet") as caught:
        profile_model(nn.Conv2d(3, 4, 3), (1, 3, 8, 8), layers_on="openvino")
    assert caught.value.argument == "layers_on"
    with pytest.raises(ValueError, match="layers_on='tvm' must be one of 'eager', 'onnxruntime', 'openvino'"):
        profile_model(nn.Conv2d(3, 4, 3), (1, 3, 8, 8), layers_on="tvm")


@pytest.mark.parametrize("argv, message", [
    (["mobilenet_v2", "--input", "1x3x100000x100000"], "--input=1x3x100000x100000: the profile's tensors would need"),
    (["mobilenet_v2", "--batch", "100000000"], "--batch=100000000: the whole model's tensors at that batch would need"),
    (["mobilenet_v2", "--train", "--input", "100000x3x224x224"], "--input=100000x3x224x224: the profile's tensors "
                                                                  "(training: the activations and their gradients)"),
])
def test_a_profile_that_cannot_fit_in_memory_is_refused_first(capsys, monkeypatch, cached_machine, argv, message):
    from sepconv.profile import profiler

    monkeypatch.setattr(profiler, "analyze", lambda *a, **k: pytest.fail("allocated before refusing"))
    code, out, err = run_cli(capsys, "profile", *argv)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "is available" in lines[0], err


def test_the_memory_estimate_lets_the_default_run_through():
    """The default profile (mobilenet_v2, 224 px, --batch 8) is estimated far under a GiB, with
    --train at batch 8 under 3 GiB: the refusal is for sizes no machine holds, not for normal runs."""
    from sepconv.profile.profiler import check_profile_memory, profile_memory_bytes

    model = resolve_model("mobilenet_v2").model
    assert 100 * 2**20 < profile_memory_bytes(model, (1, 3, 224, 224), 8) < 2**30
    assert profile_memory_bytes(model, (8, 3, 224, 224), 8, train=True) < 3 * 2**30
    assert check_profile_memory(model, (1, 3, 224, 224), 8) == profile_memory_bytes(model, (1, 3, 224, 224), 8)
    with pytest.raises(ValueError, match=r"input_shape=1x3x100000x100000: .* would need") as caught:
        check_profile_memory(model, (1, 3, 100000, 100000), 8)
    assert caught.value.argument == "input_shape"


TINY = "mobilenet_v1:width_mult=0.25,num_classes=10"
FAST = ("--threads", "1", "--repeats", "2", "--warmup", "0", "--budget", "0")


def test_train_outputs(capsys, tmp_path, cached_machine):
    out_json, out_png, out_html = tmp_path / "t.json", tmp_path / "t.png", tmp_path / "t.html"
    code, out, err = run_cli(capsys, "profile", TINY, "--train", "--input", "2x3x32x32", "--batch", "4",
                             "--precision", "fp32", *FAST, "--json", str(out_json), "--plot", str(out_png),
                             "--html", str(out_html))
    assert code == 0, err
    for title in ("Per layer", "Training, per layer: forward and backward", "Training, by kind", "Training step per "
                  "backend", "training step of " + TINY):
        assert title in out, title
    doc = json.loads(out_json.read_text())
    t = doc["training"]
    convs = [row for row in t["layers"] if row["type"] == "Conv2d"]
    assert convs and all(row["backward"] is not None and row["weight_grad"]["time_ms"] for row in convs)
    assert convs[0]["input_grad"] is None and all(row["input_grad"]["time_ms"] for row in convs[1:])
    assert t["macs"] == 3 * t["forward_macs"] - convs[0]["forward"]["macs"]
    assert [(r["backend"], r["precision"], r["batch"], r["status"]) for r in t["steps"]] == [
        ("eager", "fp32", 2, "ok"), ("eager", "fp32", 4, "ok")]
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "Training step per backend" in out_html.read_text()


def test_train_defaults_to_a_batch_of_8_and_every_precision(capsys, monkeypatch, cached_machine):
    from sepconv.profile import step

    monkeypatch.setattr(step, "precision_unavailable", lambda p: "no fp16 here (test)" if p == "fp16" else None)
    code, out, err = run_cli(capsys, "profile", "mobilefacenet:img_size=64", "--train", "--batch", "8", *FAST,
                             "--json", "-")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["input_shape"] == [8, 3, 64, 64]
    assert [(r["precision"], r["status"]) for r in doc["training"]["steps"]] == [
        ("fp32", "ok"), ("bf16", "ok"), ("fp16", "skipped")]
    assert doc["training"]["steps"][2]["error"] == "no fp16 here (test)"


def test_several_models_side_by_side(capsys, tmp_path, cached_machine):
    standard = TINY + ",conv=standard"
    dirs = {name: tmp_path / name for name in ("json", "plot", "html")}
    code, out, err = run_cli(capsys, "profile", TINY, standard, "--train", "--input", "2x3x32x32", "--batch", "2",
                             "--precision", "fp32", *FAST, "--json", str(dirs["json"]), "--plot", str(dirs["plot"]),
                             "--html", str(dirs["html"]))
    assert code == 0, err
    summary_at = out.index("Side by side: training step per model")
    table = out[summary_at:]
    assert TINY in table and standard in table and "eager fp32" in table
    assert out.count("Training step per backend") == 2  # each model's own report first
    stems = ["mobilenet_v1-width_mult=0.25,num_classes=10", "mobilenet_v1-width_mult=0.25,num_classes=10,conv=standard"]
    for name, suffix in (("json", ".json"), ("plot", ".png"), ("html", ".html")):
        assert sorted(p.name for p in dirs[name].iterdir()) == sorted([f"{s}{suffix}" for s in stems]
                                                                      + [f"summary{suffix}"]), name
    summary = json.loads((dirs["json"] / "summary.json").read_text())
    assert [row["spec"] for row in summary["models"]] == [TINY, standard]
    assert [row["document"] for row in summary["models"]] == stems
    separable, dense = summary["models"]
    assert separable["depthwise_macs_share"] > 0 and dense["depthwise_macs_share"] == 0
    assert dense["training_macs"] > separable["training_macs"]
    for stem in stems:
        doc = json.loads((dirs["json"] / f"{stem}.json").read_text())
        assert doc["training"] and doc["schema_version"] == 4
    assert f'href="{stems[0]}.html"' in (dirs["html"] / "summary.html").read_text()


@pytest.mark.parametrize("argv, message", [
    (["torch.nn:ReLU", "--train", "--input", "2x3x8x8"],
     "--train needs a model with trainable parameters, and model='torch.nn:ReLU' has none"),
    ([TINY, "--train", "--input", "1x3x32x32"],
     "--input=1x3x32x32: a training profile needs a batch of at least 2"),
    ([TINY, "--train", "--precision", "fp16"],
     "--precision='fp16' cannot run on this machine: no fp16 here (test); available here: fp32, bf16"),
    ([TINY, "--train", "--precision", "int4"], "--precision='int4' must be 'all' or a comma-separated list"),
    ([TINY, "--precision", "bf16"], "--precision='bf16' is the training step's: it needs --train"),
    ([TINY, TINY, "--json", "-"], "json='-': with several models --json names a directory"),
    ([TINY, TINY, "--weights", "w.safetensors"], "--weights loads one model's weights; 2 MODELs were given"),
    ([TINY, "no_such_model", "--train"], "model='no_such_model' is not one of"),
])
def test_bad_training_arguments_give_one_line_and_exit_2(capsys, monkeypatch, cached_machine, argv, message):
    from sepconv.profile import profiler, step

    monkeypatch.setattr(step, "precision_unavailable", lambda p: "no fp16 here (test)" if p == "fp16" else None)
    monkeypatch.setattr(profiler, "profile_model", lambda *a, **k: pytest.fail("measured before refusing"))
    code, out, err = run_cli(capsys, "profile", *argv)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sepconv: error: ") and message in lines[0], err


def test_an_unknown_impl_is_one_line(capsys, cached_machine):
    code, out, err = run_cli(capsys, "profile", TINY, "--impl", "caffe")
    assert code == 2 and out == "" and err.count("\n") == 1 and "invalid choice: 'caffe'" in err


def test_several_models_refuse_a_file_where_a_directory_goes(capsys, tmp_path, cached_machine):
    existing = tmp_path / "p.json"
    existing.write_text("{}")
    code, out, err = run_cli(capsys, "profile", TINY, TINY, "--json", str(existing))
    assert code == 2 and out == "" and "with several models --json names a directory" in err


def test_default_command_runs_under_a_minute(tmp_path):
    """The issue's check: `sepconv profile` with no arguments (mobilenet_v2, 224 px, eager, the
    machine measured on first use) finishes in under a minute on a 2-core machine.

    Only an idle machine can show that: with more runnable processes than cores every timed call
    waits its turn (two torch threads on two busy cores run some 20x slower). So a run over a
    minute fails only if the load average stayed below the core count; otherwise it is skipped,
    saying so, after the run itself has been checked.
    """
    env = {**os.environ, "SEPCONV_CACHE": str(tmp_path / "cache")}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "sepconv", "profile"], capture_output=True, text=True, env=env,
                          timeout=600)
    elapsed = time.perf_counter() - start
    assert done.returncode == 0, done.stderr
    assert "By kind" in done.stdout and "mobilenet_v2" in done.stdout and "machine measured" in done.stderr
    if elapsed >= 60:
        load, cores = os.getloadavg()[0], len(os.sched_getaffinity(0))
        if load > cores:
            pytest.skip(f"sepconv profile took {elapsed:.0f} s on a busy machine (load {load:.1f} on {cores} "
                        "cores); the under-a-minute check needs an idle one")
    assert elapsed < 60, f"sepconv profile took {elapsed:.0f} s"


def test_an_existing_output_needs_overwrite_and_is_checked_before_measuring(capsys, tmp_path, monkeypatch,
                                                                            cached_machine):
    from sepconv.profile import profiler

    (tmp_path / "p.json").write_text("{}")
    monkeypatch.setattr(profiler, "profile_model", lambda *a, **k: pytest.fail("measured before refusing"))
    code, out, err = run_cli(capsys, "profile", TINY, *FAST, "--json", str(tmp_path / "p.json"))
    assert code == 2 and out == ""
    assert err == (f"sepconv: error: --json={str(tmp_path / 'p.json')!r} already exists; pass --overwrite to "
                   "replace it\n")
    (tmp_path / "p.png").mkdir()
    code, out, err = run_cli(capsys, "profile", TINY, *FAST, "--plot", str(tmp_path / "p.png"))
    assert code == 2 and "p.png' is a directory; give a file path" in err
    code, out, err = run_cli(capsys, "profile", "--machine-only", "--threads", "1", "--json", str(tmp_path / "p.json"))
    assert code == 2 and "pass --overwrite" in err
    code, out, err = run_cli(capsys, "profile", "--machine-only", "--threads", "1", "--json", str(tmp_path / "p.json"),
                             "--overwrite")
    assert code == 0 and json.loads((tmp_path / "p.json").read_text())["machine"]
