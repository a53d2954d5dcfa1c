"""Class-incremental learning: grow a trained classifier to new classes without forgetting the old.

What a strategy's `extend` uses (see `Strategy.extend`):

- `select_exemplars`: the bounded exemplar memory a run keeps per class (herding, as iCaRL,
  Rebuffi et al. 2017, or random);
- `grow_linear`: a linear head with rows added for the new classes, the old rows copied bit for bit;
- `Distillation`: learning without forgetting (LwF, Li & Hoiem 2016) on the old classes' logits,
  the teacher's logits recorded once per example before training (as dark experience replay,
  Buzzega et al. 2020, stores them), so no second network runs during training;
- `align_weights`: weight aligning (Zhao et al. 2020), which rescales the new classes' rows to
  the old rows' mean norm, undoing the bias towards the classes seen most recently;
- `extend_by_training`: the extension of a fine-tuned model, combining the three;
- `bias_correction`: BiC's two-parameter rescaling of the new classes' logits on held-out examples
  (Wu et al. 2019), for heads refit on features a trained backbone fits too well.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from ..models import TransferModel
from .base import ExtendData, FitOutcome, Strategy
from .losses import Loss

#: How exemplars are chosen per class: herding keeps those whose running mean best matches the
#: class mean (iCaRL's choice for its nearest-mean classifier); random keeps a fair sample, boundary
#: cases included, which a refit head needs (flowers5: herding cost a refit 2-3 points more).
SELECTIONS = ("herding", "random")
#: The name of the temporary head that exposes the old classes' logits to the distillation loss.
OLD_HEAD = "old-classes"


def select_exemplars(labels: np.ndarray, per_class: int, selection: str = "random",
                     features: np.ndarray | None = None, seed: int = 0) -> list[int]:
    """Indices of at most `per_class` exemplars of each class in `labels`, in class order.

    Herding (iCaRL) picks, one at a time, the example that brings the mean of the picked
    L2-normalised features closest to the class mean; it needs `features`. Random draws
    uniformly with `seed`.
    """
    if selection not in SELECTIONS:
        raise ValueError(f"exemplar selection {selection!r}: use {' or '.join(SELECTIONS)}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    for k in np.unique(labels):
        members = np.flatnonzero(labels == k)
        if len(members) <= per_class:
            chosen.extend(members.tolist())
        elif selection == "random" or features is None:
            chosen.extend(sorted(rng.choice(members, per_class, replace=False).tolist()))
        else:
            chosen.extend(members[_herd(features[members], per_class)].tolist())
    return chosen


def _herd(features: np.ndarray, count: int) -> list[int]:
    z = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    target = z.mean(0)
    picked: list[int] = []
    running = np.zeros_like(target)
    available = np.ones(len(z), bool)
    for step in range(1, count + 1):
        # the candidate whose addition puts the mean of the picked ones nearest the class mean
        distance = np.linalg.norm(target - (running + z) / step, axis=1)
        distance[~available] = np.inf
        best = int(distance.argmin())
        picked.append(best)
        available[best] = False
        running += z[best]
    return picked


def grow_linear(layer: nn.Linear, num_classes: int, init: torch.Tensor | None = None) -> nn.Linear:
    """`layer` with output rows for `num_classes` classes: the old rows and biases copied exactly,
    the new rows from `init` (rows, e.g. scaled class-mean features: weight imprinting) or small
    random weights, their biases the old biases' mean."""
    old = layer.out_features
    grown = nn.Linear(layer.in_features, num_classes)
    with torch.no_grad():
        grown.weight[:old] = layer.weight
        grown.bias[:old] = layer.bias
        if num_classes > old:
            if init is not None:
                grown.weight[old:] = init
            else:
                nn.init.normal_(grown.weight[old:], std=float(layer.weight.std()) or 0.01)
            grown.bias[old:] = layer.bias[layer.bias > -1e3].mean() if (layer.bias > -1e3).any() else 0.0
    return grown


def align_weights(layer: nn.Linear, old_classes: int) -> float:
    """Weight aligning: scale the new classes' rows (and biases) of `layer` so their mean norm equals
    the old rows' mean norm; returns the factor applied."""
    with torch.no_grad():
        norms = layer.weight.norm(dim=1)
        old, new = norms[:old_classes].mean(), norms[old_classes:].mean()
        factor = float(old / new) if float(new) > 0 else 1.0
        layer.weight[old_classes:] *= factor
        layer.bias[old_classes:] *= factor
    return factor


