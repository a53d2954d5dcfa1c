"""Pretrained backbones: registry, factory and the offline/hub/run-directory sources."""
from . import mnist, offline, patchtst, text  # noqa: F401  (register the packaged backbones)
from .base import Backbone, Preprocessing, layer_groups, load_state_dict_by_position
from .text import DEFAULT_TEXT_BACKBONE, TextEncoder, TextPreprocessing
from .registry import BACKBONES, DEFAULT_BACKBONE, create_backbone, list_backbones, offline_backbones, register_backbone

__all__ = [
    "BACKBONES", "DEFAULT_BACKBONE", "DEFAULT_TEXT_BACKBONE", "TextEncoder", "TextPreprocessing", "Backbone", "Preprocessing", "create_backbone", "layer_groups",
    "list_backbones", "load_state_dict_by_position", "offline_backbones", "register_backbone",
]
