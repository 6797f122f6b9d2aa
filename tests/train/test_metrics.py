"""sepconv.train.metrics: a run's per-epoch rows as metrics.csv, metrics.json and a training-curve PNG,
each rewritten whole."""

from __future__ import annotations

import csv
import json

import pytest

from sepconv.train.metrics import plot_curves, write_metrics

pytestmark = pytest.mark.usefixtures("one_thread")

ROWS = [{"epoch": 1, "train_loss": 2.1, "val_loss": 1.9, "train_acc": 0.3, "val_acc": 0.4},
        {"epoch": 2, "train_loss": 1.5, "val_loss": 1.4, "train_acc": 0.5, "val_acc": 0.6}]


def test_csv_and_json_hold_every_row_and_are_rewritten_whole(tmp_path):
    paths = write_metrics(tmp_path, ROWS, plot=False)
    assert paths == [tmp_path / "metrics.csv", tmp_path / "metrics.json"]
    assert json.loads((tmp_path / "metrics.json").read_text()) == ROWS
    table = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert [float(r["val_acc"]) for r in table] == [0.4, 0.6] and list(table[0]) == list(ROWS[0])
    write_metrics(tmp_path, ROWS[:1], plot=False)  # a resumed run writes its whole history again
    assert json.loads((tmp_path / "metrics.json").read_text()) == ROWS[:1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.csv", "metrics.json"]


def test_columns_are_the_union_of_the_rows_keys_in_order(tmp_path):
    rows = [{"epoch": 1, "val_acc": 0.5}, {"epoch": 2, "val_acc": 0.6, "ema_val_acc": 0.7}]
    write_metrics(tmp_path, rows, plot=False)
    lines = (tmp_path / "metrics.csv").read_text().splitlines()
    assert lines == ["epoch,val_acc,ema_val_acc", "1,0.5,", "2,0.6,0.7"]


def test_the_curve_is_a_png(tmp_path):
    paths = write_metrics(tmp_path, [{**r, "ema_val_acc": r["val_acc"]} for r in ROWS], title="tiny")
    assert paths[-1] == tmp_path / "curve.png"
    assert paths[-1].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    plot_curves(ROWS[:1], tmp_path / "one.png")  # one epoch, no EMA: still a chart
    assert (tmp_path / "one.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
