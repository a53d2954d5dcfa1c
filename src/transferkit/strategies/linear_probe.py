"""Linear probe: frozen backbone, cached features, regularised logistic-regression head."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..errors import TransferkitError
from ..models import TransferModel
from .base import ExtendData, FitData, FitOutcome, Strategy, TrainSettings
from ..models.features import extract_features
from .freezing import set_trainable

#: Inverse regularisation strengths tried on standardised features; chosen on validation log-loss.
C_GRID = (0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
#: Below this many labelled examples (all splits together), holding out validation and test splits
#: costs the probe too much data (30 flowers per class: 0.53 trained on 70 % vs 0.59-0.61 on all),
#: so a carved split is replaced by cross-validation and the head is fitted on everything.
CROSS_VALIDATE_BELOW = 400
CV_FOLDS = 5


def fit_logistic_head(
    train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray,
    num_classes: int, seed: int = 0, c_grid: tuple[float, ...] = C_GRID, refit_on_val: bool = True,
    per_feature_scaling: bool = True, folds: int = 5,
) -> tuple[nn.Linear, list[dict], float]:
    """A linear layer equal to StandardScaler + LogisticRegression, C picked on validation
    (see `_logistic_sweep`); returns (head, history of the C sweep, chosen C)."""
    return _logistic_sweep(train_x, train_y, val_x, val_y, num_classes, seed, c_grid, refit_on_val,
                           per_feature_scaling, folds)[:3]


def _logistic_sweep(*args, **kwargs) -> tuple[nn.Linear, list[dict], float, np.ndarray]:
    """`_logistic_sweep_threads` on one thread: these fits are many and small, and with several
    BLAS/OpenMP threads on a busy machine they spin-wait (flowers5, 150 images, 5-fold sweep:
    56 s of CPU on 2 threads against 2.4 s on one)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return _logistic_sweep_threads(*args, **kwargs)


def _logistic_sweep_threads(
    train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray,
    num_classes: int, seed: int = 0, c_grid: tuple[float, ...] = C_GRID, refit_on_val: bool = True,
    per_feature_scaling: bool = True, folds: int = 5,
) -> tuple[nn.Linear, list[dict], float, np.ndarray]:
    """A linear layer equal to StandardScaler + LogisticRegression, C picked on validation, the
    sweep's history, the chosen C and the chosen C's validation (or out-of-fold) probabilities.

    The scaler is folded into the weights (w/σ, b - w·μ/σ), so the head is one `nn.Linear` that
    saves as safetensors and exports to ONNX like any fine-tuned head. After choosing C the model
    is refit on train + validation when `refit_on_val` (not when validation is still needed
    later, as for early stopping after a head warm-up). With an empty validation set, C is
    chosen by stratified `folds`-fold cross-validation on the training set instead. History
    rows hold every C's validation accuracy and log-loss; `chosen` is 1 on the row of the C used
    (lowest log-loss: the criterion, so the report marks the same C the model uses).

    Without `per_feature_scaling`, features are centred and divided by one global scale: a head
    that is fine-tuned further must not carry huge weights for near-constant features, which
    would turn small feature changes into exploding logits.
    """
    from sklearn.metrics import log_loss

    history, best = [], None
    labels = np.arange(num_classes)
    cross_validate = len(val_y) == 0  # few-shot runs keep every labelled example for training
    if not cross_validate:
        scaler = _scaler(train_x, per_feature_scaling)
        tx, vx = scaler.transform(train_x), scaler.transform(val_x)
    for c in c_grid:
        if cross_validate:
            proba, train_acc = _cross_validated_proba(train_x, train_y, c, num_classes, seed, per_feature_scaling,
                                                      folds)
            val_y_used = train_y
        else:
            clf = _logistic(tx, train_y, c, seed)
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
            best, best_proba = row, proba
    for row in history:
        row["chosen"] = int(row is best)
    all_x = np.concatenate([train_x, val_x]) if refit_on_val else train_x
    all_y = np.concatenate([train_y, val_y]) if refit_on_val else train_y
    scaler = _scaler(all_x, per_feature_scaling)
    clf = _logistic(scaler.transform(all_x), all_y, best["C"], seed)
    return _fold_into_linear(clf, scaler, num_classes), history, float(best["C"]), best_proba


