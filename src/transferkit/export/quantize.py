"""int8 with onnxruntime's quantisation tools, and which layers a variant leaves in float, by measurement.

CNNs: static QDQ (quantise/dequantise pairs around int8 weights and activations), weights per
output channel, activation ranges calibrated (min/max) on images of the run's training split.
Transformers (text encoders, PatchTST): dynamic quantisation of the weighted matrix products and
embeddings (not attention's products of two activations, `dynamic_nodes`) (weights int8, activations quantised per batch at run time), which needs no calibration.

Static weights use 7 of their 8 bits (`reduce_range`). On x86 CPUs without VNNI (AVX2, and
AVX-512 without VNNI) onnxruntime's uint8×int8 convolution kernels add pairs of products in a
saturating int16 (VPMADDUBSW); with full-range weights the sums overflow and the model is wrong
where the arithmetic is not: EfficientNet-Lite0 on flowers5 (82.2 % fp32) gave 78.9 % on such a CPU
with 8-bit weights, 82.3 % with the same file run without the int8 kernels (`ORT_DISABLE_ALL`, exact
arithmetic) and 82.3 % with 7-bit weights, which cannot overflow. The file is the same size and
speed, and right on whichever CPU later runs it, wherever the export ran (onnxruntime's
quantisation guide suggests reduce_range for this saturation).
The graph's tail after the last weighted layer (the flip average, the softmax) stays float: it costs
nothing and the probabilities keep their precision instead of steps of 1/255.

The task's head stays float from the first variant on (`first_variant`: a few thousand weights,
and the layer int8 hurts most). Which other layers to leave in float is measured, not guessed: `layer_sensitivity` runs the float and
the int8 model on the same inputs with onnxruntime's real kernels and ranks the weighted layers by
the signal-to-quantisation-noise ratio (SQNR, dB) they lose between their input and their output;
`sensitivity_variants` keeps the most sensitive ones in float, a growing number at a time. The
export measures each variant in turn and keeps the first within the user's tolerance.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

#: Most int8 variants an export quantises and measures (each one quantisation and one evaluation).
MAX_VARIANTS = 4
#: How many of the most sensitive layers the variants after the first keep in float.
FLOAT_LAYER_STEPS = (2, 5, 12)
#: Weights use 7 bits (see the module's docstring); False gives full 8-bit weights.
REDUCE_RANGE = True


@dataclass
class Variant:
    """One int8 attempt: what it leaves in float (`exclude`: node names) and why."""

    name: str
    exclude: list[str] = field(default_factory=list)


@dataclass
class LayerError:
    """A weighted layer's measured quantisation error: SQNR (dB) of its input and of its output in
    the int8 model against the float model; `lost_db` is what the layer itself costs."""

    node: str
    input_sqnr_db: float
    output_sqnr_db: float

    @property
    def lost_db(self) -> float:
        return self.input_sqnr_db - self.output_sqnr_db

    def record(self) -> dict:
        return {**asdict(self), "lost_db": round(self.lost_db, 2)}


def _load(path: Path):
    import onnx

    return onnx.load(str(path), load_external_data=False)


def _weighted_nodes(graph) -> list:
    """Conv, Gemm and MatMul nodes with a constant weight (the ones quantisation changes), in graph order."""
    constants = {i.name for i in graph.initializer}
    return [n for n in graph.node if n.op_type in ("Conv", "Gemm", "MatMul") and len(n.input) > 1
            and n.input[1] in constants]


def _tail(graph) -> list[str]:
    """Names of the nodes after the last weighted layer (the flip average and the softmax)."""
    weighted = _weighted_nodes(graph)
    if not weighted:
        return []
    names = [n.name for n in graph.node]
    return names[names.index(weighted[-1].name) + 1:]


def head_nodes(graph) -> list[str]:
    """The weighted layers of the task's head(s): those outside the backbone (the exported graph names
    its modules /model/backbone/... and /model/<head>/...); the last weighted layer when none is named so."""
    weighted = _weighted_nodes(graph)
    heads = [n.name for n in weighted if "/backbone/" not in n.name]
    return heads or ([weighted[-1].name] if weighted else [])


def first_variant(graph=None) -> Variant:
    """The first variant an export tries: the backbone int8 and, given the `graph`, the head in float.

    The head is a few thousand weights (0.02 MB, no measurable latency) and int8 is worst there: its
    input, the pooled features, is quantised per tensor, so the features with a small range lose all
    their resolution, and a linear probe standardises its features, giving each the same weight. On
    the default image run (a linear probe on 300 flowers5 images) all-int8 lost 46.4 points on 500
    held-out images, the head in float 0.8 (benchmarks/results/int8_variants.json)."""
    heads = head_nodes(graph) if graph is not None else []
    return Variant("the backbone int8, the head in float", heads) if heads else Variant("all layers int8")


def sensitivity_variants(ranking: list[LayerError], steps: Iterable[int] = FLOAT_LAYER_STEPS,
                         keep: Iterable[str] = ()) -> list[Variant]:
    """Variants keeping the k most sensitive layers of `ranking` (worst first) in float, besides the
    layers `keep` (the head), for each k in `steps` no larger than the number of layers that lose SQNR."""
    keep = list(keep)
    lossy = [r for r in ranking if r.lost_db > 0 and r.node not in keep]
    return [Variant(f"the {k} most sensitive layer{'s' if k > 1 else ''} in float" + (" (and the head)" if keep else ""),
                    [*keep, *(r.node for r in lossy[:k])])
            for k in steps if k <= len(lossy)]


def layer_sensitivity(float_path: Path, quantized_path: Path, feeds: list[dict[str, np.ndarray]],
                      threads: int | None = None) -> list[LayerError]:
    """The weighted layers of the float model at `float_path` ranked by the SQNR they lose in the
    quantised model at `quantized_path` (worst first), both run on `feeds` by onnxruntime with its
    graph optimisations on, so that the int8 model runs the int8 kernels a device runs.

    A layer's input and output are compared where the int8 model hands them on (after its
    dequantisation, QDQ), so the loss counts the layer's weights, its kernel and its output's
    quantisation; layers left in float or renamed by the quantiser are skipped."""
    import onnx

    suffix = "_DequantizeLinear_Output"
    float_model, int8_model = _load(float_path), _load(quantized_path)
    produced = {o for n in int8_model.graph.node for o in n.output} | {i.name for i in int8_model.graph.input}
    consumers: dict[str, list] = {}
    for node in float_model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    def in_int8(name: str) -> str | None:
        """The int8 model's tensor for the float tensor `name` (its dequantised copy where there is one)."""
        return name + suffix if name + suffix in produced else name if name in produced else None

    pairs: dict[str, tuple[str, str, str, str]] = {}
    for node in _weighted_nodes(float_model.graph):
        x, y = node.input[0], node.output[0]
        follow = consumers.get(y, [])
        # the quantiser folds a ReLU/ReLU6 after a layer into its output's range: compare after it
        if y not in produced and len(follow) == 1 and follow[0].op_type in ("Relu", "Clip"):
            y = follow[0].output[0]
        qx, qy = in_int8(x), in_int8(y)
        if qx is not None and qy is not None:
            pairs[node.name] = (x, qx, y, qy)

    def run(model, names: set[str]) -> list[dict[str, np.ndarray]]:
        import onnxruntime as ort

        augmented = onnx.ModelProto()
        augmented.CopyFrom(model)
        present = {o.name for o in augmented.graph.output}
        for name in sorted(names - present):
            augmented.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
        options = ort.SessionOptions()
        options.log_severity_level = 4
        if threads:
            options.intra_op_num_threads = int(threads)
        session = ort.InferenceSession(augmented.SerializeToString(), options, providers=["CPUExecutionProvider"])
        outputs = [o.name for o in session.get_outputs()]
        return [dict(zip(outputs, session.run(None, feed))) for feed in feeds]

    reference = run(float_model, {p[0] for p in pairs.values()} | {p[2] for p in pairs.values()})
    measured = run(int8_model, {p[1] for p in pairs.values()} | {p[3] for p in pairs.values()})

    def sqnr(float_name: str, int8_name: str) -> float:
        signal = sum(float(np.square(r[float_name], dtype=np.float64).sum()) for r in reference)
        noise = sum(float(np.square(r[float_name] - m[int8_name], dtype=np.float64).sum())
                    for r, m in zip(reference, measured))
        return 10 * math.log10(max(signal, 1e-30) / max(noise, 1e-30))

    ranking = [LayerError(name, sqnr(x, qx), sqnr(y, qy)) for name, (x, qx, y, qy) in pairs.items()]
    return sorted(ranking, key=lambda r: -r.lost_db)


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
    """The model at `fp32` made ready for quantisation (shapes inferred, graph optimised: batch
    normalisation folded into the convolutions), at `out`: onnxruntime's recommended pre-processing."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    quant_pre_process(str(fp32), str(out), skip_symbolic_shape=True)
    return out


def quantize_static_qdq(prepared: Path, out: Path, calibration: Iterable[dict[str, np.ndarray]],
                        variant: Variant, reduce_range: bool = REDUCE_RANGE) -> Path:
    """Static int8 QDQ of the prepared model: weights per channel (int8, 7-bit range unless
    `reduce_range` is False), activations per tensor (uint8) with min/max ranges from `calibration`
    (input feeds); the variant's nodes and the graph's tail stay float."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    exclude = list(dict.fromkeys([*variant.exclude, *_tail(_load(prepared).graph)]))
    quantize_static(str(prepared), str(out), _Calibration(list(calibration)), quant_format=QuantFormat.QDQ,
                    per_channel=True, reduce_range=reduce_range, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, nodes_to_exclude=exclude, calibrate_method=CalibrationMethod.MinMax)
    if variant.exclude:
        _float_inputs(out, set(variant.exclude), prepared)
    return out


