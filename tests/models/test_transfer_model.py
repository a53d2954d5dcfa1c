"""TransferModel: one backbone, named heads (one by default) that strategies and tasks can add or grow."""
import pytest
import torch
from torch import nn

from transferkit.models import DEFAULT_HEAD, TransferModel


def _model() -> TransferModel:
    torch.manual_seed(0)
    return TransferModel(nn.Sequential(nn.Linear(4, 8), nn.ReLU()), nn.Linear(8, 3))


def test_one_head_by_default_and_forward_runs_it():
    model = _model()
    x = torch.randn(5, 4)
    assert list(model.heads) == [DEFAULT_HEAD] and model.head is model.heads[DEFAULT_HEAD]
    assert torch.equal(model(x), model.head(model.backbone(x)))
    assert sorted(model.state_dict()) == ["backbone.0.bias", "backbone.0.weight",
                                          f"heads.{DEFAULT_HEAD}.bias", f"heads.{DEFAULT_HEAD}.weight"]


def test_added_heads_share_one_backbone_pass():
    model = _model()
    model.add_head("domain", nn.Linear(8, 2))
    calls = []
    model.backbone.register_forward_hook(lambda *args: calls.append(1))
    out = model.forward_heads(torch.randn(5, 4))
    assert {k: tuple(v.shape) for k, v in out.items()} == {DEFAULT_HEAD: (5, 3), "domain": (5, 2)}
    assert len(calls) == 1
    assert model(torch.randn(2, 4), head="domain").shape == (2, 2)


def test_growing_the_default_head_keeps_the_backbone():
    model = _model()
    backbone_before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    model.head = nn.Linear(8, 4)  # a fifth... here a fourth class
    assert model(torch.randn(2, 4)).shape == (2, 4)
    assert all(torch.equal(backbone_before[k], v) for k, v in model.backbone.state_dict().items())


def test_a_default_head_that_is_not_among_the_heads_is_refused():
    with pytest.raises(ValueError, match="default head 'x'"):
        TransferModel(nn.Identity(), {"a": nn.Identity()}, default_head="x")
