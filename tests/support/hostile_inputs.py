"""Inputs the hostile suite's cases share: a small sepconv checkpoint, timm-style weights to import,
a machine cache (so that no case measures the machine), and the commands that write files."""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path

import torch

from sepconv import create_model
from sepconv.formats.checkpoint import save_model
from support.weights import synthetic_state

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "weights"
SMALL = "mobilenet_v1:width_mult=0.25,num_classes=10"
STANDARD = "mobilenet_v1:conv=standard,width_mult=0.25,num_classes=10"
PROFILE = ["--input", "1x3x32x32", "--threads", "1", "--repeats", "1", "--warmup", "0", "--budget", "1",
           "--backend", "eager"]

# Each command that writes files, writing OUT (a placeholder) in its case's folder.
WRITERS: dict[str, tuple[list[str], str]] = {
    # name: (argv with OUT, the output's file name)
    "train": (["train", SMALL, "--data", "digits", "--epochs", "1", "--img-size", "32", "--batch-size", "256",
               "--threads", "1", "--quiet", "--out", "OUT"], "run"),
    "separate": (["separate", STANDARD, "--input-size", "32", "--no-time", "--batch", "2", "--out", "OUT"],
                 "s.safetensors"),
    "import-weights": (["import-weights", "timm", "w.pth", "--model", "mobilenet_v2", "--width-mult", "0.35",
                        "--out", "OUT"], "m.safetensors"),
    "profile-json": (["profile", SMALL, *PROFILE, "--json", "OUT"], "p.json"),
    "profile-plot": (["profile", SMALL, *PROFILE, "--plot", "OUT"], "p.png"),
    "profile-html": (["profile", SMALL, *PROFILE, "--html", "OUT"], "p.html"),
    "machine-json": (["profile", "--machine-only", "--threads", "1", "--json", "OUT"], "machine.json"),
    "export": (["export", SMALL, "--input-size", "32", "--out", "OUT"], "m.onnx"),
}


def argv_of(writer: str, out: str | None = None, *extra: str) -> list[str]:
    argv, default = WRITERS[writer]
    return [out or default if a == "OUT" else a for a in argv] + list(extra)


def timm_weights() -> bytes:
    """A torch.save'd state dict with timm's mobilenetv2_035 keys and shapes (deterministic values)."""
    keys = json.loads((FIXTURES / "timm_mobilenetv2_035.json").read_text())["keys"]
    buffer = io.BytesIO()
    torch.save({k: torch.from_numpy(v) for k, v in synthetic_state(keys).items()}, buffer)
    return buffer.getvalue()


def checkpoint(folder: Path, name: str = "m", model: str = "mobilenet_v1", **kwargs) -> dict[str, bytes]:
    """A sepconv checkpoint's two files, as ``{name.safetensors: bytes, name.json: bytes}``."""
    path = save_model(create_model(model, **(kwargs or {"width_mult": 0.25, "num_classes": 10})),
                      folder / f"{name}.safetensors")
    return {path.name: path.read_bytes(), path.with_suffix(".json").name: path.with_suffix(".json").read_bytes()}


def machine_cache(folder: Path) -> dict[str, str]:
    """The environment that points sepconv at a cache holding a made-up machine for 1 thread."""
    from sepconv.machine import Machine, store

    store(Machine(cpu="test CPU", threads=1, torch_version=torch.__version__, peak_gflops_per_s=100.0,
                  bandwidth_gb_per_s=20.0, gemm_n=1024, stream_bytes=3 << 26, measured_at="2026-01-01T00:00:00+00:00",
                  load_average=0.1, cores=2), folder)
    return {"SEPCONV_CACHE": str(folder)}


CIFAR_CORRUPTIONS: dict[str, tuple[str, str]] = {
    # case: (file, what is wrong with it)
    "cifar_negative": ("data_batch_2", "a negative label"),
    "cifar_beyond": ("test_batch", "a label beyond the meta file's class names"),
    "cifar_meta_int": ("batches.meta", "label_names an int"),
    "cifar_meta_str": ("batches.meta", "label_names a str"),
    "cifar_meta_list": ("batches.meta", "label_names a list of ints"),
    "cifar_bytes_data": ("data_batch_1", "data a bytes object"),
    "cifar_bytes_labels": ("data_batch_1", "labels a bytes object"),
    "cifar_float_labels": ("data_batch_1", "labels floats"),
    "cifar_one_class": ("data_batch_1", "every label 0 in every batch: one class"),
}


def corrupt_cifar(root: Path, case: str) -> None:
    """Rewrite a CIFAR-10 folder (``support.train.make_cifar10``) as ``case`` of :data:`CIFAR_CORRUPTIONS` says."""
    def edit(name, change):
        doc = pickle.loads((root / name).read_bytes())
        change(doc)
        (root / name).write_bytes(pickle.dumps(doc, protocol=2))

    changes = {
        "cifar_negative": lambda d: d[b"labels"].__setitem__(0, -3),
        "cifar_beyond": lambda d: d[b"labels"].__setitem__(0, 10),
        "cifar_meta_int": lambda d: d.__setitem__(b"label_names", 10),
        "cifar_meta_str": lambda d: d.__setitem__(b"label_names", "airplane"),
        "cifar_meta_list": lambda d: d.__setitem__(b"label_names", list(range(10))),
        "cifar_bytes_data": lambda d: d.__setitem__(b"data", d[b"data"].tobytes()),
        "cifar_bytes_labels": lambda d: d.__setitem__(b"labels", bytes(d[b"labels"])),
        "cifar_float_labels": lambda d: d.__setitem__(b"labels", [0.5] * len(d[b"labels"])),
    }
    if case == "cifar_one_class":
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            edit(name, lambda d: d.__setitem__(b"labels", [0] * len(d[b"labels"])))
        return
    edit(CIFAR_CORRUPTIONS[case][0], changes[case])


def folder_files(root: Path, prefix: str) -> dict[str, bytes]:
    """Every file under ``root`` as ``{prefix/relative path: bytes}`` (a case's ``files``)."""
    return {f"{prefix}/{p.relative_to(root)}": p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