class OldClassLogits(nn.Module):
    """The first `old_classes` logits of a head (shares its parameters): what distillation reads."""

    def __init__(self, head: nn.Module, old_classes: int) -> None:
        super().__init__()
        self.head = head
        self.old_classes = old_classes

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)[:, : self.old_classes]


class Distillation(Loss):
    """Learning without forgetting: T² · KL(softmax(teacher / T) ‖ softmax(student / T)) on the old
    classes' logits (Hinton et al. 2015; LwF, Li & Hoiem 2016), the teacher's logits as targets."""

    def __init__(self, temperature: float = 2.0) -> None:
        super().__init__()
        self.temperature = temperature

    def forward(self, output, target, unlabelled=None):
        t = self.temperature
        return F.kl_div(F.log_softmax(output / t, dim=1), F.log_softmax(target / t, dim=1), log_target=True,
                        reduction="batchmean") * t * t


class WithTeacher(Dataset):
    """Items of `dataset` with targets {head: label, OLD_HEAD: the teacher's old-class logits}."""

    def __init__(self, dataset: Dataset, teacher: torch.Tensor, head: str) -> None:
        self.dataset, self.teacher, self.head = dataset, teacher, head
        self.labels = getattr(dataset, "labels", None)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        x, y = self.dataset[i]
        return x, {self.head: torch.as_tensor(y), OLD_HEAD: self.teacher[i]}


#: An extension continues training a fitted model: its learning rates are this fraction of a fit's,
#: so the backbone moves less from the features the old classes rely on.
EXTENSION_LR_SCALE = 0.1


def extend_by_training(trainer: Strategy, model: TransferModel, data: ExtendData, settings, fit_lr: float,
                       temperature: float = 2.0, distillation_weight: float | None = None) -> FitOutcome:
    """Grow `model`'s linear head to `data.num_classes` and train it with `trainer` (a fine-tuning
    strategy, whose `fit` trains every objective of `FitData.objectives`) on memory + new examples:
    cross-entropy, distillation of the old classes' logits and, after training, weight aligning.
    The learning rate is `EXTENSION_LR_SCALE` of `fit_lr` (the trainer's for a fit); the distillation weight defaults to
    √(old classes / new classes), LUCIR's adaptive weight (Hou et al. 2019): the more there is to
    keep, the more it counts. Returns the trainer's `FitOutcome`, with what was done in its settings."""
    from dataclasses import replace

    from .losses import Objective

    new_classes = max(1, data.num_classes - data.old_classes)
    if distillation_weight is None:
        distillation_weight = float(np.sqrt(data.old_classes / new_classes))
    settings = replace(settings, lr=fit_lr * EXTENSION_LR_SCALE)
    head = model.head
    if not isinstance(head, nn.Linear):
        raise TypeError(f"extending by training needs a linear head, not {type(head).__name__}")
    batch = max(settings.batch_size, 64)
    teacher = head_logits(model, data.train_plain, data.collate_fn, batch) if data.distill else None
    model.head = grow_linear(head, data.num_classes)
    objectives: dict[str, Any] = {model.default_head: "cross-entropy"}
    train = data.train
    if teacher is not None:
        model.add_head(OLD_HEAD, OldClassLogits(model.head, data.old_classes))
        objectives[OLD_HEAD] = Objective("distillation", distillation_weight, {"temperature": temperature})
        train = WithTeacher(data.train, teacher, model.default_head)
    try:
        outcome = trainer.fit(model, data.fit_data(train=train, objectives=objectives), settings)
    finally:
        if OLD_HEAD in model.heads:
            del model.heads[OLD_HEAD]
    factor = align_weights(model.head, data.old_classes) if data.align else None
    outcome.settings.update({"extension": "fine-tuned on exemplar memory + new data" if data.replay else
                             "fine-tuned on the new data only (naive)",
                             "distillation": {"temperature": temperature, "weight": distillation_weight}
                             if teacher is not None else None,
                             "weight_aligning_factor": factor, "extension_lr": settings.lr})
    return outcome


