"""Pretrained backbones: registry, factory and the offline/hub/run-directory sources.

The packaged backbones are declared in `registry` with light, typed metadata (`BackboneInfo`);
each family module (torch, timm, transformers) is imported when one of its backbones is first
created.
"""
from .._lazy import lazy_exports
from .factory import create_backbone
from .registry import (BACKBONES, DEFAULT_BACKBONE, DEFAULT_TEXT_BACKBONE, BackboneInfo, PackagedWeights,
                       list_backbones, load_source_head, offline_backbones, register_backbone)

_EXPORTS = {
    **dict.fromkeys(("Backbone", "Preprocessing", "layer_groups", "load_state_dict_by_position"), ".base"),
    **dict.fromkeys(("TextEncoder", "TextPreprocessing"), ".text"),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = sorted([
    *_EXPORTS, "BACKBONES", "DEFAULT_BACKBONE", "DEFAULT_TEXT_BACKBONE", "BackboneInfo", "PackagedWeights",
    "create_backbone", "list_backbones", "load_source_head", "offline_backbones", "register_backbone",
])
