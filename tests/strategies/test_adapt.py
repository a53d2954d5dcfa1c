"""The `adapt` strategy: candidates, the criterion's choices, two views, restore."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from transferkit.errors import DataError, TransferkitError
from transferkit.models import TransferModel
from transferkit.strategies import FitData, TrainSettings, create_strategy
from transferkit.strategies.adapt import NO_ADAPTATION, SOURCE_ONLY
from transferkit.strategies.adaptation import AdaptedHead, GradientReversal, SelfTraining, set_progress


def blobs(n: int, shift: float, seed: int, axis: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two Gaussian classes in 6 dimensions (apart along axis 1), all points moved by `shift` along `axis`."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    x = torch.randn(n, 6, generator=g) * 0.7
    x[:, 1] += torch.where(y == 1, 1.5, -1.5)
    x[:, axis] += shift
    return x, y


def shifted_data(shift: float = 3.0, n: int = 160, axis: int = 0) -> FitData:
    train, val, target = blobs(n, 0.0, 0), blobs(n // 4, 0.0, 1), blobs(n, shift, 2, axis)
    labelled = TensorDataset(*train)
    return FitData(train=labelled, train_plain=labelled, val=TensorDataset(*val), num_classes=2, modality="text",
                   unlabelled=TensorDataset(target[0], torch.zeros(n)), target_eval=TensorDataset(*target))


def fitted(method: str, data: FitData, epochs: int = 6, **options):
    torch.manual_seed(0)
    model = TransferModel(nn.Linear(6, 6), nn.Linear(6, 2))  # a "pretrained" encoder: any frozen module
    strategy = create_strategy("adapt", method=method, bottleneck=8, **options)
    outcome = strategy.fit(model, data, TrainSettings(epochs=epochs, batch_size=16, progress=False))
    return model, outcome


def test_a_fit_reports_every_candidate_and_keeps_each_ones_criterion_epoch():
    model, outcome = fitted("mmd", shifted_data())
    s = outcome.settings
    assert [r["method"] for r in s["candidates"]] == [SOURCE_ONLY, NO_ADAPTATION, "mmd"]
    assert s["chosen_method"] == "mmd" and s["head"] == "bottleneck" and isinstance(model.head, AdaptedHead)
    for row in s["candidates"][1:]:
        curve = s["epochs_by_method"][row["method"]]
        best = min(curve, key=lambda r: r["val_dev_risk"])
        assert row["epoch"] == best["epoch"] and row["criterion"] == pytest.approx(best["val_dev_risk"])
        assert 0.0 <= row["criterion"] <= 1.0  # an estimated error rate, never a negative "risk"
    # the kept weights are the chosen epoch's: their validation accuracy is the one logged there
    val_x, val_y = shifted_data().val.tensors
    with torch.no_grad():
        accuracy = float((model(val_x).argmax(1) == val_y).float().mean())
    assert accuracy == pytest.approx(s["candidates"][-1]["source_val_accuracy"], abs=1e-6)
    assert s["target_labelled"] == 160 and all("target_accuracy" in r for r in s["candidates"])
    assert set(s["projection"]) == {"before", "after"} and s["a_distance_after"] is not None


def test_mmd_classifies_a_target_shifted_across_the_class_boundary_better_than_without_it():
    # the target moved towards class 1: a source classifier calls most of it class 1; matching the
    # feature distributions undoes the move (seeded: 0.858 against 0.743 source-only, 0.757 none)
    _, outcome = fitted("mmd", shifted_data(shift=1.5, n=400, axis=1), epochs=15)
    rows = {r["method"]: r["target_accuracy"] for r in outcome.settings["candidates"]}
    assert rows["mmd"] > rows[SOURCE_ONLY] + 0.05 and rows["mmd"] > rows[NO_ADAPTATION] + 0.05


@pytest.mark.parametrize(("criteria", "kept"), [
    ({SOURCE_ONLY: 0.10, NO_ADAPTATION: 0.20, "dann": 0.15, "coral": 0.30}, SOURCE_ONLY),
    ({SOURCE_ONLY: 0.20, NO_ADAPTATION: 0.25, "dann": 0.12, "coral": 0.15}, "dann"),
    ({SOURCE_ONLY: 0.20, NO_ADAPTATION: 0.18, "dann": 0.22, "coral": 0.25}, NO_ADAPTATION),
    ({SOURCE_ONLY: 0.15, NO_ADAPTATION: 0.15, "dann": 0.15, "coral": 0.15}, SOURCE_ONLY),  # a tie keeps source-only
])
def test_auto_keeps_the_candidate_with_the_lowest_criterion_and_source_only_on_a_tie(criteria, kept):
    strategy = create_strategy("adapt", method="auto")
    rows = [{"method": m, "criterion": c} for m, c in criteria.items()]
    chosen, reason = strategy._choose(rows)
    assert chosen == kept and kept in reason


def test_a_requested_method_is_kept_but_a_worse_criterion_is_a_warning():
    data = shifted_data(shift=0.0)  # no shift: nothing to adapt to
    _, outcome = fitted("dann", data, epochs=2)
    rows = {r["method"]: r for r in outcome.settings["candidates"]}
    assert outcome.settings["chosen_method"] == "dann"
    worse = rows["dann"]["criterion"] > rows[SOURCE_ONLY]["criterion"]
    assert bool(outcome.warnings) == worse
    if worse:
        assert "kept as requested" in outcome.warnings[0]


def test_without_unlabelled_data_or_for_a_regression_the_strategy_refuses_in_one_line():
    data = shifted_data()
    data.unlabelled = None
    with pytest.raises(DataError, match="unlabelled target data"):
        fitted("dann", data)
    with pytest.raises(TransferkitError, match="unknown method"):
        create_strategy("adapt", method="dan")


def test_set_progress_drives_the_reversal_coefficient_and_the_self_training_ramp():
    module = nn.ModuleList([GradientReversal(), SelfTraining(warmup=0.5)])
    set_progress(module, 0.0)
    assert module[0].coefficient == 0.0 and module[1].progress == 0.0
    set_progress(module, 1.0)
    assert module[0].coefficient == pytest.approx(1.0, abs=1e-4) and module[1].progress == 1.0
    logits = torch.tensor([[4.0, 0.0], [0.0, 4.0]])
    module[1].progress = 0.2  # before the warm-up ends: no pseudo-label loss
    assert float(module[1](logits, None, logits)) == 0.0


def test_fixmatch_views_take_labels_from_the_weak_view_and_the_loss_from_the_strong_one():
    weak = torch.tensor([[6.0, 0.0], [6.0, 0.0]])  # confident: class 0
    strong = torch.tensor([[0.0, 3.0], [0.0, 3.0]])  # the augmented view disagrees
    two = SelfTraining(threshold=0.9, portion=0.0, warmup=0.0, views=2)
    one = SelfTraining(threshold=0.9, portion=0.0, warmup=0.0, views=1)
    stacked = torch.cat([weak, strong])
    expected = float(torch.nn.functional.cross_entropy(strong, torch.zeros(2, dtype=torch.long)))
    assert float(two(stacked, None, stacked)) == pytest.approx(expected, rel=1e-5)
    assert float(one(strong, None, strong)) < 0.1  # one view: its own confident guess, a small loss


def test_the_training_loop_stacks_weak_then_strong_views_for_a_two_view_loss():
    from transferkit.strategies.lightning_module import Schedule, TransferModule

    seen = []

    class Recorder(SelfTraining):
        def forward(self, output, target, unlabelled=None):
            seen.append(unlabelled.detach().clone())
            return output.sum() * 0.0

    model = TransferModel(nn.Identity(), {"main": nn.Identity(), "pseudo": nn.Identity()})
    strong, weak = torch.full((4, 2), 2.0), torch.full((4, 2), 1.0)
    loader = torch.utils.data.DataLoader(TensorDataset(strong, weak), batch_size=4)
    module = TransferModule(model, [[]], Schedule([], 1e-3, 0.0, 1), {"pseudo": Recorder(views=2)},
                            unlabelled=loader)
    module._start_unlabelled()
    module.training_step((torch.zeros(4, 2), torch.zeros(4, dtype=torch.long)), 0)
    assert torch.equal(seen[0], torch.cat([weak, strong]))