def _float_inputs(path: Path, nodes: set[str], prepared: Path) -> None:
    """Give the weighted `nodes` of the QDQ model at `path` their float input (the tensor before its
    quantise/dequantise pair), dropping pairs nothing reads any more.

    Without this a layer left out of quantisation is not float where it runs: onnxruntime's
    WeightBiasQuantization optimisation (on by default) sees a dequantised input and float weights
    and quantises those weights itself, per tensor, which is worse than the per-channel int8 the
    layer was kept from (flowers5, 8-bit weights: two layers "in float" that way cost 4.3 more points
    than none; really in float they gained 2.2). The
    quantiser folds a ReLU/ReLU6 before a pair into the pair's range; such an activation is put
    back (a copy of the prepared model's node) in front of the float layer."""
    import onnx

    model, original = onnx.load(str(path)), _load(prepared).graph
    graph = model.graph
    producer = {o: n for n in graph.node for o in n.output}
    float_producer = {o: n for n in original.node for o in n.output}
    for node in list(graph.node):
        if node.name not in nodes or node.op_type not in ("Conv", "Gemm", "MatMul"):
            continue
        dq = producer.get(node.input[0])
        q = producer.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" else None
        if q is None or q.op_type != "QuantizeLinear":
            continue
        tensor = q.input[0]
        folded = float_producer.get(tensor)
        if folded is not None and folded.op_type in ("Relu", "Clip") and producer[tensor].op_type != folded.op_type:
            restored = onnx.NodeProto()
            restored.CopyFrom(folded)
            restored.name, restored.input[0] = f"{folded.name}_float_for_{node.name}", tensor
            restored.output[0] = f"{tensor}_float_for_{node.name}"
            graph.node.insert(list(graph.node).index(node), restored)
            present = {i.name for i in graph.initializer}
            graph.initializer.extend(i for i in original.initializer  # a Clip's bounds, if dropped with it
                                     if i.name in restored.input[1:] and i.name not in present)
            tensor = restored.output[0]
        node.input[0] = tensor
    while True:  # drop the pairs left without a reader
        read = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
        dead = [n for n in graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")
                and not any(o in read for o in n.output)]
        if not dead:
            break
        for n in dead:
            graph.node.remove(n)
    read = {i for n in graph.node for i in n.input}
    unused = [i for i in graph.initializer if i.name not in read]  # the dropped pairs' scales
    for initializer in unused:
        graph.initializer.remove(initializer)
    onnx.save(model, str(path))


