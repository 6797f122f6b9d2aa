"""Super-resolution training on a tiny patch set: the patch sampler, the L1 loop with PSNR/SSIM validation
against bicubic, an exact resume, a checkpoint that round-trips and evaluates, and ``sepconv train`` /
``sepconv eval`` end to end with their one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from support.cli import run_cli

from sepconv.data.photos import SRData, SRImage, degrade, load_sr_data
from sepconv.formats.checkpoint import load_model
from sepconv.formats.sidecar import read_sidecar
from sepconv.train.loop import TrainConfig, Trainer, evaluate
from sepconv.train.superres import PatchSampler, SuperResolution, evaluate_images

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = {"width": 4, "recursions": 1}  # ssnet_m, cut down


def write_photos(folder, n: int = 4, size=(30, 36)):
    """``n`` smooth colour photos (a gradient plus a little noise), PNG."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:size[0], 0:size[1]]
    for i in range(n):
        rng = np.random.default_rng(i)
        base = np.stack([(xx * (i + 3) + yy * 2) % 256, (yy * 5 + i * 40) % 256, (xx + yy) * 3 % 256], -1)
        array = np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(array).save(folder / f"photo{i}.png")
    return folder


def config(tmp_path, photos, **kwargs) -> TrainConfig:
    args = dict(model="ssnet_m", model_kwargs=dict(TINY), data=f"photos:{photos}", epochs=2, batch_size=4,
                img_size=12, precision="fp32", compile=False, channels_last=False, out=str(tmp_path / "run"),
                progress=False)
    return TrainConfig(**{**args, **kwargs})


@pytest.fixture
def photos(tmp_path):
    return write_photos(tmp_path / "photos")


def tiny_data(size=(12, 18)) -> SRData:
    g = torch.Generator().manual_seed(0)
    hr = [torch.randint(0, 256, (3, *size), dtype=torch.uint8, generator=g) for _ in range(2)]
    return SRData("tiny", 3, 6, tuple(SRImage(f"im{i}", h, degrade(h, 3)) for i, h in enumerate(hr)), ())


def test_patches_are_aligned_lr_hr_pairs_under_one_symmetry():
    data = tiny_data()
    sampler = PatchSampler(data)
    params = sampler.epoch_params(64, seed=3, epoch=1)
    assert params.shape == (64, 4) and params.dtype == torch.long
    assert set(params[:, 3].tolist()) == set(range(8))  # all 8 symmetries drawn
    assert torch.equal(params, sampler.epoch_params(64, seed=3, epoch=1))  # a function of (seed, epoch)
    assert not torch.equal(params, sampler.epoch_params(64, seed=3, epoch=2))
    lr, hr = sampler.crops(params)
    assert lr.shape == (64, 3, 2, 2) and hr.shape == (64, 3, 6, 6) and lr.dtype == hr.dtype == torch.uint8
    for (image, top, left, k), lo, hi in zip(params.tolist(), lr, hr):
        im = data.train[image]
        plain_lr = im.lr[:, top:top + 2, left:left + 2]
        plain_hr = im.hr[:, top * 3:top * 3 + 6, left * 3:left * 3 + 6]
        turn = (lambda x: torch.rot90(x, k % 4, (-2, -1)).flip(-1) if k >= 4 else torch.rot90(x, k % 4, (-2, -1)))
        assert torch.equal(lo, turn(plain_lr)) and torch.equal(hi, turn(plain_hr))
    off = PatchSampler(data, augment=False).epoch_params(16, seed=0, epoch=0)
    assert (off[:, 3] == 0).all()


def test_model_inputs_follow_the_registry_contract(photos):
    data = load_sr_data(str(photos), scale=2, patch=12)
    params = SuperResolution(data, "ssnet_m", 1).epoch_params(3, 0, 0)
    x, y = SuperResolution(data, "ssnet_m", 1).train_batch(params)
    assert x.shape == (3, 1, 6, 6) and y.shape == (3, 1, 12, 12)  # Y, the LR patch
    assert 16 / 255 - 1e-6 <= float(x.min()) and float(x.max()) <= 235 / 255 + 1e-6
    x, y = SuperResolution(data, "srcnn", 3).train_batch(params)
    assert x.shape == (3, 3, 12, 12) and y.shape == (3, 3, 12, 12)  # RGB, upscaled by bicubic first
    assert SuperResolution(data, "srcnn", 1).input_shape(8) == (8, 1, 12, 12)
    with pytest.raises(ValueError, match="in_chans=2: a super-resolution model trains on photos with 1"):
        SuperResolution(data, "ssnet_m", 2)


def test_training_lowers_the_l1_loss_and_reports_psnr_against_bicubic(tmp_path, photos):
    trainer = Trainer(config(tmp_path, photos, epochs=3, lr=3e-3))
    assert trainer.sr is not None and trainer.aug is None and trainer.config.weight_decay == 0.0
    assert trainer.steps_per_epoch == len(trainer.train_set) // 4 == round(3 * 30 * 36 / 144) // 4
    summary = trainer.fit()
    rows = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    for key in ("train_psnr", "val_loss", "val_psnr", "val_ssim", "val_bicubic_psnr", "val_bicubic_ssim"):
        assert np.isfinite(rows[-1][key]), key
    assert "train_acc" not in rows[-1] and "val_acc" not in rows[-1]
    assert rows[0]["val_bicubic_psnr"] == rows[-1]["val_bicubic_psnr"]  # bicubic does not train
    assert [r["image"] for r in summary["held_out"]] == list(trainer.data.held_out_names)
    assert summary["val_psnr"] == pytest.approx(np.mean([r["psnr"] for r in summary["held_out"]]))
    assert (tmp_path / "run" / "curve.png").stat().st_size > 0


