"""Auxiliary classifiers in training: forward_aux seen as forward, their losses weighted in."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sepconv import create_model
from sepconv.train.auxiliary import WithAuxiliary, aux_weights, auxiliary_loss


def test_the_loss_is_the_main_loss_plus_the_weighted_auxiliary_losses():
    torch.manual_seed(0)
    main, a1, a2 = (torch.randn(4, 5) for _ in range(3))
    y = torch.tensor([0, 1, 2, 3])
    ce = nn.CrossEntropyLoss()
    expected = ce(main, y) + 0.3 * ce(a1, y) + 0.3 * ce(a2, y)
    assert torch.allclose(auxiliary_loss(ce, (main, a1, a2), y, (0.3, 0.3)), expected)
    with pytest.raises(ValueError, match="2 auxiliary outputs for 1 weights"):
        auxiliary_loss(ce, (main, a1, a2), y, (0.4,))


@pytest.mark.parametrize(("name", "heads", "weight", "size"), [("googlenet", 2, 0.3, 224), ("inception_v3", 1, 0.4, 299)])
def test_models_state_their_weights_and_forward_stays_the_main_logits(name, heads, weight, size):
    model = create_model(name, aux_logits=True, width_mult=0.25, num_classes=7).eval()
    assert aux_weights(model) == (weight,) * heads
    assert aux_weights(create_model(name, width_mult=0.25, num_classes=7)) == ()
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        outputs = WithAuxiliary(model)(x)
        assert len(outputs) == 1 + heads and all(o.shape == (2, 7) for o in outputs)
        assert torch.equal(outputs[0], model(x))  # forward returns the main logits only, whatever aux_logits says


def test_training_steps_use_the_auxiliary_heads():
    from sepconv.train import TrainConfig, Trainer

    config = TrainConfig(model="googlenet", model_kwargs={"aux_logits": True, "width_mult": 0.125}, data="digits",
                         epochs=1, batch_size=64, img_size=224, out=None, seed=0, threads=1, progress=False,
                         precision="fp32", compile=False, channels_last=False)
    trainer = Trainer(config)
    assert trainer.aux_weights == (0.3, 0.3) and isinstance(trainer.net, WithAuxiliary)
    x, y = torch.randn(2, 1, 224, 224), torch.tensor([1, 2])  # digits are grey
    logits, loss = trainer.forward_loss(x, y)  # what every training step runs
    assert logits.shape == (2, 10)
    main_only = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)(logits, y)
    assert loss.item() > main_only.item()  # the auxiliary losses are added
    loss.backward()
    for head in (trainer.model.aux1, trainer.model.aux2):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters() if p.requires_grad)
