"""`transferkit predict model.onnx`: bad model files and wrong inputs end in one line and exit 2, and the
runtime's history reading, step times and tokenising agree with the estimator's (pandas, transformers)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from transferkit.runtime import METADATA_KEY, OnnxPredictor
from transferkit.runtime.series import read_history, step_times

BLOCKED = ("torch", "torchvision", "timm", "lightning", "transformers", "pandas", "sklearn")
NO_TORCH = ("import sys\nfor name in {blocked!r}: sys.modules[name] = None\n"
            "sys.argv = ['transferkit', *sys.argv[1:]]\nfrom transferkit.cli import main\nmain()").format(blocked=BLOCKED)


def predict(*args: str) -> subprocess.CompletedProcess:
    """`transferkit predict ...` in a Python where torch, pandas and friends cannot be imported."""
    return subprocess.run([sys.executable, "-c", NO_TORCH, "predict", *args], capture_output=True, text=True,
                          timeout=120)


def _tiny_model(path: Path, meta: dict | None) -> Path:
    """A 3-class 'image classifier' graph written with onnx.helper (mean colour → softmax), with `meta`
    as its transferkit metadata (None: none)."""
    import onnx
    from onnx import TensorProto, helper

    nodes = [helper.make_node("ReduceMean", ["pixels", "axes"], ["mean"], keepdims=0),
             helper.make_node("Softmax", ["mean"], ["probabilities"], axis=1)]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("pixels", TensorProto.FLOAT,
                                                                              ["batch", 3, 8, 8])],
                              [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 3])],
                              [helper.make_tensor("axes", TensorProto.INT64, [2], [2, 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    if meta is not None:
        model.metadata_props.add(key=METADATA_KEY, value=json.dumps(meta))
    onnx.save(model, str(path))
    return path


TINY_META = {"format": 1, "task": "image-classification", "classes": ["red", "green", "blue"], "heads": {},
             "image": {"size": 8, "interpolation": "bicubic"}, "run": "tiny", "precision": "fp32"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return _tiny_model(tmp_path_factory.mktemp("models") / "tiny.onnx", TINY_META)


def test_predicts_images_without_torch(tiny, tmp_path):
    from PIL import Image

    Image.new("RGB", (20, 12), (250, 10, 10)).save(tmp_path / "red.png")
    done = predict(str(tiny), str(tmp_path / "red.png"), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["label"] == "red"
    assert OnnxPredictor.load(tiny).predict([Image.new("RGB", (9, 9), (0, 0, 255))]) == ["blue"]


@pytest.mark.parametrize("case", ["missing", "not onnx", "no metadata", "wrong input"])
def test_bad_model_or_input_is_one_line_and_exit_2(case, tiny, tmp_path):
    model = {"missing": tmp_path / "missing.onnx", "not onnx": tmp_path / "junk.onnx",
             "no metadata": _tiny_model(tmp_path / "plain.onnx", None), "wrong input": tiny}[case]
    if case == "not onnx":
        model.write_bytes(b"definitely not a protobuf")
    done = predict(str(model), "a wonderful film")
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ")
    assert {"missing": "no such file", "not onnx": "not a readable ONNX model",
            "no metadata": "not written by `transferkit export`", "wrong input": "a wonderful film: no such file"
            }[case] in lines[0]


def test_history_and_step_times_match_the_estimators(tmp_path):
    """Values as `load_series_csv` reads them, forecast times as pandas' date_range makes them."""
    import pandas as pd

    from transferkit.data.timeseries import load_series_csv

    frame = pd.DataFrame({"value": np.arange(30) * 1.5, "date": pd.date_range("2024-01-30 22:00", periods=30,
                                                                              freq="15min").astype(str),
                          "other": np.sin(np.arange(30))})
    frame.to_csv(tmp_path / "history.csv", index=False)
    table = load_series_csv(tmp_path / "history.csv")
    history = read_history(tmp_path / "history.csv", ["other", "value"])
    assert np.array_equal(history.values, table.values[:, [table.columns.index("other"), table.columns.index("value")]])
    for frequency, last in (("15min", history.last_time), ("h", history.last_time), ("D", history.last_time),
                            ("MS", pd.Timestamp("2024-01-01").to_pydatetime())):
        expected = [str(t) for t in pd.date_range(last, periods=4, freq=frequency)[1:]]
        assert step_times(last, frequency, 3) == expected
    assert step_times(None, "h", 2) == ["+1", "+2"]


def test_tokens_match_the_transformers_tokenizer():
    """The run's tokenizer.json read by `tokenizers` alone gives the ids and mask of transformers'
    tokenizer with the estimator's settings (truncation at max_length, padding to the longest)."""
    from transferkit.backbones import offline_backbones

    if "all-minilm-l6-v2" not in offline_backbones():
        pytest.skip("all-minilm-l6-v2: weights not installed offline")
    from transferkit.backbones.text import _offline_dir
    from transformers import AutoTokenizer

    from transferkit.runtime.text import TokenEncoder

    hf = AutoTokenizer.from_pretrained(str(_offline_dir()))
    texts = ["short", "a much longer sentence that goes on and on, with punctuation; and ÜNICODE " * 4, "two words"]
    ours = TokenEncoder(hf.backend_tokenizer.to_str(), 16, hf.pad_token_id, hf.pad_token)(texts)
    theirs = hf(texts, padding=True, truncation=True, max_length=16, return_tensors="np")
    assert np.array_equal(ours["input_ids"], theirs["input_ids"])
    assert np.array_equal(ours["attention_mask"], theirs["attention_mask"])
