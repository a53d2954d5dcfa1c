"""`auto`: picks a strategy from the size of the training set and records why."""
from __future__ import annotations

from collections import Counter

from .base import FitData, FitOutcome, Strategy, TrainSettings, TransferModel, create_strategy

#: Below this many training images in the smallest class, fine-tuning overfits more than it adapts:
#: the validation split is too small to early-stop reliably, so a linear probe is safer.
MIN_PER_CLASS_TO_FINE_TUNE = 10
#: Up to this many texts per class, contrastive pair training (SetFit) beats fine-tuning and a
#: plain probe (Tunstall et al. 2022 report gains up to 64 shots; 16 is where it is clearest).
MAX_PER_CLASS_FOR_SETFIT = 16


def choose_strategy(labels: list[int], modality: str = "image", pretrained: bool = True) -> tuple[str, str]:
    """The strategy `auto` uses for training labels `labels`, and the reason in one sentence."""
    if not pretrained:
        return "full", ("the backbone has no pretrained weights, so every layer trains from the first step "
                        "(batch-norm statistics included); save the run and pass it as --backbone to transfer it")
    if modality == "timeseries":
        return "fine-tune", ("a pretrained forecaster: its layers are unfrozen gradually from the top with lower "
                             "learning rates for earlier layers, and its pretrained weights are kept if "
                             "fine-tuning does not lower the validation error")
    smallest = min(Counter(labels).values()) if labels else 0
    if modality == "text" and smallest <= MAX_PER_CLASS_FOR_SETFIT:
        return "setfit", (
            f"the smallest class has {smallest} training texts (≤ {MAX_PER_CLASS_FOR_SETFIT}): a few-shot method "
            "fits best, so the encoder is tuned on same/different-class pairs (many more training signals "
            "than texts) and a logistic head is fit on its embeddings (SetFit)"
        )
    if smallest < MIN_PER_CLASS_TO_FINE_TUNE:
        return "linear-probe", (
            f"the smallest class has {smallest} training examples (< {MIN_PER_CLASS_TO_FINE_TUNE}): too few "
            "to fine-tune the backbone without overfitting, so it stays frozen and only a regularised "
            "linear head is learnt"
        )
    return "fine-tune", (
        f"every class has at least {smallest} training examples (≥ {MIN_PER_CLASS_TO_FINE_TUNE}): enough to "
        "adapt the backbone, so layers are unfrozen gradually from the top, with lower learning rates "
        "for earlier layers"
    )


class Auto(Strategy):
    """Chooses linear-probe or fine-tune by training-set size (see `choose_strategy`)."""

    name = "auto"

    def __init__(self, **options) -> None:
        # options are meant for whichever strategy gets chosen, and are checked once it is
        self.options = options

    def plan(self, data: FitData, settings: TrainSettings) -> list[tuple[str, str]]:
        name, reason = choose_strategy(data.labels, data.modality, data.pretrained)
        chosen = create_strategy(name, **self.options).plan(data, settings)
        return [(f"strategy: auto → {name}", reason), *chosen[1:]]

    def fit(self, model: TransferModel, data: FitData, settings: TrainSettings) -> FitOutcome:
        name, reason = choose_strategy(data.labels, data.modality, data.pretrained)
        options = dict(self.options)
        if not data.pretrained:
            options.setdefault("freeze_bn_stats", False)
        outcome = create_strategy(name, **options).fit(model, data, settings)
        outcome.settings = {"chosen": name, "reason": reason, **outcome.settings}
        return outcome
