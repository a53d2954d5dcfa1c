"""PatchTST: shapes, patching, RevIN, channel independence, layer groups, rebuild from config."""
from __future__ import annotations

import json

import pytest
import torch
from timm.models import group_parameters

from transferkit.backbones.patchtst import (
    ForecastHead, ForecastModel, PatchTSTEncoder, build_patchtst, num_patches, patchtst_forecaster,
)

SMALL = dict(lookback=48, patch_len=16, stride=8, d_model=16, n_heads=4, n_layers=2, d_ff=32)


def test_patch_count_matches_the_paper():
    assert num_patches(336, 16, 8) == 42  # PatchTST/42 in the paper's notation
    assert num_patches(512, 16, 8) == 64
    assert num_patches(336, 16, 8, padding_end=False) == 41


def test_shapes_and_end_padding():
    encoder = PatchTSTEncoder(**SMALL)
    x = torch.randn(3, 48, 5)
    patches = encoder.patchify(x)
    assert patches.shape == (3, 5, encoder.n_patches, 16)
    assert torch.equal(patches[0, 0, -1, -8:], x[0, -1, 0].expand(8))  # padded by the last value
    assert torch.equal(patches[1, 2, 1], x[1, 8:24, 2])
    features = encoder(x)
    assert features.shape == (3, 5, encoder.num_features) == (3, 5, 6 * 16)
    model = ForecastModel(encoder, ForecastHead(encoder.num_features, horizon=12))
    assert model(x).shape == (3, 12, 5)
    with pytest.raises(ValueError, match="expected 48 time steps"):
        encoder(torch.randn(1, 40, 5))


def test_channels_are_independent_and_revin_undoes_scale_and_level():
    torch.manual_seed(0)
    model = patchtst_forecaster(horizon=12, **SMALL).eval()
    x = torch.randn(2, 48, 3)
    y = model(x)
    changed = x.clone()
    changed[..., 1] = changed[..., 1] * 5 + 3
    y2 = model(changed)
    assert torch.allclose(y[..., [0, 2]], y2[..., [0, 2]], atol=1e-5)  # other channels unaffected
    assert torch.allclose(y2[..., 1], y[..., 1] * 5 + 3, atol=1e-3)  # RevIN: affine equivariance


def test_group_matcher_gives_input_to_output_groups():
    encoder = PatchTSTEncoder(**{**SMALL, "n_layers": 3})
    groups = group_parameters(encoder, encoder.group_matcher(coarse=True))
    ordered = [groups[k] for k in sorted(groups)]
    assert len(ordered) == 4
    assert set(ordered[0]) == {"pos", "patch_embed.weight", "patch_embed.bias"}
    for i, names in enumerate(ordered[1:]):
        assert names and all(n.startswith(f"layers.{i}.") for n in names)
    assert sorted(n for g in ordered for n in g) == sorted(n for n, _ in encoder.named_parameters())


def test_rebuild_from_json_config_gives_the_same_network():
    torch.manual_seed(0)
    encoder = PatchTSTEncoder(**SMALL, norm="layer").eval()
    config = json.loads(json.dumps(encoder.config))
    assert config["lookback"] == 48 and config["norm"] == "layer"
    rebuilt = build_patchtst(config).eval()
    rebuilt.load_state_dict(encoder.state_dict())
    x = torch.randn(2, 48, 2)
    assert torch.equal(rebuilt(x), encoder(x))


def test_learns_a_sine_in_a_few_steps():
    torch.manual_seed(0)
    t = torch.arange(2000, dtype=torch.float32)
    series = torch.sin(2 * torch.pi * t / 24)[:, None]
    starts = torch.randint(0, 2000 - 60, (64,))
    x = torch.stack([series[s:s + 48] for s in starts])
    y = torch.stack([series[s + 48:s + 60] for s in starts])
    model = patchtst_forecaster(horizon=12, **SMALL, dropout=0.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        loss = torch.nn.functional.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]
