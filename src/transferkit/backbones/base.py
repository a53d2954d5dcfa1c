"""What every backbone exposes: a feature extractor, its preprocessing and its layer groups."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import torch
from torch import nn

from ..data.transforms import Preprocessing  # noqa: F401  (re-exported: backbones build it)


@dataclass
class Backbone:
    """A pretrained feature extractor: `model(x)` returns pooled features of size `num_features`.

    `family` + `architecture` (+ `arch_config`) let a saved run rebuild the network without the
    original weight source: a timm model name, or a transformers config. `source` says where the
    weights came from (shown in reports). `modality` is what the model reads: image, text or
    timeseries; `tokenizer` is set for text backbones.
    """

    name: str
    architecture: str
    model: nn.Module
    preprocessing: Any  # Preprocessing for images; TextPreprocessing etc. for other modalities
    source: str
    meta: dict[str, Any] = field(default_factory=dict)
    modality: str = "image"
    family: str = "timm"
    arch_config: dict[str, Any] = field(default_factory=dict)
    tokenizer: Any = None

    @classmethod
    def from_timm(cls, name: str, architecture: str, model: nn.Module, source: str) -> "Backbone":
        """Wrap a timm model (classifier already removed); preprocessing comes from its pretrained_cfg."""
        return cls(name=name, architecture=architecture, model=model,
                   preprocessing=Preprocessing.from_pretrained_cfg(model.pretrained_cfg), source=source)

    @property
    def num_features(self) -> int:
        return int(self.model.num_features)

    def layer_groups(self) -> list[tuple[str, list[str]]]:
        """Parameter names grouped from input to output (stem → stages → head), via timm's group_matcher.

        This is the single source of groups for gradual unfreezing and discriminative learning
        rates, as in timm's layer-wise LR decay.
        """
        return layer_groups(self.model)

    def to_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "modality": self.modality,
            "family": self.family,
            "architecture": self.architecture,
            **({"arch_config": self.arch_config} if self.arch_config else {}),
            "source": self.source,
            "num_features": self.num_features,
            "preprocessing": self.preprocessing.to_dict(),
            **({"meta": self.meta} if self.meta else {}),
        }


def layer_groups(model: nn.Module) -> list[tuple[str, list[str]]]:
    """Parameter names in coarse groups, ordered from input to output.

    Any module with a timm-style `group_matcher` works (timm models, and transferkit's text and
    time-series encoders define one), so every modality shares one unfreezing/LR-decay code path.
    """
    from timm.models import group_parameters

    names = [n for n, p in model.named_parameters()]
    if not hasattr(model, "group_matcher"):
        return [("all", names)]
    matcher = model.group_matcher(coarse=True)
    grouped = group_parameters(model, matcher)
    stem_ids = sorted(grouped)
    out: list[tuple[str, list[str]]] = []
    for i, gid in enumerate(stem_ids):
        params = grouped[gid]
        label = "stem" if i == 0 else ("top" if i == len(stem_ids) - 1 and len(stem_ids) > 2 else f"stage{i}")
        out.append((label, list(params)))
    seen = {n for _, ps in out for n in ps}
    missing = [n for n in names if n not in seen]
    if missing:  # parameters the matcher does not name belong with the top of the network
        out[-1][1].extend(missing)
    return out


def load_state_dict_by_position(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Copy `state_dict` into `model` matching tensors by order, after checking counts and shapes.

    Packaged checkpoints use another implementation's key names; the architectures are the same,
    so order is the mapping. Any count or shape mismatch raises instead of loading silently wrong.
    """
    target = model.state_dict()
    if len(target) != len(state_dict):
        raise ValueError(f"tensor count differs: checkpoint {len(state_dict)}, model {len(target)}")
    mapped = {}
    for (tk, tv), (sk, sv) in zip(target.items(), state_dict.items()):
        if tuple(tv.shape) != tuple(sv.shape):
            raise ValueError(f"shape mismatch: checkpoint {sk} {tuple(sv.shape)} vs model {tk} {tuple(tv.shape)}")
        mapped[tk] = sv
    model.load_state_dict(mapped, strict=True)