def _cross_validated_proba(x: np.ndarray, y: np.ndarray, c: float, num_classes: int, seed: int,
                           per_feature: bool, max_folds: int = 5) -> tuple[np.ndarray, float]:
    """Out-of-fold probabilities (stratified, up to `max_folds` folds) and mean training accuracy, for data
    too small to hold out a validation split. With a single example per class, leave-one-out
    is impossible, so the training fit itself is scored (flagged by train == val accuracy)."""
    from sklearn.model_selection import StratifiedKFold

    folds = min(max_folds, _smallest_class(y))
    proba = np.zeros((len(x), num_classes))
    if folds < 2:
        scaler = _scaler(x, per_feature)
        clf = _logistic(scaler.transform(x), y, c, seed)
        proba = _full_proba(clf, scaler.transform(x), num_classes)
        return proba, float((proba.argmax(1) == y).mean())
    train_acc = []
    for tr, te in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
        scaler = _scaler(x[tr], per_feature)
        clf = _logistic(scaler.transform(x[tr]), y[tr], c, seed)
        proba[te] = _full_proba(clf, scaler.transform(x[te]), num_classes)
        train_acc.append(float((clf.predict(scaler.transform(x[tr])) == y[tr]).mean()))
    return proba, float(np.mean(train_acc))


def _logistic(x: np.ndarray, y: np.ndarray, c: float, seed: int, sample_weight: np.ndarray | None = None):
    """LogisticRegression(C=c) fitted on (x, y). With fewer examples than features it is solved in
    the span of the examples (x = U S Vᵀ: fit on x V, coefficients mapped back by Vᵀ): exact for an
    L2 penalty, whose optimum lies in that span, and many times faster on small data."""
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=c, max_iter=2000, random_state=seed)
    if len(x) >= x.shape[1]:
        return clf.fit(x, y, sample_weight=sample_weight)
    _, _, vt = np.linalg.svd(np.asarray(x, np.float64), full_matrices=False)
    clf.fit(x @ vt.T, y, sample_weight=sample_weight)
    clf.coef_ = clf.coef_ @ vt
    clf.n_features_in_ = x.shape[1]
    return clf


def _smallest_class(y: np.ndarray) -> int:
    """Examples in the rarest class present in `y` (0 for no examples)."""
    counts = np.bincount(y) if len(y) else np.zeros(0, int)
    return int(counts[counts > 0].min()) if (counts > 0).any() else 0


def cross_validated_head(
    x: np.ndarray, y: np.ndarray, num_classes: int, seed: int = 0, folds: int = 5, c_grid: tuple[float, ...] = C_GRID,
) -> tuple[nn.Linear, list[dict], float, np.ndarray]:
    """A logistic head fitted on ALL of (x, y), C chosen by stratified `folds`-fold cross-validated
    log-loss, and the out-of-fold probabilities of that C: the estimate of how the head generalises.

    This is scikit-learn's refit practice for data too small to hold out: estimate by
    cross-validation, ship the model refit on everything. The estimate reuses the folds that chose
    C (one of a few values, chosen by log-loss rather than accuracy), so its optimism is small; on
    flowers5 (30 per class) nested cross-validation gave the same accuracy at five times the cost.
    Returns (head, history of the C sweep, chosen C, out-of-fold probabilities).
    """
    folds = min(folds, _smallest_class(y))
    if folds < 2:
        raise ValueError(f"cross-validation needs at least 2 examples per class; the smallest class has {folds}")
    head, history, c, oof = _logistic_sweep(x, y, x[:0], y[:0], num_classes, seed, c_grid, folds=folds)
    for row in history:
        row["validation"] = f"{folds}-fold cross-validation on all labelled data"
    return head, history, c, oof


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


def _train_val_features(model: TransferModel, data: FitData, settings: TrainSettings):
    """Features and labels of `data.train_plain` and `data.val` from the frozen backbone."""
    common = dict(batch_size=max(settings.batch_size, 64), hflip=settings.tta,
                  num_workers=settings.num_workers, progress=settings.progress, collate_fn=data.collate_fn)
    train_x, train_y = extract_features(model.backbone, data.train_plain, description="train features", **common)
    val_x, val_y = extract_features(model.backbone, data.val, description="val features", **common)
    return train_x, train_y, val_x, val_y


def probe(
    model: TransferModel, data: FitData, settings: TrainSettings, for_fine_tuning: bool = False
) -> tuple[list[dict], float, dict[str, float]]:
    """Fit `model.head` as a linear probe on frozen features; returns history, chosen C and timings.

    `for_fine_tuning` keeps validation out of the fit (it is needed for early stopping) and uses
    one global feature scale (see `fit_logistic_head`).
    """
    start = time.perf_counter()
    train_x, train_y, val_x, val_y = _train_val_features(model, data, settings)
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

    from ..models.features import to_device

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


