"""Linear probe: frozen backbone, cached features, regularised logistic-regression head."""
from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from .base import FitData, FitOutcome, Strategy, TrainSettings, TransferModel
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
    later, as for early stopping after a head warm-up). With an empty validation set, C is
    chosen by stratified cross-validation on the training set instead.

    Without `per_feature_scaling`, features are centred and divided by one global scale: a head
    that is fine-tuned further must not carry huge weights for near-constant features, which
    would turn small feature changes into exploding logits.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss

    history, best = [], None
    labels = np.arange(num_classes)
    cross_validate = len(val_y) == 0  # few-shot runs keep every labelled example for training
    if not cross_validate:
        scaler = _scaler(train_x, per_feature_scaling)
        tx, vx = scaler.transform(train_x), scaler.transform(val_x)
    for c in c_grid:
        if cross_validate:
            proba, train_acc = _cross_validated_proba(train_x, train_y, c, num_classes, seed, per_feature_scaling)
            val_y_used = train_y
        else:
            clf = LogisticRegression(C=c, max_iter=2000, random_state=seed).fit(tx, train_y)
            proba = _full_proba(clf, vx, num_classes)
            train_acc = float((clf.predict(tx) == train_y).mean())
            val_y_used = val_y
        proba /= proba.sum(1, keepdims=True)  # float32 features leave sums a hair off 1
        row = {
            "C": c,
            "train_accuracy": train_acc,
            "val_accuracy": float((proba.argmax(1) == val_y_used).mean()),
            "val_loss": float(log_loss(val_y_used, proba, labels=labels)),
        }
        if cross_validate:
            row["validation"] = "cross-validation on train"
        history.append(row)
        if best is None or row["val_loss"] < best["val_loss"]:
            best = row
    all_x = np.concatenate([train_x, val_x]) if refit_on_val else train_x
    all_y = np.concatenate([train_y, val_y]) if refit_on_val else train_y
    scaler = _scaler(all_x, per_feature_scaling)
    clf = LogisticRegression(C=best["C"], max_iter=2000, random_state=seed).fit(scaler.transform(all_x), all_y)
    return _fold_into_linear(clf, scaler, num_classes), history, float(best["C"])


