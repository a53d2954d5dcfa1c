"""`Forecaster`: multi-horizon forecasting with a (pre)trained PatchTST encoder, beside strong baselines.

Transfer for time series: `fit(SOURCE.csv)` trains a forecaster on a source series set (from
scratch: no offline weights exist for series), and `Forecaster(backbone=RUN_DIR).fit(TARGET.csv)`
fine-tunes it on a target with little history. Every run also fits naive and DLinear baselines
on the same target data, so the report shows whether a baseline beats the model. Only a
transferred run has a transfer to judge: its control is the same architecture trained from
scratch on the same windows, and the transfer verdict compares with that control.
"""
from __future__ import annotations

import copy
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ..backbones.patchtst import ForecastHead, ForecastModel, RevIN, patchtst_backbone
from ..data.timeseries import (SeriesTable, Standardizer, WindowDataset, chronological_split, constant_columns,
                               load_series_csv)
from .._format import counted
from ..errors import DataError, UnknownNameError
from ..rundir import EXAMPLES_FILE, read_head_weights
from ..strategies import FitData, TrainSettings, create_strategy
from .base import TransferEstimator
from .params import Interval
from .forecast_presentation import ForecastPresentationMixin
from .forecast_baselines import SeasonalNaive, fit_baselines
from .forecast_metrics import compare_with_baselines, forecast_metrics, transfer_check, window_errors

TASK = "forecast"
#: below this many training windows, batches shrink and epochs grow (a few hundred windows give
#: only a handful of steps per epoch at the usual batch size of 128)
SMALL_DATA_WINDOWS = 2000
#: steps forecast when neither --horizon nor a forecast-run backbone says otherwise (the ETT benchmarks' shortest)
DEFAULT_HORIZON = 96


