"""The modules an export traces: a run's model with what `predict` does around it moved inside.

Images: normalisation with the backbone's mean and deviation, the flip average when the run
predicts with it, softmax. Text: the encoder on token ids and attention mask, softmax.
Forecasts: the run's standardisation before the model and its inverse after it. LoRA adapters
are merged into the layers they adapt first, so the graph holds plain convolutions and matrix
products (nothing of peft).
"""
from __future__ import annotations

import copy
import io
import warnings
from contextlib import redirect_stdout
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

#: The ONNX opset exports are written in (13 at least for per-channel QDQ; 17 adds LayerNormalization).
OPSET = 17


def merged_copy(model: nn.Module) -> nn.Module:
    """A copy of `model` in eval mode with every LoRA adapter merged into its base layer and the
    adapter wrappers replaced by those layers (the run's model is left as it is)."""
    model = copy.deepcopy(model).eval()
    try:
        from peft.tuners.lora import LoraLayer
    except ImportError:  # no peft: no run here can hold adapters
        return model
    for name, module in list(model.named_modules()):
        if isinstance(module, LoraLayer):
            module.merge()
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, child, module.get_base_layer())
    return model


class _StaticPadConv(nn.Module):
    """A TF-"same" convolution with its padding fixed for one input size: the pads are constants of
    the graph instead of arithmetic on the input's shape (which int8 quantisation would round)."""

    def __init__(self, conv: nn.Conv2d, pads: tuple[int, int, int, int]) -> None:
        super().__init__()
        self.conv, self.pads = conv, pads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.conv
        return nn.functional.conv2d(nn.functional.pad(x, self.pads), c.weight, c.bias, c.stride, 0, c.dilation,
                                    c.groups)


def static_same_padding(model: nn.Module, example: torch.Tensor) -> nn.Module:
    """`model` (changed in place) with timm's dynamic-"same"-padding convolutions (`Conv2dSame`, in the
    TF ports such as tf_efficientnet_lite0) replaced by fixed padding for inputs like `example`:
    the same result at that size (zeros padded the same way), and a graph without shape arithmetic."""
    try:
        from timm.layers import Conv2dSame
        from timm.layers.padding import get_same_padding
    except ImportError:
        return model
    sizes: dict[str, tuple[int, int]] = {}
    hooks = [m.register_forward_pre_hook(lambda m, args, name=name: sizes.__setitem__(name, tuple(args[0].shape[-2:])))
             for name, m in model.named_modules() if isinstance(m, Conv2dSame)]
    try:
        with torch.no_grad():
            model(example)
    finally:
        for hook in hooks:
            hook.remove()
    for name, (h, w) in sizes.items():
        conv = model.get_submodule(name)
        pad_h = get_same_padding(h, conv.kernel_size[0], conv.stride[0], conv.dilation[0])
        pad_w = get_same_padding(w, conv.kernel_size[1], conv.stride[1], conv.dilation[1])
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, child,
                _StaticPadConv(conv, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2)))
    return model


class ImageGraph(nn.Module):
    """Pixels in [0, 1] (N, 3, H, W) → class probabilities per head: normalised here, averaged over
    the image and its mirror image when `tta` (one pass over both, as a batch of 2N)."""

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float], tta: bool,
                 heads: Sequence[str] | None = None) -> None:
        super().__init__()
        self.model, self.tta, self.heads = model, bool(tta), list(heads or [])
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = (pixels - self.mean) / self.std
        if self.tta:
            x = torch.cat([x, torch.flip(x, dims=[3])])
        outputs = self.model.forward_heads(x) if self.heads else {"": self.model(x)}
        probabilities = []
        for head in self.heads or [""]:
            logits = outputs[head]
            if self.tta:  # the mean of the two halves' logits, as the estimator's flip average
                logits = logits.reshape(2, -1, logits.shape[-1]).mean(0)
            probabilities.append(torch.softmax(logits, dim=1))
        return tuple(probabilities)


class TextGraph(nn.Module):
    """Token ids and attention mask (int64, N × T) → class probabilities per head."""

    def __init__(self, model: nn.Module, heads: Sequence[str] | None = None) -> None:
        super().__init__()
        self.model, self.heads = model, list(heads or [])

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        batch = {"input_ids": input_ids, "attention_mask": attention_mask}
        outputs = self.model.forward_heads(batch) if self.heads else {"": self.model(batch)}
        return tuple(torch.softmax(outputs[head], dim=1) for head in self.heads or [""])


def _patchify_by_index(self, x: torch.Tensor) -> torch.Tensor:
    """`PatchTSTEncoder.patchify` as a gather of constant indices instead of `unfold` (the same
    values), which the TorchScript exporter converts with a dynamic batch."""
    z = x.transpose(1, 2)
    if self.padding_end:
        z = torch.cat([z, z[..., -1:].expand(*z.shape[:-1], self.stride)], dim=-1)
    index = torch.arange(self.n_patches)[:, None] * self.stride + torch.arange(self.patch_len)[None, :]
    return z[..., index]


class ForecastGraph(nn.Module):
    """History (N, lookback, C) in the series' units → forecast (N, horizon, C) in the same units:
    the run's standardisation (training-segment mean and deviation) applied and undone here."""

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        import types

        from ..backbones.patchtst import PatchTSTEncoder

        for module in model.modules():  # on the export's own copy of the model
            if isinstance(module, PatchTSTEncoder):
                module.patchify = types.MethodType(_patchify_by_index, module)
        self.model = model
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, 1, -1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, 1, -1))

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        return self.model((history - self.mean) / self.std) * self.std + self.mean


def write_onnx(module: nn.Module, example: tuple[torch.Tensor, ...], path: Path, inputs: list[str],
               outputs: list[str], dynamic: dict[str, dict[int, str]]) -> str:
    """Trace `module` on `example` into an ONNX file at `path` (opset `OPSET`, the axes in `dynamic`
    left symbolic); returns the exporter used.

    The TorchScript-based exporter (`dynamo=False`) is tried first: on these models it gives the
    same graphs and correct dynamic axes as the dynamo exporter, exports in about a second instead
    of 15-20 s (EfficientNet-Lite0 on one core), and its graphs quantise as onnxruntime's tools
    expect. Where it cannot convert an operator (PatchTST's `unfold` with a dynamic batch), or
    where torch no longer has it, the dynamo exporter takes over.
    """
    module = module.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the deprecation notice of the TorchScript exporter, tracer hints
        try:
            torch.onnx.export(module, example, str(path), input_names=inputs, output_names=outputs,
                              dynamic_axes=dynamic, opset_version=OPSET, dynamo=False, do_constant_folding=True)
            return "torchscript"
        except Exception as exc:  # an operator it cannot convert (PatchTST's unfold on a dynamic batch), or gone
            legacy = exc
        try:
            with redirect_stdout(io.StringIO()):  # the dynamo exporter prints its progress
                torch.onnx.export(module, example, str(path), input_names=inputs, output_names=outputs,
                                  dynamic_axes=dynamic, opset_version=max(OPSET, 18), dynamo=True,
                                  external_data=False)
        except Exception:
            raise legacy from None
        return "dynamo"
