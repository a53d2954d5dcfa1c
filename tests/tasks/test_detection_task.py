"""The object-detection task on the task contract: recognised folders, fit/evaluate/predict/save/load
from Python and the command line on VOC, COCO and YOLO, the report's sections, and the pieces it
added to shared code (a measured noise band, predict options, boxes in CSV)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from transferkit.errors import TransferkitError
from transferkit.tasks import TASKS, detect_task, load_run
from transferkit.testing import make_boxed_images, make_image_folder

FORMATS = ("voc", "coco", "yolo")
QUICK = dict(epochs=1, image_size=32, batch_size=4, baseline=False, progress=False)


@pytest.mark.parametrize("format", FORMATS)
def test_a_detection_folder_is_recognised_and_its_format_named(tmp_path, format):
    root = make_boxed_images(tmp_path / format, count=6, format=format)
    task, why = detect_task(root)
    assert task == "object-detection" and format.upper() in why


def test_a_folder_of_class_folders_stays_image_classification(tmp_path):
    assert detect_task(make_image_folder(tmp_path / "classes", per_class=2, size=16))[0] == "image-classification"


def test_a_strategy_that_cannot_train_a_detector_is_refused_in_one_line(tmp_path):
    est = TASKS.get("object-detection")(strategy="linear-probe", **QUICK)
    with pytest.raises(TransferkitError) as refused:
        est.fit(tmp_path)  # refused before the data are read
    assert "\n" not in str(refused.value) and "fine-tune, full, head-only" in str(refused.value)


def test_an_unregistered_architecture_is_refused_before_training(tmp_path):
    with pytest.raises(TransferkitError, match="fasterrcnn, fcos, retinanet"):
        TASKS.get("object-detection")(architecture="yolo9000", **QUICK).fit(tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("format", FORMATS)
def test_fit_evaluate_predict_save_load_on_each_format(tmp_path, format):
    root = make_boxed_images(tmp_path / format, count=8, size=(48, 32), format=format)
    est = TASKS.get("object-detection")(strategy="head-only", **QUICK).fit(root)
    metrics = est.evaluate()
    assert metrics["n"] == len(est.data_.splits["test"]) and "test split" in metrics["measured_on"]
    assert 0 <= metrics["map"] <= metrics["map_50"] <= 1 and set(metrics["per_class"]) == {"red", "blue"}
    images = sorted(str(p) for p in (root / "images").glob("*.png"))[:2]
    predicted = est.predict(images, conf=0.0)
    assert [r["path"] for r in predicted] == images and all(r["width"] == 48 for r in predicted)
    for record in predicted:
        for box in record["boxes"]:
            assert 0 <= box["x1"] <= box["x2"] <= 48 and 0 <= box["y1"] <= box["y2"] <= 32 and box["label"] in est.classes_
    run = est.save(tmp_path / "run")
    loaded = load_run(run)
    assert loaded.predict(images, conf=0.0) == predicted
    assert loaded.evaluate()["map_50"] == metrics["map_50"]  # a loaded run answers with its recorded metrics
    again = loaded.evaluate(root)  # every image of a labelled folder
    assert again["n"] == 8 and str(root) in again["measured_on"]
    if format == "voc":  # only a registered architecture is rebuilt from a run
        from transferkit.errors import RunDirectoryError

        config = json.loads((run / "config.json").read_text())
        (run / "config.json").write_text(json.dumps({**config, "architecture": "evil"}))
        with pytest.raises(RunDirectoryError, match="'evil' is not registered"):
            load_run(run)


@pytest.mark.slow
def test_the_control_gives_a_verdict_with_a_bootstrap_band(tmp_path):
    root = make_boxed_images(tmp_path / "voc", count=10, size=(48, 32))
    est = TASKS.get("object-detection")(**{**QUICK, "baseline": True, "max_seconds": 5}).fit(root)
    transfer = est.evaluate()["transfer"]
    assert transfer["metric"] == "map_50" and transfer["verdict"] in ("positive", "negative", "negligible", "inconclusive")
    assert "bootstrap resamples" in transfer["band"]["method"] and transfer["noise"] == transfer["band"]["noise"]
    assert est.control_["map_50"] == transfer["baseline"] and "random weights" in est.control_["model"]


def test_per_image_f1_matches_boxes_of_the_same_class():
    from transferkit.data.detection.base import make_item
    from transferkit.tasks.detection_evaluation import per_image_f1

    item = make_item("a.png", [[0, 0, 10, 10], [20, 20, 30, 30]], [0, 1], 40, 40)
    predicted = {"boxes": torch.tensor([[0., 0., 10., 10.], [20., 20., 30., 30.], [0., 30., 5., 35.]]),
                 "labels": torch.tensor([0, 0, 1]), "scores": torch.tensor([0.9, 0.8, 0.1])}
    assert per_image_f1(item, predicted, conf=0.5) == pytest.approx(2 * 1 / 4)  # the second box has the wrong class
    background = make_item("b.png", [], [], 40, 40)
    empty = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long), "scores": torch.zeros(0)}
    assert per_image_f1(background, empty, conf=0.5) == 1.0


def test_a_measured_noise_band_decides_the_verdict():
    from transferkit.diagnostics import transfer_verdict

    assert transfer_verdict(0.9, 0.5, 40, name="map_50", noise=0.1)["verdict"] == "positive"
    assert transfer_verdict(0.5, 0.9, 40, name="map_50", noise=0.1)["verdict"] == "negative"
    unsure = transfer_verdict(0.55, 0.5, 40, name="map_50", noise=0.1)
    assert unsure["verdict"] == "inconclusive" and unsure["needed_n"] == 160  # band ∝ 1/√n: 40 × (0.1 / 0.05)²
    assert transfer_verdict(0.5, 0.5, 40, name="map_50", noise=0.01)["verdict"] == "negligible"


def test_predict_options_a_task_does_not_take_are_refused_in_one_line():
    est = TASKS.get("image-classification")()
    with pytest.raises(TransferkitError, match=r"^--conf, --save-images: not an option") as refused:
        est.set_prediction_options(conf=0.5, save_images="out")
    assert "\n" not in str(refused.value)
    est.set_prediction_options(conf=None)  # not given: nothing to refuse
    detector = TASKS.get("object-detection")()
    detector.set_prediction_options(conf=0.5)
    assert detector.prediction_options_ == {"conf": 0.5}


def test_a_record_with_a_list_of_boxes_is_one_json_cell_in_csv():
    from transferkit._format import flat_record

    boxes = [{"x1": 1.0, "y1": 2.0, "x2": 3.0, "y2": 4.0, "label": "red", "score": 0.5}]
    row = flat_record({"path": "a.png", "width": 4, "height": 4, "boxes": boxes})
    assert json.loads(row["boxes"]) == boxes and row["path"] == "a.png"
    top = flat_record({"label": "a", "top_k": [{"label": "a", "probability": 0.9}]})  # unchanged
    assert top["top_k"] == "a (0.9000)" and top["probability"] == 0.9


def test_the_report_draws_the_detection_sections(tmp_path):
    from PIL import Image

    from transferkit.reporting.html import RunReport, render_html

    picture = tmp_path / "a.png"
    Image.new("RGB", (64, 48), (128, 128, 128)).save(picture)
    metrics = {"map": 0.4, "map_50": 0.7, "map_75": 0.3, "mar_100": 0.5, "n": 1, "boxes": 1,
               "measured_on": "the test split: 1 image, 1 box", "box_counts": {"red": 1, "blue": 0},
               "per_class": {"red": {"ap": 0.4, "ap_50": 0.7, "recall": 0.5},
                             "blue": {"ap": -1.0, "ap_50": -1.0, "recall": -1.0}},
               "curves": {"red": {"recall": list(np.linspace(0, 1, 101)), "precision": [1.0] * 50 + [0.0] * 51}},
               "images": [{"path": str(picture), "width": 64, "height": 48, "f1": 0.5,
                           "true": [{"x1": 1, "y1": 1, "x2": 30, "y2": 30, "label": "red"}],
                           "predicted": [{"x1": 2, "y1": 2, "x2": 31, "y2": 29, "label": "red", "score": 0.8}]},
                          {"path": str(tmp_path / "gone.png"), "width": 64, "height": 48, "f1": 0.0,
                           "true": [], "predicted": []}]}
    html = render_html(RunReport(title="run", task="object-detection", config={}, metrics=metrics, history=[],
                                 decisions=[], data_summary={}, timings={}))
    for title in ("Metrics", "Precision-recall curves", "Test images, worst first"):
        assert f"<h2>{title}</h2>" in html
    assert "mAP@.5" in html and "n/a" in html and "the test split: 1 image, 1 box" in html
    assert html.count('<figure class="box-image">') == 1 and "1 image(s) no longer found" in html


@pytest.mark.slow
def test_cli_fit_predict_evaluate_report(tmp_path, monkeypatch, capsys):
    from tests.helpers import run_main

    root = make_boxed_images(tmp_path / "coco", count=8, size=(48, 32), format="coco")
    run = tmp_path / "run"
    code, out, err = run_main(monkeypatch, capsys, "fit", str(root), "--out", str(run), "--epochs", "1",
                              "--image-size", "32", "--strategy", "head-only", "--no-baseline", "--quiet")
    assert code == 0, err
    assert (run / "report.html").is_file() and json.loads((run / "config.json").read_text())["task"] == "object-detection"
    image = str(root / "images" / "img_000.png")
    code, out, err = run_main(monkeypatch, capsys, "predict", str(run), image, "--json", "--conf", "0",
                              "--save-images", str(tmp_path / "drawn"))
    assert code == 0, err
    records = json.loads(out)
    assert records[0]["path"] == image and {"x1", "y1", "x2", "y2", "label", "score"} <= set(records[0]["boxes"][0])
    assert (tmp_path / "drawn" / "img_000.png").is_file()
    code, out, err = run_main(monkeypatch, capsys, "predict", str(run), image, "-o", str(tmp_path / "p.jsonl"))
    assert code == 0, err
    code, out, err = run_main(monkeypatch, capsys, "evaluate", str(run), str(root), "--json")
    assert code == 0 and json.loads(out)["n"] == 8
    code, out, err = run_main(monkeypatch, capsys, "predict", str(run), image, "--conf", "2")
    assert code == 2


@pytest.mark.slow
@pytest.mark.parametrize("architecture", ["fasterrcnn", "fcos"])
def test_onnx_export_gives_the_same_boxes_as_pytorch(tmp_path, architecture):
    import onnxruntime as ort

    from transferkit.export.detection import export_detector

    root = make_boxed_images(tmp_path / "voc", count=8, size=(48, 32))
    est = TASKS.get("object-detection")(architecture=architecture, strategy="head-only", **QUICK).fit(root)
    run = est.save(tmp_path / "run")
    result = export_detector(run, tmp_path / "detector.onnx")
    assert result["parity"]["passed"] and result["nms_inside"] and result["parity"]["images"] == 2  # the test split
    session = ort.InferenceSession(result["path"], providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["boxes", "scores", "labels"]
    assert [i.shape for i in session.get_inputs()] == [[1, 3, 32, 32]]


@pytest.mark.slow
def test_an_interrupted_detection_fit_resumes_to_the_uninterrupted_history(tmp_path, monkeypatch):
    from transferkit.errors import TrainingInterrupted
    from transferkit.strategies.own_loss import OwnLossModule

    root = make_boxed_images(tmp_path / "voc", count=8, size=(48, 32))
    params = {**QUICK, "epochs": 2, "strategy": "fine-tune"}
    cls = TASKS.get("object-detection")
    whole = cls(**params, run_dir=tmp_path / "whole").fit(root).history_
    step = OwnLossModule.training_step

    def interrupted(self, batch, batch_idx):
        if self.current_epoch == 1:
            raise KeyboardInterrupt  # Ctrl-C in the second epoch, after the first one's checkpoint
        return step(self, batch, batch_idx)

    monkeypatch.setattr(OwnLossModule, "training_step", interrupted)
    with pytest.raises(TrainingInterrupted, match="--resume"):
        cls(**params, run_dir=tmp_path / "cut").fit(root)
    monkeypatch.setattr(OwnLossModule, "training_step", step)
    resumed = cls(**params, run_dir=tmp_path / "cut", resume=True).fit(root).history_

    assert len(resumed) == len(whole) == 2
    for got, want in zip(resumed, whole):
        assert got.keys() == want.keys()
        assert {k: v for k, v in got.items() if k != "seconds"} == pytest.approx(
            {k: v for k, v in want.items() if k != "seconds"})


@pytest.mark.slow
def test_the_learning_rate_range_test_sweeps_a_detector_with_its_group_ratios(tmp_path):
    root = make_boxed_images(tmp_path / "voc", count=8, size=(48, 32))
    result = TASKS.get("object-detection")(**QUICK).lr_find(root, steps=10)
    assert len(result.lrs) == len(result.losses) >= 2 and result.default_lr == pytest.approx(1e-4)


def test_the_detector_has_a_public_name_beside_the_other_estimators():
    import transferkit
    from transferkit.tasks import TASKS

    assert transferkit.ObjectDetector is TASKS.get("object-detection")
    assert "ObjectDetector" in transferkit.__all__