def _cross_validated_proba(x: np.ndarray, y: np.ndarray, c: float, num_classes: int, seed: int,
                           per_feature: bool) -> tuple[np.ndarray, float]:
    """Out-of-fold probabilities (stratified, up to 5 folds) and mean training accuracy, for data
    too small to hold out a validation split. With a single example per class, leave-one-out
    is impossible, so the training fit itself is scored (flagged by train == val accuracy)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    folds = min(5, int(np.bincount(y).min(initial=0)) if len(y) else 0)
    proba = np.zeros((len(x), num_classes))
    if folds < 2:
        scaler = _scaler(x, per_feature)
        clf = LogisticRegression(C=c, max_iter=2000, random_state=seed).fit(scaler.transform(x), y)
        proba = _full_proba(clf, scaler.transform(x), num_classes)
        return proba, float((proba.argmax(1) == y).mean())
    train_acc = []
    for tr, te in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
        scaler = _scaler(x[tr], per_feature)
        clf = LogisticRegression(C=c, max_iter=2000, random_state=seed).fit(scaler.transform(x[tr]), y[tr])
        proba[te] = _full_proba(clf, scaler.transform(x[te]), num_classes)
        train_acc.append(float((clf.predict(scaler.transform(x[tr])) == y[tr]).mean()))
    return proba, float(np.mean(train_acc))


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
                  num_workers=settings.num_workers, progress=settings.progress, collate_fn=data.collate_fn)
    train_x, train_y = extract_features(model.backbone, data.train_plain, description="train features", **common)
    val_x, val_y = extract_features(model.backbone, data.val, description="val features", **common)
    extracted = time.perf_counter()
    head, history, c = fit_logistic_head(
        train_x, train_y, val_x, val_y, data.num_classes, settings.seed,
        refit_on_val=not for_fine_tuning, per_feature_scaling=not for_fine_tuning)
    model.head.load_state_dict(head.state_dict())
    timings = {"feature extraction": extracted - start, "head fit": time.perf_counter() - extracted}
    return history, c, timings


#: Ridge strengths tried for regression heads, relative to the mean feature variance.
RIDGE_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)


@torch.inference_mode()
def _moments(model: TransferModel, data: FitData, dataset, settings: TrainSettings) -> dict[str, np.ndarray]:
    """Sums and cross-products of (features, targets) rows over `dataset`, in float64: enough to
    solve and score any ridge head without keeping the features in memory."""
    from tqdm.auto import tqdm

    from .features import to_device

    device = next(model.parameters()).device
    m: dict[str, np.ndarray] = {}
    loader = data.loader(dataset, max(settings.batch_size, 256), num_workers=settings.num_workers)
    for x, y in tqdm(loader, desc="features", disable=not settings.progress, leave=False):
        f, t = model.probe_pairs(to_device(x, device), y.to(device))
        f, t = f.double().cpu().numpy(), t.double().cpu().numpy()
        for key, value in (("n", np.array(len(f))), ("sx", f.sum(0)), ("sy", t.sum(0)), ("xx", f.T @ f),
                           ("xy", f.T @ t), ("yy", np.array((t ** 2).sum()))):
            m[key] = m[key] + value if key in m else value
    return m


def _linear_of(head: nn.Module) -> nn.Linear:
    return head if isinstance(head, nn.Linear) else head.linear


def fit_ridge_head(model: TransferModel, data: FitData, settings: TrainSettings,
                   grid: tuple[float, ...] = RIDGE_GRID) -> tuple[list[dict], float, dict[str, float]]:
    """Closed-form ridge regression of the head's linear layer on frozen features, the strength
    chosen by validation MSE (the first grid value when there is no validation data)."""
    start = time.perf_counter()
    model.eval()
    train = _moments(model, data, data.train_plain, settings)
    val = _moments(model, data, data.val, settings) if len(data.val) else None
    extracted = time.perf_counter()
    n = float(train["n"])
    mx, my = train["sx"] / n, train["sy"] / n
    sxx = train["xx"] - n * np.outer(mx, mx)
    sxy = train["xy"] - n * np.outer(mx, my)
    scale = float(np.trace(sxx)) / len(sxx) or 1.0
    history, best = [], None
    for lam in grid if val is not None else grid[:1]:
        w = np.linalg.solve(sxx + lam * scale * np.eye(len(sxx)), sxy)  # (F, H)
        b = my - mx @ w
        row = {"lambda": lam}
        if val is not None:
            nv = float(val["n"]) * w.shape[1]
            sse = (np.einsum("fh,fg,gh->", w, val["xx"], w) + 2 * b @ (w.T @ val["sx"]) + val["n"] * b @ b
                   - 2 * np.einsum("fh,fh->", w, val["xy"]) - 2 * b @ val["sy"] + val["yy"])
            row["val_loss"] = float(sse / nv)
        history.append(row)
        if best is None or row.get("val_loss", 0.0) < best[0].get("val_loss", 0.0):
            best = (row, w, b)
    row, w, b = best
    layer = _linear_of(model.head)
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(w.T, dtype=layer.weight.dtype))
        layer.bias.copy_(torch.as_tensor(b, dtype=layer.bias.dtype))
    timings = {"feature extraction": extracted - start, "head fit": time.perf_counter() - extracted}
    return history, float(row["lambda"]), timings


class LinearProbe(Strategy):
    """Frozen backbone; features extracted once; a logistic-regression head with C tuned on
    validation (classification) or a closed-form ridge head (regression, e.g. forecasting)."""

    name = "linear-probe"

    def plan(self, data: FitData, settings: TrainSettings) -> list[tuple[str, str]]:
        return [super().plan(data, settings)[0],
                ("epochs: none", "the frozen backbone's features are extracted once and only a linear head is fit")]

    def fit(self, model: TransferModel, data: FitData, settings: TrainSettings) -> FitOutcome:
        set_trainable(model.backbone.parameters(), False)
        if data.objective == "regression":
            history, lam, timings = fit_ridge_head(model, data, settings)
            return FitOutcome(history=history, settings={"ridge_lambda": lam, "ridge_grid": list(RIDGE_GRID)},
                              timings=timings, notes=[f"only the output layer was refit (ridge, λ={lam:g} × mean "
                                                      "feature variance, chosen on validation MSE)"])
        history, c, timings = probe(model, data, settings)
        return FitOutcome(
            history=history,
            settings={"C": c, "C_grid": list(C_GRID), "features_averaged_over_flip": settings.tta},
            timings=timings,
        )
