"""Linear probe: frozen backbone, cached features, regularised logistic-regression head."""
from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from .base import FitData, FitOutcome, Strategy, TrainSettings, TransferModel, register_strategy
from .features import extract_features
from .freezing import set_trainable

#: Inverse regularisation strengths tried on standardised features; chosen on validation log-loss.
C_GRID = (0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)


def fit_logistic_head(
    train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray,
    num_classes: int, seed: int = 0, c_grid: tuple[float, ...] = C_GRID, refit_on_val: bool = True,
    per_feature_scaling: bool = True,
) -> tuple[nn.Linear, list[dict], float]:
    """A linear layer equal to StandardScaler + LogisticRegression, C picked on validation.

    The scaler is folded into the weights (w/σ, b - w·μ/σ), so the head is one `nn.Linear` that
    saves as safetensors and exports to ONNX like any fine-tuned head. After choosing C the model
    is refit on train + validation when `refit_on_val` (not when validation is still needed
    later, as for early stopping after a head warm-up).

    Without `per_feature_scaling`, features are centred and divided by one global scale: a head
    that is fine-tuned further must not carry huge weights for near-constant features, which
    would turn small feature changes into exploding logits.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss

    scaler = _scaler(train_x, per_feature_scaling)
    tx, vx = scaler.transform(train_x), scaler.transform(val_x)
    history, best = [], None
    labels = np.arange(num_classes)
    for c in c_grid:
        clf = LogisticRegression(C=c, max_iter=2000, random_state=seed).fit(tx, train_y)
        proba = _full_proba(clf, vx, num_classes)
        proba /= proba.sum(1, keepdims=True)  # float32 features leave sums a hair off 1
        row = {
            "C": c,
            "train_accuracy": float((clf.predict(tx) == train_y).mean()),
            "val_accuracy": float((proba.argmax(1) == val_y).mean()),
            "val_loss": float(log_loss(val_y, proba, labels=labels)),
        }
        history.append(row)
        if best is None or row["val_loss"] < best["val_loss"]:
            best = row
    all_x = np.concatenate([train_x, val_x]) if refit_on_val else train_x
    all_y = np.concatenate([train_y, val_y]) if refit_on_val else train_y
    scaler = _scaler(all_x, per_feature_scaling)
    clf = LogisticRegression(C=best["C"], max_iter=2000, random_state=seed).fit(scaler.transform(all_x), all_y)
    return _fold_into_linear(clf, scaler, num_classes), history, float(best["C"])


def _scaler(x: np.ndarray, per_feature: bool):
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x)
    if not per_feature:
        scaler.scale_ = np.full_like(scaler.scale_, float(np.sqrt(np.mean(scaler.var_))) or 1.0)
    return scaler


def _full_proba(clf, x: np.ndarray, num_classes: int) -> np.ndarray:
    """Probabilities over all classes, also when a class was missing from the training labels."""
    proba = np.zeros((len(x), num_classes))
    proba[:, clf.classes_] = clf.predict_proba(x)
    return proba


def _fold_into_linear(clf, scaler, num_classes: int) -> nn.Linear:
    coef = clf.coef_ / scaler.scale_
    intercept = clf.intercept_ - coef @ scaler.mean_
    if len(clf.classes_) == 2:  # binary: sklearn keeps one row, the logit of the second class
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.concatenate([[0.0], intercept])
    weight = np.zeros((num_classes, coef.shape[1]))
    bias = np.full(num_classes, -1e4)  # a class absent from training can never win
    weight[clf.classes_], bias[clf.classes_] = coef, intercept
    layer = nn.Linear(coef.shape[1], num_classes)
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(weight, dtype=torch.float32))
        layer.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))
    return layer


def probe(
    model: TransferModel, data: FitData, settings: TrainSettings, for_fine_tuning: bool = False
) -> tuple[list[dict], float, dict[str, float]]:
    """Fit `model.head` as a linear probe on frozen features; returns history, chosen C and timings.

    `for_fine_tuning` keeps validation out of the fit (it is needed for early stopping) and uses
    one global feature scale (see `fit_logistic_head`).
    """
    start = time.perf_counter()
    common = dict(batch_size=max(settings.batch_size, 64), hflip=settings.tta,
                  num_workers=settings.num_workers, progress=settings.progress)
    train_x, train_y = extract_features(model.backbone, data.train_plain, description="train features", **common)
    val_x, val_y = extract_features(model.backbone, data.val, description="val features", **common)
    extracted = time.perf_counter()
    head, history, c = fit_logistic_head(
        train_x, train_y, val_x, val_y, data.num_classes, settings.seed,
        refit_on_val=not for_fine_tuning, per_feature_scaling=not for_fine_tuning)
    model.head.load_state_dict(head.state_dict())
    timings = {"feature extraction": extracted - start, "head fit": time.perf_counter() - extracted}
    return history, c, timings


@register_strategy("linear-probe", "frozen backbone, features cached once, logistic-regression head (C tuned)")
class LinearProbe(Strategy):
    """Frozen backbone; features extracted once; scikit-learn logistic regression head with C tuned on validation."""

    def fit(self, model: TransferModel, data: FitData, settings: TrainSettings) -> FitOutcome:
        set_trainable(model.backbone.parameters(), False)
        history, c, timings = probe(model, data, settings)
        return FitOutcome(
            history=history,
            settings={"C": c, "C_grid": list(C_GRID), "features_averaged_over_flip": settings.tta},
            timings=timings,
        )
