"""The int8 sensitivity ranking on a model built so that one layer cannot be quantised well."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from transferkit.export.quantize import (  # noqa: E402
    Variant, first_variant, layer_sensitivity, quantize_static_qdq, sensitivity_variants)


def three_convs(path: Path) -> Path:
    """pixels → a → ReLU → bad → ReLU → c (1×1 convolutions). `bad` reads its signal through weights
    of 0.01…0.02 while each of its output channels also holds a weight of 50 on an input channel
    that `a` leaves at zero: per-channel int8 spends its steps (50/63) on that weight and rounds the
    useful ones to zero, so `bad` loses nearly all its signal while `a` and `c` lose little."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    wa = rng.normal(0, 0.5, (8, 4, 1, 1)).astype(np.float32)
    wa[0] = 0.0  # channel 0 of a's output is always zero
    wbad = rng.uniform(0.01, 0.02, (8, 8, 1, 1)).astype(np.float32)
    wbad[:, 0] = 50.0
    wc = rng.normal(0, 0.5, (8, 8, 1, 1)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "wa"], ["ya"], name="a"),
             helper.make_node("Relu", ["ya"], ["ra"], name="relu_a"),
             helper.make_node("Conv", ["ra", "wbad"], ["yb"], name="bad"),
             helper.make_node("Relu", ["yb"], ["rb"], name="relu_b"),
             helper.make_node("Conv", ["rb", "wc"], ["y"], name="c")]
    graph = helper.make_graph(nodes, "three", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 8, 8, 8])],
                              [numpy_helper.from_array(w, n) for w, n in ((wa, "wa"), (wbad, "wbad"), (wc, "wc"))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_sensitivity_ranks_the_badly_quantised_layer_first_and_keeping_it_float_helps(tmp_path):
    import onnxruntime as ort

    model = three_convs(tmp_path / "float.onnx")
    feeds = [{"x": np.random.default_rng(n).uniform(0, 1, (4, 4, 8, 8)).astype(np.float32)} for n in range(2)]
    int8 = quantize_static_qdq(model, tmp_path / "int8.onnx", feeds, first_variant())
    ranking = layer_sensitivity(model, int8, feeds)
    assert [r.node for r in ranking][0] == "bad" and {r.node for r in ranking} == {"a", "bad", "c"}
    assert ranking[0].lost_db > 10 + max(r.lost_db for r in ranking[1:])
    # the variants keep the worst layers in float, worst first
    (two,) = sensitivity_variants(ranking, steps=(2, 5))
    assert two.exclude == [r.node for r in ranking[:2]] and two.name == "the 2 most sensitive layers in float"

    def error(path: Path) -> float:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        reference = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        return max(float(np.abs(session.run(None, f)[0] - reference.run(None, f)[0]).max()) for f in feeds)

    kept_float = quantize_static_qdq(model, tmp_path / "int8-bad-float.onnx", feeds, Variant("bad in float", ["bad"]))
    assert error(kept_float) < error(int8) / 4


def test_dynamic_int8_leaves_products_of_two_activations_in_float(tmp_path):
    """Attention's Q·Kᵀ multiplies two activations: quantised per batch beside a −3.4e38 mask it
    collapsed a text probe to one class, so only weighted layers and embedding tables go int8."""
    from onnx import TensorProto, helper, numpy_helper

    from transferkit.export.quantize import dynamic_nodes, quantize_dynamic_int8

    rng = np.random.default_rng(0)
    table = numpy_helper.from_array(rng.normal(size=(10, 16)).astype(np.float32), "table")
    weight = numpy_helper.from_array(rng.normal(size=(16, 16)).astype(np.float32), "weight")
    nodes = [helper.make_node("Gather", ["table", "ids"], ["emb"], name="embed"),
             helper.make_node("MatMul", ["emb", "weight"], ["q"], name="project"),
             helper.make_node("Transpose", ["q"], ["qt"], perm=[0, 2, 1], name="transpose"),
             helper.make_node("MatMul", ["q", "qt"], ["scores"], name="scores")]
    graph = helper.make_graph(nodes, "attention", [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, 4])],
                              [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 4, 4])],
                              [table, weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "attention.onnx"
    onnx.save(model, str(path))
    assert dynamic_nodes(model.graph) == ["project", "embed"]
    quantized = onnx.load(str(quantize_dynamic_int8(path, tmp_path / "int8.onnx", first_variant())))
    kinds = {n.name: n.op_type for n in quantized.graph.node}
    assert kinds["scores"] == "MatMul"  # still float
    assert "MatMulInteger" in kinds.values() or any("project" in n and k != "MatMul" for n, k in kinds.items())
