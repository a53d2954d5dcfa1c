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
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ..backbones.patchtst import ForecastHead, ForecastModel, RevIN, patchtst_backbone
from ..data.timeseries import (SeriesTable, Standardizer, WindowDataset, chronological_split, constant_columns,
                               load_series_csv)
from .._format import counted
from ..errors import DataError
from ..rundir import EXAMPLES_FILE, WEIGHTS_FILE
from ..strategies import FitData
from .base import TransferEstimator
from .params import Interval
from .presentation import Headline, Table
from .forecast_baselines import SeasonalNaive, fit_baselines
from .forecast_metrics import (compare_with_baselines, forecast_metrics, rows_to_resolve, transfer_check,
                               window_errors)

TASK = "forecast"
#: below this many training windows, batches shrink and epochs grow (a few hundred windows give
#: only a handful of steps per epoch at the usual batch size of 128)
SMALL_DATA_WINDOWS = 2000


class Forecaster(TransferEstimator):
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
    backbone : str, default="patchtst-small"
        Registered name, hub model name, a run directory, or 'auto' (rank the installed backbones
        and fine-tune the best; default: the task's offline default).
    strategy : str, default="auto"
        How to adapt the backbone (see `transferkit list strategies`).
    strategy_options : dict or None, default=None
        The strategy's own knobs, e.g. {"layer_decay": 0.7} (the CLI's repeatable --option KEY=VALUE).
    epochs : int or None, default=None
        Training epochs (default: chosen from data size).
    batch_size : int or None, default=None
        Batch size (default: the task's).
    lr : float or None, default=None
        Peak learning rate of the top layer group.
    target : str or None, default=None
        Forecast only this series (default: every numeric column).
    horizon : int, default=96
        Steps to forecast.
    lookback : int or None, default=None
        Steps of history the model reads (default: the encoder's, 336).
    train_fraction : float, default=1.0
        Train on only the most recent fraction of the training segment.
    time_column : str or None, default=None
        Time column (default: detected).
    seed : int, default=0
        Random seed of the split, the weights of new layers and the order of training batches.
    baseline : bool, default=True
        Also train a from-scratch control on the same split and report the transfer gain (negative
        transfer is flagged).
    run_dir : str, Path or None, default=None
        The run directory; checkpoints go to its checkpoints/ folder while fitting (the CLI's --out).
    resume : bool, default=False
        Continue an interrupted run from its last checkpoint.
    progress : bool, default=True
        Show progress bars (the CLI's --quiet turns them off).
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
        horizon: int = 96,
        lookback: int | None = None,
        train_fraction: float = 1.0,
        time_column: str | None = None,
        seed: int = 0,
        baseline: bool = True,
        run_dir: str | Path | None = None,
        resume: bool = False,
        progress: bool = True,
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

    # ------------------------------------------------------------------ fit
    def fit(self, data: str | Path | SeriesTable) -> "Forecaster":
        """Split and standardise the series, adapt the backbone, fit the baselines; returns self."""
        self._check_params()
        start = time.perf_counter()
        torch.manual_seed(self.seed)
        table = data if isinstance(data, SeriesTable) else load_series_csv(data, self.time_column, self.target)
        backbone = self._load_backbone()
        pretrained = backbone.meta.get("pretrained", True)
        lookback = self.lookback or backbone.preprocessing.lookback
        if lookback != backbone.preprocessing.lookback:
            if pretrained:
                raise DataError(f"{backbone.name}: the pretrained encoder reads windows of {backbone.preprocessing.lookback} "
                                f"steps; drop --lookback {lookback} or pass --lookback {backbone.preprocessing.lookback}.")
            backbone = patchtst_backbone(backbone.name, {**backbone.arch_config, "lookback": lookback})
            self.backbone_info_, self.preprocessing_ = backbone.to_config(), backbone.preprocessing
        self.lookback_ = lookback
        self.channels_ = [table.target] if self.target else list(table.columns)
        picked = [table.columns.index(c) for c in self.channels_]
        self.split_ = chronological_split(table, lookback, self.horizon, self.train_fraction)
        # statistics of the whole training segment, also when --train-fraction keeps only its end:
        # scarcity is simulated as in the few-shot protocols of OFA/Time-LLM, so metrics stay on the
        # same scale as full-data runs and published tables
        training_rows = table.values[: self.split_["train"][1]][:, picked]
        self.scaler_ = Standardizer.fit(training_rows)
        values = self.scaler_.transform(table.values[:, picked])
        self.season_ = table.season if table.season <= lookback else 1
        self.series_ = table.describe()
        self.data_ = _SeriesRun(table, self.split_, values)
        loaded = time.perf_counter()

        windows = {part: WindowDataset(values, lookback, self.horizon, *self.split_[part]) for part in ("train", "val", "test")}
        self.windows_ = windows
        small = len(windows["train"]) < SMALL_DATA_WINDOWS
        model = self._new_model(backbone.model, backbone.num_features)
        notes, options = list(table.notes), dict(self.strategy_options or {})
        flat = [self.channels_[j] for j in constant_columns(training_rows)]
        if flat:
            notes.append(f"{', '.join(map(repr, flat))} {'is' if len(flat) == 1 else 'are'} constant in the training "
                         "segment: standardised with deviation 1 instead of 0, so there is nothing to learn from it")
        head_from = self._carry_head(backbone, model)
        if head_from:
            if self.strategy in ("auto", "fine-tune", "full"):
                options.setdefault("head_lr", self.lr or 1e-4)  # a trained head needs no 10× rate
            else:
                head_from += f"; {self.strategy} replaces it, and it is restored if that does not lower the validation MSE"
            notes.append(head_from)
        fit_data = FitData(train=windows["train"], train_plain=windows["train"], val=windows["val"],
                           objective="regression", modality="timeseries", pretrained=pretrained)
        settings = self._settings()
        settings.batch_size = self.batch_size or (32 if small else 128)
        settings.epochs = self.epochs or (30 if small else 10)
        settings.lr = self.lr or (1e-4 if pretrained else 1e-3)
        settings.label_smoothing = 0.0
        settings.tta = False
        self._diagnose_domain(backbone, fit_data)
        before = _mse(model, windows["val"]) if pretrained and head_from else None
        initial = copy.deepcopy(model.state_dict()) if before is not None else None
        from ..strategies import create_strategy

        strategy = create_strategy(self.strategy, **options)
        outcome = self._adapt(strategy, model, fit_data, settings, start, loaded)
        self.notes_ = notes + self.notes_
        if before is not None:
            after = _mse(model, windows["val"])
            if after >= before:
                model.load_state_dict(initial)
                self.notes_.append(f"adaptation did not lower the validation MSE ({after:.4f} vs {before:.4f} before), "
                                   "so the pretrained model is kept unchanged")
            else:
                self.notes_.append(f"validation MSE {before:.4f} before adaptation, {after:.4f} after")
        base_start = time.perf_counter()
        self.baselines_ = fit_baselines(lookback, self.horizon, self.season_, windows["train"], windows["val"])
        self.timings_["baselines"] = time.perf_counter() - base_start
        self._control_errors = None
        if pretrained:
            self._fit_settings = settings
            self._control(self.timings_.get("total fit", 0.0))
        else:
            self.control_ = None
        self.decisions_ = [
            self._backbone_decision(backbone),
            self._strategy_decision(outcome),
            (f"series: {', '.join(self.channels_)}",
             f"univariate: only --target {self.target}" if self.target else "every numeric column, each forecast "
             "as its own series with shared weights (channel-independent)"),
            (f"lookback {lookback}, horizon {self.horizon}", "as given" if self.lookback else
             f"the encoder's lookback; horizon {'as given' if self.horizon != 96 else 'default 96'}"),
            ("split", self.split_["description"] + "; standardised with the training segment's mean and deviation"),
            (f"training: at most {counted(settings.epochs, 'epoch')}, batch {settings.batch_size}, peak lr {settings.lr:g}",
             "few training windows: smaller batches, more epochs" if small else "standard long-horizon setting",),
            (f"baselines: {', '.join(self.baselines_)}", "fit on the same training windows (DLinear reads each "
             "window relative to its last value); the model must beat them to be worth its cost"),
            self._control_decision(pretrained),
        ]
        return self

    def _control_decision(self, pretrained: bool) -> tuple[str, str]:
        if not pretrained:
            return ("transfer check: none", "no pretrained weights, so nothing was transferred: the model is "
                    "compared with the baselines only")
        if not self.control_:
            return ("transfer check: skipped", "baseline=False (--no-baseline): no from-scratch control was trained")
        return (f"control: {self.control_['model']}", "the transfer verdict compares the transferred model with "
                "the same architecture trained from scratch on the same training windows")

    def _scratch_control(self, budget: float) -> dict:
        """The transferred model's architecture with random weights, trained as a from-scratch `fit`
        would train it (strategy auto → full, lr 1e-3 unless given) on the same training and
        validation windows, within the transferred run's epochs and about its fit time (at least
        30 s); scored on the same test windows. Its per-window errors are kept for the verdict."""
        from ..strategies import TrainSettings, create_strategy

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
                                 label_smoothing=0.0, tta=False, progress=self.progress, max_seconds=seconds)
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
        return [(f"lookback {self.lookback_}, horizon {self.horizon}", f"series: {', '.join(self.channels_)}"),
                ("split", self.split_["description"]),
                ("baselines: seasonal naive, naive (last value), DLinear",
                 "fit after the model on the same training windows")]

    def _carry_head(self, backbone, model: ForecastModel) -> str | None:
        """Start from the source run's head when the backbone is a forecast run with the same horizon."""
        from safetensors.torch import load_file

        if backbone.meta.get("parent_task") != TASK:
            return None
        state = load_file(str(Path(backbone.name) / WEIGHTS_FILE))
        prefix = f"heads.{model.default_head}."
        head = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        own = model.head.state_dict()
        if head.keys() != own.keys() or any(head[k].shape != own[k].shape for k in own):
            return None
        model.head.load_state_dict(head)
        return f"forecast head carried over from {backbone.name} (same horizon), not trained from zero"

    # -------------------------------------------------------------- predict
    def _new_head(self, num_features: int) -> nn.Module:
        return ForecastHead(num_features, self.horizon)

    def _new_model(self, body: nn.Module, num_features: int) -> ForecastModel:
        return ForecastModel(body, self._new_head(num_features))

    def _raw_input_encoder(self, body: nn.Module) -> nn.Module:
        return _RevINEncoder(body)

    def _forecast(self, windows: WindowDataset) -> np.ndarray:
        loader = DataLoader(windows, batch_size=256)
        out = self._outputs(loader)
        return torch.cat(out).numpy() if out else np.zeros((0, self.horizon, len(self.channels_)), np.float32)

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
            windows, train_values = WindowDataset(values, self.lookback_, self.horizon), values
            if len(windows) == 0:
                raise DataError(f"{data}: {len(values)} rows, fewer than lookback + horizon = "
                                f"{self.lookback_ + self.horizon}; pass a longer series.")
            baselines = {k: v for k, v in getattr(self, "baselines_", {}).items() if isinstance(v, SeasonalNaive)} or {
                "seasonal naive": SeasonalNaive(self.horizon, self.season_)}
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
        check = compare_with_baselines(errors, baseline_errors, self.horizon)
        if check:
            check["advice"] = self._baseline_advice(check)
            metrics["baseline_check"] = check
            metrics["gain_over_best_baseline"] = {"baseline": check["best_baseline"],
                                                  "mse": check["baseline"] - check["model"]}
        control_errors = getattr(self, "_control_errors", None)
        if data is None and control_errors is not None and len(control_errors) == len(errors):
            transfer = transfer_check(errors, control_errors, self.horizon)
            transfer["advice"] = self._transfer_advice(transfer)
            metrics["transfer"] = {**transfer, "control": self.control_["model"]}
        if data is None:
            self.metrics_ = metrics
            self.examples_ = self._examples(x, y.numpy(), pred, baselines)
        return metrics

    def _more_history(self) -> list[str]:
        """Advice to train on more of the history, when the run kept only part of it."""
        if self.train_fraction >= 1.0:
            return []
        return [f"train on more of the history: this run kept {self.train_fraction:g} of the training segment "
                f"(--train-fraction {min(1.0, self.train_fraction * 4):g} or 1)"]

    def _baseline_advice(self, check: dict) -> list[str]:
        """What this run could do differently when a baseline beats the model (or ties with it)."""
        if check["verdict"] == "model":
            return []
        advice = []
        settings = getattr(self, "strategy_settings_", {}) or {}
        epochs, run = settings.get("epochs"), settings.get("epochs_run")
        if epochs and run and run >= epochs:  # it stopped at the epoch limit, not because validation stalled
            advice.append(f"train longer: the run stopped at its limit of {epochs} epoch{'s' * (epochs != 1)}, not by "
                          f"early stopping (--epochs {max(10, 3 * epochs)})")
        advice += self._more_history()
        if (self.backbone_info_.get("meta") or {}).get("parent_task") != TASK:
            advice.append("start from a forecaster trained on a longer or related series: fit it, then pass "
                          "its run directory as --backbone RUN")
        return advice

    def _transfer_advice(self, check: dict) -> list[str]:
        """What to try when transfer did not help, limited to what this run did not do and can do."""
        verdict = check["verdict"]
        if verdict == "positive":
            return []
        if verdict == "inconclusive":
            test_rows = self.split_["test"][1] - self.split_["test"][0]
            difference = max(abs(check["gain"]), 0.02 * check["baseline"])
            rows = rows_to_resolve(check["noise"], check["blocks"], self.horizon, difference)
            return [f"a longer test period would settle it: about {rows:,} test rows (now {test_rows:,}) would resolve "
                    f"a difference of {difference:.4f} MSE"] if rows else []
        advice = []
        if verdict == "negative":
            advice.append("the same model trained from scratch is better here: fit without --backbone (same data "
                          "and settings) to ship it")
        advice.append("transfer from a forecaster trained on a longer or more related source series (--backbone RUN)")
        if self.strategy_ != "full":
            advice.append("train every layer from the first step (--strategy full)")
        return advice + self._more_history()

    def _examples(self, x, y, pred, baselines, count: int = 4) -> dict:
        """A few evenly spaced test windows of the first forecast series, for the report's plot."""
        channel = 0
        picks = np.linspace(0, len(y) - 1, min(count, len(y))).astype(int)
        return {
            "channel": self.channels_[channel],
            "windows": [{
                "history": x[i, -2 * self.horizon:, channel].tolist(),
                "actual": y[i, :, channel].tolist(),
                "forecast": pred[i, :, channel].tolist(),
                "baselines": {name: m.predict(x[i:i + 1])[0, :, channel].tolist() for name, m in baselines.items()},
            } for i in picks],
        }

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
        return {"series": self.channels_, "lookback": self.lookback_, "horizon": self.horizon,
                "season": self.season_, "scaler": self.scaler_.to_dict(), "source_series": self.series_,
                "baselines": {name: getattr(m, "settings", lambda: {"season": m.season})()
                              for name, m in getattr(self, "baselines_", {}).items()}}

    config_keys = {"series": list[str], "lookback": int, "season": int, "scaler": dict}

    def _restore_task(self, config: dict) -> None:
        self.channels_ = config["series"]
        self.lookback_ = int(config["lookback"])
        self.season_ = int(config["season"])
        self.scaler_ = Standardizer.from_dict(config["scaler"])
        self.series_ = config.get("source_series", {})

    def save(self, path: str | Path) -> Path:
        """The run directory (see `TransferEstimator.save`) plus the report's example windows."""
        path = super().save(path)
        if getattr(self, "examples_", None):
            (path / EXAMPLES_FILE).write_text(json.dumps(self.examples_))
        return path

    # ---- parameter declarations (cli)
    param_constraints = {**TransferEstimator.param_constraints, "horizon": Interval(1), "lookback": Interval(2),
                         "train_fraction": Interval(0.001, 1.0)}

    # ---- presentation hooks (cli)
    unit = "window"
    option_panel = "Time series"

    def read_prediction_inputs(self, inputs: list[str], file: Path | None) -> Path:
        """The one CSV of history to forecast from."""
        if len(inputs) != 1 or file is not None:
            raise DataError("a forecast run takes one CSV of history: transferkit predict RUN history.csv")
        return Path(inputs[0])

    def prediction_records(self, items: Path, top_k: int) -> list[dict]:
        """The next `horizon` steps after the end of the history CSV `items`: {"time": ..., series:
        value, ...} per step, timestamped when the CSV has times (else "+1", "+2"...)."""
        import pandas as pd

        forecast = self.predict(items)
        table = load_series_csv(items, self.time_column, self.target)
        if table.times is not None and table.frequency:
            steps = [str(t) for t in pd.date_range(table.times[-1], periods=len(forecast) + 1,
                                                   freq=table.frequency)[1:]]
        else:
            steps = [f"+{i + 1}" for i in range(len(forecast))]
        return [{"time": t, **{c: round(float(v), 6) for c, v in zip(self.channels_, row)}}
                for t, row in zip(steps, forecast)]

    def prediction_table(self, items: Path, records: list[dict]) -> Table:
        return Table(columns=("time", *self.channels_), right=tuple(self.channels_),
                     rows=[(r["time"], *(f"{r[c]:.4f}" for c in self.channels_)) for r in records],
                     title=f"forecast of the next {counted(len(records), 'step')} after {Path(items).name}")

    def metrics_table(self, metrics: dict, data: str | None = None) -> tuple[Table, Headline | None]:
        """MSE, MAE and MASE of the model and of each baseline; no summary line."""
        rows = [(name if name != "model" else "model (this run)",
                 *(f"{m.get(k, float('nan')):.4f}" for k in ("mse", "mae", "mase")))
                for name, m in {"model": metrics, **metrics.get("baselines", {})}.items()]
        return Table(columns=("model", "MSE", "MAE", "MASE"), rows=rows, title=self._metrics_title(metrics, data),
                     right=("MSE", "MAE", "MASE")), None


class _RevINEncoder(nn.Module):
    """The encoder behind the per-window normalisation it was trained with (for domain statistics)."""

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body, self.revin = body, RevIN()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.revin.normalize(x)[0])


class _SeriesRun:
    """The fitted data set as the run directory records it (summary and split)."""

    def __init__(self, table: SeriesTable, split: dict, values: np.ndarray) -> None:
        self.table, self.split, self.values = table, split, values

    def summary(self) -> dict:
        return {"root": str(self.table.path), **self.table.describe(),
                "windows": self.split["windows"], "split": self.split["description"]}

    def split_record(self) -> dict:
        return self.split


@torch.inference_mode()
def _mse(model: nn.Module, windows: WindowDataset) -> float:
    model.eval()
    total, count = 0.0, 0
    for x, y in DataLoader(windows, batch_size=256):
        total += float(((model(x) - y) ** 2).sum())
        count += y.numel()
    return total / max(1, count)
