"""`auto`: picks a strategy from the data (and, for images, from what a linear probe shows) and records why."""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import replace

from ..models import TransferModel
from .base import FitData, FitOutcome, Strategy, TrainSettings, create_strategy
from .fine_tune import default_epochs
from .freezing import set_trainable
from .linear_probe import CROSS_VALIDATE_BELOW, ProbeResult, fit_probe
from .prototypes import fit_prototypes

#: Below this many training images in the smallest class, fine-tuning overfits more than it adapts:
#: the validation split is too small to early-stop reliably, so a linear probe is safer.
MIN_PER_CLASS_TO_FINE_TUNE = 10
#: Up to this many texts per class, contrastive pair training (SetFit) beats fine-tuning and a
#: plain probe (Tunstall et al. 2022 report gains up to 64 shots; 16 is where it is clearest).
MAX_PER_CLASS_FOR_SETFIT = 16
#: A probe this accurate on validation leaves fine-tuning too little to gain for its cost.
NEAR_PERFECT = 0.98
#: The default must stay quick (goal: <= 1,000 images in <= 3 minutes on 2 CPU cores, control
#: included), so fine-tuning gets FINE_TUNE_SECONDS per SMALL_DATA training images (never less):
#: with the probe (tens of seconds) and the control (<= 60 s per 1,000 images, see
#: the image task's `_image_scratch_control`) a run on 1,000 images fits in 3 minutes, and larger sets scale linearly.
SMALL_DATA = 1000
FINE_TUNE_SECONDS = 75.0
#: One training image costs about this many inference forward passes (forward, backward, update,
#: augmentation); the probe's feature extraction measures the forward pass on this machine. Early
#: epochs train only the top layer groups: flowers5, 360 images, measured 1.6 (estimated with 3.0:
#: 25 s per epoch, took 13 s); 2 leaves headroom for the later, fully unfrozen epochs.
TRAIN_STEP_COST = 2.0
#: Fewer epochs than this are not worth starting: the first epoch mostly moves the new head.
MIN_FINE_TUNE_EPOCHS = 2


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


def choose_multi_head(data: FitData) -> tuple[str, str]:
    """The strategy `auto` uses for several heads (`data.objectives`): the strategies that train
    every head are a probe per head and fine-tuning, chosen by the rarest class of any head."""
    datasets = getattr(data.train_plain, "targets", None) or {}
    smallest = min((min(Counter(labels).values()) for labels in datasets.values()), default=0)
    heads = ", ".join(data.objectives)
    if not data.pretrained:
        return "full", f"the backbone has no pretrained weights, so every layer trains, with one head per label ({heads})"
    if smallest < MIN_PER_CLASS_TO_FINE_TUNE:
        return "linear-probe", (
            f"several heads ({heads}) and the rarest class of any has {smallest} training examples "
            f"(< {MIN_PER_CLASS_TO_FINE_TUNE}): the backbone stays frozen and each head is a logistic probe on the "
            "same features")
    return "fine-tune", (
        f"several heads ({heads}) and every class of each has at least {smallest} training examples "
        f"(≥ {MIN_PER_CLASS_TO_FINE_TUNE}): the shared backbone is fine-tuned on the heads' summed losses")