class Forecaster(ForecastPresentationMixin, TransferEstimator):
    """Forecasts `horizon` steps from the last `lookback` steps of one or more series.

    `fit(csv)` splits chronologically (ETT 12/4/4 months for long hourly data, else 70/10/20),
    standardises with training statistics and adapts the backbone; `target` restricts the task
    to that one series (univariate), otherwise every numeric column is forecast. `evaluate()`
    returns MSE/MAE on the standardised scale and MASE, for the model and the baselines, and
    whether a baseline beats the model; `predict(csv_or_array)` forecasts the steps after the end
    of the given history. With a pretrained `backbone` (a previous forecast run) and
    `baseline=True`, `fit` also trains the same architecture from scratch on the same windows
    (the control), and `evaluate()` adds the transfer verdict against it.

    Parameters
    ----------
    target : str or None, default=None
        Forecast only this series (default: every numeric column).
    horizon : int or None, default=None
        Steps to forecast (default: the backbone run's, so that its forecast head is kept; 96
        from an encoder that is not a forecast run).
    lookback : int or None, default=None
        Steps of history the model reads (default: the encoder's, 336).
    train_fraction : float, default=1.0
        Train on only the most recent fraction of the training segment.
    time_column : str or None, default=None
        Time column (default: detected).
    """

    task = TASK
    modality = "timeseries"

    def __init__(
        self,
        backbone: str = "patchtst-small",
        strategy: str = "auto",
        strategy_options: dict | None = None,
        epochs: int | None = None,
        batch_size: int | None = None,
        lr: float | None = None,
        target: str | None = None,
        horizon: int | None = None,
        lookback: int | None = None,
        train_fraction: float = 1.0,
        time_column: str | None = None,
        seed: int = 0,
        baseline: bool = True,
        run_dir: str | Path | None = None,
        resume: bool = False,
        progress: bool = True,
        max_seconds: float | None = None,
        # distributed training and speed
        devices: int = 1,
        num_nodes: int = 1,
        accelerator: str = "auto",
        precision: str = "auto",
        compile: bool = False,
        dist_strategy: str = "auto",
        # search
        search: int = 0,
        search_backend: str = "optuna",
        search_seconds: float | None = None,
        weight_decay: float | None = None,
    ) -> None:
        self.backbone = backbone
        self.strategy = strategy
        self.strategy_options = strategy_options
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.target = target
        self.horizon = horizon
        self.lookback = lookback
        self.train_fraction = train_fraction
        self.time_column = time_column
        self.seed = seed
        self.baseline = baseline
        self.run_dir = run_dir
        self.resume = resume
        self.progress = progress
        self.max_seconds = max_seconds
        # distributed training and speed
        self.devices = devices
        self.num_nodes = num_nodes
        self.accelerator = accelerator
        self.precision = precision
        self.compile = compile
        self.dist_strategy = dist_strategy
        # search
        self.search = search
        self.search_backend = search_backend
        self.search_seconds = search_seconds
        self.weight_decay = weight_decay

    # ------------------------------------------------------------ fit hooks
    def _load_data(self, data: str | Path | SeriesTable) -> None:
        table = data if isinstance(data, SeriesTable) else load_series_csv(data, self.time_column, self.target)
        self.data_ = _SeriesRun(table)  # split once the backbone's lookback is known (`_prepare`)
        self.notes_ += table.notes

    def _prepare(self, backbone):
        """The lookback (the encoder's unless given; a from-scratch encoder is rebuilt for another
        one), then the chronological split, the standardisation and the windows."""
        table = self.data_.table
        lookback = self.lookback or backbone.preprocessing.lookback
        if lookback != backbone.preprocessing.lookback:
            if backbone.meta.get("pretrained", True):
                raise DataError(f"{backbone.name}: the pretrained encoder reads windows of {backbone.preprocessing.lookback} "
                                f"steps; drop --lookback {lookback} or pass --lookback {backbone.preprocessing.lookback}.")
            backbone = patchtst_backbone(backbone.name, {**backbone.arch_config, "lookback": lookback})
            self.backbone_info_, self.preprocessing_ = backbone.to_config(), backbone.preprocessing
        self.lookback_ = lookback
        self.source_horizon_ = _source_horizon(backbone)
        self.horizon_ = self.horizon or self.source_horizon_ or DEFAULT_HORIZON
        self.channels_ = [table.target] if self.target else list(table.columns)
        picked = [table.columns.index(c) for c in self.channels_]
        self.split_ = chronological_split(table, lookback, self.horizon_, self.train_fraction)
        # statistics of the whole training segment, also when --train-fraction keeps only its end:
        # scarcity is simulated as in the few-shot protocols of OFA/Time-LLM, so metrics stay on the
        # same scale as full-data runs and published tables
        training_rows = table.values[: self.split_["train"][1]][:, picked]
        self.scaler_ = Standardizer.fit(training_rows)
        values = self.scaler_.transform(table.values[:, picked])
        self.season_ = table.season if table.season <= lookback else 1
        self.series_ = table.describe()
        self.data_.split, self.data_.values = self.split_, values
        self.windows_ = {part: WindowDataset(values, lookback, self.horizon_, *self.split_[part])
                         for part in ("train", "val", "test")}
        flat = [self.channels_[j] for j in constant_columns(training_rows)]
        if flat:
            self.notes_.append(f"{', '.join(map(repr, flat))} {'is' if len(flat) == 1 else 'are'} constant in the "
                               "training segment: standardised with deviation 1 instead of 0, so there is nothing "
                               "to learn from it")
        return backbone

    def _fit_data(self, backbone, strategy) -> FitData:
        return FitData(train=self.windows_["train"], train_plain=self.windows_["train"], val=self.windows_["val"],
                       objective="regression", modality="timeseries", pretrained=backbone.meta.get("pretrained", True))

    def _train_settings(self, fit_data: FitData) -> TrainSettings:
        """Few training windows: smaller batches and more epochs; no label smoothing or flips."""
        small = len(fit_data.train) < SMALL_DATA_WINDOWS
        settings = replace(super()._train_settings(fit_data), batch_size=self.batch_size or (32 if small else 128),
                           epochs=self.epochs or (30 if small else 10),
                           lr=self.lr or (1e-4 if fit_data.pretrained else 1e-3), label_smoothing=0.0, tta=False)
        self._fit_settings = settings  # the control trains within the same epochs and batch size
        return settings

    def _before_adapt(self, strategy, model, fit_data):
        """A forecast-run backbone with the same horizon lends its head: trained at the body's rate
        by a strategy that trains the head by gradient (one taking `head_lr`), replaced by one that
        refits it; kept if adapting does not lower the validation MSE (`_after_adapt`)."""
        self._restore_point = None
        head_from = self._carry_head(model)
        if not head_from:
            return strategy
        options = dict(self.strategy_options or {})
        try:  # a trained head needs no 10× rate
            strategy = create_strategy(self.strategy, **{"head_lr": self.lr or 1e-4, **options})
        except UnknownNameError:  # the strategy declares no head_lr: it fits the head anew
            head_from += f"; {self.strategy} replaces it, and it is restored if that does not lower the validation MSE"
        self.notes_.append(head_from)
        if fit_data.pretrained:
            self._restore_point = (_mse(model, self.windows_["val"]), copy.deepcopy(model.state_dict()))
        return strategy

    def _after_adapt(self, model, outcome) -> None:
        """Restore the starting weights when adapting did not lower the validation MSE; fit the baselines."""
        if self._restore_point is not None:
            before, initial = self._restore_point
            after = _mse(model, self.windows_["val"])
            if after >= before and model.state_dict().keys() != initial.keys():
                # the strategy changed the model's structure (LoRA's adapters): the starting weights
                # no longer fit it, so the adapted model stays, and the user is told
                self.warnings_.append(f"adaptation did not lower the validation MSE ({after:.4f} vs {before:.4f} "
                                      f"before), and {self.strategy_} changed the model's layers, so the pretrained "
                                      "model could not be kept instead; try --strategy auto")
            elif after >= before:
                model.load_state_dict(initial)
                self.notes_.append(f"adaptation did not lower the validation MSE ({after:.4f} vs {before:.4f} before), "
                                   "so the pretrained model is kept unchanged")
            else:
                self.notes_.append(f"validation MSE {before:.4f} before adaptation, {after:.4f} after")
        self._restore_point = None  # the weights copy is not kept with the fitted model
        base_start = time.perf_counter()
        self.baselines_ = fit_baselines(self.lookback_, self.horizon_, self.season_, self.windows_["train"],
                                        self.windows_["val"])
        self.timings_["baselines"] = time.perf_counter() - base_start

    def _control(self, fitted_seconds: float) -> None:
        """Without pretrained weights nothing was transferred: no control, and the decisions say so
        ("transfer check: none") instead of a note."""
        self._control_errors = None
        if (self.backbone_info_.get("meta") or {}).get("pretrained", True):
            super()._control(fitted_seconds)
        else:
            self.control_ = None

    def _decisions(self, backbone, outcome) -> list[tuple[str, str]]:
        settings, pretrained = self._fit_settings, backbone.meta.get("pretrained", True)
        small = len(self.windows_["train"]) < SMALL_DATA_WINDOWS
        return [
            *super()._decisions(backbone, outcome),
            (f"series: {', '.join(self.channels_)}",
             f"univariate: only --target {self.target}" if self.target else "every numeric column, each forecast "
             "as its own series with shared weights (channel-independent)"),
            (f"lookback {self.lookback_}, horizon {self.horizon_}",
             f"lookback {'as given' if self.lookback else 'of the backbone'}; {self._horizon_reason()}"),
            ("split", self.split_["description"] + "; standardised with the training segment's mean and deviation"),
            (f"training: at most {counted(settings.epochs, 'epoch')}, batch {settings.batch_size}, peak lr {settings.lr:g}",
             self._training_reason(small, pretrained)),
            (f"baselines: {', '.join(self.baselines_)}", "fit on the same training windows (DLinear reads each "
             "window relative to its last value); the model must beat them to be worth its cost"),
            self._control_decision(pretrained),
        ]

    def _training_reason(self, small: bool, pretrained: bool) -> str:
        """Why the epochs, batch size and learning rate are what they are: each is as given, or
        chosen from the number of training windows (the lr: from whether weights were pretrained)."""
        windows = len(self.windows_["train"])
        chosen = [(more, standard) for more, standard, given in (("more epochs", "epochs", self.epochs),
                                                                 ("smaller batches", "batch size", self.batch_size))
                  if not given]
        given = [flag for flag, value in (("--epochs", self.epochs), ("--batch-size", self.batch_size),
                                          ("--lr", self.lr)) if value]
        parts = [f"{' and '.join(given)} as given"] if given else []
        if chosen and small:
            parts.append(f"few training windows ({windows:,} < {SMALL_DATA_WINDOWS:,}): "
                         + " and ".join(more for more, _ in chosen))
        elif chosen:
            parts.append(f"{windows:,} training windows: the standard long-horizon "
                         + " and ".join(standard for _, standard in chosen))
        if not self.lr:
            parts.append("lr 1e-4 for pretrained weights" if pretrained else "lr 1e-3 for a model trained from scratch")
        return "; ".join(parts)

    def _control_decision(self, pretrained: bool) -> tuple[str, str]:
        if not pretrained:
            return ("transfer check: none", "no pretrained weights, so nothing was transferred: the model is "
                    "compared with the baselines only")
        if not self.control_:
            return ("transfer check: skipped", "baseline=False (--no-baseline): no from-scratch control was trained")
        return (f"control: {self.control_['model']}", "the transfer verdict compares the transferred model with "
                "the same architecture trained from scratch on the same training windows")

    # ---- search hooks
    search_metric = ("val_loss", "minimize", "validation MSE")

    def _validation_score(self, fit_data: FitData) -> float:
        """MSE of the standardised forecasts on the validation windows (what `val_loss` logs each epoch)."""
        return _mse(self.model_, fit_data.val)

    def _search_data(self) -> SeriesTable:
        """The series read once (the chronological split is made after the backbone is known)."""
        return self.data_.table

    def _scratch_control(self, budget: float) -> dict:
        """The transferred model's architecture with random weights, trained as a from-scratch `fit`
        would train it (strategy auto → full, lr 1e-3 unless given) on the same training and
        validation windows, within the transferred run's epochs and about its fit time (at least
        30 s); scored on the same test windows. Its per-window errors are kept for the verdict."""
        source = self.backbone_info_
        architecture = (source.get("meta") or {}).get("parent") or source["name"]
        body = patchtst_backbone(architecture, dict(source.get("arch_config") or {}))
        torch.manual_seed(self.seed)
        model = self._new_model(body.model, body.num_features)
        data = FitData(train=self.windows_["train"], train_plain=self.windows_["train"], val=self.windows_["val"],
                       objective="regression", modality="timeseries", pretrained=False)
        used = self._fit_settings
        seconds = max(30.0, budget)
        # no checkpoint folder: the control must not overwrite or resume the transferred run's checkpoints
        settings = TrainSettings(epochs=used.epochs, batch_size=used.batch_size, lr=self.lr or 1e-3, seed=self.seed,
                                 label_smoothing=0.0, tta=False, progress=self.progress, max_seconds=seconds,
                                 **self._compute_params())
        outcome = create_strategy("auto").fit(model, data, settings)
        model.eval()
        x, y = self.windows_["test"].arrays()
        with torch.inference_mode():
            pred = torch.cat([model(batch) for batch in torch.split(x, 256)]) if len(x) else y
        self._control_errors = window_errors(pred.numpy(), y.numpy())
        epochs = outcome.settings.get("epochs_run") or used.epochs
        return {"model": f"{architecture} architecture, random weights, trained from scratch on the same windows "
                         f"({epochs} of at most {counted(used.epochs, 'epoch')}, lr {settings.lr:g}, "
                         f"budget {seconds:.0f} s)",
                "mse": float(self._control_errors.mean()) if len(self._control_errors) else float("nan"),
                "epochs_run": epochs}

    def _plan_details(self) -> list[tuple[str, str]]:
        return [(f"lookback {self.lookback_}, horizon {self.horizon_}",
                 f"series: {', '.join(self.channels_)}; {self._horizon_reason()}"),
                ("split", self.split_["description"]),
                ("baselines: seasonal naive, naive (last value), DLinear",
                 "fit after the model on the same training windows")]

    def _carry_head(self, model: ForecastModel) -> str | None:
        """Start from the source run's head when the backbone is a forecast run with the same horizon;
        the note says which happened (and why a head is trained anew)."""
        source = self.backbone_info_
        if (source.get("meta") or {}).get("parent_task") != TASK:
            return None
        if self.source_horizon_ and self.horizon_ != self.source_horizon_:
            self.notes_.append(f"--horizon {self.horizon_} differs from the horizon {self.source_horizon_} of the "
                               f"backbone run {source['name']}: its forecast head cannot be kept, so a new head is "
                               "trained from zero (leave out --horizon to keep it)")
            return None
        head = read_head_weights(source["name"], model.default_head)
        own = model.head.state_dict()
        if head.keys() != own.keys() or any(head[k].shape != own[k].shape for k in own):
            self.notes_.append(f"the forecast head of {source['name']} does not fit this model's shape, so a new head "
                               "is trained from zero")
            return None
        model.head.load_state_dict(head)
        taken = "as given, the same as" if self.horizon else "taken from"
        return (f"horizon {self.horizon_} {taken} the backbone run {source['name']}, so its forecast head is kept "
                "as the starting point, not trained from zero")

    def _horizon_reason(self) -> str:
        """Where the horizon came from, in the decisions' words."""
        source = self.source_horizon_
        if self.horizon and source and self.horizon != source:
            return f"horizon as given, not the backbone run's {source}: its forecast head is re-initialised"
        if self.horizon:
            return "horizon as given" + (" (the backbone run's too: its forecast head is kept)" if source else "")
        if source:
            return f"horizon {source} of the backbone run (no --horizon): its forecast head is kept"
        return f"horizon: default {DEFAULT_HORIZON} (--horizon)"

    # -------------------------------------------------------------- predict
    def _new_head(self, num_features: int) -> nn.Module:
        return ForecastHead(num_features, self.horizon_)

    def _new_model(self, body: nn.Module, num_features: int) -> ForecastModel:
        return ForecastModel(body, self._new_head(num_features))

    def _raw_input_encoder(self, body: nn.Module) -> nn.Module:
        return _RevINEncoder(body)

    def _forecast(self, windows: WindowDataset) -> np.ndarray:
        loader = DataLoader(windows, batch_size=256)
        out = self._outputs(loader)
        return torch.cat(out).numpy() if out else np.zeros((0, self.horizon_, len(self.channels_)), np.float32)

    def evaluate(self, data: str | Path | None = None) -> dict:
        """MSE/MAE (standardised scale) and MASE of the model and the baselines on the test windows
        of `fit` (data=None), or on every window of another CSV with the same columns."""
        self._check_fitted()
        if data is None:
            if not hasattr(self, "windows_"):
                raise RuntimeError("no test split to evaluate: this model was loaded; pass a CSV")
            windows, train_values = self.windows_["test"], self.data_.values[slice(*self.split_["train"])]
            baselines = self.baselines_
        else:
            values = self._standardised(data)
            windows, train_values = WindowDataset(values, self.lookback_, self.horizon_), values
            if len(windows) == 0:
                raise DataError(f"{data}: {len(values)} rows, fewer than lookback + horizon = "
                                f"{self.lookback_ + self.horizon_}; pass a longer series.")
            baselines = {k: v for k, v in getattr(self, "baselines_", {}).items() if isinstance(v, SeasonalNaive)} or {
                "seasonal naive": SeasonalNaive(self.horizon_, self.season_)}
        x, y = windows.arrays()
        pred = self._forecast(windows)
        metrics = forecast_metrics(pred, y.numpy(), train_values, self.season_, self.channels_)
        metrics["n"] = metrics["n_windows"]
        metrics["baselines"] = {}
        errors = window_errors(pred, y.numpy())
        baseline_errors = {}
        for name, model in baselines.items():
            forecast = model.predict(x)
            m = forecast_metrics(forecast, y.numpy(), train_values, self.season_, self.channels_)
            metrics["baselines"][name] = {k: m[k] for k in ("mse", "mae", "mase")}
            baseline_errors[name] = window_errors(forecast, y.numpy())
        check = compare_with_baselines(errors, baseline_errors, self.horizon_)
        if check:
            check["advice"] = self._baseline_advice(check)
            metrics["baseline_check"] = check
            metrics["gain_over_best_baseline"] = {"baseline": check["best_baseline"],
                                                  "mse": check["baseline"] - check["model"]}
        control_errors = getattr(self, "_control_errors", None)
        if data is None and control_errors is not None and len(control_errors) == len(errors):
            transfer = transfer_check(errors, control_errors, self.horizon_)
            transfer["advice"] = self._transfer_advice(transfer)
            metrics["transfer"] = {**transfer, "control": self.control_["model"]}
        if data is None:
            self.metrics_ = metrics
            self.examples_ = self._examples(x, y.numpy(), pred, baselines)
        return metrics

    def _standardised(self, data) -> np.ndarray:
        table = load_series_csv(data, self.time_column, self.target)
        missing = [c for c in self.channels_ if c not in table.columns]
        if missing:
            raise DataError(f"{data}: no column {missing[0]!r}; the model forecasts {', '.join(self.channels_)}.")
        return self.scaler_.transform(table.values[:, [table.columns.index(c) for c in self.channels_]])

    def predict(self, history: str | Path | np.ndarray) -> np.ndarray:
        """The next `horizon` steps after the end of `history` (a CSV path, or an array of shape
        (T, C) in the original units), in original units: shape (horizon, C)."""
        self._check_fitted()
        if isinstance(history, (str, Path)):
            values = self._standardised(history)
        else:
            raw = np.asarray(history, dtype=np.float32)
            raw = raw[:, None] if raw.ndim == 1 else raw
            if raw.shape[1] != len(self.channels_):
                raise DataError(f"history has {raw.shape[1]} series; the model forecasts {len(self.channels_)} "
                                f"({', '.join(self.channels_)}).")
            values = self.scaler_.transform(raw)
        if len(values) < self.lookback_:
            raise DataError(f"history has {len(values)} steps; the model needs the last {self.lookback_}.")
        with torch.inference_mode():
            out = self.model_.eval()(torch.from_numpy(np.ascontiguousarray(values[-self.lookback_:]))[None])[0]
        return self.scaler_.inverse_transform(out.numpy())

    # ------------------------------------------------------------ save/load
    def _task_config(self) -> dict:
        return {"series": self.channels_, "lookback": self.lookback_, "horizon": self.horizon_,
                "season": self.season_, "scaler": self.scaler_.to_dict(), "source_series": self.series_,
                "baselines": {name: getattr(m, "settings", lambda: {"season": m.season})()
                              for name, m in getattr(self, "baselines_", {}).items()}}

    config_keys = {"series": list[str], "lookback": int, "season": int, "scaler": dict}

    def _restore_task(self, config: dict) -> None:
        self.channels_ = config["series"]
        self.lookback_ = int(config["lookback"])
        self.horizon_ = int(config.get("horizon") or self.horizon or DEFAULT_HORIZON)
        self.season_ = int(config["season"])
        self.scaler_ = Standardizer.from_dict(config["scaler"])
        self.series_ = config.get("source_series", {})

    def save(self, path: str | Path) -> Path:
        """The run directory (see `TransferEstimator.save`) plus the report's example windows."""
        path = super().save(path)
        if getattr(self, "examples_", None):
            (path / EXAMPLES_FILE).write_text(json.dumps(self.examples_))
        return path

    # ---- task detection (template)
    detect_order = 10  # a CSV whose first column holds times and the rest numbers: narrower than a text table

    @classmethod
    def recognise(cls, path: str | Path) -> str | None:
        p = Path(path).expanduser()
        if p.is_file() and p.suffix.lower() == ".csv" and _looks_like_series(p):
            return f"{p.name}: a time column followed by numeric columns"
        return None

    # ---- parameter declarations (cli)
    param_constraints = {**TransferEstimator.param_constraints, "horizon": Interval(1), "lookback": Interval(2),
                         "train_fraction": Interval(0.001, 1.0)}
    option_panel = "Time series"


