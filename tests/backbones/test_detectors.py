"""Detectors built from a transferkit backbone: every registered architecture, freezing and
parameter groups the strategies drive."""
from __future__ import annotations

import pytest
import torch

from transferkit.backbones.detectors import DETECTORS, build_detector, list_detectors
from transferkit.errors import BackboneUnavailableError, UnknownNameError

SIZE = 64


def batch(n: int = 2):
    torch.manual_seed(0)
    images = torch.rand(n, 3, SIZE, SIZE)
    targets = [{"boxes": torch.tensor([[8.0, 8.0, 40.0, 48.0]]), "labels": torch.tensor([i % 2])} for i in range(n)]
    return images, targets


@pytest.mark.parametrize("architecture", list_detectors())
def test_every_architecture_trains_and_predicts(architecture):
    """Losses in training (finite, with gradients into the new layers), 0-based labels out."""
    model = build_detector("mobilenetv2_100", num_classes=2, architecture=architecture, image_size=SIZE)
    images, targets = batch()
    model.train()
    losses = model(images, targets)
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.new_parameters())
    model.eval()
    outputs = model(images)
    assert len(outputs) == 2 and set(outputs[0]) >= {"boxes", "scores", "labels"}
    for out in outputs:
        assert out["boxes"].shape[1] == 4 and bool(((out["labels"] >= 0) & (out["labels"] < 2)).all())
    assert model.config() == {"architecture": architecture, "backbone": "mobilenetv2_100", "num_classes": 2,
                              "image_size": SIZE, "frozen_stages": 0}
    assert DETECTORS.entry(architecture).info.nms_inside


def test_frozen_stages_stay_put_and_groups_split_lrs():
    model = build_detector("mobilenetv2_100", num_classes=1, image_size=SIZE, frozen_stages=4)
    groups = model.layer_groups()
    frozen = {n for _, names in groups[:4] for n in names}
    params = dict(model.backbone.named_parameters())
    assert all(not params[n].requires_grad for n in frozen)
    assert all(p.requires_grad for n, p in params.items() if n not in frozen)
    model.train()
    assert not model.backbone.bn1.training  # the stem's batch norm keeps its ImageNet statistics
    opt_groups = model.param_groups(lr=0.01)
    assert [g["name"] for g in opt_groups] == ["backbone", "new layers"]
    assert [g["lr"] for g in opt_groups] == [pytest.approx(0.001), 0.01]
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert sorted(map(id, trainable)) == sorted(id(p) for g in opt_groups for p in g["params"])
    before = {n: params[n].detach().clone() for n in frozen}
    running = model.backbone.bn1.running_mean.clone()
    optimizer = torch.optim.SGD(opt_groups, momentum=0.9)
    images, targets = batch()
    for _ in range(2):
        optimizer.zero_grad()
        sum(model(images, [{**t, "labels": torch.zeros(1, dtype=torch.int64)} for t in targets]).values()).backward()
        optimizer.step()
    assert all(torch.equal(before[n], params[n]) for n in frozen)
    assert torch.equal(running, model.backbone.bn1.running_mean)

    model.freeze_stages(-1)  # the head-only strategy
    assert not any(p.requires_grad for p in model.backbone.parameters())
    assert [g["name"] for g in model.param_groups(0.01)] == ["new layers"]


def test_from_scratch_control_has_other_weights():
    pretrained = build_detector("mobilenetv2_100", 1, image_size=SIZE)
    scratch = build_detector("mobilenetv2_100", 1, image_size=SIZE, pretrained=False)
    a, b = (next(iter(m.backbone.parameters())) for m in (pretrained, scratch))
    assert a.shape == b.shape and not torch.equal(a, b)


def test_refusals_name_the_fix():
    with pytest.raises(UnknownNameError, match="fcos"):
        build_detector("mobilenetv2_100", 1, architecture="fcoss")
    with pytest.raises(BackboneUnavailableError, match="feature maps"):
        build_detector("mnist_cnn", 1)


def test_weights_round_trip_through_safetensors(tmp_path):
    """config() + a safetensors state rebuild the same detector (no tensor is stored twice)."""
    from safetensors.torch import load_file, save_file

    model = build_detector("mobilenetv2_100", 2, architecture="fcos", image_size=SIZE, frozen_stages=2).eval()
    save_file(model.state_dict(), tmp_path / "model.safetensors")
    config = model.config()
    again = build_detector(config["backbone"], config["num_classes"], config["architecture"], config["image_size"],
                           config["frozen_stages"], pretrained=False).eval()
    again.load_state_dict(load_file(tmp_path / "model.safetensors"))
    images, _ = batch()
    for a, b in zip(model(images), again(images)):
        assert torch.equal(a["boxes"], b["boxes"]) and torch.equal(a["scores"], b["scores"])


def test_pyramid_on_efficientnet_lite0():
    """The FPN reads EfficientNet-Lite0's stages at strides 8, 16 and 32 (40, 112, 320 channels)."""
    model = build_detector("efficientnet_lite0", 1, architecture="fcos", image_size=SIZE).eval()
    maps = model.detector.backbone(torch.rand(1, 3, SIZE, SIZE))
    assert [tuple(m.shape[-2:]) for m in maps.values()] == [(8, 8), (4, 4), (2, 2), (1, 1), (1, 1)]
    assert {m.shape[1] for m in maps.values()} == {128}
