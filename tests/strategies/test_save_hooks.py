"""Strategies own what a run saves: `weights_to_save` and `restore`, called without any task."""
import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from transferkit.backbones import create_backbone
from transferkit.backbones.patchtst import SMALL, patchtst_backbone
from transferkit.errors import BackboneUnavailableError, TransferkitError
from transferkit.models import TransferModel
from transferkit.strategies import STRATEGIES, Strategy
from transferkit.strategies.base import FitData, TrainSettings
from transferkit.strategies.lora import inject_lora, lora_targets


def _build(body: nn.Module, num_features: int) -> TransferModel:
    return TransferModel(body, nn.Linear(num_features, 2))


def test_lora_saves_adapters_and_heads_and_restores_identical_predictions(tmp_path):
    try:
        backbone = create_backbone("all-minilm-l6-v2", modality="text")
    except BackboneUnavailableError as exc:
        pytest.skip(str(exc))
    lora = STRATEGIES.get("lora")
    settings = {"r": 4, "alpha": 8, "dropout": 0.0, "targets": lora_targets(backbone.model), "weights": "adapter"}
    torch.manual_seed(0)
    model = _build(inject_lora(backbone.model, settings), backbone.num_features)
    _perturb_adapters(model)
    state = lora.weights_to_save(model, settings)
    assert lora.saved_weights(settings) == "adapter" and state
    assert all("lora_" in k or k.startswith("heads.") for k in state)
    assert {k for k in model.state_dict() if "lora_" in k or k.startswith("heads.")} == set(state)
    again = lora.restore(backbone.to_config(), settings, _save_and_read(state, tmp_path), _build, tmp_path)
    tokens = backbone.tokenizer(["the film was wonderful", "the meal was awful"], padding=True, return_tensors="pt")
    model.eval(), again.eval()
    with torch.no_grad():
        torch.testing.assert_close(again(dict(tokens)), model(dict(tokens)), atol=1e-6, rtol=0)


def test_the_default_hooks_save_the_whole_model_and_rebuild_it_from_the_run(tmp_path):
    backbone = create_backbone("scratch:efficientnet_lite0")
    model = _build(backbone.model, backbone.num_features)
    state = Strategy.weights_to_save(model, {})
    assert Strategy.saved_weights({}) == "full" and state.keys() == model.state_dict().keys()
    again = Strategy.restore(backbone.to_config(), {}, state, _build, tmp_path)
    x = torch.randn(2, 3, 32, 32)
    model.eval(), again.eval()
    with torch.no_grad():
        torch.testing.assert_close(again(x), model(x), atol=0, rtol=0)


def _perturb_adapters(model: nn.Module) -> None:
    """Trained adapters: lora_B starts at zero, which would hide an adapter lost on reload."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)


def _save_and_read(state: dict, tmp_path) -> dict:
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "model.safetensors"))
    return load_file(str(tmp_path / "model.safetensors"))


def test_lora_on_a_base_without_pretrained_weights_saves_the_whole_model_and_reloads_it_identically(tmp_path):
    # a random patchtst-small base resized by the run (lookback 32, not the default): neither its
    # weights nor its shape can be rebuilt from the name, so the whole model is saved
    backbone = patchtst_backbone("patchtst-small", {**SMALL, "lookback": 32})
    assert backbone.meta["pretrained"] is False
    lora = STRATEGIES.get("lora")
    settings = {"r": 4, "alpha": 8, "dropout": 0.0, "targets": lora_targets(backbone.model), "weights": "full"}
    torch.manual_seed(0)
    model = _build(inject_lora(backbone.model, settings), backbone.num_features)
    _perturb_adapters(model)
    state = lora.weights_to_save(model, settings)
    assert lora.saved_weights(settings) == "full" and state.keys() == model.state_dict().keys()
    assert any("lora_" in k for k in state)

    torch.manual_seed(1)  # a different random base: only the saved tensors may make the reload match
    again = lora.restore(backbone.to_config(), settings, _save_and_read(state, tmp_path), _build, tmp_path)
    x = torch.randn(2, 32, 3)
    model.eval(), again.eval()
    with torch.no_grad():
        torch.testing.assert_close(again(x), model(x), atol=0, rtol=0)


def test_lora_on_a_pretrained_cnn_adapts_its_pointwise_convolutions_and_saves_adapters_only(tmp_path):
    try:
        backbone = create_backbone("efficientnet_lite0")
    except BackboneUnavailableError as exc:
        pytest.skip(str(exc))
    lora = STRATEGIES.get("lora")
    settings = {"r": 4, "alpha": 8, "dropout": 0.0, "targets": lora_targets(backbone.model), "weights": "adapter"}
    assert settings["targets"] == ["conv_pw", "conv_pwl"]
    torch.manual_seed(0)
    model = _build(inject_lora(backbone.model, settings), backbone.num_features)
    _perturb_adapters(model)
    adapted = {name.rsplit(".", 1)[0] for name, _ in model.named_parameters() if "lora_A" in name}
    pointwise = {name for name, m in create_backbone("efficientnet_lite0").model.named_modules()
                 if name.rsplit(".", 1)[-1] in ("conv_pw", "conv_pwl")}
    assert {name.removeprefix("backbone.").removesuffix(".lora_A.default") for name in adapted} == pointwise
    trainable = sum(p.numel() for n, p in model.backbone.named_parameters() if "lora_" in n)
    assert trainable < 0.05 * sum(p.numel() for p in model.backbone.parameters())

    state = lora.weights_to_save(model, settings)
    assert lora.saved_weights(settings) == "adapter"
    assert set(state) == {k for k in model.state_dict() if "lora_" in k or k.startswith("heads.")}
    again = lora.restore(backbone.to_config(), settings, _save_and_read(state, tmp_path), _build, tmp_path)
    x = torch.randn(2, 3, 64, 64)
    model.eval(), again.eval()
    with torch.no_grad():
        torch.testing.assert_close(again(x), model(x), atol=0, rtol=0)


class _Blocks(nn.Module):
    """Layers named like timm's pointwise convolutions, some of which LoRA must not adapt."""

    def __init__(self, pw_groups: int = 1, pwl_kernel: int = 1) -> None:
        super().__init__()
        self.conv_pw = nn.Conv2d(8, 16, 1, groups=pw_groups)
        self.conv_dw = nn.Conv2d(16, 16, 3, padding=1, groups=16)
        self.conv_pwl = nn.Conv2d(16, 8, pwl_kernel, padding=pwl_kernel // 2)


def test_lora_targets_only_1x1_convolutions_with_one_group():
    assert lora_targets(_Blocks()) == ["conv_pw", "conv_pwl"]
    assert lora_targets(_Blocks(pw_groups=2)) == ["conv_pwl"]  # a grouped conv_pw is not a projection
    assert lora_targets(_Blocks(pwl_kernel=3)) == ["conv_pw"]
    with pytest.raises(TransferkitError, match="1×1 convolutions with groups=1"):
        lora_targets(_Blocks(pw_groups=2, pwl_kernel=3))
    with pytest.raises(TransferkitError):  # a depthwise convolution, even when asked for by name
        lora_targets(_Blocks(), ["conv_dw"])


@pytest.mark.parametrize(("pretrained", "saved"), [(True, "adapters and head only"), (False, "the whole model")])
def test_the_lora_plan_says_which_weights_a_run_saves(pretrained, saved):
    data = FitData(train=[], train_plain=[], val=[], num_classes=2, pretrained=pretrained)
    lines = STRATEGIES.get("lora")().plan(data, TrainSettings(epochs=1))
    assert any(decision.startswith(f"weights saved: {saved}") for decision, _ in lines)
