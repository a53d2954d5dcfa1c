"""Forecasting baselines every transferred model must beat: seasonal naive and DLinear.

Both work on windows `x` of shape (N, lookback, C) and forecast (N, horizon, C), treating every
channel as its own series with shared parameters (as PatchTST does). DLinear reads each window
relative to its last value (the normalisation of NLinear, from the same paper): standardising
with training statistics is not enough when the training data is a short stretch of history,
since a linear map with a bias then extrapolates the training level into every later window
(on ETTh1 OT with 10 % of the training year it scored MSE 6.3 against 0.07 for seasonal naive).
"""
from __future__ import annotations

from typing import Any, Literal, Sequence

import numpy as np
import torch
from torch import nn

from ..data.timeseries import WindowDataset

ArrayLike = np.ndarray | torch.Tensor
#: How DLinear reads a window: relative to its last value (NLinear), to its mean, or as given.
Normalize = Literal["last", "mean"] | None
NORMALIZATIONS = ("last", "mean", None)


def window_level(x: np.ndarray | torch.Tensor, normalize: Normalize) -> np.ndarray | torch.Tensor | float:
    """The level subtracted from a window (B, L, ...) before the linear map and added back after."""
    if normalize == "last":
        return x[:, -1:]
    if normalize == "mean":
        return x.mean(1, keepdims=True) if isinstance(x, np.ndarray) else x.mean(1, keepdim=True)
    return 0.0


def _as_numpy(x: ArrayLike) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


class SeasonalNaive:
    """Repeats the last observed season: ŷ[t+h] = x[t+h-s·k] for the smallest k ≥ 1.

    `season` = 24 for hourly data (see `transferkit.data.timeseries.seasonal_period`); 1 is the
    naive last-value forecast.
    """

    def __init__(self, horizon: int, season: int = 1) -> None:
        self.horizon, self.season = int(horizon), max(1, int(season))

    def fit(self, train: WindowDataset | None = None, val: WindowDataset | None = None) -> "SeasonalNaive":
        return self  # nothing to learn

    def predict(self, x: ArrayLike) -> np.ndarray:
        x = _as_numpy(x)
        lookback = x.shape[1]
        if self.season > lookback:
            raise ValueError(f"season {self.season} is longer than the lookback {lookback}")
        idx = lookback - self.season + np.arange(self.horizon) % self.season
        return x[:, idx, :].astype(np.float32)


def moving_average_matrix(length: int, kernel_size: int = 25) -> np.ndarray:
    """A (length × length) with trend = A @ x: DLinear's moving average, whose input is padded by
    repeating the first and last value (kernel_size - 1) // 2 times on each side."""
    pad = (kernel_size - 1) // 2
    a = np.zeros((length, length))
    for t in range(length):
        for j in range(t - pad, t - pad + kernel_size):
            a[t, min(max(j, 0), length - 1)] += 1.0 / kernel_size
    return a


