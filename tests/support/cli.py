"""Running the ``sepconv`` command in-process, and a training run's sidecar, for the CLI tests."""

from __future__ import annotations

from pathlib import Path

from sepconv import cli, create_model
from sepconv.formats.checkpoint import save_model

SMALL = "mobilenet_v1:width_mult=0.25,num_classes=10"

# the ``train`` entry ``sepconv train`` writes into a checkpoint's sidecar
TRAIN = {"data": "digits", "classes": [str(i) for i in range(10)], "channels": 3, "mean": [0.5] * 3,
         "std": [0.25] * 3, "eval_crop": 1.0, "img_size": 32, "epoch": 1, "val_acc": 0.5}


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    """``sepconv ARGV...`` in this process: (exit code, stdout, stderr)."""
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def forms_by_name(document: dict) -> dict[str, dict]:
    """``sepconv compare --json``'s rows by form name."""
    return {row["form"]: row for row in document["forms"]}


def make_run_dir(root: Path) -> Path:
    """A run directory as ``sepconv train`` leaves it: model.safetensors (+ sidecar with ``train``)."""
    run = root / "run"
    save_model(create_model("mobilenet_v1", width_mult=0.25, num_classes=10), run / "model.safetensors",
               extra={"train": TRAIN})
    return run
