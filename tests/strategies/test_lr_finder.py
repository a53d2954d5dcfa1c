"""The learning-rate range test: Lightning's finder on the module fine-tuning trains, every group's LR
scaled with the swept one, and the model as it was afterwards."""
import math

import pytest
import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook
from torch.utils.data import TensorDataset

from transferkit.backbones import create_backbone
from transferkit.errors import TransferkitError
from transferkit.models import TransferModel
from transferkit.strategies import FitData, TrainSettings, create_strategy
from transferkit.strategies.lightning_module import Schedule
from transferkit.strategies.lr_finder import check_range, lr_range_test, steepest_descent


def test_setting_lr_scales_every_group_and_the_head_together():
    schedule = Schedule(group_lrs=[2.5e-4, 5e-4, 1e-3], head_lr=1e-2, weight_decay=0.05, total_steps=10)
    assert schedule.lr == 1e-3 and schedule.ratios() == pytest.approx([0.25, 0.5, 1.0, 10.0])
    scaled = schedule.scaled(4e-3)
    assert scaled.lr == pytest.approx(4e-3)
    assert scaled.group_lrs == pytest.approx([1e-3, 2e-3, 4e-3]) and scaled.head_lr == pytest.approx(4e-2)
    assert scaled.ratios() == pytest.approx(schedule.ratios()) and scaled.weight_decay == 0.05


@pytest.mark.parametrize("min_lr, max_lr, steps, flag", [(1e-3, 1e-3, 50, "--max-lr"), (1.0, 1e-2, 50, "--max-lr"),
                                                         (0.0, 1.0, 50, "--min-lr"), (1e-6, 1.0, 3, "--steps"),
                                                         (float("nan"), 1.0, 50, "--min-lr")])
def test_a_range_that_cannot_be_swept_is_refused_in_one_line(min_lr, max_lr, steps, flag):
    with pytest.raises(TransferkitError) as error:
        check_range(min_lr, max_lr, steps)
    assert flag in str(error.value) and "\n" not in str(error.value)


def test_the_sweep_keeps_the_discriminative_ratios_and_leaves_the_model_as_it_was():
    torch.manual_seed(0)
    backbone = create_backbone("efficientnet_lite0")
    model = TransferModel(backbone.model, nn.Linear(backbone.num_features, 3))
    data = FitData(train=TensorDataset(torch.randn(24, 3, 32, 32), torch.randint(0, 3, (24,))),
                   train_plain=TensorDataset(torch.randn(4, 3, 32, 32), torch.zeros(4, dtype=torch.long)),
                   val=TensorDataset(torch.randn(4, 3, 32, 32), torch.zeros(4, dtype=torch.long)), num_classes=3)
    settings = TrainSettings(batch_size=8, progress=False)
    strategy = create_strategy("fine-tune")
    expected = strategy.training_module(model, data, settings).schedule  # the LRs a fit would train with
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainable = [p.requires_grad for p in model.parameters()]
    model.eval()
    seen = []  # each optimiser step's LR per parameter group, with the group's size
    head_weights = []  # the head's weights before each step

    def record(optimizer, args, kwargs):
        head_weights.append(model.head.weight.detach().clone())
        seen.append([(group["lr"], sum(p.numel() for p in group["params"])) for group in optimizer.param_groups])

    handle = register_optimizer_step_pre_hook(record)
    try:
        result = lr_range_test(strategy, model, data, settings, min_lr=1e-5, max_lr=1e-1, steps=12)
    finally:
        handle.remove()

    assert result.strategy == "fine-tune" and result.default_lr == pytest.approx(3e-4)
    assert result.head_lr_ratio == pytest.approx(10.0)
    assert len(seen) == result.steps_run >= 2
    assert result.lrs[0] == pytest.approx(1e-5) and result.lrs[-1] > result.lrs[0]
    # a new 3-class head starts near ln 3 = 1.10 (Lightning's own first smoothed value is about half of it)
    assert 0.8 < result.losses[0] < 1.6
    ratios = sorted(expected.ratios())  # lower groups at their decayed share, the top at 1, the head at 10
    assert ratios[0] < 1 and ratios[-1] == pytest.approx(10.0)
    for step, (groups, swept) in enumerate(zip(seen, result.lrs)):
        assert sorted({round(lr / swept, 9) for lr, _ in groups}) == pytest.approx(sorted(set(ratios))), step
    head_params = sum(p.numel() for p in model.head.parameters())
    assert sum(size for lr, size in seen[0] if lr == pytest.approx(10 * result.lrs[0])) == head_params
    # the sweep trained the model; its weights and batch-norm statistics are restored, trainable flags as before
    assert not torch.equal(head_weights[-1], model.head.weight)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), \
        [k for k in before if not torch.equal(before[k], after[k])][:3]
    assert [p.requires_grad for p in model.parameters()] == trainable and not model.training
    assert all(math.isfinite(v) for v in result.lrs)



def test_the_suggestion_is_the_steepest_descent_per_decade_not_the_noise_of_the_lowest_lrs():
    """Loss falling fastest around 1e-3, with a wiggle of 1e-4 at the start: per LR (Lightning 2.6's
    derivative) the wiggle between LRs 4e-8 apart is the steeper; per decade the real descent is."""
    lrs = [10 ** (-7 + 7 * i / 49) for i in range(50)]
    losses = [2 - math.tanh(2 * (math.log10(lr) + 3)) + (1e-4 if i % 2 else 0.0) for i, lr in enumerate(lrs)]
    assert 5e-4 <= steepest_descent(lrs, losses, skip_begin=1) <= 2e-3
    assert steepest_descent(lrs[:3], losses[:3], skip_begin=1) is None  # one point left in the window
