"""Every registered backbone installed here: feature shapes, layer groups, rebuild from its config.

Generated from `BACKBONES` (as timm's tests/test_models.py from `list_models`). Layer groups are
the one source of gradual unfreezing and discriminative learning rates (`strategies/fine_tune.py`
calls `backbones.layer_groups(model.backbone)`), so they must name every trainable parameter
exactly once, in input → output order.
"""
from __future__ import annotations

import pytest
import torch

from transferkit.backbones import create_backbone, layer_groups
from transferkit.backbones.hub import SCRATCH_PREFIX
from transferkit.backbones.run_dir import build_architecture

from .conftest import backbone_cases, backbone_modality, tiny_batch


@pytest.fixture(scope="module")
def backbones():
    """Each backbone created once per module (loading weights is the slow part)."""
    cache = {}

    def get(name: str):
        if name not in cache:
            cache[name] = create_backbone(name)
        return cache[name]

    return get


@pytest.mark.parametrize("name", backbone_cases())
def test_forward_gives_features_of_the_documented_shape(name, backbones):
    backbone = backbones(name)
    assert backbone.modality == backbone_modality(name)
    x, shape = tiny_batch(backbone)
    with torch.inference_mode():
        features = backbone.model.eval()(x)
    assert tuple(features.shape) == shape
    assert torch.isfinite(features).all()


@pytest.mark.parametrize("name", backbone_cases())
def test_layer_groups_partition_the_trainable_parameters_input_to_output(name, backbones):
    model = backbones(name).model
    assert hasattr(model, "group_matcher"), "without a timm-style group_matcher every layer is one group"
    groups = layer_groups(model)
    assert groups == backbones(name).layer_groups()
    assert len(groups) >= 2 and all(params for _, params in groups), [(label, len(p)) for label, p in groups]
    named = [n for n, _ in groups]
    assert len(set(named)) == len(named), f"group labels repeat: {named}"
    flat = [p for _, params in groups for p in params]
    assert len(flat) == len(set(flat)), "a parameter is in two groups"
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert set(flat) == set(trainable), (sorted(set(trainable) - set(flat))[:5], sorted(set(flat) - set(trainable))[:5])
    # input → output: registration order (named_parameters) runs from the input, and each group
    # starts after the previous one ends; a parameter out of place would unfreeze at the wrong time
    position = {n: i for i, n in enumerate(trainable)}
    spans = [(label, min(position[p] for p in params), max(position[p] for p in params)) for label, params in groups]
    for (before, _, end), (after, start, _) in zip(spans, spans[1:]):
        assert end < start, f"group {before!r} ends at parameter {trainable[end]!r}, after {after!r} starts " \
                            f"at {trainable[start]!r}"


@pytest.mark.parametrize("name", backbone_cases())
def test_config_rebuilds_the_same_architecture(name, backbones):
    """What a run directory relies on: `to_config()` alone rebuilds the network, tensor for tensor."""
    backbone = backbones(name)
    rebuilt = build_architecture(backbone.to_config())
    assert {k: tuple(v.shape) for k, v in rebuilt.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in backbone.model.state_dict().items()}


@pytest.mark.parametrize("name", backbone_cases())
def test_scratch_variant_is_the_same_architecture_without_pretraining(name, backbones):
    backbone = backbones(name)
    scratch = create_backbone(SCRATCH_PREFIX + name)
    assert scratch.meta.get("pretrained") is False
    assert (scratch.architecture, scratch.modality, scratch.num_features) == \
        (backbone.architecture, backbone.modality, backbone.num_features)
    assert [n for n, _ in layer_groups(scratch.model)] == [n for n, _ in layer_groups(backbone.model)]
    ours, theirs = scratch.model.state_dict(), backbone.model.state_dict()
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}
    if backbone.meta.get("pretrained", True):
        assert any(not torch.equal(ours[k], theirs[k]) for k in ours if ours[k].is_floating_point())
    x, shape = tiny_batch(scratch)
    with torch.inference_mode():
        assert tuple(scratch.model.eval()(x).shape) == shape
