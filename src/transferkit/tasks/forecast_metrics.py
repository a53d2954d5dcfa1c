"""Forecast metrics, returned as plain JSON-ready dicts.

MSE and MAE are computed on the standardised scale (train statistics), the convention of the
long-horizon literature, so figures compare with published ETT tables. MASE divides the MAE by
the in-sample MAE of the seasonal-naive forecast on the training series, so it is scale-free and
below 1 means better than repeating the last season (one step ahead, in sample).
"""
from __future__ import annotations

import math
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
    training series has no seasonal-naive error (constant) gets MASE None, and `undefined` says
    why for each metric left undefined (metric → reason), so that no figure is shown without it.
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
    flat = [names[i] for i, v in enumerate(mase_c) if v is None]
    undefined = {}
    if flat:
        undefined["mase"] = (f"{_listed(flat)} never {'changes' if len(flat) == 1 else 'change'} from one season to "
                             f"the next in the training data, so the seasonal-naive error MASE divides by is zero"
                             + (f" ({'it is' if len(flat) == 1 else 'they are'} left out of the mean MASE)"
                                if valid else ""))
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
        **({"undefined": undefined} if undefined else {}),
    }


def _listed(names: Sequence[str]) -> str:
    """'a', 'a' and 'b', 'a', 'b' and 'c' (quoted)."""
    quoted = [repr(n) for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


#: Inside the noise band, a band narrower than this share of the reference's MSE shows the
#: difference is small ("negligible"); a wider one cannot tell ("inconclusive").
PRACTICAL_SHARE = 0.02
#: Smallest noise band, in MSE on the standardised scale (where forecasting the mean scores 1):
#: identical forecasts (a constant series) would otherwise make float rounding a verdict.
MIN_NOISE = 1e-6


def window_errors(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Mean squared error of each forecast window: (N, H, C) pairs → (N,)."""
    err = np.asarray(pred, dtype=np.float64) - np.asarray(true, dtype=np.float64)
    return (err ** 2).reshape(len(err), -1).mean(axis=1)


def paired_gain(model: np.ndarray, other: np.ndarray, horizon: int) -> dict:
    """How much lower the model's MSE is than `other`'s on the same windows, and the noise band.

    `model` and `other` are per-window MSEs (`window_errors`) of consecutive stride-1 windows.
    Forecasts of neighbouring windows share targets, so their errors are not independent
    (h-step forecast errors are correlated up to lag h - 1; Diebold & Mariano 1995): the band is
    two standard errors of the mean difference over blocks of `horizon` consecutive windows,
    and at least `MIN_NOISE`. Returns gain (> 0: the model is better), noise, blocks, n (windows).
    """
    diff = np.asarray(other, dtype=np.float64) - np.asarray(model, dtype=np.float64)
    blocks = len(diff) // max(1, horizon)
    if blocks >= 2:
        means = diff[: blocks * horizon].reshape(blocks, horizon).mean(axis=1)
        noise = max(MIN_NOISE, 2 * float(means.std(ddof=1)) / math.sqrt(blocks))
    else:
        noise = math.inf  # one block: no estimate of the spread
    out = {"gain": float(diff.mean()) if len(diff) else 0.0, "noise": noise, "blocks": blocks, "n": int(len(diff))}
    if blocks < 2:
        out["undefined"] = {"noise": f"{len(diff):,} test windows hold {blocks} block of {horizon} non-overlapping "
                                     "forecast targets, and the spread needs at least 2: use a longer test period"}
    return out


def rows_to_resolve(noise: float, blocks: int, horizon: int, difference: float) -> int | None:
    """Test rows whose noise band would shrink to `difference` (the band falls as 1/√blocks)."""
    if not (math.isfinite(noise) and blocks >= 2 and difference > 0):
        return None
    return int(math.ceil(blocks * (noise / difference) ** 2)) * horizon


def compare_with_baselines(model: np.ndarray, baselines: dict[str, np.ndarray], horizon: int) -> dict:
    """The model against the best baseline (lowest MSE) on the same test windows: no transfer
    is judged here, only whether a baseline beats the model.

    `model` and each baseline are per-window MSEs. verdict: "model" (the model beats every
    baseline beyond the noise band), "baseline" (a baseline beats the model), "tie" (inside it).
    """
    if not baselines:
        return {}
    best = min(baselines, key=lambda name: float(np.mean(baselines[name])))
    m, b = float(np.mean(model)), float(np.mean(baselines[best]))
    out = {"metric": "mse", "model": m, "best_baseline": best, "baseline": b,
           **paired_gain(model, baselines[best], horizon)}
    if out["gain"] > out["noise"]:
        out["verdict"] = "model"
        out["headline"] = (f"The model beats every baseline: test MSE {m:.4f} against {b:.4f} for the best "
                           f"baseline ({best})")
    elif out["gain"] < -out["noise"]:
        out["verdict"] = "baseline"
        out["headline"] = (f"A baseline beats the model: the best baseline ({best}) has test MSE {b:.4f} "
                           f"against {m:.4f}")
    elif "undefined" in out:  # no band at all: nothing is "inside" it
        out["verdict"] = "tie"
        out["headline"] = (f"Cannot tell the model from the best baseline ({best}): test MSE {m:.4f} against "
                           f"{b:.4f}, and the test period is too short to estimate the noise")
    else:
        out["verdict"] = "tie"
        out["headline"] = (f"No measurable difference between the model and the best baseline ({best}): test MSE "
                           f"{m:.4f} against {b:.4f}, inside the noise band")
    return out


def transfer_check(model: np.ndarray, control: np.ndarray, horizon: int) -> dict:
    """A transferred forecaster against its from-scratch control (same architecture, same windows),
    in the shape of `transferkit.diagnostics.transfer_verdict` (metric "mse", lower is better).

    Beyond the noise band (`paired_gain`) the verdict is "positive" or "negative"; inside it,
    "negligible" when the band is narrower than `PRACTICAL_SHARE` of the control's MSE, else
    "inconclusive" (the test period is too short to tell).
    """
    m, c = float(np.mean(model)), float(np.mean(control))
    paired = paired_gain(model, control, horizon)
    gain, noise = paired["gain"], paired["noise"]
    if gain > noise:
        verdict = "positive"
    elif gain < -noise:
        verdict = "negative"
    else:
        verdict = "negligible" if noise <= max(PRACTICAL_SHARE * c, MIN_NOISE) else "inconclusive"
    return {"metric": "mse", "model": m, "baseline": c, "gain": gain, "noise": noise, "n": paired["n"],
            "blocks": paired["blocks"], "verdict": verdict, "needed_n": None, "unit": "test windows",
            **({"undefined": paired["undefined"]} if "undefined" in paired else {})}
