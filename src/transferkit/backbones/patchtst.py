"""PatchTST (Nie et al., ICLR 2023): a channel-independent patch Transformer for forecasting.

Follows the reference implementation (github.com/yuqinie98/PatchTST, `PatchTST_backbone.py`):
RevIN instance normalisation, patches of 16 steps with stride 8 and the series end padded by
repeating its last value (`padding_patch="end"`), a linear patch embedding plus a learnable
positional encoding, a post-norm Transformer encoder with residual attention scores and
batch normalisation, and a flatten head. Channels share every weight and are processed as
independent univariate series, which is what lets one model transfer across data sets with
different numbers of channels.

Split for transfer: `PatchTSTEncoder` (normalised series → per-channel features) is the
backbone, `ForecastHead` (features → horizon) is the task head, `ForecastModel` wraps both
between RevIN normalisation and de-normalisation.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..models import TransferModel
from .run_dir import ModelFamily

#: Defaults of the paper's PatchTST/64 on the larger data sets; for ETTh1/ETTh2 the authors use
#: d_model=16, n_heads=4, d_ff=128, dropout=0.3 (see benchmarks/etth1.py).
DEFAULTS: dict[str, Any] = {
    "lookback": 336, "patch_len": 16, "stride": 8, "padding_end": True, "d_model": 128, "n_heads": 16,
    "n_layers": 3, "d_ff": 256, "dropout": 0.2, "attn_dropout": 0.0, "norm": "batch", "res_attention": True,
}


def num_patches(lookback: int, patch_len: int, stride: int, padding_end: bool = True) -> int:
    """Patches per series: floor((L - P) / S) + 1, plus one when the end is padded by `stride`."""
    if lookback < patch_len:
        raise ValueError(f"lookback {lookback} is shorter than one patch ({patch_len} steps)")
    return (lookback - patch_len) // stride + 1 + int(padding_end)


class RevIN(nn.Module):
    """Reversible instance normalisation (Kim et al., 2022): each input window is z-scored with its
    own mean/std over time, and the forecast is mapped back, which removes level shifts between
    windows (and between data sets). `affine=False` as in the PatchTST scripts."""

    def __init__(self, num_channels: int = 1, affine: bool = False, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.affine = affine
        if affine:  # per-channel scale/shift ties the model to one channel count
            self.weight = nn.Parameter(torch.ones(num_channels))
            self.bias = nn.Parameter(torch.zeros(num_channels))

    def normalize(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """x (B, L, C) → normalised x and the (mean, std) needed to undo it."""
        mean = x.mean(dim=1, keepdim=True).detach()
        std = torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + self.eps).detach()
        z = (x - mean) / std
        if self.affine:
            z = z * self.weight + self.bias
        return z, (mean, std)

    def denormalize(self, y: torch.Tensor, stats: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        mean, std = stats
        if self.affine:
            y = (y - self.bias) / (self.weight + self.eps * self.eps)
        return y * std + mean


class _BatchNormTokens(nn.Module):
    """BatchNorm1d over d_model for (N, tokens, d_model) inputs."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.transpose(1, 2)).transpose(1, 2)


def _norm(kind: str, d_model: int) -> nn.Module:
    if kind == "batch":
        return _BatchNormTokens(d_model)
    if kind == "layer":
        return nn.LayerNorm(d_model)
    raise ValueError(f"norm must be 'batch' or 'layer', not {kind!r}")