class Auto(Strategy):
    """Images (pretrained backbone): a linear probe first (cheap: features extracted once), then
    fine-tuning only when the probe leaves room, every class has enough examples and the estimated
    time fits the budget; the model better on validation is kept. On data too small to hold out
    (`FitData.folds`) the probe is estimated by cross-validation and fitted on all data. Where the
    data are too few to fine-tune (cross-validated, or a class below MIN_PER_CLASS_TO_FINE_TUNE), a
    prototype head on the probe's features is scored on the same estimate and kept if it is better.
    Other modalities: `choose_strategy`."""

    cross_validates = True
    multi_head = True  # several heads: `choose_multi_head`

    name = "auto"

    def __init__(self, **options) -> None:
        # options are meant for whichever strategy gets chosen, and are checked once it is
        self.options = options

    def _choose(self, data: FitData) -> tuple[str, str]:
        if len(data.objectives) > 1:
            return choose_multi_head(data)
        return choose_strategy(data.labels, data.modality, data.pretrained)

    def plan(self, data: FitData, settings: TrainSettings) -> list[tuple[str, str]]:
        if len(data.objectives) == 1 and data.modality == "image" and data.pretrained \
                and data.objective == "classification":
            return [("strategy: auto → linear probe first, then fine-tune if it can pay off",
                     "the probe is cheap (features extracted once); fine-tuning follows only when the probe leaves "
                     f"room on validation (< {NEAR_PERFECT:.0%}), every class has at least "
                     f"{MIN_PER_CLASS_TO_FINE_TUNE} images and the time budget allows, and the better model on "
                     f"validation is kept; below {CROSS_VALIDATE_BELOW} labelled images nothing is held out: "
                     "accuracy is estimated by cross-validation and the model is fitted on all of them; where the "
                     "data are too few to fine-tune, a nearest-centroid (prototypes) head on the same features "
                     "replaces the probe if it scores higher on the same estimate"),
                    ("epochs: " + (str(settings.epochs) if settings.epochs else "chosen after the probe"),
                     "fine-tuning epochs follow from the probe's measured speed and the time budget"
                     if not settings.epochs else "as requested, if fine-tuning runs")]
        name, reason = self._choose(data)
        chosen = create_strategy(name, **self.options).plan(data, settings)
        return [(f"strategy: auto → {name}", reason), *chosen[1:]]

    def fit(self, model: TransferModel, data: FitData, settings: TrainSettings) -> FitOutcome:
        if len(data.objectives) == 1 and data.modality == "image" and data.pretrained \
                and data.objective == "classification":
            return self._probe_then_fine_tune(model, data, settings)
        name, reason = self._choose(data)
        options = dict(self.options)
        if not data.pretrained:
            options.setdefault("freeze_bn_stats", False)
        outcome = create_strategy(name, **options).fit(model, data, settings)
        outcome.settings = {"chosen": name, "reason": reason, **outcome.settings}
        return outcome

    def range_tested(self, data: FitData) -> Strategy:
        """Fine-tuning (full without pretrained weights): what `auto` trains by gradient."""
        options = dict(self.options)
        if not data.pretrained:
            options.setdefault("freeze_bn_stats", False)
        return create_strategy("fine-tune" if data.pretrained else "full", **options)

    def _probe_then_fine_tune(self, model: TransferModel, data: FitData, settings: TrainSettings) -> FitOutcome:
        tuner = create_strategy("fine-tune", **self.options)  # checks the options before any slow work
        new_head = {k: v.detach().clone() for k, v in model.head.state_dict().items()}
        probe = fit_probe(model, data, settings)
        # the shipped model's training features while the backbone stays frozen (the exemplar memory's)
        outcome = FitOutcome(history=probe.history, settings=probe.settings(settings.tta),
                             timings=dict(probe.timings), estimate=probe.estimate, features=probe.features[:2])

        def keep_probe(reason: str) -> FitOutcome:
            outcome.settings = {"chosen": "linear-probe", "reason": reason, **outcome.settings}
            return outcome

        if probe.estimate is not None:
            return self._probe_or_prototypes(model, probe, outcome, settings, data.num_classes, (
                f"{probe.examples_fitted} labelled images (< {CROSS_VALIDATE_BELOW}) are too few to hold out a "
                "validation split that could tell whether fine-tuning helps: the backbone stays frozen and a "
                f"logistic head is chosen by {probe.estimate['method']} (estimated accuracy {probe.accuracy:.1%}) "
                f"and fitted on all {probe.examples_fitted} images"))
        epochs, why = plan_fine_tune(probe, data.labels, len(data.val), settings)
        probe_text = f"a linear probe first (frozen features: {probe.accuracy:.1%} on validation)" \
            if probe.accuracy is not None else "a linear probe first (frozen features)"
        if not epochs:
            if _smallest(data.labels) < MIN_PER_CLASS_TO_FINE_TUNE and probe.accuracy is not None:
                return self._probe_or_prototypes(model, probe, outcome, settings, data.num_classes,
                                                 f"{probe_text}; not fine-tuned: {why}")
            return keep_probe(f"{probe_text}; not fine-tuned: {why}")

        probe.features = None  # only the prototype comparison reads them; not held through fine-tuning
        probe_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.head.load_state_dict(new_head)  # a probe head on per-feature scaling is unstable to fine-tune
        set_trainable(model.parameters(), True)  # as a plain fine-tune finds it; the probe froze the backbone
        budget = None if settings.epochs else fine_tune_budget(len(data.labels))
        caps = [cap for cap in (budget, settings.max_seconds) if cap]  # the user's `max_seconds` holds too
        tuned = tuner.fit(model, data, replace(settings, epochs=epochs, max_seconds=min(caps) if caps else None))
        tuned_accuracy = best_val_accuracy(tuned.history)
        summary = {"epochs": epochs, "epochs_run": tuned.settings.get("epochs_run"), "budget_seconds": budget,
                   "val_accuracy": tuned_accuracy, "seconds": tuned.timings.get("fine-tuning")}
        if tuned_accuracy is not None and tuned_accuracy > probe.accuracy:
            tuned.timings = {**{f"linear probe: {k}": v for k, v in probe.timings.items()}, **tuned.timings}
            tuned.settings = {"chosen": "fine-tune", "reason": (
                f"{probe_text}, then fine-tuned because {why}; fine-tuning reached {tuned_accuracy:.1%} on "
                f"validation, better than the probe, so it is kept (flip-averaged probe features vs single-view "
                "fine-tune validation: the comparison favours the probe)"),
                **tuned.settings, "probe": outcome.settings}
            return tuned
        model.load_state_dict(probe_state)
        outcome.timings["fine-tuning (not kept)"] = tuned.timings.get("fine-tuning", 0.0)
        outcome.settings["fine_tune_tried"] = summary
        got = f"{tuned_accuracy:.1%}" if tuned_accuracy is not None else "no validation score"
        return keep_probe(f"{probe_text}; fine-tuned because {why}, but it reached {got} on validation, "
                          "no better than the probe, so the probe is kept")

    @staticmethod
    def _probe_or_prototypes(model: TransferModel, probe: ProbeResult, outcome: FitOutcome, settings: TrainSettings,
                             num_classes: int, probe_reason: str) -> FitOutcome:
        """Data too few to fine-tune: a prototype head (SimpleShot) on the probe's own features, scored
        the way the probe was (the same out-of-fold splits, or the same validation split); it is kept
        only when its accuracy there is higher (a tie keeps the probe). Both figures are recorded."""
        start = time.perf_counter()
        fitted = fit_prototypes(*probe.features, num_classes, (probe.estimate or {}).get("folds", 0), settings.seed)
        seconds = time.perf_counter() - start
        scored = probe.estimate["method"] if probe.estimate else "validation"
        figures = {"linear_probe_accuracy": probe.accuracy, "prototypes_accuracy": fitted.accuracy,
                   "scored_by": scored}
        compared = (f"a nearest-centroid head on the same features (prototypes, SimpleShot) scored "
                    f"{fitted.accuracy:.1%} against the probe's {probe.accuracy:.1%} ({scored})")
        if fitted.accuracy > probe.accuracy:
            model.head = fitted.head
            fitted.settings["features_averaged_over_flip"] = settings.tta
            reason = (f"{probe_reason}; then {compared}, so the prototype head is kept: with this few examples "
                      "per class a class mean is estimated more reliably than a linear boundary")
            return FitOutcome(history=fitted.history, estimate=fitted.estimate, notes=[fitted.note],
                              features=outcome.features,
                              settings={"chosen": "prototypes", "reason": reason, **fitted.settings,
                                        "compared": figures, "probe": outcome.settings},
                              timings={**{f"linear probe: {k}": v for k, v in probe.timings.items()},
                                       "centroids": seconds})
        outcome.timings["prototypes (not kept)"] = seconds
        outcome.settings = {"chosen": "linear-probe", "reason": f"{probe_reason}; {compared}, no better, so the "
                            "probe is kept", **outcome.settings, "compared": figures}
        return outcome


