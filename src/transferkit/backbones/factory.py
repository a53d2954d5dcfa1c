"""The one backbone factory, `create_backbone`, that resolves every kind of source."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import BackboneUnavailableError
from .registry import BACKBONES

if TYPE_CHECKING:  # torch loads with the first backbone, not with the factory
    from .base import Backbone


def create_backbone(name: str, modality: str | None = None) -> Backbone:
    """Load a backbone from a registered name, a transferkit run directory, or a hub model name.

    Resolution order: an existing directory (a previous run, so fine-tuned models become sources;
    or a local transformers model folder), a registered name, then a hub name: a transformers
    model for text, a timm model otherwise (needs network). With `modality`, a backbone that
    reads something else is refused with the names that would fit.
    """
    from .hub import SCRATCH_PREFIX, create_scratch_backbone, create_timm_backbone
    from .run_dir import is_run_dir, load_run_backbone
    from .text import load_transformers_backbone

    path = Path(name).expanduser()
    if path.is_dir():
        if is_run_dir(path):
            backbone = load_run_backbone(path)
        elif modality == "text" and (path / "config.json").is_file():
            backbone = load_transformers_backbone(str(path))
        else:
            raise BackboneUnavailableError(
                f"{path} is a directory but not a transferkit run (no config.json/model.safetensors); "
                "pass a run directory written by `transferkit fit`, or a backbone name."
            )
    elif name in BACKBONES:
        backbone = BACKBONES.get(name)()
    elif "@layer" in name:  # a text encoder cut after a layer: `all-minilm-l6-v2@layer4`
        from .text import truncate_layers

        base, _, layer = name.rpartition("@layer")
        if not layer.isdigit():
            raise BackboneUnavailableError(f"{name!r}: write the cut as NAME@layerK, e.g. all-minilm-l6-v2@layer4.")
        backbone = truncate_layers(create_backbone(base, modality="text"), int(layer))
    elif name.startswith(SCRATCH_PREFIX):
        backbone = create_scratch_backbone(name)
    elif modality == "text":
        backbone = load_transformers_backbone(name)
    else:
        backbone = create_timm_backbone(name)
    if modality and backbone.modality != modality:
        fitting = [e.name for e in BACKBONES.entries() if e.info.modality == modality]
        raise BackboneUnavailableError(
            f"backbone {name!r} reads {backbone.modality} data, but this task needs a {modality} backbone; "
            f"use one of: {', '.join(fitting) or 'a hub model name'}."
        )
    return backbone
