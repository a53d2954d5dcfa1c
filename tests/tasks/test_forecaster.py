"""Forecaster end to end on small synthetic series: fit, baselines, save/load, transfer, probe."""
import json

import numpy as np
import pandas as pd
import pytest

from transferkit import Forecaster, load_run
from transferkit.errors import DataError

FAST = dict(lookback=48, horizon=12, epochs=2, progress=False)


def series_csv(path, rows=900, seed=0, phase=0.0, level=10.0):
    """Hourly daily-seasonal series with a slow drift and noise; two channels."""
    rng = np.random.default_rng(seed)
    t = np.arange(rows)
    daily = np.sin(2 * np.pi * t / 24 + phase)
    drift = np.cumsum(rng.normal(0, 0.05, rows))
    frame = pd.DataFrame({
        "date": pd.date_range("2020-01-01", periods=rows, freq="h").strftime("%Y-%m-%d %H:%M:%S"),
        "load": level + 2 * daily + drift + rng.normal(0, 0.2, rows),
        "temp": 20 + 5 * np.roll(daily, 3) + rng.normal(0, 0.3, rows),
    })
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return series_csv(tmp_path_factory.mktemp("ts") / "source.csv")


@pytest.fixture(scope="module")
def fitted(source, tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    model = Forecaster(run_dir=run, **FAST).fit(source)
    model.evaluate()
    model.save(run)
    return model, run


def test_fit_trains_from_scratch_and_reports_baselines(fitted):
    model, _ = fitted
    metrics = model.metrics_
    assert model.strategy_ == "full" and "no pretrained weights" in model.strategy_settings_["reason"]
    assert model.strategy_settings_["freeze_bn_stats"] is False  # untrained BN statistics must be learnt
    assert model.split_["description"].startswith("chronological 70/10/20")
    assert set(metrics["baselines"]) == {"seasonal naive (24)", "naive (last value)", "DLinear"}
    # a daily sine is easy: the model must be far better than forecasting the mean (MSE ≈ 1)
    assert metrics["mse"] < 0.3 and metrics["n"] == 180 - 12 + 1  # test rows - horizon + 1
    assert metrics["per_channel"].keys() == {"load", "temp"}
    assert [row["epoch"] for row in model.history_] == [1, 2] and "val_mae" in model.history_[0]


def test_run_directory_reloads_and_predicts_in_original_units(fitted, source):
    model, run = fitted
    config = json.loads((run / "config.json").read_text())
    assert config["task"] == "forecast" and config["lookback"] == 48 and config["series"] == ["load", "temp"]
    assert (run / "forecast_examples.json").is_file()
    again = load_run(run)
    history = pd.read_csv(source)[["load", "temp"]].to_numpy()
    forecast = again.predict(history)
    np.testing.assert_allclose(forecast, model.predict(history), atol=1e-5)
    assert forecast.shape == (12, 2) and 15 < forecast[:, 1].mean() < 25  # temp stays near its level
    np.testing.assert_allclose(again.predict(source), forecast, atol=1e-5)
    with pytest.raises(DataError, match="needs the last 48"):
        again.predict(history[:10])


def test_transfer_carries_the_head_and_never_ships_worse_than_it_started(fitted, tmp_path):
    _, run = fitted
    target = series_csv(tmp_path / "target.csv", seed=1, phase=1.0, level=30.0)
    tuned = Forecaster(backbone=str(run), train_fraction=0.2, **{**FAST, "lookback": None}).fit(target)
    assert tuned.strategy_ == "fine-tune" and tuned.lookback_ == 48
    assert any("head carried over" in n for n in tuned.notes_)
    assert any("validation MSE" in n for n in tuned.notes_)
    assert tuned.evaluate()["mse"] < 0.5
    with pytest.raises(DataError, match="reads windows of 48 steps"):
        Forecaster(backbone=str(run), lookback=96, horizon=12, progress=False).fit(target)


def test_linear_probe_refits_only_the_output_layer(fitted, tmp_path):
    _, run = fitted
    target = series_csv(tmp_path / "target.csv", seed=2, level=5.0)
    source_model = load_run(run)
    probe = Forecaster(backbone=str(run), strategy="linear-probe", horizon=12, progress=False).fit(target)
    for (name, before), after in zip(source_model.model_.backbone.state_dict().items(),
                                     probe.model_.backbone.state_dict().values()):
        assert np.array_equal(before.numpy(), after.numpy()), name
    assert "ridge_lambda" in probe.strategy_settings_


def test_bad_forecast_requests(source):
    with pytest.raises(DataError, match="use a shorter --lookback/--horizon"):
        Forecaster(lookback=336, horizon=400, progress=False).fit(source)
    with pytest.raises(DataError, match="--target; columns found: date, load, temp"):
        Forecaster(target="OT", **FAST).fit(source)


def test_transfer_reports_domain_shift_and_the_baseline_verdict(fitted, tmp_path):
    _, run = fitted
    target = series_csv(tmp_path / "target.csv", seed=3, level=50.0)
    tuned = Forecaster(backbone=str(run), train_fraction=0.3, **{**FAST, "lookback": None}).fit(target)
    shift = tuned.domain_["batchnorm_shift"]
    assert shift is not None and shift["shift"] >= 0 and "interpretation" in shift
    check = tuned.evaluate()["transfer"]
    assert check["metric"] == "mse" and check["control"] in tuned.metrics_["baselines"]
    assert check["gain"] == pytest.approx(check["baseline"] - check["model"])