@dataclass
class ProbeResult:
    """A fitted logistic probe: its C sweep, the C used, timings and what it tells about the data.

    `val_accuracy` is the held-out accuracy of the head fitted on train alone at the chosen C
    (None when cross-validated); `estimate` the cross-validated estimate (see FitOutcome);
    `forward_seconds` the measured time of one forward pass per image (for time estimates).
    """

    history: list[dict]
    c: float
    timings: dict[str, float]
    examples_fitted: int
    val_accuracy: float | None = None
    estimate: dict | None = None
    forward_seconds: float = 0.0
    #: the frozen features the probe was fitted on, (train_x, train_y, val_x, val_y): another head
    #: (e.g. `auto`'s prototype comparison) can be fitted on them without a second extraction
    features: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None

    @property
    def accuracy(self) -> float | None:
        """The probe's accuracy estimate: held-out validation, else cross-validated."""
        if self.estimate is not None:
            return float((self.estimate["proba"].argmax(1) == self.estimate["labels"]).mean())
        return self.val_accuracy

    def settings(self, tta: bool) -> dict:
        out = {"C": self.c, "C_grid": list(C_GRID),
               "C_chosen_by": "lowest " + ("cross-validated" if self.estimate else "validation") + " log-loss",
               "examples_fitted": self.examples_fitted, "features_averaged_over_flip": tta}
        if self.estimate is not None:
            out.update(estimate=self.estimate["method"], estimated_accuracy=self.accuracy)
        elif self.val_accuracy is not None:
            out["val_accuracy"] = self.val_accuracy
        return out


def fit_probe(model: TransferModel, data: FitData, settings: TrainSettings) -> ProbeResult:
    """Fit `model.head` as a logistic probe on frozen features extracted once.

    With `data.folds`, C and the accuracy estimate come from cross-validation and the head is
    fitted on every labelled example; otherwise C is chosen on validation log-loss and the head
    refit on train + validation.
    """
    set_trainable(model.backbone.parameters(), False)
    start = time.perf_counter()
    common = dict(batch_size=max(settings.batch_size, 64), hflip=settings.tta,
                  num_workers=settings.num_workers, progress=settings.progress, collate_fn=data.collate_fn)
    passes = ({}, {})  # per pass: items cached on disk and the forward time per item (measured or recorded)
    train_x, train_y = extract_features(model.backbone, data.train_plain, description="train features",
                                        stats=passes[0], **common)
    val_x, val_y = extract_features(model.backbone, data.val, description="val features", stats=passes[1], **common)
    extracted = time.perf_counter()
    # the faster of the two passes: the first one also pays warm-up and first decoding of each file
    flips = 2 if settings.tta and data.modality == "image" else 1
    per_image = [p["seconds_per_item"] / flips for p in passes if p["items"] and p["seconds_per_item"]]
    result = ProbeResult([], 0.0, {}, len(train_y) + len(val_y), forward_seconds=min(per_image, default=0.0),
                         features=(train_x, train_y, val_x, val_y))
    if data.folds:
        head, result.history, result.c, oof = cross_validated_head(train_x, train_y, data.num_classes, settings.seed,
                                                                   data.folds)
        result.estimate = {"method": f"{min(data.folds, _smallest_class(train_y))}-fold cross-validation",
                           "folds": data.folds, "proba": oof, "labels": train_y}
    else:
        head, result.history, result.c = fit_logistic_head(train_x, train_y, val_x, val_y, data.num_classes,
                                                           settings.seed)
        if len(val_y):
            result.val_accuracy = next(r["val_accuracy"] for r in result.history if r["chosen"])
    model.head.load_state_dict(head.state_dict())
    result.timings = {"feature extraction": extracted - start, "head fit": time.perf_counter() - extracted}
    return result


def fit_probe_heads(model: TransferModel, data: FitData, settings: TrainSettings) -> FitOutcome:
    """A logistic probe per head (`data.objectives`) on the same frozen features, extracted once:
    each head's C is chosen on its own validation log-loss, then it is refit on train + validation.
    The loss weights of the objectives do not enter: each head is fitted on its own.

    History: one row per C; the default head's columns are `val_accuracy`, `val_loss`, `chosen`
    (what the report plots), every other head's the same names suffixed `_<head>`, as
    `TransferModule` logs several heads.
    """
    set_trainable(model.backbone.parameters(), False)
    start = time.perf_counter()
    train_x, train_y, val_x, val_y = _train_val_features(model, data, settings)
    extracted = time.perf_counter()
    rows = [{"C": c} for c in C_GRID]
    chosen = {}
    for head in data.objectives:
        layer = _linear_of(model.heads[head])
        fitted, sweep, c = fit_logistic_head(train_x, train_y[head], val_x, val_y[head], layer.out_features,
                                             settings.seed)
        layer.load_state_dict(fitted.state_dict())
        suffix = "" if head == model.default_head else f"_{head}"
        for row, result in zip(rows, sweep):
            row.update({f"{key}{suffix}": result[key] for key in ("train_accuracy", "val_accuracy", "val_loss",
                                                                   "chosen")})
        best = next(r for r in sweep if r["chosen"])
        chosen[head] = {"C": c, "val_accuracy": best["val_accuracy"]}
    timings = {"feature extraction": extracted - start, "head fit": time.perf_counter() - extracted}
    settings_out = {"C_grid": list(C_GRID), "C_chosen_by": "lowest validation log-loss, per head", "heads": chosen,
                    "examples_fitted": len(train_x) + len(val_x), "features_averaged_over_flip": settings.tta}
    return FitOutcome(history=rows, settings=settings_out, timings=timings,
                      notes=[f"one logistic head per label column ({', '.join(chosen)}) on the same frozen features, "
                             "each with its own C; loss weights do not apply to a probe (each head is fitted alone)"])