def new_features(model: TransferModel, data: ExtendData, settings) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Features and labels of the new training examples (those after the memory in `train_plain`) and
    of the validation split, from `model`'s backbone, flip-averaged as the run's were."""
    from torch.utils.data import Subset

    from ..models.features import extract_features

    common = dict(batch_size=max(settings.batch_size, 64), hflip=settings.tta, num_workers=settings.num_workers,
                  progress=settings.progress, collate_fn=data.collate_fn)
    new = Subset(data.train_plain, range(data.memory_size, len(data.train_plain)))
    x, y = extract_features(model.backbone, new, description="new features", **common)
    vx, vy = extract_features(model.backbone, data.val, description="val features", **common)
    return x, y.astype(np.int64), vx.reshape(len(vy), x.shape[1]), vy.astype(np.int64)


def train_head(head: nn.Linear, x: np.ndarray, y: np.ndarray, vx: np.ndarray, vy: np.ndarray,
               epochs: int = 100, lr: float = 1e-2, seed: int = 0) -> list[dict]:
    """Full-batch Adam on cross-entropy of `head` over features (x, y): the naive extension of a frozen
    run (no memory, no distillation); history rows per 10 epochs with validation accuracy."""
    torch.manual_seed(seed)
    tx, ty = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y)
    vxt, vyt = torch.as_tensor(vx, dtype=torch.float32), torch.as_tensor(vy)
    optimiser = torch.optim.Adam(head.parameters(), lr=lr)
    history = []
    for epoch in range(epochs):
        optimiser.zero_grad()
        loss = F.cross_entropy(head(tx), ty)
        loss.backward()
        optimiser.step()
        if (epoch + 1) % 10 == 0:
            with torch.no_grad():
                row = {"epoch": epoch + 1, "train_loss": float(loss)}
                if len(vyt):
                    row["val_accuracy"] = float((head(vxt).argmax(1) == vyt).float().mean())
            history.append(row)
    return history


@torch.no_grad()  # not inference mode: the logits feed an autograd fit (`bias_correction`)
def head_logits(model: TransferModel, dataset: Dataset, collate_fn=None, batch_size: int = 64,
                hflip: bool = False) -> torch.Tensor:
    """`model`'s logits on `dataset` (flip-averaged images when `hflip`, as the run predicts)."""
    from torch.utils.data import DataLoader

    from ..models.features import to_device

    model.eval()
    device = next(model.parameters()).device
    out = []
    for x, _ in DataLoader(dataset, batch_size=batch_size, collate_fn=collate_fn):
        x = to_device(x, device)
        logits = model(x)
        if hflip and isinstance(x, torch.Tensor) and x.ndim == 4:
            logits = (logits + model(torch.flip(x, dims=[3]))) / 2
        out.append(logits.float().cpu())
    return torch.cat(out) if out else torch.zeros(0, 0)


def bias_correction(layer: nn.Linear, logits: torch.Tensor, labels: torch.Tensor, old_classes: int,
                    steps: int = 200) -> tuple[float, float]:
    """BiC's correction (Wu et al. 2019): the new classes' logits become α·z + β, with (α, β) fitted by
    class-balanced cross-entropy on held-out examples of old and new classes (`logits` from `layer`
    before the correction), then folded into `layer`'s new rows. A head fitted on few stored old
    examples and many new ones over-predicts the new classes; two parameters fitted on data it did
    not train on undo that without touching the old rows. Returns (α, β)."""
    counts = torch.bincount(labels, minlength=logits.shape[1]).float()
    weight = torch.where(counts > 0, counts.sum() / (counts.clamp_min(1) * (counts > 0).sum()), torch.zeros(()))
    log_alpha, beta = torch.zeros((), requires_grad=True), torch.zeros((), requires_grad=True)
    optimiser = torch.optim.LBFGS([log_alpha, beta], lr=0.5, max_iter=steps, line_search_fn="strong_wolfe")

    def corrected() -> torch.Tensor:
        return torch.cat([logits[:, :old_classes], log_alpha.exp() * logits[:, old_classes:] + beta], dim=1)

    def closure():
        optimiser.zero_grad()
        loss = F.cross_entropy(corrected(), labels, weight=weight)
        loss.backward()
        return loss

    optimiser.step(closure)
    alpha, b = float(log_alpha.detach().exp()), float(beta.detach())
    with torch.no_grad():
        layer.weight[old_classes:] *= alpha
        layer.bias[old_classes:] = alpha * layer.bias[old_classes:] + b
    return alpha, b


def cross_validated_refit(refit: Any, x: np.ndarray, y: np.ndarray, num_classes: int, folds: int,
                          seed: int = 0) -> np.ndarray:
    """Out-of-fold class probabilities of a head refit on features: `refit(train_x, train_y)` returns a
    function from features to probabilities (a strategy's `refit_on_features` at the run's settings),
    fitted on every stratified fold but one and applied to the one left out, with the folds of a fit's
    cross-validation (`StratifiedKFold(folds, shuffle=True, random_state=seed)`)."""
    from sklearn.model_selection import StratifiedKFold
    from threadpoolctl import threadpool_limits

    proba = np.zeros((len(y), num_classes))
    with threadpool_limits(1):  # small fits: BLAS threads only contend (as in the extension's own refit)
        for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y):
            proba[test] = refit(x[train], y[train])(x[test])
    return proba