class _RevINEncoder(nn.Module):
    """The encoder behind the per-window normalisation it was trained with (for domain statistics)."""

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body, self.revin = body, RevIN()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.revin.normalize(x)[0])


class _SeriesRun:
    """The fitted data set as the run directory records it (summary and split)."""

    def __init__(self, table: SeriesTable, split: dict | None = None, values: np.ndarray | None = None) -> None:
        self.table, self.split, self.values = table, split, values

    def summary(self) -> dict:
        return {"root": str(self.table.path), **self.table.describe(),
                "windows": self.split["windows"], "split": self.split["description"]}

    def split_record(self) -> dict:
        return self.split


def _source_horizon(backbone) -> int | None:
    """The horizon the backbone's run was trained at, when the backbone is a forecast run (else None)."""
    from ..rundir import read_config

    meta = backbone.meta or {}
    if meta.get("parent_task") != TASK or not meta.get("parent_run"):
        return None
    horizon = read_config(Path(meta["parent_run"]), {}).get("horizon")
    return int(horizon) if isinstance(horizon, int) and horizon > 0 else None


@torch.inference_mode()
def _mse(model: nn.Module, windows: WindowDataset) -> float:
    model.eval()
    total, count = 0.0, 0
    for x, y in DataLoader(windows, batch_size=256):
        total += float(((model(x) - y) ** 2).sum())
        count += y.numel()
    return total / max(1, count)


