"""Every registered backbone installed here keeps the contract of `transferkit.testing`: feature
shapes, layer groups, rebuild from its config, a scratch variant (the others skip, saying why).

Generated from `BACKBONES` (as timm's tests/test_models.py from `list_models`). Layer groups are
the one source of gradual unfreezing and discriminative learning rates (`strategies/fine_tune.py`
calls `backbones.layer_groups(model.backbone)`), so they must name every trainable parameter
exactly once, in input → output order.
"""
from __future__ import annotations

from transferkit.backbones import BACKBONES
from transferkit.testing import parametrize_with_checks


@parametrize_with_checks(BACKBONES.names())
def test_registered_backbone(obj, check):
    check(obj)
