"""What a forecast run shows: its metrics table, headline cards, predictions as records and table,
the example windows of the report, and the advice when a baseline or the from-scratch control is
better (`ForecastPresentationMixin`, part of `Forecaster`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .._format import forecast_table
from ..data.timeseries import load_series_csv
from ..errors import DataError
from ..strategies.registry import traits
from .forecast_metrics import MIN_NOISE, rows_to_resolve
from .presentation import Headline, SummaryLine, Table


class ForecastPresentationMixin:
    """The presentation hooks of `Forecaster` (see `presentation.PresentationMixin`) and its advice."""

    report_sections = ("forecast-metrics", "forecasts")
    unit = "window"

    @classmethod
    def headline_metrics(cls, metrics: dict) -> tuple[Headline, ...]:
        return (Headline("mse", "MSE (standardised)", ".4f", always=True),
                Headline("mae", "MAE (standardised)", ".4f", always=True),
                Headline("mase", "MASE", ".3f"), Headline("n", "test windows", "count"))


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
        return forecast_table(self.channels_, records, Path(items).name)

    def metrics_table(self, metrics: dict, data: str | None = None) -> tuple[Table, SummaryLine | None]:
        """MSE, MAE and MASE of the model and of each baseline ("n/a" where undefined); the summary
        line says why a metric is undefined (a constant series has no MASE), else there is none."""
        rows = [(name if name != "model" else "model (this run)", *(_figure(m.get(k)) for k in ("mse", "mae", "mase")))
                for name, m in {"model": metrics, **metrics.get("baselines", {})}.items()]
        why = (metrics.get("undefined") or {}).get("mase")
        summary = None if not why else SummaryLine("MASE", _figure(metrics.get("mase")), f": {why}")
        return Table(columns=("model", "MSE", "MAE", "MASE"), rows=rows, title=self._metrics_title(metrics, data),
                     right=("MSE", "MAE", "MASE")), summary

    def _examples(self, x, y, pred, baselines, count: int = 4) -> dict:
        """A few evenly spaced test windows of the first forecast series, for the report's plot."""
        channel = 0
        picks = np.linspace(0, len(y) - 1, min(count, len(y))).astype(int)
        return {
            "channel": self.channels_[channel],
            "windows": [{
                "history": x[i, -2 * self.horizon_:, channel].tolist(),
                "actual": y[i, :, channel].tolist(),
                "forecast": pred[i, :, channel].tolist(),
                "baselines": {name: m.predict(x[i:i + 1])[0, :, channel].tolist() for name, m in baselines.items()},
            } for i in picks],
        }

    def _more_history(self) -> list[str]:
        """Advice to train on more of the history, when the run kept only part of it."""
        if self.train_fraction >= 1.0:
            return []
        larger = min(1.0, self.train_fraction * 4)
        options = f"{larger:g} or 1" if larger < 1.0 else "1"
        return [f"train on more of the history: this run kept {self.train_fraction:g} of the training segment "
                f"(--train-fraction {options})"]

    def _baseline_advice(self, check: dict) -> list[str]:
        """What this run could do differently when a baseline beats the model (or ties with it)."""
        if check["verdict"] == "model" or check["baseline"] <= MIN_NOISE:
            return []  # the model wins, or a baseline is already exact (a constant series): nothing to try
        advice = []
        settings = self.strategy_settings_ or {}
        epochs, run = settings.get("epochs"), settings.get("epochs_run")
        if epochs and run and run >= epochs:  # it stopped at the epoch limit, not because validation stalled
            advice.append(f"train longer: the run stopped at its limit of {epochs} epoch{'s' * (epochs != 1)}, not by "
                          f"early stopping (--epochs {max(10, 3 * epochs)})")
        advice += self._more_history()
        if (self.backbone_info_.get("meta") or {}).get("parent_task") != self.task:
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
            rows = rows_to_resolve(check["noise"], check["blocks"], self.horizon_, difference)
            return [f"a longer test period would settle it: about {rows:,} test rows (now {test_rows:,}) would resolve "
                    f"a difference of {difference:.4f} MSE"] if rows else []
        advice = []
        if verdict == "negative":
            advice.append("the same model trained from scratch is better here: fit without --backbone (same data "
                          "and settings) to ship it")
        advice.append("transfer from a forecaster trained on a longer or more related source series (--backbone RUN)")
        if not traits(self.strategy_).trains_all_layers:
            advice.append("train every layer from the first step (--strategy full)")
        return advice + self._more_history()


def _figure(value) -> str:
    """A metric to 4 decimals, or "n/a" when it is undefined (None) or not a finite number."""
    return f"{value:.4f}" if isinstance(value, (int, float)) and np.isfinite(value) else "n/a"