def _smallest(labels: list[int]) -> int:
    return min(Counter(labels).values()) if labels else 0


def fine_tune_budget(num_train: int) -> float:
    """Seconds of fine-tuning `auto` allows on `num_train` images: FINE_TUNE_SECONDS per SMALL_DATA."""
    return FINE_TUNE_SECONDS * max(1.0, num_train / SMALL_DATA)


def plan_fine_tune(probe: ProbeResult, labels: list[int], num_val: int, settings: TrainSettings) -> tuple[int, str]:
    """Epochs to fine-tune after `probe` (0: do not) and why, from a cheap signal: the probe's
    validation accuracy, the smallest class, and the fine-tune time estimated from the probe's
    measured forward pass against `fine_tune_budget`."""
    smallest = min(Counter(labels).values()) if labels else 0
    if smallest < MIN_PER_CLASS_TO_FINE_TUNE:
        return 0, (f"the smallest class has {smallest} training examples (< {MIN_PER_CLASS_TO_FINE_TUNE}): too few to "
                   "fine-tune the backbone without overfitting")
    if probe.accuracy is None:
        return 0, "there is no validation split to tell whether fine-tuning would gain"
    if probe.accuracy >= NEAR_PERFECT:
        return 0, (f"the probe is already near-perfect on validation (≥ {NEAR_PERFECT:.0%}), leaving fine-tuning "
                   "too little to gain for its cost")
    room = f"the probe leaves room ({1 - probe.accuracy:.1%} validation error)"
    if settings.epochs:
        return settings.epochs, f"{room}; {settings.epochs} epochs as requested"
    n = len(labels)
    epoch_seconds = probe.forward_seconds * (TRAIN_STEP_COST * n + num_val)
    budget = fine_tune_budget(n)
    affordable = int(budget // max(epoch_seconds, 1e-9))
    if affordable < MIN_FINE_TUNE_EPOCHS:
        return 0, (f"one fine-tuning epoch would take about {epoch_seconds:.0f} s here, so {MIN_FINE_TUNE_EPOCHS} "
                   f"epochs exceed the {budget:.0f} s budget ({FINE_TUNE_SECONDS:.0f} s per {SMALL_DATA} images)")
    epochs = min(default_epochs(n), affordable)
    return epochs, (f"{room} and about {epoch_seconds:.0f} s per epoch lets {epochs} epochs fit the "
                    f"{budget:.0f} s budget ({FINE_TUNE_SECONDS:.0f} s per {SMALL_DATA} images)")


def best_val_accuracy(history: list[dict]) -> float | None:
    """Validation accuracy of the epoch with the lowest validation loss (the weights a run keeps)."""
    rows = [r for r in history if r.get("val_loss") is not None and r.get("val_accuracy") is not None]
    return float(min(rows, key=lambda r: r["val_loss"])["val_accuracy"]) if rows else None