def balanced_logistic_head(x: np.ndarray, y: np.ndarray, c: float, num_classes: int, seed: int = 0) -> nn.Linear:
    """A logistic head fitted at C=`c` on standardised `x`, every class weighted equally ("balanced"):
    the head an extension refits on the exemplar features plus the new examples'."""
    counts = np.bincount(y, minlength=num_classes)
    weight = len(y) / (num_classes * counts[y])
    scaler = _scaler(x, True)
    clf = _logistic(scaler.transform(x), y, c, seed, sample_weight=weight)
    return _fold_into_linear(clf, scaler, num_classes)


class LinearProbe(Strategy):
    """Frozen backbone; features extracted once; a logistic-regression head with C tuned on
    validation (classification) or a closed-form ridge head (regression, e.g. forecasting). On
    data too small to hold out (`FitData.folds`), C and the accuracy estimate come from
    cross-validation and the head is fitted on every labelled example."""

    cross_validates = True
    trains_backbone = False
    multi_head = True  # several heads: a probe per head on the same features (`fit_probe_heads`)
    feature_head = "logistic"
    head_selection = "C"
    searched_params = ()  # C is chosen on validation by the probe itself; no epochs, no learning rate

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
        if len(data.objectives) > 1:
            return fit_probe_heads(model, data, settings)
        result = fit_probe(model, data, settings)
        return FitOutcome(history=result.history, settings=result.settings(settings.tta), timings=result.timings,
                          estimate=result.estimate, features=result.features[:2])

    def refit_on_features(self, x, y, num_classes, settings, seed=0):
        """The balanced logistic head at the run's C (None for a run without one)."""
        if settings.get("C") is None:
            return None
        head = balanced_logistic_head(x, y, float(settings["C"]), num_classes, seed)

        def proba(z: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return torch.softmax(head(torch.as_tensor(z, dtype=torch.float32)), 1).numpy()
        return proba

    def extend(self, model: TransferModel, data: ExtendData, settings: TrainSettings) -> FitOutcome:
        """Refit the logistic head on the stored features of the memory's exemplars plus the new
        examples' features (the backbone is left as it is, so stored features are still exact), at
        the run's C (or one chosen by cross-validation when the run has none), every class weighted
        equally; naive (`data.replay` off): the grown head trained by gradient descent on the new
        examples only."""
        from threadpoolctl import threadpool_limits

        from .incremental import grow_linear, new_features, train_head

        start = time.perf_counter()
        x, y, vx, vy = new_features(model, data, settings)
        extracted = time.perf_counter()
        if data.replay and data.memory_features is None:
            raise TransferkitError("the run keeps no exemplar features, so its head cannot be refit without "
                                   "forgetting; re-run `transferkit fit` (default --memory 100), then extend.")
        c = data.options.get("C")
        if not data.replay:
            model.head = grow_linear(model.head, data.num_classes)
            history = train_head(model.head, x, y, vx, vy)
            how = "the grown head trained on the new examples only (naive)"
        else:
            mx, my = data.memory_features, data.labels[: data.memory_size]
            # the new data's validation split trains too, unless it calibrates the grown head afterwards
            held_out = data.calibrate or not len(vy)
            all_x = np.concatenate([mx, x] if held_out else [mx, x, vx])
            all_y = np.concatenate([my, y] if held_out else [my, y, vy])
            if c is None:  # a fine-tuned run's head was not a logistic probe: choose C as a probe does
                c = cross_validated_head(all_x, all_y, data.num_classes, settings.seed)[2]
            c = float(c)
            with threadpool_limits(1):
                model.head = balanced_logistic_head(all_x, all_y, c, data.num_classes, settings.seed)
            history = []
            how = (f"logistic head refit (C={c:g}, classes weighted equally) on the stored features of "
                   f"{data.memory_size} old examples and {len(all_y) - data.memory_size} new examples")
        return FitOutcome(history=history, settings={"extension": how, "C": c, "backbone_trained": False},
                          timings={"feature extraction": extracted - start, "head fit": time.perf_counter() - extracted},
                          notes=[how], features=(np.concatenate([x, vx]), np.concatenate([y, vy])))
