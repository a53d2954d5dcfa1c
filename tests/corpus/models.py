"""Tiny ONNX models built from a few graph nodes (no training): an image classifier, a text
classifier with a word-level tokenizer and a forecaster, each with the metadata `transferkit
export` writes, so a test can damage one key at a time."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

CLASSES = ["red", "green", "blue"]


def _save(path: Path, nodes, inputs, outputs, initializers, meta: dict | str | None) -> Path:
    import onnx
    from onnx import helper

    graph = helper.make_graph(nodes, "tiny", inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    if meta is not None:
        model.metadata_props.add(key="transferkit", value=meta if isinstance(meta, str) else json.dumps(meta))
    onnx.save(model, str(path))
    return path


def image_meta(**changes) -> dict:
    meta = {"format": 1, "task": "image-classification", "classes": list(CLASSES), "heads": {},
            "image": {"size": 8, "interpolation": "bilinear"}, "run": "tiny", "precision": "fp32",
            "metrics": {"accuracy": 1.0}}
    meta.update(changes)
    return meta


def image_model(path: Path, meta: dict | str | None = None, classes: int = 3) -> Path:
    """pixels N×3×H×W → mean colour → linear → softmax over `classes`."""
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.eye(3, classes, dtype=np.float32) * 10, "w")
    nodes = [helper.make_node("ReduceMean", ["pixels"], ["mean"], axes=[2, 3], keepdims=0),
             helper.make_node("MatMul", ["mean", "w"], ["logits"]),
             helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1)]
    inputs = [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["batch", 3, "h", "w"])]
    outputs = [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", classes])]
    return _save(path, nodes, inputs, outputs, [weights], image_meta() if meta is None else meta)


def tokenizer_json() -> str:
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"[UNK]": 0, "[PAD]": 1, "good": 2, "bad": 3, "film": 4}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    return tokenizer.to_str()


def text_meta(**changes) -> dict:
    meta = {"format": 1, "task": "text-classification", "classes": ["negative", "positive"], "heads": {},
            "text": {"tokenizer": tokenizer_json(), "max_length": 16, "pad_id": 1, "pad_token": "[PAD]",
                     "text_column": None}, "run": "tiny-text", "precision": "fp32"}
    meta.update(changes)
    return meta


def text_model(path: Path, meta: dict | str | None = None) -> Path:
    """input_ids, attention_mask N×T → mean token id → linear → softmax over two classes."""
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.array([[1.0, -1.0]], np.float32), "w")
    nodes = [helper.make_node("Cast", ["input_ids"], ["ids"], to=TensorProto.FLOAT),
             helper.make_node("Cast", ["attention_mask"], ["mask"], to=TensorProto.FLOAT),
             helper.make_node("Mul", ["ids", "mask"], ["kept"]),
             helper.make_node("ReduceMean", ["kept"], ["mean"], axes=[1], keepdims=1),
             helper.make_node("MatMul", ["mean", "w"], ["logits"]),
             helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1)]
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "tokens"]),
              helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "tokens"])]
    outputs = [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 2])]
    return _save(path, nodes, inputs, outputs, [weights], text_meta() if meta is None else meta)


def forecast_meta(**changes) -> dict:
    meta = {"format": 1, "task": "forecast", "classes": None, "heads": {},
            "forecast": {"lookback": 4, "horizon": 2, "series": ["load"], "frequency": "h", "time_column": "date"},
            "run": "tiny-forecast", "precision": "fp32"}
    meta.update(changes)
    return meta


def forecast_model(path: Path, meta: dict | str | None = None) -> Path:
    """history N×4×1 → the last value repeated for 2 steps (a naive forecast)."""
    from onnx import TensorProto, helper, numpy_helper

    pick = numpy_helper.from_array(np.array([[0, 0], [0, 0], [0, 0], [1, 1]], np.float32), "pick")
    nodes = [helper.make_node("Transpose", ["history"], ["t"], perm=[0, 2, 1]),
             helper.make_node("MatMul", ["t", "pick"], ["steps"]),
             helper.make_node("Transpose", ["steps"], ["forecast"], perm=[0, 2, 1])]
    inputs = [helper.make_tensor_value_info("history", TensorProto.FLOAT, ["batch", 4, 1])]
    outputs = [helper.make_tensor_value_info("forecast", TensorProto.FLOAT, ["batch", 2, 1])]
    return _save(path, nodes, inputs, outputs, [pick], forecast_meta() if meta is None else meta)
