"""Seasonal naive, DLinear (closed form) and forecast metrics."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.helpers import shared_dataset
from transferkit.data.timeseries import Standardizer, WindowDataset, chronological_split, load_series_csv
from transferkit.tasks.forecast_baselines import (DLinear, DLinearModule, SeasonalNaive, fit_baselines,
                                                  moving_average_matrix)
from transferkit.tasks.forecast_metrics import (compare_with_baselines, forecast_metrics, seasonal_naive_scale,
                                                transfer_check)


def test_seasonal_naive_repeats_the_last_season():
    x = np.arange(10, dtype=np.float32)[None, :, None]
    assert SeasonalNaive(horizon=5, season=3).predict(x)[0, :, 0].tolist() == [7, 8, 9, 7, 8]
    assert SeasonalNaive(horizon=3, season=1).predict(x)[0, :, 0].tolist() == [9, 9, 9]


def test_moving_average_matrix_matches_the_reference_decomposition():
    x = torch.randn(2, 40, 3, dtype=torch.float64)
    seasonal, trend = DLinearModule(40, 8, kernel_size=25).double().decompose(x)
    expected = torch.einsum("tl,blc->btc", torch.from_numpy(moving_average_matrix(40, 25)), x)
    assert torch.allclose(trend, expected) and torch.allclose(seasonal + trend, x)


def trended(n: int = 1500, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    a = np.sin(2 * np.pi * t / 24) + 0.004 * t + 0.1 * rng.normal(size=n)
    b = 0.5 * np.cos(2 * np.pi * t / 24) - 0.003 * t + 0.1 * rng.normal(size=n)
    return np.stack([a, b], axis=1).astype(np.float32)


def test_dlinear_beats_seasonal_naive_on_a_trended_series():
    values = trended()
    split = chronological_split(len(values), lookback=96, horizon=24)
    train, val, test = (WindowDataset(values, 96, 24, *split[k]) for k in ("train", "val", "test"))
    model = DLinear(96, 24).fit(train, val)
    x, y = test.arrays()
    train_values = values[slice(*split["train"])]
    dlinear = forecast_metrics(model.predict(x), y.numpy(), train_values, season=24)
    naive = forecast_metrics(SeasonalNaive(24, 24).predict(x), y.numpy(), train_values, season=24)
    assert dlinear["mse"] < 0.5 * naive["mse"]
    assert len(model.history_) == len(model.lambdas) and model.lambda_ in model.lambdas
    # the closed-form fit is the DLinear architecture: its two nn.Linear branches give the same forecast
    for normalize in ("last", "mean", None):
        fitted = DLinear(96, 24, normalize=normalize).fit(train, val)
        with torch.no_grad():
            assert np.allclose(fitted.to_module()(x).numpy(), fitted.predict(x), atol=1e-4), normalize


def test_dlinear_forecast_follows_a_level_the_training_windows_never_saw():
    """Fitted on a short stretch at one level, forecasting a later stretch at another: the window's
    own level must carry over (a bias fitted on the training level must not)."""
    values = trended(600)
    train = WindowDataset(values, 48, 12, 0, 200)
    shifted = values + 25.0  # the same dynamics, far from every training window
    x, y = WindowDataset(shifted, 48, 12, 300, 600).arrays()
    error = float(((DLinear(48, 12).fit(train).predict(x) - y.numpy()) ** 2).mean())
    naive = float(((SeasonalNaive(12, 1).predict(x) - y.numpy()) ** 2).mean())
    assert error < naive


def test_mase_by_hand():
    train = np.array([[1.0], [3.0], [2.0], [4.0]])  # seasonal (s=2) naive errors |2-1|, |4-3| → scale 1
    assert seasonal_naive_scale(train, 2).tolist() == [1.0]
    true = np.array([[[5.0], [6.0]]])
    pred = np.array([[[4.0], [8.0]]])
    m = forecast_metrics(pred, true, train, season=2, channels=["y"])
    assert m["mse"] == pytest.approx((1 + 4) / 2) and m["mae"] == pytest.approx(1.5)
    assert m["mase"] == pytest.approx(1.5) and m["per_channel"]["y"]["mase"] == pytest.approx(1.5)


def test_metrics_per_channel_and_constant_channel():
    train = np.stack([np.arange(10.0), np.zeros(10)], axis=1)  # naive error 1 per step; constant channel
    true = np.zeros((3, 4, 2))
    pred = np.ones((3, 4, 2)) * np.array([2.0, 1.0])
    m = forecast_metrics(pred, true, train, season=1, channels=["a", "b"])
    assert m["per_channel"]["a"] == {"mse": 4.0, "mae": 2.0, "mase": 2.0}
    assert m["per_channel"]["b"]["mase"] is None and m["mase"] == 2.0
    assert m["mse"] == pytest.approx(2.5)
    with pytest.raises(ValueError, match="differs"):
        forecast_metrics(pred[:, :2], true, train, season=1)


@pytest.mark.parametrize("train_fraction", [0.1, 1.0])
def test_every_baseline_beats_a_constant_forecast_on_etth1(train_fraction):
    """ETTh1 OT, lookback 96, horizon 24: every baseline beats the training mean, and the fitted
    one (DLinear) also the last value. DLinear without window normalisation scored 0.26 with a
    10 % training fraction (last value 0.034), and 6.3 with lookback 336 / horizon 96."""
    table = load_series_csv(shared_dataset("timeseries", "ETTh1.csv"), target="OT")
    values = table.values[:, [table.target_index]]
    split = chronological_split(table, 96, 24, train_fraction)
    z = Standardizer.fit(values[: split["train"][1]]).transform(values)
    train, val, test = (WindowDataset(z, 96, 24, *split[k]) for k in ("train", "val", "test"))
    x, y = test.arrays()
    y = y.numpy()

    def mse(pred):
        return float(((pred - y) ** 2).mean())

    train_mean = mse(np.full_like(y, z[slice(*split["train"])].mean()))
    last_value = mse(SeasonalNaive(24, 1).predict(x))
    baselines = fit_baselines(96, 24, table.season, train, val)
    scores = {name: mse(model.predict(x)) for name, model in baselines.items()}
    assert all(score < train_mean for score in scores.values()), (scores, train_mean)
    assert scores["DLinear"] < last_value, (scores, last_value)


def test_etth1_slice_dlinear_beats_seasonal_naive():
    table = load_series_csv(shared_dataset("timeseries", "ETTh1.csv"), target="OT")
    values = table.values[:3000]  # ~4 months: a fast, real check of the whole chain
    split = chronological_split(len(values), lookback=96, horizon=24)
    scaler = Standardizer.fit(values[slice(*split["train"])])
    z = scaler.transform(values)
    train, val, test = (WindowDataset(z, 96, 24, *split[k], channels=[table.target_index])
                        for k in ("train", "val", "test"))
    x, y = test.arrays()
    train_values = z[slice(*split["train"]), [table.target_index]]
    dlinear = forecast_metrics(DLinear(96, 24).fit(train, val).predict(x), y.numpy(), train_values, table.season)
    naive = forecast_metrics(SeasonalNaive(24, table.season).predict(x), y.numpy(), train_values, table.season)
    assert dlinear["mae"] < naive["mae"]


def test_paired_comparison_of_forecast_errors():
    rng = np.random.default_rng(0)
    base = rng.gamma(2.0, 0.05, 240)  # per-window MSEs of 240 windows, horizon 12 → 20 blocks
    worse = base + 0.05
    check = compare_with_baselines(base, {"naive": worse, "DLinear": base + 0.01}, horizon=12)
    assert check["best_baseline"] == "DLinear" and check["verdict"] == "model" and check["blocks"] == 20
    assert check["gain"] == pytest.approx(0.01) and 0 < check["noise"] < 0.01
    assert compare_with_baselines(worse, {"naive": base}, horizon=12)["verdict"] == "baseline"
    noisy = base + rng.normal(0, 0.2, 240)  # same mean error, far noisier difference
    assert compare_with_baselines(base, {"naive": noisy}, horizon=12)["verdict"] == "tie"
    # the transfer verdict: against the control, same paired band
    assert transfer_check(base, worse, 12)["verdict"] == "positive"
    assert transfer_check(worse, base, 12)["verdict"] == "negative"
    assert transfer_check(base, noisy, 12)["verdict"] == "inconclusive"  # band wider than 2 % of the MSE
    assert transfer_check(base, base + 1e-9, 12)["verdict"] == "negligible"  # identical up to float noise
    # one block: no spread to estimate, so nothing is beyond the band
    assert transfer_check(base[:12], worse[:12], 12)["verdict"] == "inconclusive"
