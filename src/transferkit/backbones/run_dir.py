"""A previous transferkit run used as a backbone, so a fine-tuned model is a source for the next transfer."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from safetensors.torch import load_file
from torch import nn

from ..errors import BackboneUnavailableError

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
BACKBONE_PREFIX = "backbone."

#: family → (rebuild an untrained network from the saved backbone info, restore its preprocessing)
_FAMILIES: dict[str, tuple[Callable[[dict, Path], nn.Module], Callable[[dict, Path], tuple[Any, Any]]]] = {}


def register_family(name: str, build: Callable[[dict, Path], nn.Module],
                    restore: Callable[[dict, Path], tuple[Any, Any]]) -> None:
    """Teach run directories a model family: `build(info, run_dir)` returns the untrained feature
    extractor, `restore(info, run_dir)` its (preprocessing, tokenizer)."""
    _FAMILIES[name] = (build, restore)


def _family(info: dict):
    family = info.get("family", "timm")
    if family not in _FAMILIES:  # the packaged families register when their module is first imported
        from . import mnist, patchtst, text  # noqa: F401
    if family not in _FAMILIES:
        raise BackboneUnavailableError(f"unknown model family {family!r} in run config; known: {', '.join(_FAMILIES)}.")
    return _FAMILIES[family]


def _build_timm(info: dict, run_dir: Path) -> nn.Module:
    import timm

    return timm.create_model(info["architecture"], pretrained=False, num_classes=0)


def _restore_timm(info: dict, run_dir: Path):
    from .base import Preprocessing

    return Preprocessing(**info["preprocessing"]), None


register_family("timm", _build_timm, _restore_timm)


def is_run_dir(path: Path) -> bool:
    return (path / CONFIG_FILE).is_file() and (path / WEIGHTS_FILE).is_file()


def build_architecture(info: dict, run_dir: Path | None = None) -> nn.Module:
    """An untrained feature extractor described by a run's backbone info, to be filled from saved weights."""
    return _family(info)[0](info, Path(run_dir or "."))


def restore_preprocessing(info: dict, run_dir: Path | None = None):
    """The (preprocessing, tokenizer) a run's backbone was trained with."""
    return _family(info)[1](info, Path(run_dir or "."))


def read_run_config(path: Path) -> dict:
    try:
        config = json.loads((path / CONFIG_FILE).read_text())
        config["backbone"]["name"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise BackboneUnavailableError(f"{path / CONFIG_FILE} is not a transferkit run config ({exc}).") from exc
    return config


def load_run_backbone(path: Path):
    """The fine-tuned feature extractor of run `path` (its task head is dropped)."""
    from .base import Backbone

    config = read_run_config(path)
    info = config["backbone"]
    if config.get("weights") == "adapter":
        raise BackboneUnavailableError(
            f"{path} stores only LoRA adapter weights; fit with --strategy fine-tune to reuse it as a backbone.")
    model = build_architecture(info, path)
    state = load_file(str(path / WEIGHTS_FILE))
    body = {k[len(BACKBONE_PREFIX):]: v for k, v in state.items() if k.startswith(BACKBONE_PREFIX)}
    model.load_state_dict(body, strict=True)
    preprocessing, tokenizer = restore_preprocessing(info, path)
    classes = config.get("classes", [])
    what = f"fine-tuned on {len(classes)} classes" if classes else f"trained for {config.get('task', 'a task')}"
    return Backbone(
        name=str(path),
        architecture=info["architecture"],
        model=model,
        preprocessing=preprocessing,
        source=f"transferkit run {path} (from {info['name']}, {what})",
        meta={"parent": info["name"], "parent_classes": classes, "parent_task": config.get("task")},
        modality=info.get("modality", "image"),
        family=info.get("family", "timm"),
        arch_config=info.get("arch_config", {}),
        tokenizer=tokenizer,
    )
