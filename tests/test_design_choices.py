"""``benchmarks/design_choices.py --tiny``: every claim's table with its columns and one verdict line each, end
to end in seconds (issue 17). The figures of a tiny run mean nothing; the stated grid is the lead's run."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path

import pytest

from sepconv._util.runtime import cores, is_busy, load_average

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "design_choices.py"
CLAIMS = ["linear_bottleneck", "expansion", "relu6_int8", "grouping", "deeper_separable", "dead_kernels"]
COLUMNS = ["claim", "setting", "accuracy % (mean +- sd, n)", "params", "MACs", "latency ms"]


@pytest.fixture(scope="module")
def design_choices():
    pytest.importorskip("onnxruntime")
    name = "design_choices_under_test"
    spec = importlib.util.spec_from_file_location(name, SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(name, None)


def test_tiny_run_end_to_end(design_choices, tmp_path, capsys):
    load = load_average()
    began = time.perf_counter()
    assert design_choices.main(["--tiny", "--out", str(tmp_path)]) == 0
    seconds = time.perf_counter() - began
    out = capsys.readouterr().out
    assert out == (tmp_path / "design_choices.md").read_text()
    sections = out.split("\n### ")[1:]
    assert [s.split("(")[-1].split(")")[0] for s in (sec.splitlines()[0] for sec in sections)] == CLAIMS
    for section, key in zip(sections, CLAIMS):
        header = next(line for line in section.splitlines() if line.startswith("| claim |"))
        columns = [c.strip() for c in header.strip("|").split("|")]
        assert columns[:6] == COLUMNS
        if key == "relu6_int8":
            assert columns[6:] == ["int8 agreement %", "int8 drop (points)", "int8 SQNR dB"]
        if key == "dead_kernels":
            assert columns[6:] == ["dead dw kernels %", "inactive dw channels %"]
        rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| claim |")]
        assert rows and all("not run" not in row for row in rows)
        verdicts = [line for line in section.splitlines() if line.startswith("Verdict: ")]
        assert len(verdicts) == 1 and len(verdicts[0]) > len("Verdict: ") + 20
    doc = json.loads((tmp_path / "design_choices.json").read_text())
    assert [c["key"] for c in doc["claims"]] == CLAIMS and doc["tiny"] and doc["dead_tol"] == 1e-3
    assert all(r["params"] and r["macs"] and r["latency_ms"] for c in doc["claims"] for r in c["rows"])
    if not is_busy(load, cores()):  # timing decides nothing on a loaded machine (DESIGN.md)
        assert seconds <= 30, f"--tiny took {seconds:.0f} s"


def test_budget_cut_reports_runs_as_not_run(design_choices, tmp_path, capsys):
    assert design_choices.main(["--tiny", "--claims", "grouping", "--budget-minutes", "1e-9"]) == 0
    out = capsys.readouterr().out
    assert out.count("| not run |") == 2 and "Verdict: not every setting ran (budget spent): no verdict" in out


def test_matching_repeats_meets_the_standard_models_parameters(design_choices):
    import torch

    from sepconv.models import create_model

    repeats = design_choices.matching_repeats(0.25)
    with torch.device("meta"):
        standard = design_choices.n_params(create_model("mobilenet_v1", conv="standard", width_mult=0.25,
                                                        num_classes=10, in_chans=1))
        deep = design_choices.n_params(design_choices.DeepSeparable(repeats, 0.25, 10, 1))
    assert abs(deep - standard) / standard < 0.01 and repeats > 4


def test_unknown_claim_is_a_usage_error(design_choices, capsys):
    with pytest.raises(SystemExit) as exit_:
        design_choices.main(["--tiny", "--claims", "nope"])
    assert exit_.value.code == 2 and "unknown nope" in capsys.readouterr().err
