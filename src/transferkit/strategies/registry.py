"""The strategy registry: names, descriptions and where each packaged strategy's class lives.

Declared entries import their module (torch, Lightning, peft) only when a strategy is created, so
`transferkit list strategies` and the CLI's start-up stay light.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from .._registry import Registry

if TYPE_CHECKING:
    from .base import Strategy

STRATEGIES: Registry[Callable[..., "Strategy"]] = Registry("strategy", plural="strategies")


def register_strategy(name: str, description: str = ""):
    """Class decorator registering a strategy under `name` (for strategies defined outside transferkit)."""

    def decorator(cls):
        cls.name = name
        return STRATEGIES.register(name, description or (cls.__doc__ or "").strip().split("\n")[0])(cls)

    return decorator


def create_strategy(name: str, **options: Any) -> "Strategy":
    """The strategy registered as `name`, with its options set (unknown option names raise)."""
    return STRATEGIES.get(name)(**options)


# The packaged strategies. Each class also says its `name`; tests check the two agree, and that
# the `auto` rule's thresholds quoted here are the ones `choose_strategy` uses.
_PACKAGE = __name__.rpartition(".")[0]
for _name, _target, _description in (
    ("auto", "auto:Auto", "images: linear probe first, fine-tune only when validation and the time budget say it "
                          "can gain (never with <10 per class), keep the better; text ≤16 per class: setfit, "
                          "else fine-tune"),
    ("fine-tune", "fine_tune:FineTune", "gradual unfreezing top-down with discriminative LRs (LP-FT warm-up optional)"),
    ("full", "fine_tune:Full", "every layer trains from the first step at one low learning rate"),
    ("linear-probe", "linear_probe:LinearProbe", "frozen backbone, features cached once; logistic (C tuned) or ridge head"),
    ("lora", "lora:Lora", "low-rank adapters in the attention layers + new head; only adapter weights saved (peft)"),
    ("setfit", "setfit:SetFit", "few-shot text: contrastive pair fine-tuning of the encoder, then a logistic head (SetFit)"),
):
    STRATEGIES.declare(_name, f"{_PACKAGE}.{_target}", _description)
