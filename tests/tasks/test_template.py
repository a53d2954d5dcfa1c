"""The template `fit` of `TransferEstimator`: a task is its hooks, and every task declares the shared params."""
from __future__ import annotations

import inspect
import logging
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from transferkit.errors import DataError
from transferkit.strategies import FitData
from transferkit.tasks import TASKS, TransferEstimator, detect_task

from tests.helpers import sentiment_table, series_csv
from transferkit.testing import make_image_folder


class Pictures(Dataset):
    """28×28 RGB tensors labelled bright (1) or dark (0), with `labels` as strategies read them."""

    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.labels = [i % 2 for i in range(n)]
        level = torch.tensor(self.labels, dtype=torch.float32)[:, None, None, None] * 2 - 1
        self.x = level + 0.3 * torch.randn(n, 3, 28, 28, generator=g)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.x[i], self.labels[i]


class Brightness(TransferEstimator):
    """Tells bright from dark pictures: a task written as the required hooks only."""

    task = "brightness"
    modality = "image"
    control_description = "the majority class"

    def __init__(self, backbone: str = "mnist_cnn", strategy: str = "fine-tune", strategy_options: dict | None = None,
                 epochs: int | None = 1, batch_size: int | None = 8, lr: float | None = None, seed: int = 0,
                 baseline: bool = True, max_seconds: float | None = None, run_dir=None, resume: bool = False,
                 progress: bool = False) -> None:
        self.backbone = backbone
        self.strategy = strategy
        self.strategy_options = strategy_options
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.seed = seed
        self.baseline = baseline
        self.max_seconds = max_seconds
        self.run_dir = run_dir
        self.resume = resume
        self.progress = progress

    def _load_data(self, data: int) -> None:
        self.data_ = SimpleNamespace(train=Pictures(data, 1), val=Pictures(8, 2), test=Pictures(8, 3),
                                     split={"description": "three fixed draws"})

    def _new_head(self, num_features: int) -> nn.Module:
        return nn.Linear(num_features, 2)

    def _fit_data(self, backbone, strategy) -> FitData:
        return FitData(train=self.data_.train, train_plain=self.data_.train, val=self.data_.val, num_classes=2)

    def _scratch_control(self, budget: float) -> dict:
        self.control_budget = budget
        return {"model": "the majority class", "accuracy": 0.5}


class Recorded(Brightness):
    """Brightness, noting the order in which the template calls the hooks."""

    def _load_data(self, data):
        self.calls = ["_load_data"]
        super()._load_data(data)

    def _prepare(self, backbone):
        self.calls.append("_prepare")
        return super()._prepare(backbone)

    def _new_model(self, body, num_features):
        self.calls.append("_new_model")
        return super()._new_model(body, num_features)

    def _fit_data(self, backbone, strategy):
        self.calls.append("_fit_data")
        return super()._fit_data(backbone, strategy)

    def _train_settings(self, fit_data):
        self.calls.append("_train_settings")
        return super()._train_settings(fit_data)

    def _before_adapt(self, strategy, model, fit_data):
        self.calls.append("_before_adapt")
        return super()._before_adapt(strategy, model, fit_data)

    def _after_adapt(self, model, outcome):
        self.calls.append("_after_adapt")
        super()._after_adapt(model, outcome)

    def _decisions(self, backbone, outcome):
        self.calls.append("_decisions")
        return super()._decisions(backbone, outcome)


def test_a_task_of_hooks_only_fits_with_the_shared_steps(caplog):
    caplog.set_level(logging.INFO, logger="transferkit.plan")
    est = Recorded().fit(16)
    assert est.calls == ["_load_data", "_prepare", "_new_model", "_fit_data", "_train_settings", "_before_adapt",
                         "_after_adapt", "_decisions"]
    [plan] = [r for r in caplog.records if r.name == "transferkit.plan"]
    assert [d for d, _ in plan.plan][0] == "task: brightness" and plan.plan[-1][0] == "from-scratch control: yes"
    from transferkit.strategies.distributed import resolve_compute

    assert [d for d, _ in est.decisions_] == ["backbone: mnist_cnn", "strategy: fine-tune",
                                              f"compute: {resolve_compute().describe()}"]
    assert est.strategy_ == "fine-tune" and len(est.history_) == 1
    # the control ran after adaptation, given the fit's time, and is timed like every stage
    assert est.control_["model"] == "the majority class" and est.control_budget == est.timings_["total fit"]
    assert {"data scan", "fine-tuning", "backbone, diagnostics and other", "total fit",
            "from-scratch control"} <= set(est.timings_)
    with torch.no_grad():
        assert est.model_(est.data_.test.x).shape == (8, 2)


