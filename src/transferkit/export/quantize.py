"""int8 with onnxruntime's quantisation tools, and the layers a variant leaves in float.

CNNs: static QDQ (quantise/dequantise pairs around int8 weights and activations), weights per
output channel, activation ranges calibrated (min/max) on images of the run's training split.
Transformers (text encoders, PatchTST): dynamic quantisation of the matrix products and
embeddings (weights int8, activations quantised per batch at run time), which needs no calibration.

Depthwise CNNs (MobileNet, EfficientNet-Lite) lose accuracy under int8 because a depthwise
filter sees one channel, whose ranges differ widely across channels; the first and last layers
are the others usually kept in float. `exclusion_variants` lists what to try, in order of
growing exclusion (each costs size and speed), and `export_run` keeps the first one within the
user's tolerance.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np


@dataclass
class Variant:
    """One int8 attempt: what it leaves in float (`exclude`: node names) and why."""

    name: str
    exclude: list[str] = field(default_factory=list)


def _graph(path: Path):
    import onnx

    return onnx.load(str(path), load_external_data=False).graph


def _weighted_nodes(graph) -> list:
    """Conv, Gemm and MatMul nodes with a constant weight (the ones quantisation changes), in graph order."""
    constants = {i.name for i in graph.initializer}
    return [n for n in graph.node if n.op_type in ("Conv", "Gemm", "MatMul") and len(n.input) > 1
            and n.input[1] in constants]


def _depthwise(graph) -> list[str]:
    """Names of the convolutions with one group per input channel (groups > 1)."""
    out = []
    for node in graph.node:
        if node.op_type == "Conv":
            groups = next((a.i for a in node.attribute if a.name == "group"), 1)
            if groups > 1:
                out.append(node.name)
    return out


def exclusion_variants(path: Path, depthwise: bool = True) -> list[Variant]:
    """What to try for the model at `path` (node names as in that file): nothing left in float,
    then the first and last weighted layers, then (a CNN with depthwise convolutions) those too."""
    graph = _graph(path)
    weighted = _weighted_nodes(graph)
    variants = [Variant("all layers int8")]
    if len(weighted) >= 2:
        ends = [weighted[0].name, weighted[-1].name]
        variants.append(Variant("first and last layers in float", ends))
        dw = _depthwise(graph) if depthwise else []
        if dw:
            variants.append(Variant(f"first and last layers and the {len(dw)} depthwise convolutions in float",
                                    ends + dw))
    return variants


class _Calibration:
    """onnxruntime's CalibrationDataReader over a list of input feeds."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self.feeds = feeds
        self.iterator: Iterator[dict[str, np.ndarray]] = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.iterator, None)

    def rewind(self) -> None:
        self.iterator = iter(self.feeds)


def prepare(fp32: Path, out: Path) -> Path:
    """The model at `fp32` made ready for quantisation (shapes inferred, graph optimised), at `out`:
    onnxruntime's recommended pre-processing step."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    quant_pre_process(str(fp32), str(out), skip_symbolic_shape=True)
    return out


def quantize_static_qdq(prepared: Path, out: Path, calibration: Iterable[dict[str, np.ndarray]],
                        variant: Variant) -> Path:
    """Static int8 QDQ of the prepared model: weights per channel (int8), activations per tensor
    (uint8) with min/max ranges from `calibration` (input feeds); the variant's nodes stay float."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    quantize_static(str(prepared), str(out), _Calibration(list(calibration)), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    nodes_to_exclude=list(variant.exclude), calibrate_method=CalibrationMethod.MinMax)
    return out


def quantize_dynamic_int8(prepared: Path, out: Path, variant: Variant) -> Path:
    """Dynamic int8 of the prepared model: matrix-product weights int8 per channel, activations
    quantised per batch at run time; the variant's nodes stay float."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(prepared), str(out), weight_type=QuantType.QInt8, per_channel=True,
                     nodes_to_exclude=list(variant.exclude))
    return out
