"""`auto`: picks a strategy from the size of the training set and records why."""
from __future__ import annotations

from collections import Counter

from .base import FitData, FitOutcome, Strategy, TrainSettings, TransferModel, create_strategy, register_strategy

#: Below this many training images in the smallest class, fine-tuning overfits more than it adapts:
#: the validation split is too small to early-stop reliably, so a linear probe is safer.
MIN_PER_CLASS_TO_FINE_TUNE = 10


def choose_strategy(labels: list[int]) -> tuple[str, str]:
    """The strategy `auto` uses for training labels `labels`, and the reason in one sentence."""
    smallest = min(Counter(labels).values()) if labels else 0
    if smallest < MIN_PER_CLASS_TO_FINE_TUNE:
        return "linear-probe", (
            f"the smallest class has {smallest} training images (< {MIN_PER_CLASS_TO_FINE_TUNE}): too few "
            "to fine-tune the backbone without overfitting, so it stays frozen and only a regularised "
            "linear head is learnt"
        )
    return "fine-tune", (
        f"every class has at least {smallest} training images (≥ {MIN_PER_CLASS_TO_FINE_TUNE}): enough to "
        "adapt the backbone, so the head is fit first and layers are unfrozen gradually with lower "
        "learning rates for earlier layers"
    )


@register_strategy("auto", f"linear-probe below {MIN_PER_CLASS_TO_FINE_TUNE} training images per class, else fine-tune")
class Auto(Strategy):
    """Chooses linear-probe or fine-tune by training-set size (see `choose_strategy`)."""

    def __init__(self, **options) -> None:
        # options are meant for whichever strategy gets chosen, and are checked once it is
        self.options = options

    def fit(self, model: TransferModel, data: FitData, settings: TrainSettings) -> FitOutcome:
        name, reason = choose_strategy(list(getattr(data.train, "labels", [])))
        outcome = create_strategy(name, **self.options).fit(model, data, settings)
        outcome.settings = {"chosen": name, "reason": reason, **outcome.settings}
        return outcome
