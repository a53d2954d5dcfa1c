"""Training objectives, one module per head: the loss `TransferModule` minimises and the metric it reports.

A head's objective is named in `FitData.objectives` (head → registered loss name, or an
`Objective` with a weight and options); `build_losses` turns them into modules. A new objective
(a domain discriminator on the unlabelled split, a distillation term, pseudo-labels) is one
`Loss` subclass registered in `LOSSES`, trained by the same `TransferModule`:

    @LOSSES.register("domain-confusion")  # listed with the first line of the class docstring
    class DomainConfusion(Loss):
        labelled, unlabelled = False, True

        def forward(self, output, target, unlabelled=None):
            return (output.mean(0) - unlabelled.mean(0)).pow(2).sum()
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from .._registry import Info, Registry

LOSSES: Registry[type["Loss"]] = Registry("loss", plural="losses")


@dataclass(frozen=True)
class Objective:
    """How one head is trained: a registered loss, its weight in the summed loss, options for it."""

    loss: str
    weight: float = 1.0
    options: dict[str, Any] = field(default_factory=dict)  # keyword arguments of the loss's `create`


class Loss(nn.Module):
    """The training loss of one head, and the validation metric it reports.

    `forward(output, target, unlabelled)` gets the head's outputs on a labelled batch, that
    batch's targets for the head (None when the batch has none), and, when the class sets
    `unlabelled = True`, the head's outputs on a batch of `FitData.unlabelled` (else None).
    Validation calls `validation_loss(output, target)` for losses with `labelled = True` whose
    targets the validation batch holds. A loss may own parameters (they train at the head's LR).
    """

    #: uses the targets of labelled batches (False: e.g. a loss on unlabelled outputs only)
    labelled: ClassVar[bool] = True
    #: needs the head's outputs on `FitData.unlabelled` (domain adaptation, self-training)
    unlabelled: ClassVar[bool] = False
    #: name of the validation metric `new_metric` computes, logged as `val_<metric>` ("" for none)
    metric: ClassVar[str] = ""

    @classmethod
    def create(cls, data: Any, settings: Any, **options: Any) -> "Loss":
        """This loss for a fit on `data` (`FitData`) with `settings` (`TrainSettings`); `options`
        come from the head's `Objective`. Override to read e.g. the number of classes."""
        return cls(**options)

    def forward(self, output: torch.Tensor, target: torch.Tensor | None,
                unlabelled: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def validation_loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The loss reported on validation data (what early stopping watches); the training loss by default."""
        return self(output, target)

    def new_metric(self) -> Any:
        """A fresh torchmetrics metric updated with (output, target) on validation batches, or None."""
        return None

    def learned(self) -> dict[str, float]:
        """What the loss learned while training, for the run's record ({} for a loss without parameters)."""
        return {}


@LOSSES.register("cross-entropy")
class CrossEntropy(Loss):
    """Classification: cross-entropy with label smoothing in training; validation accuracy.

    The validation loss is the plain cross-entropy over the `num_classes` logits.
    """

    metric = "accuracy"

    def __init__(self, num_classes: int, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing

    @classmethod
    def create(cls, data: Any, settings: Any, **options: Any) -> "CrossEntropy":
        return cls(**{"num_classes": data.num_classes, "label_smoothing": settings.label_smoothing, **options})

    def forward(self, output, target, unlabelled=None):
        return F.cross_entropy(output, target, label_smoothing=self.label_smoothing)

    def validation_loss(self, output, target):
        return F.cross_entropy(output, target)

    def new_metric(self):
        from torchmetrics.classification import MulticlassAccuracy

        return MulticlassAccuracy(num_classes=self.num_classes, average="micro")


@LOSSES.register("mse")
class MeanSquaredError(Loss):
    """Regression: mean squared error (training and validation); validation mean absolute error."""

    metric = "mae"

    def forward(self, output, target, unlabelled=None):
        return F.mse_loss(output, target)

    def new_metric(self):
        from torchmetrics import MeanAbsoluteError

        return MeanAbsoluteError()


@LOSSES.register("uncertainty")
class UncertaintyWeighted(Loss):
    """Multi-task: a head's loss weighted by a learned log-variance s, exp(-s) L + s (Kendall, Gal & Cipolla 2018).

    Summed over heads, the training loss is Σ exp(-s_i) L_i + s_i: a head whose loss stays high
    (a noisier task) gets a larger s and so a smaller weight, and the + s term keeps s from
    growing without bound. s starts at `init` (0: weight 1) and trains at the head's LR. The
    wrapped loss (`loss`, options passed on) gives the validation loss and metric, unweighted, so
    early stopping watches the heads' plain losses rather than the moving weights.
    """

    def __init__(self, inner: Loss, init: float = 0.0) -> None:
        super().__init__()
        self.inner = inner
        self.log_variance = nn.Parameter(torch.tensor(float(init)))
        self.metric = inner.metric  # the wrapped loss's validation metric, under its name

    @classmethod
    def create(cls, data: Any, settings: Any, loss: str = "cross-entropy", init: float = 0.0,
               **options: Any) -> "UncertaintyWeighted":
        return cls(create_loss(Objective(loss, options=options), data, settings), init)

    def forward(self, output, target, unlabelled=None):
        s = self.log_variance
        return torch.exp(-s) * self.inner(output, target, unlabelled) + s

    def validation_loss(self, output, target):
        return self.inner.validation_loss(output, target)

    def new_metric(self):
        return self.inner.new_metric()

    def learned(self) -> dict[str, float]:
        s = float(self.log_variance.detach())
        return {"log_variance": s, "weight": float(torch.exp(torch.tensor(-s)))}


# The domain-adaptation losses (unlabelled target data), declared: their module loads on first use.
for _name, _target, _description in (
    ("dann", "DomainAdversarial", "domain discriminator behind a gradient-reversal layer (DANN, Ganin & Lempitsky 2015)"),
    ("cdan", "ConditionalDomainAdversarial", "discriminator conditioned on class predictions, entropy-weighted "
                                             "(CDAN+E, Long et al. 2018)"),
    ("coral", "Coral", "source and target feature covariances aligned (Deep CORAL, Sun & Saenko 2016)"),
    ("mmd", "MaximumMeanDiscrepancy", "multi-kernel maximum mean discrepancy of the features (DAN, Long et al. 2015)"),
    ("self-training", "SelfTraining", "confident, class-balanced pseudo-labels on the target (CBST; FixMatch's "
                                      "threshold)"),
):
    LOSSES.declare(_name, f"{__package__}.adaptation:{_target}", Info(description=_description))


LOSSES.declare("distillation", f"{__package__}.incremental:Distillation",
               Info(description="old classes' logits distilled from the model before it grew (LwF, Li & Hoiem 2016)"))


def create_loss(objective: str | Objective, data: Any, settings: Any) -> Loss:
    """The loss module of one head's objective (a registered name or an `Objective`)."""
    objective = Objective(objective) if isinstance(objective, str) else objective
    return LOSSES.get(objective.loss).create(data, settings, **objective.options)


def build_losses(data: Any, settings: Any) -> tuple[dict[str, Loss], dict[str, float]]:
    """(head → loss module, head → weight) for `data.objectives` (`FitData`) under `settings`."""
    losses, weights = {}, {}
    for head, objective in data.objectives.items():
        losses[head] = create_loss(objective, data, settings)
        weights[head] = objective.weight if isinstance(objective, Objective) else 1.0
    return losses, weights

