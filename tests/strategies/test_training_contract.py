"""The training side of the task contract: FitData's unlabelled split and per-head targets, the loss
registry (a new loss is one registered module), the freezing policy as a BaseFinetuning callback."""
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from transferkit.models import TransferModel
from transferkit.rundir import LAST_CHECKPOINT, read_checkpoint
from transferkit.strategies import FitData, GradualUnfreeze
from transferkit.strategies.finetuning import LayerGroupUnfreezing
from transferkit.strategies.lightning_module import Schedule, TransferModule
from transferkit.strategies.losses import LOSSES, CrossEntropy, Loss, Objective
from transferkit.strategies.training import run_lightning

from tests.helpers.training import FEATURES, GROUPS, classified, module_for, settings, tiny_backbone


class TwoTargets(Dataset):
    """(x, {"main": class of the first input, "aux": one of 3 classes from the second})."""

    def __init__(self, n: int, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, 4, generator=g)
        self.main = (self.x[:, 0] > 0).long()
        self.aux = torch.bucketize(self.x[:, 1].contiguous(), torch.tensor([-0.4, 0.4]))

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], {"main": self.main[i], "aux": self.aux[i]}


# ---------------------------------------------------------------------------------------- FitData
def test_losses_are_listed_with_their_first_docstring_line():
    assert {"cross-entropy", "mse", "test-mean-matching"} <= set(LOSSES.names())
    assert LOSSES.entry("cross-entropy").description.startswith("Classification: cross-entropy")


def test_objectives_default_from_the_objective_and_unknown_objectives_raise():
    data = classified(8)
    assert FitData(data, data, data).objectives == {"main": "cross-entropy"}
    assert FitData(data, data, data, objective="regression").objectives == {"main": "mse"}
    with pytest.raises(ValueError, match="objectives"):
        FitData(data, data, data, objective="ranking")


def test_unlabelled_loader_yields_inputs_in_an_order_set_by_seed_and_epoch():
    labelled, unlabelled = classified(8), classified(20, seed=1, shift=3.0)
    assert FitData(labelled, labelled, labelled).unlabelled_loader(settings()) is None
    data = FitData(labelled, labelled, labelled, unlabelled=unlabelled)
    loader = data.unlabelled_loader(settings())
    batches = [x for x, _ in loader]
    assert [len(x) for x in batches] == [8, 8]  # the incomplete last batch is dropped, as in training
    drawn = torch.cat(batches)
    assert all(any(torch.equal(row, u) for u in unlabelled.tensors[0]) for row in drawn)
    again = data.unlabelled_loader(settings())
    again.sampler.set_epoch(0)
    assert torch.equal(torch.cat([x for x, _ in again]), drawn)  # same (seed, epoch), same batches
    assert not torch.equal(torch.cat([x for x, _ in loader]), drawn)  # the next epoch draws a new order


# ------------------------------------------------------------------------------- per-head targets
def test_two_heads_train_on_their_own_targets_and_log_per_head_metrics():
    model = TransferModel(tiny_backbone(), {"main": nn.Linear(FEATURES, 2), "aux": nn.Linear(FEATURES, 3)})
    data = FitData(TwoTargets(48), TwoTargets(48), TwoTargets(16, seed=1), num_classes=2,
                   objectives={"main": "cross-entropy", "aux": Objective("cross-entropy", weight=0.5,
                                                                         options={"num_classes": 3})})
    s = settings(epochs=2)
    module = module_for(model, data, s, 2)
    assert module.losses["aux"].num_classes == 3 and module.losses["main"].label_smoothing == 0.1
    before = {k: v.clone() for k, v in model.state_dict().items()}
    run = run_lightning(module, *data.training_loaders(s), 2, s)
    row = run.history[-1]
    assert {"train_loss", "train_loss_main", "train_loss_aux", "val_loss", "val_loss_main", "val_loss_aux",
            "val_accuracy", "val_accuracy_aux"} <= set(row)
    # the validation loss is the weighted sum of the heads' (unsmoothed) losses
    assert row["val_loss"] == pytest.approx(row["val_loss_main"] + 0.5 * row["val_loss_aux"], rel=1e-5)
    for head in ("main", "aux"):
        assert not torch.equal(before[f"heads.{head}.weight"], model.state_dict()[f"heads.{head}.weight"])


