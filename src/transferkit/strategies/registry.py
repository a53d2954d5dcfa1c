"""The strategy registry: names, typed metadata and where each packaged strategy's class lives.

Declared entries import their module (torch, Lightning, peft) only when a strategy is created, so
`transferkit list strategies` and the CLI's start-up stay light. This module imports no sibling
(`base` re-exports it), so the package has no import cycle.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

from .._registry import Info, Registry

_EVERY_MODALITY = ("image", "text", "timeseries")  # the input modalities the packaged tasks read


@dataclasses.dataclass(frozen=True, kw_only=True)
class StrategyInfo(Info):
    """What the registry knows about a strategy before importing it."""

    modalities: tuple[str, ...]  # the input modalities it applies to (a task's `TaskInfo.modality`)
    unlabelled: bool = False  # it needs unlabelled target data (`fit(..., unlabeled=...)`)
    #: it chooses, from the data, the strategy that trains (recorded as `FitOutcome.settings["chosen"]`);
    #: unlabelled target data make it the `unlabelled` strategy, and a search chooses among `searched` ones
    chooses: bool = False
    searched: bool = False  # a search over strategies (a choosing strategy with --search) tries it
    #: every layer trains from the first step at one rate: transfer advice never suggests it to such a run
    trains_all_layers: bool = False


StrategyFactory = Callable[..., Any]  # a `Strategy` class: called with its options, returns the strategy

STRATEGIES: Registry[StrategyFactory, StrategyInfo] = Registry("strategy", info=StrategyInfo, plural="strategies")


def register_strategy(name: str, info: StrategyInfo) -> Callable[[type], type]:
    """Class decorator registering a strategy under `name` (for strategies defined outside
    transferkit): `@register_strategy("my-probe", StrategyInfo(modalities=("image",)))`. Sets the
    class's `name`; without a description, the first docstring line is listed."""
    register = STRATEGIES.register(name, info)

    def decorator(cls: type) -> type:
        cls.name = name  # type: ignore[attr-defined]
        return register(cls)

    return decorator


def traits(name: str) -> StrategyInfo:
    """The registered traits of strategy `name`; a name not registered here (a run saved by a strategy
    defined elsewhere) has none of them."""
    return STRATEGIES.entry(name).info if name in STRATEGIES else StrategyInfo(modalities=())


def strategies_with(trait: str, modality: str | None = None) -> list[str]:
    """The registered strategies (sorted) whose `StrategyInfo` has `trait` set, for `modality` if given."""
    return [n for n in STRATEGIES.names() if getattr(STRATEGIES.entry(n).info, trait)
            and (modality is None or modality in STRATEGIES.entry(n).info.modalities)]


def create_strategy(name: str, **options: Any):
    """The strategy registered as `name`, with its options set (unknown option names raise)."""
    return STRATEGIES.get(name)(**options)


# The packaged strategies. Each class also says its `name`; tests check the two agree, and that
# the `auto` rule's thresholds quoted here are the ones `choose_strategy` uses. LoRA adapts
# attention projections (DEFAULT_TARGETS: BERT-style, timm ViT and PatchTST `qkv`) and the 1×1
# pointwise convolutions of timm's EfficientNet/MobileNet blocks, so it applies to every modality;
# SetFit pairs texts.
_PACKAGE = __name__.rpartition(".")[0]
STRATEGIES.declare("adapt", f"{_PACKAGE}.adapt:DomainAdapt", StrategyInfo(
    description="domain adaptation on unlabelled target data (DANN, CDAN, CORAL, MMD, self-training); epoch and "
                "method chosen by the target error estimated without target labels, source-only kept unless a "
                "method is predicted to help",
    modalities=("image", "text"), unlabelled=True))
STRATEGIES.declare("auto", f"{_PACKAGE}.auto:Auto", StrategyInfo(
    description="images: linear probe first, fine-tune only when validation and the time budget say it can gain "
                "(never with <10 per class), keep the better; text ≤16 per class: setfit, else fine-tune",
    modalities=_EVERY_MODALITY, chooses=True))
STRATEGIES.declare("fine-tune", f"{_PACKAGE}.fine_tune:FineTune", StrategyInfo(
    description="gradual unfreezing top-down with discriminative LRs (LP-FT warm-up optional)",
    modalities=(*_EVERY_MODALITY, "detection"), searched=True))
STRATEGIES.declare("full", f"{_PACKAGE}.fine_tune:Full", StrategyInfo(
    description="every layer trains from the first step at one low learning rate",
    modalities=(*_EVERY_MODALITY, "detection"), trains_all_layers=True))
STRATEGIES.declare("head-only", f"{_PACKAGE}.fine_tune:HeadOnly", StrategyInfo(
    description="detection: frozen backbone, only the new layers (feature adapter, proposals, box head) train",
    modalities=("detection",)))
STRATEGIES.declare("linear-probe", f"{_PACKAGE}.linear_probe:LinearProbe", StrategyInfo(
    description="frozen backbone, features cached once; logistic (C tuned) or ridge head", modalities=_EVERY_MODALITY,
    searched=True))
STRATEGIES.declare("lora", f"{_PACKAGE}.lora:Lora", StrategyInfo(
    description="low-rank adapters in attention projections or 1×1 convolutions + new head; saves only adapters "
                "on a pretrained base (peft)",
    modalities=_EVERY_MODALITY, searched=True))
STRATEGIES.declare("prototypes", f"{_PACKAGE}.prototypes:Prototypes", StrategyInfo(
    description="few-shot: nearest class centroid on frozen, centred, L2-normalised features (SimpleShot); seconds",
    modalities=("image", "text")))
STRATEGIES.declare("setfit", f"{_PACKAGE}.setfit:SetFit", StrategyInfo(
    description="few-shot text: contrastive pair fine-tuning of the encoder, then a logistic head (SetFit)",
    modalities=("text",)))