class ResidualAttention(nn.Module):
    """Multi-head self-attention whose pre-softmax scores are added to the next layer's
    (RealFormer-style "residual attention", on by default in the reference PatchTST)."""

    def __init__(self, d_model: int, n_heads: int, attn_dropout: float = 0.0, dropout: float = 0.0) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model {d_model} is not divisible by n_heads {n_heads}")
        self.n_heads, self.head_dim = n_heads, d_model // n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.attn_dropout = nn.Dropout(attn_dropout)
        self.out = nn.Sequential(nn.Linear(d_model, d_model), nn.Dropout(dropout))
        self.scale = self.head_dim ** -0.5

    def forward(self, x: torch.Tensor, prev: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        n, t, d = x.shape
        q, k, v = self.qkv(x).view(n, t, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        scores = (q @ k.transpose(-2, -1)) * self.scale  # (N, heads, T, T)
        if prev is not None:
            scores = scores + prev
        attn = self.attn_dropout(torch.softmax(scores, dim=-1))
        out = (attn @ v).transpose(1, 2).reshape(n, t, d)
        return self.out(out), scores


class EncoderLayer(nn.Module):
    """Post-norm Transformer layer: x + attention → norm → x + feed-forward (GELU) → norm."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float, attn_dropout: float, norm: str,
                 res_attention: bool) -> None:
        super().__init__()
        self.res_attention = res_attention
        self.attn = ResidualAttention(d_model, n_heads, attn_dropout, dropout)
        self.drop_attn = nn.Dropout(dropout)
        self.norm_attn = _norm(norm, d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Dropout(dropout), nn.Linear(d_ff, d_model))
        self.drop_ff = nn.Dropout(dropout)
        self.norm_ff = _norm(norm, d_model)

    def forward(self, x: torch.Tensor, prev: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        out, scores = self.attn(x, prev if self.res_attention else None)
        x = self.norm_attn(x + self.drop_attn(out))
        x = self.norm_ff(x + self.drop_ff(self.ff(x)))
        return x, (scores if self.res_attention else None)


class PatchTSTEncoder(nn.Module):
    """Normalised series (B, L, C) → per-channel features (B, C, n_patches * d_model).

    Every channel is encoded independently with shared weights. `config` holds every
    hyperparameter (lookback included) so `build_patchtst(config)` rebuilds the network.

    Normalisation layers are BatchNorm by default, as in the paper: Zerveas et al. (2021) and the
    PatchTST ablations found it better than LayerNorm for time-series Transformers, since
    outlier steps do not dominate a token's statistics; the published ETTh1 figures use it. With
    RevIN in front, every window reaches the encoder on the same scale, so the running statistics
    carry over to a new data set (fine-tuning may keep them frozen). `norm="layer"` avoids batch
    statistics altogether, for very small fine-tuning batches.
    """

    def __init__(self, lookback: int = DEFAULTS["lookback"], patch_len: int = DEFAULTS["patch_len"],
                 stride: int = DEFAULTS["stride"], padding_end: bool = DEFAULTS["padding_end"],
                 d_model: int = DEFAULTS["d_model"], n_heads: int = DEFAULTS["n_heads"],
                 n_layers: int = DEFAULTS["n_layers"], d_ff: int = DEFAULTS["d_ff"],
                 dropout: float = DEFAULTS["dropout"], attn_dropout: float = DEFAULTS["attn_dropout"],
                 norm: str = DEFAULTS["norm"], res_attention: bool = DEFAULTS["res_attention"]) -> None:
        super().__init__()
        self.config = {
            "architecture": "patchtst", "lookback": int(lookback), "patch_len": int(patch_len),
            "stride": int(stride), "padding_end": bool(padding_end), "d_model": int(d_model),
            "n_heads": int(n_heads), "n_layers": int(n_layers), "d_ff": int(d_ff), "dropout": float(dropout),
            "attn_dropout": float(attn_dropout), "norm": norm, "res_attention": bool(res_attention),
        }
        self.lookback, self.patch_len, self.stride = int(lookback), int(patch_len), int(stride)
        self.padding_end = bool(padding_end)
        self.n_patches = num_patches(lookback, patch_len, stride, padding_end)
        self.d_model = int(d_model)
        self.num_features = self.n_patches * self.d_model
        self.patch_embed = nn.Linear(patch_len, d_model)
        # learnable positional encoding, initialised as in the reference (`pe="zeros"`, uniform ±0.02)
        self.pos = nn.Parameter(torch.empty(self.n_patches, d_model).uniform_(-0.02, 0.02))
        self.pos_drop = nn.Dropout(dropout)
        self.layers = nn.ModuleList(
            EncoderLayer(d_model, n_heads, d_ff, dropout, attn_dropout, norm, res_attention) for _ in range(n_layers)
        )

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, C) → (B, C, n_patches, patch_len); the end is padded by repeating the last value."""
        if x.shape[1] != self.lookback:
            raise ValueError(f"expected {self.lookback} time steps, got {x.shape[1]}")
        z = x.transpose(1, 2)  # (B, C, L)
        if self.padding_end:
            z = torch.cat([z, z[..., -1:].expand(*z.shape[:-1], self.stride)], dim=-1)
        return z.unfold(-1, self.patch_len, self.stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, c = x.shape
        patches = self.patchify(x)  # (B, C, P, patch_len)
        z = self.patch_embed(patches).reshape(b * c, self.n_patches, self.d_model)
        z = self.pos_drop(z + self.pos)
        scores = None
        for layer in self.layers:
            z, scores = layer(z, scores)
        return z.reshape(b, c, self.num_features)

    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        """timm-style layer groups (input → output): patch embedding and positions, then each layer."""
        return {"stem": r"^(?:patch_embed|pos)\b", "blocks": r"^layers\.(\d+)"}


class ForecastHead(nn.Module):
    """Flatten head: per-channel features (B, C, F) → forecasts (B, C, horizon), one linear map
    shared by all channels (the reference `Flatten_Head` with `individual=False`)."""

    def __init__(self, num_features: int, horizon: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.horizon = int(horizon)
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(num_features, horizon)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear(self.dropout(features))


class ForecastModel(TransferModel):
    """RevIN → backbone → head → inverse RevIN: (B, L, C) → (B, horizon, C).

    A `TransferModel`, so strategies freeze, group and train `.backbone` and `.head` the same way
    as for images and text; RevIN has no parameters (affine off), so it belongs to neither.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, revin: bool = True) -> None:
        super().__init__(backbone, head)
        self.revin = RevIN() if revin else None

    def probe_pairs(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(features, targets) rows for fitting the head's linear layer in closed form: one row per
        (window, channel), targets on the RevIN-normalised scale the head predicts in."""
        stats = None
        if self.revin is not None:
            x, stats = self.revin.normalize(x)
            y = (y - stats[0]) / stats[1]
        features = self.backbone(x)  # (B, C, F)
        return features.reshape(-1, features.shape[-1]), y.transpose(1, 2).reshape(-1, y.shape[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stats = None
        if self.revin is not None:
            x, stats = self.revin.normalize(x)
        y = self.head(self.backbone(x)).transpose(1, 2).contiguous()  # (B, H, C)
        return y if stats is None else self.revin.denormalize(y, stats)


def build_patchtst(config: dict[str, Any]) -> PatchTSTEncoder:
    """Rebuild an encoder from its `config` (extra keys such as `architecture` are ignored)."""
    known = set(DEFAULTS)
    return PatchTSTEncoder(**{k: v for k, v in config.items() if k in known})


def patchtst_forecaster(horizon: int, head_dropout: float = 0.0, **config: Any) -> ForecastModel:
    """A fresh (randomly initialised) PatchTST forecaster: encoder + flatten head inside RevIN."""
    encoder = build_patchtst({**DEFAULTS, **config})
    return ForecastModel(encoder, ForecastHead(encoder.num_features, horizon, head_dropout))



# --------------------------------------------------------------------------- registry
#: The authors' configuration for the small ETT data sets (scripts/PatchTST/etth1.sh): on a CPU
#: it trains ~7× faster per step than the d_model=128 default, and matches it on ETTh1.
SMALL = {**DEFAULTS, "d_model": 16, "n_heads": 4, "d_ff": 128, "dropout": 0.3}


@dataclass
class SeriesPreprocessing:
    """What a time-series encoder reads: windows of `lookback` steps, standardised per window (RevIN)."""

    lookback: int = DEFAULTS["lookback"]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def patchtst_backbone(name: str, config: dict[str, Any], source: str | None = None):
    """A Backbone around a (new, randomly initialised) PatchTST encoder built from `config`."""
    from .base import Backbone

    encoder = build_patchtst(config)
    return Backbone(
        name=name, architecture="patchtst", model=encoder,
        preprocessing=SeriesPreprocessing(encoder.lookback),
        source=source or "no pretrained weights: trained from scratch here; pass this run as --backbone "
                         "to transfer it to another series",
        meta={"pretrained": False}, modality="timeseries", family="patchtst", arch_config=encoder.config,
    )


def load_patchtst_small():
    """The registered `patchtst-small` backbone (untrained)."""
    return patchtst_backbone("patchtst-small", SMALL)


def load_patchtst():
    """The registered `patchtst` backbone (untrained)."""
    return patchtst_backbone("patchtst", DEFAULTS)


def _build(info: dict, run_dir: Path) -> nn.Module:
    return build_patchtst(info["arch_config"])


def _restore(info: dict, run_dir: Path):
    return SeriesPreprocessing(**info["preprocessing"]), None


FAMILY = ModelFamily(_build, _restore)  # how run directories rebuild PatchTST (backbones/run_dir.py)