def _header_names(path: Path) -> list[str]:
    """The column names of a CSV's first line as written (pandas renames repeated ones)."""
    import csv

    with path.open(newline="", encoding="utf-8", errors="replace") as f:
        return [name.strip() for name in next(csv.reader(f), [])]


def _looks_like_series(path: Path, rows: int = 50) -> bool:
    import pandas as pd

    try:
        head = pd.read_csv(path, nrows=rows)
    except Exception:  # not parseable as plain CSV: let the text reader explain
        return False
    if head.shape[1] < 2 or len(head) == 0:
        return False
    # pandas renames a repeated column ("date,date,OT" reads as date, date.1, OT): judge the file
    # without the repeats, so that the series loader, not a text reader, says the name is used twice
    repeats = [column for column, raw in zip(head.columns, _header_names(path)) if column != raw]
    if repeats and len(repeats) < head.shape[1] - 1:
        head = head.drop(columns=repeats)
    first = head.iloc[:, 0].astype(str)
    # utc=True: times with different UTC offsets (or beside naive ones) raise otherwise; whether they
    # may be mixed is for the series loader to say
    dates = pd.to_datetime(first, errors="coerce", format="mixed", utc=True)
    rest_numeric = all(pd.api.types.is_numeric_dtype(head[c]) for c in head.columns[1:])
    return bool(dates.notna().all() and not first.str.fullmatch(r"-?\d+(\.\d+)?").all() and rest_numeric)
