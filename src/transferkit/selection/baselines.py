"""Baselines every transferability score must beat: they read the candidate, not the target data.

A score that ranks backbones no better than "the larger model wins" or "the better ImageNet model
wins" is not worth computing; `benchmarks/selection.py` measures both next to the real scores.
Each takes the `Backbone` as `rank_backbones` loaded it and the input size it scores at (images),
and returns None where it does not apply.
"""
from __future__ import annotations

from typing import Any

#: Ties between one backbone at several input sizes go to the larger input, by this fraction of a
#: parameter per pixel of side: below 1 for any size under 10,000 px, so it never overturns a count.
_SIZE_TIE_BREAK = 1e-4


def _size_bonus(image_size: int | None) -> float:
    return float(image_size or 0) * _SIZE_TIE_BREAK


def parameter_count(backbone: Any, image_size: int | None = None) -> float:
    """"The larger model wins": the backbone's parameter count (as loaded, so a text encoder cut
    after k layers counts those k), ties broken towards the larger input size."""
    model = getattr(backbone, "model", backbone)
    return float(sum(p.numel() for p in model.parameters())) + _size_bonus(image_size)


def imagenet_top1(backbone: Any, image_size: int | None = None) -> float | None:
    """"The better ImageNet model wins": the published ImageNet-1k top-1 (%) of a registered image
    backbone's weights (`BackboneInfo.imagenet_top1`), ties broken towards the larger input size.

    An image backbone pretrained on something else (the MNIST CNN) scores 0, below every ImageNet
    model; None for text encoders and for backbones without a registered figure (hub models, runs).
    """
    from ..backbones import BACKBONES

    if getattr(backbone, "modality", "image") != "image":
        return None
    name = getattr(backbone, "name", "")
    if name not in BACKBONES:
        return None
    info = BACKBONES.entry(name).info
    top1 = info.imagenet_top1 if info.imagenet_top1 is not None else (None if info.source_head.endswith(
        ":imagenet_head") else 0.0)
    return None if top1 is None else float(top1) + _size_bonus(image_size) / 100.0