def test_one_default_head_logs_the_names_it_always_had():
    model = TransferModel(tiny_backbone(), nn.Linear(FEATURES, 2))
    data = FitData(classified(24), classified(24), classified(8, seed=1), num_classes=2)
    s = settings(epochs=1)
    run = run_lightning(module_for(model, data, s, 1), *data.training_loaders(s), 1, s)
    assert set(run.history[0]) == {"epoch", "train_loss", "val_loss", "val_accuracy", "lr", "trainable_groups",
                                   "seconds"}


def test_a_loss_for_a_head_the_model_lacks_raises():
    model = TransferModel(tiny_backbone(), nn.Linear(FEATURES, 2))
    schedule = Schedule(group_lrs=[1e-2] * 3, head_lr=1e-2, weight_decay=0.0, total_steps=1)
    with pytest.raises(ValueError, match="heads are \\['main'\\]"):
        TransferModule(model, GROUPS, schedule, {"main": CrossEntropy(2), "domain": CrossEntropy(2)})


# ------------------------------------------------------------------ a new loss is one registered module
@LOSSES.register("test-mean-matching")
class MeanMatching(Loss):
    """Toy: a head's labelled and unlabelled outputs drawn to the same mean (CORAL matches covariances)."""

    labelled, unlabelled = False, True
    calls: list[tuple[int, int]] = []

    def forward(self, output, target, unlabelled=None):
        assert target is None  # the batches hold no targets for this head
        MeanMatching.calls.append((len(output), len(unlabelled)))
        return (output.mean(0) - unlabelled.mean(0)).pow(2).sum()


def _mean_gap(backbone: nn.Module, a: torch.Tensor, b: torch.Tensor) -> float:
    backbone.eval()
    with torch.no_grad():
        return float((backbone(a).mean(0) - backbone(b).mean(0)).pow(2).sum())


def test_a_registered_loss_trains_a_second_head_on_the_unlabelled_split():
    source, target = classified(48), classified(48, seed=1, shift=2.0)
    model = TransferModel(tiny_backbone(), {"main": nn.Linear(FEATURES, 2), "features": nn.Identity()})
    data = FitData(source, source, classified(16, seed=2), num_classes=2, unlabelled=target,
                   objectives={"main": "cross-entropy", "features": Objective("test-mean-matching", weight=5.0)})
    gap = _mean_gap(model.backbone, source.tensors[0], target.tensors[0])
    s = settings(epochs=3)
    MeanMatching.calls.clear()
    run = run_lightning(module_for(model, data, s, 3), *data.training_loaders(s), 3, s)
    assert MeanMatching.calls and set(MeanMatching.calls) == {(8, 8)}  # one unlabelled batch per labelled one
    assert len(MeanMatching.calls) == 3 * 6
    assert "train_loss_features" in run.history[0] and "val_loss_features" not in run.history[0]
    assert _mean_gap(model.backbone, source.tensors[0], target.tensors[0]) < gap / 2


def test_a_loss_that_needs_unlabelled_inputs_without_them_raises():
    data = FitData(classified(8), classified(8), classified(8), num_classes=2,
                   objectives={"main": "cross-entropy", "features": "test-mean-matching"})
    model = TransferModel(tiny_backbone(), {"main": nn.Linear(FEATURES, 2), "features": nn.Identity()})
    with pytest.raises(ValueError, match="unlabelled"):
        module_for(model, data, settings(), 1)


# ---------------------------------------------------------------------------- the freezing callback
class Snapshots:
    """State dict copies at the end of each training epoch."""

    def __init__(self):
        import lightning as L

        outer = self
        self.states: list[dict] = []

        class Recorder(L.Callback):
            def on_train_epoch_end(self, trainer, pl_module):
                outer.states.append({k: v.clone() for k, v in pl_module.model.state_dict().items()})

        self.callback = Recorder()


