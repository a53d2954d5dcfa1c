import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from transferkit.backbones import create_backbone
from transferkit.models import TransferModel
from transferkit.strategies import GradualUnfreeze, freeze_batchnorm_stats, set_trainable
from transferkit.strategies.finetuning import LayerGroupUnfreezing
from transferkit.strategies.lightning_module import TransferModule, Schedule, discriminative_lrs
from transferkit.strategies.losses import CrossEntropy


def test_gradual_unfreeze_schedule_grows_to_all_groups():
    policy = GradualUnfreeze(num_groups=8, start=2, unfreeze_epochs=3)
    assert [policy.trainable_groups(e) for e in range(5)] == [2, 4, 6, 8, 8]
    assert GradualUnfreeze(8, start=2, unfreeze_epochs=0).trainable_groups(0) == 8


def test_apply_freezes_the_bottom_groups():
    layers = [nn.Linear(2, 2) for _ in range(4)]
    groups = [list(layer.parameters()) for layer in layers]
    n = GradualUnfreeze(4, start=1, unfreeze_epochs=3).apply(groups, epoch=1)
    assert n == 2
    assert [layer.weight.requires_grad for layer in layers] == [False, False, True, True]


def test_freeze_batchnorm_stats_only_frozen_layers_unless_all():
    model = nn.Sequential(nn.BatchNorm1d(3), nn.BatchNorm1d(3)).train()
    set_trainable(model[0].parameters(), False)
    freeze_batchnorm_stats(model)
    assert not model[0].training and model[1].training
    freeze_batchnorm_stats(model, all_layers=True)
    assert not model[1].training


def test_discriminative_lrs_decrease_towards_the_input():
    lrs = discriminative_lrs(4, top_lr=1e-3, decay=0.5)
    assert lrs == pytest.approx([1.25e-4, 2.5e-4, 5e-4, 1e-3])


def test_frozen_groups_do_not_change_while_top_groups_and_head_train():
    """The Lightning pitfall: 'frozen' parameters (and BN statistics) must really stay put."""
    torch.manual_seed(0)
    backbone = create_backbone("efficientnet_lite0")
    model = TransferModel(backbone.model, nn.Linear(backbone.num_features, 2))
    groups = [names for _, names in backbone.layer_groups()]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    schedule = Schedule(group_lrs=discriminative_lrs(len(groups), 1e-2, 0.8), head_lr=1e-2,
                        weight_decay=0.05, total_steps=4)
    policy = LayerGroupUnfreezing(GradualUnfreeze(len(groups), 2, 10), freeze_bn_stats=False)
    module = TransferModule(model, groups, schedule, {"main": CrossEntropy(2)}, policy)
    data = TensorDataset(torch.randn(16, 3, 32, 32), torch.randint(0, 2, (16,)))
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, accelerator="cpu")
    trainer.fit(module, DataLoader(data, batch_size=4), DataLoader(data, batch_size=8))
    after = model.state_dict()
    frozen = {f"backbone.{n}" for names in groups[:-2] for n in names}
    trained = {f"backbone.{n}" for names in groups[-2:] for n in names}
    assert all(torch.equal(before[k], after[k]) for k in frozen)
    stem_bn = "backbone.bn1.running_mean"
    assert torch.equal(before[stem_bn], after[stem_bn]), "running stats of a frozen layer moved"
    assert any(not torch.equal(before[k], after[k]) for k in trained)
    assert not torch.equal(before["heads.main.weight"], after["heads.main.weight"])
