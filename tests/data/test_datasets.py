"""Data sets: digits, ImageFolder and CIFAR from tiny files written here; bad files named in one line."""

from __future__ import annotations

import pickle
import shutil

import numpy as np
import pytest
import torch
from support.hostile_inputs import corrupt_cifar
from support.train import cifar_batch, make_cifar10, make_folder, write_png

from sepconv.data.datasets import FolderImages, UnreadableImage, load_data, stratified_split
from sepconv.train.loop import batches

pytestmark = pytest.mark.usefixtures("one_thread")


def test_digits_is_a_fixed_stratified_80_20_split():
    data = load_data("digits")
    assert (len(data.train), len(data.val)) == (1438, 359)
    assert data.num_classes == 10 and data.channels == 1 and data.img_size == 32 and not data.hflip
    image, label, index = data.train[5]
    assert image.dtype == torch.uint8 and image.shape == (1, 8, 8) and index == 5 and 0 <= label < 10
    assert torch.equal(load_data("digits").val.labels, data.val.labels)
    counts = torch.bincount(data.val.labels, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37  # 20% of each class of ~180


def test_stratified_split_keeps_one_of_each_class_in_train():
    train, val = stratified_split(np.array([0, 1, 1, 1, 1]), 0.5)
    assert set(train) | set(val) == set(range(5)) and not set(train) & set(val)
    assert 0 in train and len(val) == 2


def test_image_folder_split_fraction(tmp_path):
    data = load_data(str(make_folder(tmp_path / "pets", per_class=5)), img_size=16, val_split=0.4)
    assert data.classes == ("cat", "dog") and data.channels == 3
    assert (len(data.train), len(data.val)) == (6, 4)
    image, label, _ = data.val[0]
    assert image.shape == (3, 18, 18) and image.dtype == torch.uint8  # 16 / 0.875, centre-croppable
    assert data.eval_crop == pytest.approx(16 / 18) and data.name.startswith("folder:")


def test_image_folder_train_val_directories(tmp_path):
    make_folder(tmp_path / "ds" / "train", per_class=3)
    make_folder(tmp_path / "ds" / "val", per_class=2)
    data = load_data(f"folder:{tmp_path / 'ds'}", img_size=8)
    assert (len(data.train), len(data.val)) == (6, 4)
    assert data.val[3][1] == 1 and data.val[0][0][0, 0, 0] == 0 and data.val[3][0][0, 0, 0] == 200


def test_cifar10_and_100_pickles(tmp_path):
    data = load_data(str(make_cifar10(tmp_path / "cifar-10-batches-py")))
    assert data.name.startswith("cifar10:") and (len(data.train), len(data.val)) == (40, 8)
    assert data.classes[3] == "class3" and data.train[0][0].shape == (3, 32, 32)
    raw = pickle.loads((tmp_path / "cifar-10-batches-py" / "data_batch_1").read_bytes())
    assert torch.equal(data.train.images[0], torch.from_numpy(raw[b"data"][0].reshape(3, 32, 32)))

    root = tmp_path / "cifar-100-python"
    root.mkdir()
    for name, seed in (("train", 1), ("test", 2)):
        batch = cifar_batch(6, b"fine_labels", seed)
        batch[b"coarse_labels"] = [0] * 6
        (root / name).write_bytes(pickle.dumps(batch, protocol=2))
    (root / "meta").write_bytes(pickle.dumps({b"fine_label_names": [f"f{i}".encode() for i in range(100)],
                                              b"coarse_label_names": [b"c"]}, protocol=2))
    data = load_data(f"cifar100:{root}", img_size=24)
    assert data.num_classes == 100 and len(data.train) == 6 and data.img_size == 24


@pytest.mark.parametrize("case, message", [
    ("missing", "does not exist"),
    ("file", "is not a directory"),
    ("no_classes", "no class sub-folders"),
    ("empty_class", "empty class folder"),
    ("bad_image", "unreadable image"),
    ("cifar_missing", "data_batch_3: missing"),
    ("cifar_corrupt", "data_batch_1: not a CIFAR python-pickle file"),
    ("cifar_code", "refusing to load os.system"),
    ("cifar_negative", r"data_batch_2: labels hold -3; a class index is >= 0"),
    ("cifar_beyond", r"test_batch: labels reach 10, but batches.meta names 10 classes \(label_names\)"),
    ("cifar_meta_int", r"batches.meta: label_names must be a list of class names \(str\), not a int"),
    ("cifar_meta_str", r"batches.meta: label_names must be a list of class names \(str\), not a str"),
    ("cifar_meta_list", r"batches.meta: label_names must be a list .* not a list holding int"),
    ("cifar_bytes_data", r"data_batch_1: not a CIFAR batch \(data \(\) \|S"),
    ("cifar_bytes_labels", r"data_batch_1: not a CIFAR batch .* labels \(\) \|S"),
    ("cifar_float_labels", r"data_batch_1: not a CIFAR batch .* labels \(8,\) float64 must be integers"),
    ("cifar_one_class", r"every training image is of one class \('class0'\); classification needs at least two"),
    ("folder_one_class", r"only one class folder \(cat\); classification needs at least two"),
])
def test_bad_data_names_the_file(tmp_path, case, message):
    spec = str(tmp_path / "d")
    if case == "file":
        (tmp_path / "d").write_text("x")
    elif case == "no_classes":
        (tmp_path / "d").mkdir()
        write_png(tmp_path / "d" / "loose.png", (0, 0, 0))
    elif case == "empty_class":
        make_folder(tmp_path / "d")
        (tmp_path / "d" / "zebra").mkdir()
        (tmp_path / "d" / "zebra" / "notes.txt").write_text("no images")
    elif case == "bad_image":
        make_folder(tmp_path / "d")
        (tmp_path / "d" / "dog" / "broken.png").write_bytes(b"\x89PNG not really")
    elif case.startswith("cifar"):
        make_cifar10(tmp_path / "d")
        if case == "cifar_missing":
            (tmp_path / "d" / "data_batch_3").unlink()
        elif case == "cifar_corrupt":
            raw = (tmp_path / "d" / "data_batch_1").read_bytes()
            (tmp_path / "d" / "data_batch_1").write_bytes(raw[: len(raw) // 2])
        elif case == "cifar_code":
            (tmp_path / "d" / "test_batch").write_bytes(b"cos\nsystem\n(S'echo owned'\ntR.")
        else:
            corrupt_cifar(tmp_path / "d", case)
    elif case == "folder_one_class":
        make_folder(tmp_path / "d")
        for extra in (tmp_path / "d").iterdir():
            if extra.name != "cat":
                shutil.rmtree(extra)
    with pytest.raises(ValueError, match=message) as err:
        load_data(spec if case != "cifar_missing" else f"cifar10:{spec}")
    assert "\n" not in str(err.value)
    if case == "bad_image":
        assert "broken.png" in str(err.value)


def test_bad_options():
    with pytest.raises(ValueError, match="img_size=4 must be an integer >= 8"):
        load_data("digits", img_size=4)
    with pytest.raises(ValueError, match="val_split=1.5 must be a fraction"):
        load_data("digits", val_split=1.5)


def test_worker_decode_error_keeps_one_line(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"garbage")
    write_png(tmp_path / "good.png", (1, 2, 3))
    dataset = FolderImages([tmp_path / "good.png", bad], [0, 1], size=8)
    with pytest.raises(UnreadableImage) as err:
        list(batches(dataset, [[0, 1]], workers=1))
    assert str(err.value).startswith(f"{bad}: unreadable image") and "\n" not in str(err.value)