def test_a_search_trial_is_one_entry_point_that_trains_and_scores_on_validation(caplog):
    """`_fit_trial` runs `fit`'s training steps with the trial's callbacks in training and returns the
    validation score: no plan, no domain diagnostics, no control, no decisions, no marker left behind."""
    import lightning as L

    class Scored(Recorded):
        def _validation_score(self, fit_data):
            return 0.25

    class Seen(L.Callback):
        epochs = 0

        def on_train_epoch_end(self, trainer, module):
            Seen.epochs += 1

    caplog.set_level(logging.INFO, logger="transferkit.plan")
    trial = Scored()  # baseline=True: a trial still trains no control
    assert trial._fit_trial(16, [Seen()]) == 0.25
    assert trial.calls == ["_load_data", "_prepare", "_new_model", "_fit_data", "_train_settings", "_before_adapt",
                           "_after_adapt"]
    assert Seen.epochs == 1 and trial.strategy_ == "fine-tune" and trial.control_ is None
    assert trial.domain_ is None and not hasattr(trial, "decisions_")
    assert not [r for r in caplog.records if r.name == "transferkit.plan"]
    assert not [name for name in vars(trial) if "search" in name]


def test_the_seed_fixes_the_new_layers_and_the_training():
    first, again, other = Brightness(baseline=False).fit(16), Brightness(baseline=False).fit(16), \
        Brightness(baseline=False, seed=1).fit(16)
    head = [m.model_.head.weight.detach().numpy() for m in (first, again, other)]
    np.testing.assert_array_equal(head[0], head[1])
    assert not np.array_equal(head[0], head[2])
    assert first.control_ is None and "from-scratch control" not in first.timings_


def test_max_seconds_caps_training():
    capped = Brightness(epochs=3, baseline=False, max_seconds=1e-6).fit(16)  # no batch runs within a microsecond
    assert capped.strategy_settings_["epochs_run"] < 3 and len(capped.history_) < 3
    assert any(n.startswith("training stopped at its time cap (1e-06 s) after") and n.endswith("of 3")
               for n in capped.notes_)
    uncapped = Brightness(epochs=2, baseline=False).fit(16)
    assert not any("time cap" in n for n in uncapped.notes_)
    strategy = capped._check_params()
    data = capped._fit_data(None, strategy)
    said = [d for d, _ in capped._plan(strategy, data, capped._train_settings(data))]
    assert "time cap: 1e-06 s" in said and not any(d.startswith("time cap") for d, _ in uncapped._plan(
        strategy, data, uncapped._train_settings(data)))


def test_a_missing_required_hook_is_named():
    class NoData(Brightness):
        _fit_data = TransferEstimator._fit_data

    with pytest.raises(NotImplementedError, match="NoData does not implement _fit_data"):
        NoData(baseline=False).fit(16)


@pytest.mark.parametrize("task", TASKS.names())
def test_every_task_declares_the_shared_params(task):
    cls = TASKS.get(task)
    names = cls._get_param_names()
    shared = ("backbone", "strategy", "strategy_options", "epochs", "batch_size", "lr", "seed", "baseline",
              "max_seconds", "run_dir", "resume", "progress")
    assert set(shared) <= set(names), sorted(set(shared) - set(names))
    defaults = inspect.signature(cls.__init__).parameters
    assert defaults["baseline"].default is True and defaults["max_seconds"].default is None
    # every param has a default, so the CLI can leave any of them out
    assert all(p.default is not inspect.Parameter.empty for n, p in defaults.items() if n != "self")
    # max_seconds is what the strategy's training loop is capped by
    settings = cls(max_seconds=12.5)._train_settings(FitData(train=[0] * 4, train_plain=[0] * 4, val=[]))
    assert settings.max_seconds == 12.5


def test_detect_task_asks_each_task_in_its_order(tmp_path):
    images = make_image_folder(tmp_path / "photos", per_class=1, size=8)
    tables = tmp_path / "reviews"
    tables.mkdir()
    sentiment_table(tables / "train.tsv", per_class=2)
    series = series_csv(tmp_path / "load.csv", rows=60)
    texts = tmp_path / "texts.csv"
    texts.write_text("text,label\nnice,1\nbad,0\n")
    assert detect_task(images) == ("image-classification", "photos/ is a folder (of class folders of images)")
    assert detect_task(tables) == ("text-classification", "reviews/ holds train.tsv")  # a folder, but of tables
    assert detect_task(series) == ("forecast", "load.csv: a time column followed by numeric columns")
    assert detect_task(texts) == ("text-classification", "texts.csv is a CSV table")
    assert detect_task("stanfordnlp/sst2")[0] == "text-classification"
    with pytest.raises(DataError, match="no such file or directory"):
        detect_task(tmp_path / "missing.csv")
    (tmp_path / "weights.bin").write_bytes(b"\0")
    with pytest.raises(DataError, match=r"cannot tell the task from a \.bin file; pass --task \(forecast, "):
        detect_task(tmp_path / "weights.bin")
