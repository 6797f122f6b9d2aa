"""The profile's chart: a roofline of every layer with MACs, and each kind's share of MACs against its
share of time, as a PNG."""

from __future__ import annotations

import pytest

from sepconv.profile import profile_model, to_dict
from sepconv.profile.plot import figure, save_plot

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
