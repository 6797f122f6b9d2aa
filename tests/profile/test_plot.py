"""The profile's chart: a roofline of every layer with MACs, and each kind's share of MACs against its
share of time, as a PNG."""

from __future__ import annotations

import pytest

from sepconv.profile import profile_model, to_dict
from sepconv.profile.plot import figure, level_label, peak_label, roofline_axes, save_plot, training_roofline_axes

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def doc(small_net, machine):
    return to_dict(profile_model(small_net, (1, 3, 32, 32), spec="small_net", batch=2, threads=1, repeats=2,
                                 warmup=0, machine=machine))


def test_plot_is_a_png_with_both_charts(doc, tmp_path):
    fig = figure(doc)
    roofline, shares = fig.axes
    assert roofline.get_xscale() == "log" and roofline.get_yscale() == "log"
    points = sum(len(c.get_offsets()) for c in roofline.collections)
    assert points == sum(1 for row in doc["layers"] if row["macs"] > 0)
    assert [t.get_text() for t in shares.get_xticklabels()] == [row["kind"] for row in doc["by_kind"]]
    path = save_plot(doc, tmp_path / "chart.png")
    assert path.read_bytes()[:8] == PNG
    with pytest.raises(ValueError, match="must end in .png"):
        save_plot(doc, tmp_path / "chart.jpg")


def test_training_profile_adds_a_row_of_charts(training_doc, tmp_path):
    fig = figure(training_doc)
    assert len(fig.axes) == 4
    _, _, train_roofline, train_shares = fig.axes
    assert train_roofline.get_xscale() == "log" and train_roofline.get_yscale() == "log"
    passes = sum(1 for row in training_doc["training"]["layers"] for name in ("forward", "input_grad", "weight_grad")
                 if row[name] and row[name]["macs"] > 0 and row[name]["time_ms"])
    assert sum(len(c.get_offsets()) for c in train_roofline.collections) == passes
    assert [t.get_text() for t in train_shares.get_xticklabels()] == [
        row["kind"] for row in training_doc["training"]["by_kind"]]
    assert save_plot(training_doc, tmp_path / "train.png").read_bytes()[:8] == PNG


def ceilings_in(doc: dict) -> list[str]:
    """The labels of every measured level and available peak in the document's machine."""
    machine = doc["machine"]
    return ([level_label(lv) for lv in machine["levels"] if lv["bandwidth_gb_per_s"] is not None]
            + [peak_label(p) for p in machine["peaks"] if p["gflops_per_s"] is not None])


def test_every_ceiling_in_the_json_is_drawn_and_labelled(small_net, levelled_machine):
    doc = to_dict(profile_model(small_net, (1, 3, 32, 32), spec="small_net", batch=1, threads=1, repeats=2,
                                warmup=0, machine=levelled_machine))
    expected = ceilings_in(doc)
    assert expected == ["L1 200.0 GB/s", "L2 100.0 GB/s", "L3 50.0 GB/s", "DRAM 20.0 GB/s",
                        "fp32 100 GFLOP/s (torch/MKL)", "bf16 200 GFLOP/s (torch/oneDNN)", "int8 400 GOP/s (onnxruntime)"]
    roofline = figure(doc).axes[0]
    assert [line.get_label() for line in roofline.get_lines()] == expected
    assert [t.get_text() for t in roofline.texts] == expected  # each written beside its line
    # Each level's slope is its bandwidth; each peak is flat at its value.
    for line, level in zip(roofline.get_lines()[:4], doc["machine"]["levels"]):
        (x0, x1), (y0, y1) = line.get_data()
        assert y0 / x0 == pytest.approx(level["bandwidth_gb_per_s"]) and y1 / x1 == pytest.approx(y0 / x0)
    for line, peak in zip(roofline.get_lines()[4:], [p for p in doc["machine"]["peaks"] if p["gflops_per_s"]]):
        assert list(line.get_data()[1]) == [peak["gflops_per_s"]] * 2


def test_a_missing_ceiling_is_not_drawn(doc):
    """The fixture machine measured DRAM and fp32 only: two lines, no line for what is unknown."""
    import copy

    roofline = figure(doc).axes[0]
    assert [line.get_label() for line in roofline.get_lines()] == ceilings_in(doc) == [
        "DRAM 20.0 GB/s", "fp32 100 GFLOP/s (given)"]
    # A ceiling added to the JSON is drawn: the chart renders the document, whatever made it.
    richer = copy.deepcopy(doc)
    richer["machine"]["levels"][1].update(bandwidth_gb_per_s=90.0, capacity_bytes=2**20, reason=None)
    from matplotlib.figure import Figure

    ax = Figure().add_subplot()
    roofline_axes(ax, richer)
    assert [line.get_label() for line in ax.get_lines()] == ["L2 90.0 GB/s", "DRAM 20.0 GB/s",
                                                             "fp32 100 GFLOP/s (given)"]


def test_points_above_their_ceiling_have_a_black_rim(doc):
    import copy

    marked = copy.deepcopy(doc)
    rows = [row for row in marked["layers"] if row["flops"] > 0 and row["bytes"] > 0 and row["gflops_per_s"]]
    for row in marked["layers"]:
        row["above_ceiling"] = False
    rows[0]["above_ceiling"] = True
    roofline = figure(marked).axes[0]
    rims = [tuple(edge[:3]) for c in roofline.collections for edge in c.get_edgecolors()]
    assert len(rims) == len(rows) and rims.count((0.0, 0.0, 0.0)) == 1


def test_the_training_roofline_draws_every_ceiling(training_doc):
    from matplotlib.figure import Figure

    ax = Figure().add_subplot()
    training_roofline_axes(ax, training_doc)
    assert [line.get_label() for line in ax.get_lines()] == ceilings_in(training_doc)