def _fit_with_policy(policy: LayerGroupUnfreezing, epochs: int = 3):
    import lightning as L

    model = TransferModel(tiny_backbone(), nn.Linear(FEATURES, 2))
    data = FitData(classified(32), classified(32), classified(8, seed=1), num_classes=2)
    s = settings(epochs=epochs)
    module = module_for(model, data, s, epochs, policy)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    snapshots = Snapshots()
    trainer = L.Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, accelerator="cpu",
                        callbacks=[snapshots.callback])
    trainer.fit(module, *data.training_loaders(s))
    return before, snapshots.states, module


def _changed(a: dict, b: dict, layer: int) -> bool:
    return not torch.equal(a[f"backbone.{layer}.weight"], b[f"backbone.{layer}.weight"])


def test_layer_groups_unfreeze_top_down_on_schedule_and_frozen_ones_stay_put():
    policy = LayerGroupUnfreezing(GradualUnfreeze(3, start=1, unfreeze_epochs=2))
    before, states, module = _fit_with_policy(policy)
    # groups trainable per epoch: 1 (top), 2, 3
    assert [_changed(before, states[0], layer) for layer in (0, 3, 6)] == [False, False, True]
    assert [_changed(states[0], states[1], layer) for layer in (0, 3, 6)] == [False, True, True]
    assert [_changed(states[1], states[2], layer) for layer in (0, 3, 6)] == [True, True, True]
    assert module.trainable_groups == 3


def test_batchnorm_statistics_stay_put_unless_released():
    _, states, _ = _fit_with_policy(LayerGroupUnfreezing(GradualUnfreeze(3, 3, 0), freeze_bn_stats=True), epochs=1)
    before = tiny_backbone().state_dict()
    for layer in (1, 4, 7):
        assert torch.equal(states[0][f"backbone.{layer}.running_mean"], before[f"{layer}.running_mean"])
    # released: trainable layers update their statistics, frozen ones (bottom group) still do not
    _, states, _ = _fit_with_policy(LayerGroupUnfreezing(GradualUnfreeze(3, 1, 5), freeze_bn_stats=False), epochs=1)
    assert torch.equal(states[0]["backbone.1.running_mean"], before["1.running_mean"])
    assert not torch.equal(states[0]["backbone.7.running_mean"], before["7.running_mean"])


def test_the_policy_state_survives_resume(tmp_path):
    def run(epochs: int, checkpoint_dir, resume: bool = False):
        model = TransferModel(tiny_backbone(), nn.Linear(FEATURES, 2))
        data = FitData(classified(32), classified(32), classified(8, seed=1), num_classes=2)
        s = settings(epochs=epochs, checkpoint_dir=checkpoint_dir, resume=resume)
        policy = LayerGroupUnfreezing(GradualUnfreeze(3, start=1, unfreeze_epochs=2))
        module = module_for(model, data, s, 3, policy)  # one schedule of 3 epochs in every run
        return run_lightning(module, *data.training_loaders(s), epochs, s), policy

    whole, _ = run(3, tmp_path / "whole")
    run(2, tmp_path / "part")
    saved = read_checkpoint(tmp_path / "part" / LAST_CHECKPOINT)["callbacks"]
    assert "LayerGroupUnfreezing" in saved and saved["LayerGroupUnfreezing"]["internal_optimizer_metadata"]
    resumed, policy = run(3, tmp_path / "part", resume=True)
    assert policy._internal_optimizer_metadata == saved["LayerGroupUnfreezing"]["internal_optimizer_metadata"]
    assert [r["trainable_groups"] for r in resumed.history] == [1, 2, 3]
    for got, want in zip(resumed.history, whole.history, strict=True):
        assert got["train_loss"] == pytest.approx(want["train_loss"], rel=1e-6)
        assert got["val_loss"] == pytest.approx(want["val_loss"], rel=1e-6)
