"""`prototypes`: few-shot classification by the nearest class centroid on frozen, centred, L2-normalised
features (SimpleShot, Wang et al. 2019): fitted in seconds from a handful of examples per class."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from ..errors import TransferkitError
from ..models import TransferModel
from ..rundir import check_tensor_shapes
from .base import ExtendData, FitData, FitOutcome, Strategy, TrainSettings

#: Softmax temperatures tried on the negative squared distances; chosen by validation (or
#: out-of-fold) log-loss, so the probabilities are calibrated while the predicted class is not affected.
TEMPERATURES = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


class PrototypeHead(nn.Module):
    """Nearest class centroid as a layer: f' = (f − μ) / ‖f − μ‖ (μ the mean training feature), then
    logits_k = −‖f' − c_k‖² / T = (2 f'·c_k − ‖c_k‖² − 1) / T, a linear layer on f' (its weights
    2 c_k / T, its bias −(‖c_k‖² + 1) / T). Saved as safetensors like any head."""

    def __init__(self, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(in_features))
        self.linear = nn.Linear(in_features, num_classes)

    @staticmethod
    def normalise(features: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
        centred = features - mean
        return centred / centred.norm(dim=1, keepdim=True).clamp_min(1e-12)

    def set_prototypes(self, mean: torch.Tensor, centroids: torch.Tensor, temperature: float) -> None:
        """Install the mean feature, the class centroids (rows, in normalised space) and the temperature."""
        with torch.no_grad():
            self.mean.copy_(mean)
            self.linear.weight.copy_(2 * centroids / temperature)
            self.linear.bias.copy_(-(centroids.pow(2).sum(1) + 1) / temperature)
            self.linear.bias[centroids.abs().sum(1) == 0] = -1e4  # a class absent from training never wins

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear(self.normalise(features, self.mean))


def _centroids(x: torch.Tensor, y: torch.Tensor, num_classes: int, mean: torch.Tensor) -> torch.Tensor:
    z = PrototypeHead.normalise(x, mean)
    out = torch.zeros(num_classes, x.shape[1])
    for k in range(num_classes):
        if (y == k).any():  # an absent class keeps a zero row, which `set_prototypes` rules out
            out[k] = z[y == k].mean(0)
    return out


def _log_loss(logits: torch.Tensor, y: torch.Tensor) -> float:
    return float(torch.nn.functional.cross_entropy(logits, y))


class Prototypes(Strategy):
    """Few-shot: nearest class centroid on frozen, centred, L2-normalised features (SimpleShot); the
    softmax temperature is chosen on validation (or out-of-fold) log-loss."""

    name = "prototypes"
    cross_validates = True
    trains_backbone = False
    feature_head = "centroid"
    head_selection = "the temperature"
    searched_params = ()  # the temperature is chosen on validation by the strategy itself

    def extend(self, model: TransferModel, data: ExtendData, settings: TrainSettings) -> FitOutcome:
        """Add a centroid per new class (the mean of its normalised new features) and fold new examples
        of an old class into that class's centroid (a running mean over its recorded count). The
        mean feature and temperature stay, so an old class's row changes only when it gets examples:
        its weights are otherwise copied bit for bit, and predictions among the old classes stay the same."""
        from .incremental import new_features

        head = model.head
        if not isinstance(head, PrototypeHead):
            raise TransferkitError("this run's head is not a prototype head; extend it with its own strategy.")
        start = time.perf_counter()
        x, y, vx, vy = new_features(model, data, settings)
        extracted = time.perf_counter()
        x, y = torch.as_tensor(np.concatenate([x, vx])).float(), torch.as_tensor(np.concatenate([y, vy]))
        t = float(data.options["temperature"])
        old_counts = list(data.options.get("examples_per_class") or [0] * data.old_classes)
        counts = old_counts + [0] * (data.num_classes - data.old_classes)
        grown = PrototypeHead(head.mean.numel(), data.num_classes)
        centroids = torch.zeros(data.num_classes, head.mean.numel())
        centroids[: data.old_classes] = head.linear.weight.detach() * t / 2
        z = PrototypeHead.normalise(x, head.mean)
        changed = sorted(int(k) for k in torch.unique(y))
        for k in changed:
            members = z[y == k]
            centroids[k] = (centroids[k] * counts[k] + members.sum(0)) / (counts[k] + len(members))
            counts[k] += len(members)
        grown.set_prototypes(head.mean, centroids, t)
        with torch.no_grad():  # rows of classes without new examples: copied, not recomputed from centroids
            for k in set(range(data.old_classes)) - set(changed):
                grown.linear.weight[k] = head.linear.weight[k]
                grown.linear.bias[k] = head.linear.bias[k]
        model.head = grown
        added = [k for k in changed if k >= data.old_classes]
        how = (f"{len(added)} centroid(s) added" + (f", {len(changed) - len(added)} old centroid(s) updated with new "
               "examples" if len(changed) > len(added) else "") + "; the mean feature and temperature unchanged")
        return FitOutcome(settings={"extension": how, "examples_per_class": counts, "temperature": t},
                          timings={"feature extraction": extracted - start,
                                   "centroids": time.perf_counter() - extracted},
                          notes=[how], features=(x.numpy(), y.numpy()))

    def refit_on_features(self, x, y, num_classes, settings, seed=0):
        """Nearest-centroid head on `x, y` (their mean feature) at the run's temperature."""
        if settings.get("temperature") is None:
            return None
        x, y = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long)
        mean = x.mean(0)
        head = PrototypeHead(x.shape[1], num_classes)
        head.set_prototypes(mean, _centroids(x, y, num_classes, mean), float(settings["temperature"]))

        def proba(z: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return torch.softmax(head(torch.as_tensor(z, dtype=torch.float32)), 1).numpy()
        return proba

    def plan(self, data: FitData, settings: TrainSettings) -> list[tuple[str, str]]:
        return [super().plan(data, settings)[0],
                ("epochs: none", "features are extracted once; each class is the mean of its normalised features")]

    def fit(self, model: TransferModel, data: FitData, settings: TrainSettings) -> FitOutcome:
        from ..models.features import extract_features
        from .freezing import set_trainable

        if data.objective != "classification":
            raise TransferkitError("strategy 'prototypes' classifies; this task is not a classification.")
        set_trainable(model.backbone.parameters(), False)
        start = time.perf_counter()
        common = dict(batch_size=max(settings.batch_size, 64), hflip=settings.tta, num_workers=settings.num_workers,
                      progress=settings.progress, collate_fn=data.collate_fn)
        tx, ty = extract_features(model.backbone, data.train_plain, description="train features", **common)
        vx, vy = extract_features(model.backbone, data.val, description="val features", **common)
        extracted = time.perf_counter()
        fitted = fit_prototypes(tx, ty, vx, vy, data.num_classes, data.folds, settings.seed)
        model.head = fitted.head
        fitted.settings["features_averaged_over_flip"] = settings.tta
        return FitOutcome(history=fitted.history, settings=fitted.settings, estimate=fitted.estimate,
                          timings={"feature extraction": extracted - start,
                                   "centroids": time.perf_counter() - extracted},
                          notes=[fitted.note], features=(tx, ty))

    @classmethod
    def restore(cls, info: dict[str, Any], settings: dict[str, Any], state: dict[str, torch.Tensor],
                build_model: Callable[[nn.Module, int], TransferModel], run_dir: Path) -> TransferModel:
        """The saved model with its prototype head."""
        from ..backbones.run_dir import build_architecture

        num_features = int(info["num_features"])
        model = build_model(build_architecture(info, run_dir), num_features)
        model.head = PrototypeHead(num_features, model.head.out_features)
        check_tensor_shapes(model.state_dict(), state, run_dir)
        model.load_state_dict(state, strict=True)
        return model


@dataclass
class PrototypeFit:
    """A fitted prototype head, its temperature sweep, the settings a run records, the out-of-fold
    estimate (None when a validation split scored it), the accuracy it was scored at, and a note."""

    head: PrototypeHead
    history: list[dict[str, Any]]
    settings: dict[str, Any]
    estimate: dict[str, Any] | None
    accuracy: float
    note: str


def fit_prototypes(tx: Any, ty: Any, vx: Any, vy: Any, num_classes: int, folds: int = 0,
                   seed: int = 0) -> PrototypeFit:
    """Nearest-centroid head on features already extracted (train `tx, ty`, validation `vx, vy`).

    With a validation split, the temperature is chosen on it (centroids from train); without one,
    on out-of-fold distances (`folds`, default 5, capped by the rarest class: the folds
    `linear_probe.cross_validated_head` uses for the same seed, so both estimates score the same
    splits). The shipped centroids use every labelled example (train + validation).
    """
    tx, vx = torch.as_tensor(tx).float(), torch.as_tensor(vx).float()
    ty, vy = torch.as_tensor(ty).long(), torch.as_tensor(vy).long()
    vx = vx.reshape(len(vy), tx.shape[1])  # an empty split comes back without a feature width
    k = num_classes
    estimate = None
    if len(vy):  # held-out validation: centroids from train, temperature on validation
        logits_of = _held_out(tx, ty, vx, k)
        scored_y = vy
    else:  # nothing held out: out-of-fold distances, the folds of `folds` (or 5)
        logits_of, scored_y, used_folds = _out_of_fold(tx, ty, k, folds or 5, seed)
    history = []
    for t in TEMPERATURES:
        logits = logits_of / t
        history.append({"temperature": t, "val_loss": _log_loss(logits, scored_y),
                        # counted in integers: a float32 mean would not equal the probe's figure on a tie
                        "val_accuracy": int((logits.argmax(1) == scored_y).sum()) / len(scored_y)})
    best = min(history, key=lambda r: r["val_loss"])
    for row in history:
        row["chosen"] = int(row is best)
    if not len(vy):
        proba = torch.softmax(logits_of / best["temperature"], dim=1).numpy()
        estimate = {"method": f"{used_folds}-fold cross-validation", "folds": used_folds, "proba": proba,
                    "labels": scored_y.numpy()}
    # the shipped head: every labelled example (train + validation) makes the centroids
    all_x, all_y = torch.cat([tx, vx]), torch.cat([ty, vy])
    mean = all_x.mean(0)
    head = PrototypeHead(tx.shape[1], k)
    head.set_prototypes(mean, _centroids(all_x, all_y, k, mean), best["temperature"])
    counts = torch.bincount(all_y, minlength=k).tolist()
    settings = {"temperature": best["temperature"], "temperatures": list(TEMPERATURES),
                "temperature_chosen_by": "lowest " + ("validation" if len(vy) else "out-of-fold") + " log-loss",
                "examples_per_class": counts, "examples_fitted": sum(counts), "head": "prototypes"}
    if estimate is None:
        settings["val_accuracy"] = best["val_accuracy"]
    else:
        settings.update(estimate=estimate["method"], estimated_accuracy=best["val_accuracy"])
    note = (f"nearest class centroid on normalised features ({sum(counts)} examples, "
            f"{min(counts)}-{max(counts)} per class), temperature {best['temperature']:g}")
    return PrototypeFit(head, history, settings, estimate, best["val_accuracy"], note)


def _held_out(tx: torch.Tensor, ty: torch.Tensor, vx: torch.Tensor, k: int) -> torch.Tensor:
    """Negative squared distances of validation features to the training centroids (temperature 1)."""
    mean = tx.mean(0)
    head = PrototypeHead(tx.shape[1], k)
    head.set_prototypes(mean, _centroids(tx, ty, k, mean), 1.0)
    with torch.no_grad():
        return head(vx)


def _out_of_fold(x: torch.Tensor, y: torch.Tensor, k: int, folds: int, seed: int):
    """Each example's negative squared distances to centroids made without it (stratified folds)."""
    from sklearn.model_selection import StratifiedKFold

    from .linear_probe import _smallest_class

    smallest = _smallest_class(y.numpy())
    if smallest < 2:
        raise TransferkitError("strategy 'prototypes' without a validation split needs at least 2 examples per class.")
    folds = min(folds, smallest)
    out = torch.zeros(len(y), k)
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y.numpy()):
        out[test] = _held_out(x[train], y[train], x[test], k)
    return out, y, folds
