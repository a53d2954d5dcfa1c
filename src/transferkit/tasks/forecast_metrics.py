"""Forecast metrics, returned as plain JSON-ready dicts.

MSE and MAE are computed on the standardised scale (train statistics), the convention of the
long-horizon literature, so figures compare with published ETT tables. MASE divides the MAE by
the in-sample MAE of the seasonal-naive forecast on the training series, so it is scale-free and
below 1 means better than repeating the last season (one step ahead, in sample).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def seasonal_naive_scale(train_values: np.ndarray, season: int) -> np.ndarray:
    """Per-channel mean |y_t - y_{t-season}| over the training series (T, C); season falls back to
    1 when the series is not longer than one season."""
    values = np.asarray(train_values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    season = season if 0 < season < len(values) else 1
    if len(values) <= season:
        return np.full(values.shape[1], np.nan)
    return np.abs(values[season:] - values[:-season]).mean(axis=0)


def forecast_metrics(
    pred: np.ndarray,
    true: np.ndarray,
    train_values: np.ndarray,
    season: int,
    channels: Sequence[str] | None = None,
) -> dict:
    """MSE, MAE and MASE overall and per channel for forecasts `pred`/`true` of shape (N, H, C).

    Overall MSE/MAE average every (window, step, channel); overall MASE is the mean of the
    per-channel MASEs (as in the M4 competition, each series counts once). A channel whose
    training series has no seasonal-naive error (constant) gets MASE None.
    """
    pred = np.asarray(pred, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    if pred.shape != true.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from target shape {true.shape}")
    if pred.ndim == 2:
        pred, true = pred[..., None], true[..., None]
    err = pred - true
    c = err.shape[-1]
    names = list(channels) if channels is not None else [str(i) for i in range(c)]
    if len(names) != c:
        raise ValueError(f"{len(names)} channel names for {c} channels")
    scale = seasonal_naive_scale(train_values, season)
    if len(scale) != c:
        raise ValueError(f"training series has {len(scale)} channels, forecasts have {c}")
    mse_c = (err ** 2).mean(axis=(0, 1))
    mae_c = np.abs(err).mean(axis=(0, 1))
    mase_c = [float(m / s) if np.isfinite(s) and s > 0 else None for m, s in zip(mae_c, scale)]
    valid = [v for v in mase_c if v is not None]
    return {
        "n_windows": int(err.shape[0]),
        "horizon": int(err.shape[1]),
        "season": int(season),
        "mse": float((err ** 2).mean()),
        "mae": float(np.abs(err).mean()),
        "mase": float(np.mean(valid)) if valid else None,
        "per_channel": {
            name: {"mse": float(mse_c[i]), "mae": float(mae_c[i]), "mase": mase_c[i]}
            for i, name in enumerate(names)
        },
    }
