"""Strategies own what a run saves: `weights_to_save` and `restore`, called without any task."""
import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from transferkit.backbones import create_backbone
from transferkit.errors import BackboneUnavailableError
from transferkit.models import TransferModel
from transferkit.strategies import STRATEGIES, Strategy
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
    with torch.no_grad():  # trained adapters: lora_B starts at zero, which would hide a lost adapter
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    state = lora.weights_to_save(model, settings)
    assert lora.saved_weights == "adapter" and state
    assert all("lora_" in k or k.startswith("heads.") for k in state)
    assert {k for k in model.state_dict() if "lora_" in k or k.startswith("heads.")} == set(state)
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "model.safetensors"))

    again = lora.restore(backbone.to_config(), settings, load_file(str(tmp_path / "model.safetensors")), _build,
                         tmp_path)
    tokens = backbone.tokenizer(["the film was wonderful", "the meal was awful"], padding=True, return_tensors="pt")
    model.eval(), again.eval()
    with torch.no_grad():
        torch.testing.assert_close(again(dict(tokens)), model(dict(tokens)), atol=1e-6, rtol=0)


def test_the_default_hooks_save_the_whole_model_and_rebuild_it_from_the_run(tmp_path):
    backbone = create_backbone("scratch:efficientnet_lite0")
    model = _build(backbone.model, backbone.num_features)
    state = Strategy.weights_to_save(model, {})
    assert Strategy.saved_weights == "full" and state.keys() == model.state_dict().keys()
    again = Strategy.restore(backbone.to_config(), {}, state, _build, tmp_path)
    x = torch.randn(2, 3, 32, 32)
    model.eval(), again.eval()
    with torch.no_grad():
        torch.testing.assert_close(again(x), model(x), atol=0, rtol=0)
