"""Accuracy before and after separation, and recovering it by distillation through the training loop.

:class:`Distillation` sets up a data set with the preprocessing training used
(:mod:`sepconv.train`), measures top-1 accuracy of any model on its validation split, hands out a
calibration batch of real training images for :func:`~sepconv.separate.separate`, and fine-tunes a
separated student against the original teacher with the training loop
(:class:`sepconv.train.Trainer`): same batches, augmentation, optimizer and warm-up + cosine
schedule as ``sepconv train``, only the loss differs -- knowledge distillation (Hinton, Vinyals &
Dean 2015, *Distilling the Knowledge in a Neural Network*):
``alpha * T^2 * KL(softmax(t / T) || softmax(s / T)) + (1 - alpha) * CE(s, y)``.

Example::

    >>> d = Distillation(teacher, "digits", epochs=2)
    >>> student, report = separate(teacher, depth_multiplier=2, calibration=d.calibration(64))
    >>> d.accuracy(teacher), d.accuracy(student), d.finetune(student)["acc"]  # doctest: +SKIP
    (0.97, 0.41, 0.95)
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .._util.runtime import eval_mode
from ..models.provenance import provenance_of
from ..train.loop import TrainConfig, Trainer, batches


class Distiller(nn.Module):
    """The student, trained; the teacher's logits for the same (augmented) batch on the side.

    The teacher is held outside the module tree (not trained, not saved, not in ``parameters()``)
    and runs in eval mode under ``torch.no_grad`` (its ``requires_grad`` flags are left alone: a
    student copied from it must stay trainable). ``forward`` returns the student's logits.
    """

    def __init__(self, student: nn.Module, teacher: nn.Module) -> None:
        super().__init__()
        self.student = student
        self._teacher = (teacher.eval(),)
        self.teacher_logits: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            with torch.no_grad():
                self.teacher_logits = self._teacher[0](x)  # (B, classes)
        return self.student(x)  # (B, classes)


class DistillationLoss(nn.Module):
    """Hinton et al. 2015: ``alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE``.

    The ``T^2`` keeps the soft term's gradients on the scale of the hard term's as T changes
    (Section 2 of the paper).

    Example::

        >>> loss = DistillationLoss(temperature=4.0, alpha=0.5)
        >>> float(loss(torch.zeros(2, 3), torch.tensor([0, 1]), teacher=torch.zeros(2, 3)))  # CE of uniform: ln 3 / 2
        0.5493061542510986
    """

    def __init__(self, temperature: float = 4.0, alpha: float = 0.5, label_smoothing: float = 0.0) -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature={temperature!r} must be > 0")
        if not 0 <= alpha <= 1:
            raise ValueError(f"alpha={alpha!r} must be in [0, 1] (the weight of the distillation term)")
        self.temperature, self.alpha, self.label_smoothing = float(temperature), float(alpha), label_smoothing

    def forward(self, logits: torch.Tensor, target: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        t = self.temperature
        soft = F.kl_div(F.log_softmax(logits.float() / t, 1), F.log_softmax(teacher.float() / t, 1),
                        reduction="batchmean", log_target=True)
        hard = F.cross_entropy(logits.float(), target, label_smoothing=self.label_smoothing)
        return self.alpha * t * t * soft + (1 - self.alpha) * hard


class _DistillTrainer(Trainer):
    """The training loop with a given :class:`Distiller` as its model and the distillation loss.

    ``Trainer`` builds its model by registry name; here the model exists already (the separated
    student), so ``_build_model`` returns it, and the criterion reads the teacher's logits that
    the distiller kept from the same forward pass.
    """

    def __init__(self, config: TrainConfig, distiller: Distiller, loss: DistillationLoss) -> None:
        self._distiller = distiller
        super().__init__(config)
        self.criterion = lambda logits, y: loss(logits, y, distiller.teacher_logits)

    def _build_model(self) -> nn.Module:
        return self._distiller.to(self.info.device)


class Distillation:
    """A teacher and a data set, set up once: accuracy, calibration images, distillation.

    ``data`` is a :func:`sepconv.train.load_data` spec (``"digits"``, ``"folder:PATH"``, ...);
    ``img_size`` the model's input size (default: the data set's). ``epochs``, ``lr``,
    ``batch_size``, ``optimizer``, ``warmup_epochs`` are the training loop's
    (:class:`sepconv.train.TrainConfig`); a fine-tune wants a small ``lr``.
    """

    def __init__(self, teacher: nn.Module, data: str = "digits", *, img_size: int | None = None, epochs: int = 1,
                 lr: float = 0.01, batch_size: int = 128, optimizer: str = "sgd", warmup_epochs: float = 0.0,
                 temperature: float = 4.0, alpha: float = 0.5, seed: int = 0, device: str = "cpu",
                 progress: bool = False) -> None:
        self.teacher = teacher
        self.loss = DistillationLoss(temperature, alpha)
        provenance = provenance_of(teacher)
        self.config = TrainConfig(
            provenance.model if provenance else type(teacher).__name__, dict(provenance.kwargs) if provenance else {},
            data=data, epochs=epochs,
            batch_size=batch_size, optimizer=optimizer, lr=lr, warmup_epochs=warmup_epochs, label_smoothing=0.0,
            img_size=img_size, seed=seed, device=device, progress=progress)
        # The teacher's own run: loads the data once, gives the preprocessing and the evaluation.
        self.trainer = _DistillTrainer(self.config, Distiller(teacher, teacher), self.loss)
        self._check_fits(teacher)

    @property
    def input_size(self) -> int:
        return self.trainer.img_size

    def calibration(self, n: int) -> torch.Tensor:
        """The first ``n`` training images, preprocessed as for evaluation: (n, C, S, S)."""
        train = self.trainer.data.train
        n = min(int(n), len(train))
        images, _, _ = next(batches(train, [list(range(n))]))
        return self.trainer.aug.eval(images.to(self.trainer.info.device))

    def accuracy(self, model: nn.Module) -> float:
        """Top-1 accuracy on the validation split."""
        return float(self.trainer.evaluate(model.to(self.trainer.info.device))["acc"])

    def finetune(self, student: nn.Module) -> dict[str, Any]:
        """Train ``student`` (in place) against the teacher; the last epoch's metrics (``val_acc``...)."""
        self._check_fits(student)
        trainer = _DistillTrainer(self.config, Distiller(student, self.teacher), self.loss)
        return trainer.fit()

    def _check_fits(self, model: nn.Module) -> None:
        x = self.calibration(2)
        first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
        if first is not None and first.in_channels != x.shape[1]:
            raise ValueError(f"the model takes {first.in_channels} input channels; {self.config.data} images "
                             f"have {x.shape[1]}")
        with eval_mode(model), torch.no_grad():
            classes = model(x).shape[-1]
        if classes != self.trainer.data.num_classes:
            raise ValueError(f"the model has {classes} outputs; {self.config.data} has "
                             f"{self.trainer.data.num_classes} classes")
