"""Distillation through the training loop (digits, 16 px): Hinton's loss, a hidden teacher, only the
student trained, and accuracy won back after separation."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sepconv.models import create_model
from sepconv.separation import separate
from sepconv.separation.finetune import Distillation, DistillationLoss, Distiller
from sepconv.separation.recalibrate import recalibrate_bn

SPEC = "mobilenet_v1:conv=standard,width_mult=0.25,in_chans=1,num_classes=10"


def test_distillation_loss_is_hintons():
    logits, teacher, y = torch.randn(4, 5), torch.randn(4, 5), torch.tensor([0, 1, 2, 3])
    t, alpha = 3.0, 0.25
    p_t = F.softmax(teacher / t, 1)
    kl = (p_t * (p_t.log() - F.log_softmax(logits / t, 1))).sum(1).mean()
    expected = alpha * t * t * kl + (1 - alpha) * F.cross_entropy(logits, y)
    assert float(DistillationLoss(t, alpha)(logits, y, teacher)) == pytest.approx(float(expected), rel=1e-6)
    assert float(DistillationLoss(t, 1.0)(teacher, y, teacher)) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="alpha=2 must be in"):
        DistillationLoss(alpha=2)


def test_distiller_hides_the_teacher():
    student, teacher = nn.Linear(3, 2), nn.Linear(3, 2)
    d = Distiller(student, teacher)
    assert list(d.parameters()) == list(student.parameters()) and "_teacher" not in dict(d.named_modules())
    d.train()(torch.ones(1, 3))
    torch.testing.assert_close(d.teacher_logits, teacher(torch.ones(1, 3)).detach())
    assert teacher.weight.requires_grad  # left alone: a student copied from it stays trainable


def test_finetune_trains_the_student_only():
    teacher = create_model("mobilenet_v1", conv="standard", width_mult=0.25, in_chans=1, num_classes=10)
    frozen = copy.deepcopy(teacher.state_dict())
    distill = Distillation(teacher, "digits", img_size=16, epochs=1, batch_size=256)
    x = distill.calibration(64)
    assert x.shape == (64, 1, 16, 16)
    student, report = separate(teacher, depth_multiplier=2, calibration=x, recalibrate_bn=True,
                               layers=["blocks.12.conv"])
    assert report.bn_recalibrated == 14
    before = copy.deepcopy(student.state_dict())
    result = distill.finetune(student)
    assert result["epochs_done"] == 1 and 0 <= result["val_acc"] <= 1
    assert not torch.equal(before["blocks.12.conv.pw.weight"], student.state_dict()["blocks.12.conv.pw.weight"])
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in frozen.items())
    assert distill.accuracy(student) == pytest.approx(result["val_acc"])
    with pytest.raises(ValueError, match="the model takes 3 input channels; digits images have 1"):
        distill.finetune(create_model("mobilenet_v1", width_mult=0.25, num_classes=10))


def test_distillation_recovers_what_separation_lost():
    # A trained standard-conv teacher, every body conv separated at d = 1: the closed form alone
    # loses most of the accuracy (stale BatchNorm statistics); re-estimating them and a short
    # distillation must win back a clear part of it. Seeds fixed; the margins are wide.
    from sepconv.train import TrainConfig, Trainer

    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        trainer = Trainer(TrainConfig("mobilenet_v1", {"conv": "standard", "width_mult": 0.25, "in_chans": 1,
                                                       "num_classes": 10}, data="digits", img_size=16, epochs=6,
                                      batch_size=64, progress=False))
        trainer.fit()
        teacher = trainer.model.eval()
        distill = Distillation(teacher, "digits", img_size=16, epochs=3, batch_size=64)
        calibration = distill.calibration(256)
        student, _ = separate(teacher, depth_multiplier=1, calibration=calibration, layers=["blocks.*"])
        accuracy = {"teacher": distill.accuracy(teacher), "separated": distill.accuracy(student)}
        recalibrate_bn(student, calibration)
        accuracy["bn"] = distill.accuracy(student)
        accuracy["finetuned"] = float(distill.finetune(student)["val_acc"])
    finally:
        torch.set_num_threads(threads)
    assert accuracy["teacher"] > 0.8, accuracy  # the teacher learned the digits
    assert accuracy["finetuned"] > accuracy["separated"] + 0.2, accuracy
    assert accuracy["finetuned"] > accuracy["bn"], accuracy