def dynamic_nodes(graph) -> list[str]:
    """The nodes dynamic int8 quantises: the layers with a constant weight and the embedding tables
    (Gather from a constant). Not the products of two activations (attention's Q·Kᵀ and its
    weights·V): quantised per batch, the masked scores (−3.4e38 beside values near 1) leave one step
    for every real score, and MiniLM's probe on amazon.txt fell from 180 to 100 of 200 test sentences
    (every one the same class); without them int8 got 182 (benchmarks/results/int8_variants.json)."""
    constants = {i.name for i in graph.initializer}
    embeddings = [n.name for n in graph.node if n.op_type == "Gather" and n.input[0] in constants]
    return [n.name for n in _weighted_nodes(graph)] + embeddings


def quantize_dynamic_int8(prepared: Path, out: Path, variant: Variant) -> Path:
    """Dynamic int8 of the prepared model: the weights of `dynamic_nodes` int8 per channel, their
    activations quantised per batch at run time; the variant's nodes stay float."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    excluded = set(variant.exclude)
    nodes = [n for n in dynamic_nodes(_load(prepared).graph) if n not in excluded]
    if not nodes:  # onnxruntime reads an empty list as "every node"
        import shutil

        shutil.copyfile(prepared, out)
        return out
    quantize_dynamic(str(prepared), str(out), weight_type=QuantType.QInt8, per_channel=True,
                     nodes_to_quantize=nodes, nodes_to_exclude=list(variant.exclude))
    return out


def examples_lost(fp32_accuracy: float, int8_accuracy: float, n: int) -> int:
    """Correctly classified examples int8 loses against fp32 on the same `n` examples (negative:
    it gains): counts, so that a loss of one example in a hundred is exactly one, not 0.0100000009."""
    return int(round(fp32_accuracy * n)) - int(round(int8_accuracy * n))


def examples_allowed(max_drop: float, n: int) -> int:
    """The most examples of `n` that `max_drop` (accuracy, absolute) lets int8 lose: the drop
    rounded down to the evaluation's resolution of 1/n (the 1e-9 absorbs 0.01 * 100 = 0.99999...)."""
    return math.floor(max_drop * n + 1e-9)


def within_max_drop(metric: str, fp32: float, int8: float, n: int, max_drop: float) -> bool:
    """Whether int8's score is within `max_drop` of fp32's on `n` examples: accuracy by counts of
    examples (`examples_lost` ≤ `examples_allowed`), MSE by its relative increase (to 1e-9)."""
    if metric == "mse":
        return (int8 - fp32) / max(fp32, 1e-12) <= max_drop + 1e-9
    return examples_lost(fp32, int8, n) <= examples_allowed(max_drop, n)
