"""A previous transferkit run used as a backbone, so a fine-tuned model is a source for the next transfer."""
from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_file

from ..errors import BackboneUnavailableError
from .base import Backbone, Preprocessing

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
BACKBONE_PREFIX = "backbone."


def is_run_dir(path: Path) -> bool:
    return (path / CONFIG_FILE).is_file() and (path / WEIGHTS_FILE).is_file()


def build_architecture(architecture: str):
    """An untrained timm network without classifier, to be filled from saved weights."""
    import timm

    return timm.create_model(architecture, pretrained=False, num_classes=0)


def load_run_backbone(path: Path) -> Backbone:
    """The fine-tuned feature extractor of run `path` (its classification head is dropped)."""
    try:
        config = json.loads((path / CONFIG_FILE).read_text())
        info = config["backbone"]
    except (json.JSONDecodeError, KeyError) as exc:
        raise BackboneUnavailableError(f"{path / CONFIG_FILE} is not a transferkit run config ({exc}).") from exc
    model = build_architecture(info["architecture"])
    state = load_file(str(path / WEIGHTS_FILE))
    body = {k[len(BACKBONE_PREFIX):]: v for k, v in state.items() if k.startswith(BACKBONE_PREFIX)}
    model.load_state_dict(body, strict=True)
    classes = config.get("classes", [])
    return Backbone(
        name=str(path),
        architecture=info["architecture"],
        model=model,
        preprocessing=Preprocessing(**info["preprocessing"]),
        source=f"transferkit run {path} (from {info['name']}, fine-tuned on {len(classes)} classes)",
        meta={"parent": info["name"], "parent_classes": classes},
    )