def test_resume_continues_exactly(tmp_path, photos):
    whole = Trainer(config(tmp_path / "a", photos))
    whole.fit()
    first = Trainer(config(tmp_path / "b", photos))
    first.fit(until_epoch=1)
    resumed = Trainer(config(tmp_path / "b", photos, resume=True))
    assert resumed.epoch == 1
    resumed.fit()
    for (name, a), b in zip(whole.model.state_dict().items(), resumed.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    timing = ("seconds", "train_images_per_s")
    assert [{k: v for k, v in r.items() if k not in timing} for r in whole.history] == \
        [{k: v for k, v in r.items() if k not in timing} for r in resumed.history]


def test_checkpoint_round_trips_and_evaluates_as_training_measured(tmp_path, photos):
    trainer = Trainer(config(tmp_path, photos, epochs=1, model_kwargs={**TINY, "scale": 3}))
    trainer.fit()
    path = tmp_path / "run" / "model.safetensors"
    side = read_sidecar(path)
    assert side.train["task"] == "super_resolution" and side.train["scale"] == 3 and side.train["img_size"] == 12
    assert side.train["held_out"] == list(trainer.data.held_out_names)
    model = load_model(path)
    assert model.scale == 3 and all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                                       trainer.model.state_dict().values()))
    result = evaluate(tmp_path / "run")
    assert result["task"] == "super_resolution" and result["scale"] == 3 and result["images"] == 1
    assert result["psnr"] == pytest.approx(trainer.history[-1]["val_psnr"], abs=1e-9)
    assert result["bicubic_psnr"] == pytest.approx(trainer.history[-1]["val_bicubic_psnr"], abs=1e-9)
    on_train = evaluate(tmp_path / "run", split="train")
    assert on_train["images"] == 3 and len(on_train["per_image"]) == 3


def test_evaluate_images_measures_bicubic_for_a_model_that_is_bicubic():
    class Bicubic(torch.nn.Module):
        def forward(self, x):
            return torch.nn.functional.interpolate(x, scale_factor=3, mode="bicubic", align_corners=False)

    data = tiny_data(size=(24, 27))
    result = evaluate_images(Bicubic(), data.train, 3, in_chans=1, upsampled=False)
    for row in result["per_image"]:
        assert row["psnr"] == pytest.approx(row["bicubic_psnr"]) and row["ssim"] == pytest.approx(row["bicubic_ssim"])


@pytest.mark.parametrize("kwargs, argument, message", [
    ({"model_kwargs": {**TINY, "scale": 5}}, "scale", "scale=5 must be one of 2, 3, 4"),
    ({"img_size": 13}, "img_size", "img_size=13 must be an integer multiple of scale=2"),
    ({"img_size": 48}, "img_size", "smaller than a 48x48 patch"),
    ({"crop_scale": (0.5, 1.0)}, "crop_scale", "super-resolution trains on random patches"),
    ({"batch_size": 512}, None, "larger than the 22 patches an epoch draws"),
])
def test_bad_runs_stop_before_anything_is_written(tmp_path, photos, kwargs, argument, message):
    with pytest.raises(ValueError, match=message) as err:
        Trainer(config(tmp_path, photos, **kwargs))
    assert getattr(err.value, "argument", None) == argument
    assert not (tmp_path / "run").exists()


def test_the_commands_end_to_end(tmp_path, photos, capsys):
    out = tmp_path / "cli"
    code, stdout, stderr = run_cli(capsys, "train", "ssnet_m:width=4,recursions=1", "--data", str(photos),
                                   "--scale", "3", "--img-size", "12", "--batch-size", "4", "--epochs", "1",
                                   "--precision", "fp32", "--no-compile", "--no-channels-last", "--quiet",
                                   "--out", str(out))
    assert code == 0, stderr
    assert "held-out PSNR" in stdout and "bicubic" in stdout and "photo" in stdout
    code, stdout, stderr = run_cli(capsys, "eval", str(out), "--json")
    assert code == 0, stderr
    doc = json.loads(stdout)
    assert doc["scale"] == 3 and doc["per_image"][0]["image"].startswith("photo")
    code, stdout, _ = run_cli(capsys, "eval", str(out))
    assert "PSNR" in stdout and "(bicubic" in stdout and "3 px border cropped" in stdout


@pytest.mark.parametrize("args, message", [
    (["--scale", "5"], "sepconv: error: --scale=5 must be one of 2, 3, 4"),
    (["--img-size", "600"], "sepconv: error: --img-size=600: training photo"),
    (["--data", "EMPTY"], "has no readable photos"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, photos, capsys, args, message):
    (tmp_path / "empty").mkdir()
    argv = ["train", "ssnet_m", "--data", str(photos), "--out", str(tmp_path / "run"), "--quiet", *args]
    argv = [str(tmp_path / "empty") if a == "EMPTY" else a for a in argv]
    code, stdout, stderr = run_cli(capsys, *argv)
    assert code == 2 and stdout == "" and message in stderr and len(stderr.strip().splitlines()) == 1
