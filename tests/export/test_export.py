"""`transferkit export`: parity with PyTorch for every task, int8 kept or refused by a real measurement,
exports.json, and the exported file run with onnxruntime alone (torch blocked)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from transferkit.export import EXPORTS_FILE, export_run
from transferkit.runtime import OnnxPredictor
from transferkit.rundir import read_metrics

#: Runs the CLI with the heavy libraries made unimportable: `import torch` raises ImportError.
BLOCKED = ("torch", "torchvision", "timm", "lightning", "transformers", "pandas", "sklearn")
NO_TORCH = ("import sys\nfor name in {blocked!r}: sys.modules[name] = None\n"
            "sys.argv = ['transferkit', *sys.argv[1:]]\nfrom transferkit.cli import main\nmain()").format(blocked=BLOCKED)


def cli(*args: str, torch_blocked: bool = False) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", NO_TORCH, *args] if torch_blocked else [sys.executable, "-m", "transferkit.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def entries(run: Path) -> dict[str, dict]:
    return {(e["precision"], Path(e["path"]).name): e for e in json.loads((run / EXPORTS_FILE).read_text())["exports"]}


@pytest.fixture(scope="module")
def image_export(image_run: Path) -> tuple[Path, subprocess.CompletedProcess]:
    """`transferkit export RUN --quantize int8 --max-drop 0.1` on the image run (as a user runs it)."""
    return image_run, cli("export", str(image_run), "--quantize", "int8", "--max-drop", "0.1")


def test_image_export_matches_pytorch_and_keeps_int8_within_max_drop(image_export):
    run, done = image_export
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("fp32 ") and "top-1 agreement 100.0 %" in lines[0] and "flip average" in lines[0]
    recorded = entries(run)
    fp32, int8 = recorded["fp32", "model.onnx"], recorded["int8", "model.int8.onnx"]
    assert fp32["parity"]["passed"] and fp32["parity"]["max_abs_diff"] <= 1e-4 and fp32["parity"]["split"] == "test"
    assert fp32["parity"]["samples"] == 12 and fp32["opset"] >= 13
    # the int8 verdict comes from measured accuracy on the held-out test split, variant by variant
    assert int8["variants"] and all("score" in v for v in int8["variants"])
    assert int8["status"] == "ok" and int8["loss"] <= 0.1 and lines[-1] == f"ship: {run / 'model.int8.onnx'}"
    assert (run / "model.int8.onnx").stat().st_size * 3 < (run / "model.onnx").stat().st_size
    info = OnnxPredictor.load(run / "model.int8.onnx").info
    assert info["precision"] == "int8" and info["classes"] == ["blue", "green", "red"]
    assert info["strategy"] == "linear-probe" and info["metrics"] == read_metrics(run).metrics


def test_a_linear_probe_keeps_int8_without_losing_an_example_with_its_head_in_float(image_run, tmp_path):
    """The probe's head stays float from the first variant on: all-int8 lost 3 of these 9 validation
    images (the pooled features quantised per tensor), the backbone int8 with the head in float none."""
    result = export_run(image_run, quantize="int8", out=tmp_path / "exact.onnx", max_drop=0.0)
    int8 = entries(image_run)["int8", "exact.int8.onnx"]
    assert int8["status"] == "ok" and result.path == tmp_path / "exact.int8.onnx", result.warnings
    (first,) = int8["variants"]
    assert first["variant"] == "the backbone int8, the head in float" and first["examples_lost"] <= 0
    assert int8["examples_lost"] <= 0 and int8["score"]["split"] == "test"


def test_image_model_reads_files_as_the_estimator_does(image_export):
    """End to end from image files, batch sizes 1 and 5 (dynamic batch): the runtime's decoding and
    the graph's normalisation and flip average against the estimator's predict_proba."""
    from transferkit.tasks import load_run

    run, _ = image_export
    est = load_run(run)
    images = sorted((Path(est.data_root_) / "test").rglob("*.jpg"))[:5]
    model = OnnxPredictor.load(run / "model.onnx")
    for batch in (images[:1], images):
        assert np.abs(model.predict_proba(batch) - est.predict_proba(batch)).max() < 1e-4
    assert model.prediction_records(images, 2) == est.prediction_records(images, 2)


def test_predict_on_model_onnx_without_torch(image_export):
    run, _ = image_export
    images = json.loads((run / "split.json").read_text())["test"][:3]
    root = json.loads((run / "config.json").read_text())["run"]["data"]["root"]
    paths = [str(Path(root) / path) for path, _ in images]
    done = cli("predict", str(run / "model.int8.onnx"), *paths, "--json", "--top-k", "2", torch_blocked=True)
    assert done.returncode == 0, done.stderr
    records = json.loads(done.stdout)
    assert [r["path"] for r in records] == paths and all(len(r["top_k"]) == 2 for r in records)
    assert [r["label"] for r in records] == [label for _, label in images]


def test_int8_refused_when_it_loses_more_than_max_drop(image_run, tmp_path, monkeypatch):
    """When every variant loses more than --max-drop (here each is judged over it whatever it loses: a
    negative --max-drop is refused up front), all are quantised and measured, none qualifies, the fp32
    file is the result and the reason is one line."""
    from transferkit.export import quantize

    monkeypatch.setattr(quantize, "within_max_drop", lambda *args, **kwargs: False)
    result = export_run(image_run, quantize="int8", out=tmp_path / "strict.onnx", max_drop=0.0)
    assert result.path == tmp_path / "strict.onnx" and not (tmp_path / "strict.int8.onnx").exists()
    (warning,) = result.warnings
    assert "--max-drop 0" in warning and "keeping the fp32 model" in warning and "\n" not in warning
    refused = entries(image_run)["int8", "strict.int8.onnx"]
    assert refused["status"] == "refused" and len(refused["variants"]) >= 2
    assert all(0.0 <= v["score"] <= 1.0 and not v["within_max_drop"] for v in refused["variants"])
    # chosen on the validation split; after the head, the layers measured most sensitive go float, worst first
    assert refused["chosen_on"]["split"] == "val" and all(v["split"] == "val" for v in refused["variants"])
    ranking = [layer["node"] for layer in refused["layer_sensitivity"]]
    first, *later = refused["variants"]
    # the head stays float from the first variant on; the backbone's most sensitive layers follow
    assert first["excluded"] == ["/model/main/Gemm"] and first["variant"] == "the backbone int8, the head in float"
    backbone = [node for node in ranking if node not in first["excluded"]]
    assert later and all(v["excluded"][:1] == first["excluded"]  # exports.json lists the 12 worst layers
                         and v["excluded"][1:][:len(backbone)] == backbone[:v["excluded_nodes"] - 1] for v in later)
    assert [v["excluded_nodes"] for v in later] == sorted({v["excluded_nodes"] for v in later})


def test_text_export_matches_pytorch_for_any_batch_and_length(text_run, tmp_path):
    from transferkit.tasks import load_run

    result = export_run(text_run, out=tmp_path / "text.onnx")
    (fp32,) = result.exports
    assert fp32["parity"]["passed"] and fp32["parity"]["top1_agreement"] == 1.0
    est, model = load_run(text_run), OnnxPredictor.load(tmp_path / "text.onnx")
    texts = ["great", "the film was wonderful and the actors were superb, a delight from start to end " * 3,
             "awful"]
    for batch in (texts[:1], texts):
        assert np.abs(model.predict_proba(batch) - est.predict_proba(batch)).max() < 1e-4
    assert model.prediction_records(texts, 2) == est.prediction_records(texts, 2)
    assert model.info["precision"] == "fp32" and model.meta["text"]["max_length"] == 32


def test_forecast_export_and_int8(forecast_run, tmp_path):
    from transferkit.tasks import load_run

    run, series = forecast_run
    result = export_run(run, quantize="int8", out=tmp_path / "forecast.onnx", max_drop=0.05)
    fp32, int8 = result.exports
    assert fp32["parity"]["relative_error"] <= 1e-4 and fp32["score"]["metric"] == "mse"
    assert int8["quantization"].startswith("dynamic") and all("score" in v for v in int8["variants"])
    assert int8["status"] == ("ok" if any(v["within_max_drop"] for v in int8["variants"]) else "refused")
    est, model = load_run(run), OnnxPredictor.load(tmp_path / "forecast.onnx")
    mine, theirs = model.prediction_records(series, 1), est.prediction_records(series, 1)
    assert [r["time"] for r in mine] == [r["time"] for r in theirs] and mine[0]["time"] == "2021-01-11 00:00:00"
    assert max(abs(a[c] - b[c]) for a, b in zip(mine, theirs) for c in ("load", "temp")) < 1e-4


def test_export_refuses_unknown_format_in_one_line(forecast_run):
    done = cli("export", str(forecast_run[0]), "--format", "tflite")
    assert done.returncode == 2 and done.stderr.strip() == "error: --format tflite: only onnx is supported."


def test_lora_adapters_are_merged_into_plain_layers(tmp_path):
    """A LoRA run exports as its base layers with the adapters folded in: no adapter node in the
    graph, and the same probabilities as the estimator (which runs the adapters unmerged)."""
    import onnx

    from transferkit.testing import tiny_texts
    from transferkit import TextClassifier

    pytest.importorskip("peft")
    data = tiny_texts(tmp_path / "texts", per_class=10)
    est = TextClassifier(strategy="lora", epochs=1, max_length=16, baseline=False, progress=False, memory=0)
    run = est.fit(data.fit_on).save(tmp_path / "lora")
    (fp32,) = export_run(run).exports
    assert fp32["parity"]["passed"] and fp32["parity"]["samples"] > 0
    graph = onnx.load(str(run / "model.onnx")).graph
    assert not [n.name for n in graph.node if "lora" in n.name.lower()]
    texts = ["a wonderful film", "a dreadful, boring evening"]
    assert np.abs(OnnxPredictor.load(run / "model.onnx").predict_proba(texts) - est.predict_proba(texts)).max() < 1e-4


def test_two_heads_are_two_outputs(tmp_path):
    """A multi-task run (two label columns) exports one probability output per head, and predicts
    records in the estimator's shape ("heads")."""
    from tests.helpers import MULTITASK_FAST as FAST, two_label_table
    from transferkit import TextClassifier

    est = TextClassifier(strategy="fine-tune", epochs=1, max_length=16, label_columns=["sentiment", "domain"],
                         memory=0, **FAST).fit(two_label_table(tmp_path / "reviews.csv", rows=32))
    est.evaluate()
    run = est.save(tmp_path / "two-heads")
    (fp32,) = export_run(run).exports
    assert fp32["parity"]["passed"]
    model = OnnxPredictor.load(run / "model.onnx")
    assert model.outputs == ["probabilities.sentiment", "probabilities.domain"]
    texts = ["the soup was wonderful", "the cable was awful"]
    assert model.prediction_records(texts, 2) == est.prediction_records(texts, 2)