class DLinearModule(nn.Module):
    """DLinear (Zeng et al., AAAI 2023), shared across channels: moving-average decomposition into
    trend + seasonal, one `nn.Linear(lookback, horizon)` on each, summed; with `normalize`, on the
    window minus its level (see `window_level`). (B, L, C) → (B, H, C)."""

    def __init__(self, lookback: int, horizon: int, kernel_size: int = 25, normalize: Normalize = "last") -> None:
        super().__init__()
        self.kernel_size, self.normalize = kernel_size, normalize
        self.linear_seasonal = nn.Linear(lookback, horizon)
        self.linear_trend = nn.Linear(lookback, horizon)

    def decompose(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, L, C) → (seasonal, trend), as the reference `series_decomp`."""
        pad = (self.kernel_size - 1) // 2
        padded = torch.cat([x[:, :1].expand(-1, pad, -1), x, x[:, -1:].expand(-1, pad, -1)], dim=1)
        trend = nn.functional.avg_pool1d(padded.transpose(1, 2), self.kernel_size, stride=1).transpose(1, 2)
        return x - trend, trend

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        level = window_level(x, self.normalize)
        seasonal, trend = self.decompose(x - level)
        out = self.linear_seasonal(seasonal.transpose(1, 2)) + self.linear_trend(trend.transpose(1, 2))
        return out.transpose(1, 2) + level


class DLinear:
    """DLinear fitted in closed form: ridge least squares on the training windows, λ chosen by
    validation MSE.

    Both branches are linear in the input (seasonal = (I - A) x, trend = A x), so the model is one
    linear map whose weights are the two branches' `nn.Linear` weights; minimising the MSE plus
    λ(‖W_seasonal‖² + ‖W_trend‖²) has an exact solution, which replaces the reference's Adam
    training (same architecture and objective up to the ridge term, deterministic, seconds on a
    CPU). Biases are not penalised. `to_module()` returns the equivalent `DLinearModule`.

    `normalize="last"` (default) fits and forecasts every window relative to its last value, so
    a level the training windows never saw does not leak through the bias, and a large λ shrinks
    the forecast towards the last value (the naive forecast) rather than towards the training
    mean: with little training data the validation choice of λ then cannot do much worse than
    naive. The λ grid reaches 1000× the mean Gram diagonal for that reason.
    """

    def __init__(self, lookback: int, horizon: int, kernel_size: int = 25,
                 lambdas: Sequence[float] = tuple(10.0 ** np.arange(-6, 4)), normalize: Normalize = "last") -> None:
        self.lookback, self.horizon, self.kernel_size = int(lookback), int(horizon), int(kernel_size)
        if normalize not in NORMALIZATIONS:
            raise ValueError(f"normalize={normalize!r}; use one of {NORMALIZATIONS}")
        self.normalize = normalize
        self.lambdas = tuple(float(v) for v in lambdas)  # relative to the mean diagonal of the Gram matrix

    def _basis(self) -> np.ndarray:
        """M (L × 2L) with features z = Mᵀ x = [seasonal; trend]."""
        a = moving_average_matrix(self.lookback, self.kernel_size)
        return np.concatenate([(np.eye(self.lookback) - a).T, a.T], axis=1)

    def fit(self, train: WindowDataset, val: WindowDataset | None = None) -> "DLinear":
        """Fit on every (window, channel) pair of `train`; choose λ on `val` (else the smallest)."""
        x_mean, y_mean, sxx, sxy, n = _moments(train, self.normalize)
        m = self._basis()
        gram, cross = m.T @ sxx @ m, m.T @ sxy
        scale = float(np.trace(gram)) / gram.shape[0]
        if not scale > 0:  # every training window is flat (a constant series): λ on the identity then
            scale = 1.0
        self.history_: list[dict[str, float]] = []
        best = None
        for lam in self.lambdas if val is not None else self.lambdas[:1]:
            w = np.linalg.solve(gram + lam * scale * np.eye(len(gram)), cross)  # (2L, H)
            effective = m @ w  # (L, H): the whole model as one map
            bias = y_mean - x_mean @ effective
            row = {"lambda": lam, "val_mse": float("nan")}
            if val is not None:
                row["val_mse"] = _mse(val, effective, bias, self.normalize)
            self.history_.append(row)
            if best is None or row["val_mse"] < best[0]:
                best = (row["val_mse"], lam, w, bias)
        _, self.lambda_, w, bias = best
        self.weight_seasonal_ = w[:self.lookback].T.astype(np.float32)  # (H, L), like nn.Linear.weight
        self.weight_trend_ = w[self.lookback:].T.astype(np.float32)
        self.bias_ = bias.astype(np.float32)
        self.effective_ = (m @ w).astype(np.float64)
        self.n_train_ = n
        return self

    def predict(self, x: ArrayLike) -> np.ndarray:
        """x (N, lookback, C) → (N, horizon, C)."""
        x = _as_numpy(x).astype(np.float64)
        level = window_level(x, self.normalize)
        out = np.einsum("nlc,lh->nhc", x - level, self.effective_) + self.bias_[None, :, None] + level
        return out.astype(np.float32)

    def to_module(self) -> DLinearModule:
        """The fitted model as the reference architecture (two nn.Linear branches)."""
        module = DLinearModule(self.lookback, self.horizon, self.kernel_size, self.normalize)
        with torch.no_grad():
            module.linear_seasonal.weight.copy_(torch.from_numpy(self.weight_seasonal_))
            module.linear_seasonal.bias.copy_(torch.from_numpy(self.bias_))
            module.linear_trend.weight.copy_(torch.from_numpy(self.weight_trend_))
            module.linear_trend.bias.zero_()
        return module.eval()

    def settings(self) -> dict[str, Any]:
        return {"lookback": self.lookback, "horizon": self.horizon, "kernel_size": self.kernel_size,
                "normalize": self.normalize,
                "lambda": getattr(self, "lambda_", None), "fit": "closed-form ridge, lambda by validation MSE"}


def _windows(x_all, y_all, c: int, normalize: Normalize) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and targets of channel `c`, both relative to each input window's level."""
    x = x_all[:, :, c].double().numpy()
    y = y_all[:, :, c].double().numpy()
    level = window_level(x, normalize)
    return x - level, y - level


def _moments(data: WindowDataset, normalize: Normalize = None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Means and centred cross-products of inputs and targets over all (window, channel) rows,
    accumulated one channel at a time so the windows are never all in memory in float64."""
    x_all, y_all = data.arrays()
    if len(x_all) == 0:
        raise ValueError("no training windows: the training range is shorter than lookback + horizon")
    lookback, horizon = x_all.shape[1], y_all.shape[1]
    sx, sy = np.zeros(lookback), np.zeros(horizon)
    sxx, sxy = np.zeros((lookback, lookback)), np.zeros((lookback, horizon))
    n = 0
    for c in range(x_all.shape[2]):
        x, y = _windows(x_all, y_all, c, normalize)
        sx += x.sum(0)
        sy += y.sum(0)
        sxx += x.T @ x
        sxy += x.T @ y
        n += len(x)
    x_mean, y_mean = sx / n, sy / n
    return x_mean, y_mean, sxx - n * np.outer(x_mean, x_mean), sxy - n * np.outer(x_mean, y_mean), n


def _mse(data: WindowDataset, effective: np.ndarray, bias: np.ndarray, normalize: Normalize = None) -> float:
    x_all, y_all = data.arrays()
    total, count = 0.0, 0
    for c in range(x_all.shape[2]):
        x, y = _windows(x_all, y_all, c, normalize)
        err = x @ effective + bias - y
        total += float((err ** 2).sum())
        count += err.size
    return total / max(1, count)


def fit_baselines(lookback: int, horizon: int, season: int, train: WindowDataset,
                  val: WindowDataset | None = None) -> dict[str, SeasonalNaive | DLinear]:
    """The baselines every forecaster is compared with, fitted on its training windows: seasonal
    naive (or naive when there is no season), naive (last value) beside a seasonal one, DLinear."""
    baselines: dict[str, SeasonalNaive | DLinear] = {}
    if season > 1:
        baselines[f"seasonal naive ({season})"] = SeasonalNaive(horizon, season)
    baselines["naive (last value)"] = SeasonalNaive(horizon, 1)
    baselines["DLinear"] = DLinear(lookback, horizon).fit(train, val)
    return baselines
