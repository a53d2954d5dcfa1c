"""CLI behaviour: exit codes, one-line errors, and the fit → predict → evaluate round trip."""
import json
import shutil
from html import escape

import pytest

from transferkit.rundir import read_metrics

from tests.helpers import run_cli
from transferkit.testing import make_image_folder


def test_list_backbones_and_strategies(monkeypatch, capsys):
    code, out, _ = run_cli(monkeypatch, capsys, "list", "backbones")
    assert code == 0 and "efficientnet_lite0" in out and "all-minilm-l6-v2" in out and "timm" in out
    code, out, _ = run_cli(monkeypatch, capsys, "list", "strategies")
    assert code == 0 and all(s in out for s in ("auto", "linear-probe", "fine-tune", "full", "lora", "setfit"))
    code, out, _ = run_cli(monkeypatch, capsys, "list", "tasks")
    assert code == 0 and all(s in out for s in ("image-classification", "text-classification"))


@pytest.mark.parametrize("setup, message", [
    ("missing", "no such file or directory"),
    ("single", "only one class"),
    ("empty_class", "class folder has no readable images"),
])
def test_user_errors_exit_2_with_one_line(monkeypatch, capsys, tmp_path, setup, message):
    data = tmp_path / "data"
    if setup == "single":
        make_image_folder(data, classes=("red",))
    elif setup == "empty_class":
        make_image_folder(data, per_class=4)
        (data / "empty").mkdir()
    code, _, err = run_cli(monkeypatch, capsys, "fit", data, "--out", tmp_path / "run")
    assert code == 2
    assert message in err and "Traceback" not in err


def test_existing_out_is_not_overwritten_silently(monkeypatch, capsys, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "keep.txt").write_text("x")
    code, _, err = run_cli(monkeypatch, capsys, "fit", tmp_path / "data", "--out", tmp_path / "run")
    assert code == 2 and "--overwrite" in err


def test_predict_on_non_run_dir(monkeypatch, capsys, tmp_path):
    code, _, err = run_cli(monkeypatch, capsys, "predict", tmp_path, tmp_path)
    assert code == 2 and "not a transferkit run directory" in err


def test_fit_predict_evaluate_round_trip(monkeypatch, capsys, tmp_path):
    data = make_image_folder(tmp_path / "data", per_class=12)
    run = tmp_path / "run"
    code, out, err = run_cli(monkeypatch, capsys, "fit", data, "--out", run, "--strategy", "fine-tune",
                             "--epochs", "1", "--image-size", "64", "--quiet")
    assert code == 0, err
    assert "test accuracy" in out and str(run / "report.html") in out.replace("\n", "")
    metrics = read_metrics(run).metrics
    assert 0 <= metrics["accuracy"] <= 1 and metrics["n"] == 7  # round(0.2 * 36)
    html = (run / "report.html").read_text()
    assert "data:image/png;base64," in html and "fine-tune" in html

    code, out, _ = run_cli(monkeypatch, capsys, "predict", run, data / "red" / "red_00.jpg", data / "blue",
                           "--json", "--top-k", "2")
    assert code == 0
    predictions = json.loads(out)
    assert len(predictions) == 13 and len(predictions[0]["top_k"]) == 2
    assert predictions[0]["label"] in ("red", "green", "blue")

    code, out, _ = run_cli(monkeypatch, capsys, "evaluate", run, data, "--json")
    assert code == 0 and json.loads(out)["n"] == 36


def test_interrupted_fit_resumes_from_last_checkpoint(monkeypatch, capsys, tmp_path):
    from transferkit.strategies.training import HistoryRecorder

    data = make_image_folder(tmp_path / "data", per_class=12)
    run = tmp_path / "run"
    args = ["fit", data, "--out", run, "--strategy", "full", "--epochs", "3", "--image-size", "64", "--quiet"]
    original = HistoryRecorder.on_train_epoch_start

    def ctrl_c_in_second_epoch(self, trainer, pl_module):
        if trainer.current_epoch == 1:
            raise KeyboardInterrupt
        original(self, trainer, pl_module)

    monkeypatch.setattr(HistoryRecorder, "on_train_epoch_start", ctrl_c_in_second_epoch)
    code, _, err = run_cli(monkeypatch, capsys, *args)
    assert code == 130 and "--resume" in err
    assert (run / "checkpoints" / "last.ckpt").is_file() and not (run / "model.safetensors").exists()

    monkeypatch.setattr(HistoryRecorder, "on_train_epoch_start", original)
    code, _, err = run_cli(monkeypatch, capsys, *args, "--resume")
    assert code == 0, err
    config = json.loads((run / "config.json").read_text())
    assert any("resumed from checkpoint" in note for note in config["run"]["notes"])
    epochs = [line.split(",")[0] for line in (run / "history.csv").read_text().splitlines()[1:]]
    assert epochs == ["1", "2", "3"]


def test_demo_runs_on_shipped_data(monkeypatch, capsys, tmp_path):
    code, out, err = run_cli(monkeypatch, capsys, "demo", "--out", tmp_path / "demo", "--quiet")
    assert code == 0, err
    # 200 images, fewer than cross-validation's threshold: the estimate is named as one
    assert "cross-validated accuracy (5-fold, n=200)" in out and "test accuracy" not in out
    assert (tmp_path / "demo" / "report.html").is_file()


def test_strategy_options_are_checked(monkeypatch, capsys, tmp_path):
    data = make_image_folder(tmp_path / "data", per_class=4)
    code, _, err = run_cli(monkeypatch, capsys, "fit", data, "--out", tmp_path / "run", "--strategy", "fine-tune",
                           "--option", "layer_decy=0.5")
    assert code == 2 and "layer_decy" in err and "layer_decay" in err
    code, _, err = run_cli(monkeypatch, capsys, "fit", data, "--out", tmp_path / "run2", "--option", "nokey")
    assert code == 2 and "KEY=VALUE" in err


def test_text_fit_predict_evaluate_round_trip(monkeypatch, capsys, tmp_path):
    from .tasks.test_text_classifier import sentiment_table

    table = sentiment_table(tmp_path / "reviews.tsv")
    run = tmp_path / "run"
    code, out, err = run_cli(monkeypatch, capsys, "fit", table, "--out", run, "--strategy", "linear-probe")
    assert code == 0, err
    assert "task: text-classification" in out and "review" in out  # detected task and columns are explained
    assert escape("columns: text = 'review', label = 'sentiment'") in (run / "report.html").read_text()

    texts = tmp_path / "texts.txt"
    texts.write_text("the soup was superb\n\nthe room was dreadful\n")
    code, out, err = run_cli(monkeypatch, capsys, "predict", run, "a wonderful book", "--file", texts, "--json")
    assert code == 0, err
    assert [p["label"] for p in json.loads(out)] == ["positive", "positive", "negative"]

    code, out, _ = run_cli(monkeypatch, capsys, "evaluate", run, table, "--json")
    assert code == 0 and json.loads(out)["n"] == 48


def test_options_of_another_task_are_refused(monkeypatch, capsys, tmp_path):
    from .tasks.test_text_classifier import sentiment_table

    table = sentiment_table(tmp_path / "reviews.tsv")
    code, _, err = run_cli(monkeypatch, capsys, "fit", table, "--out", tmp_path / "run", "--image-size", "64")
    assert code == 2 and "text-classification does not take --image-size" in err
    # lr-find refuses them in the same words (the same check), before any data are read
    code, _, err = run_cli(monkeypatch, capsys, "lr-find", table, "--out", tmp_path / "lr.png", "--image-size", "64")
    assert code == 2 and "text-classification does not take --image-size" in err
    code, _, err = run_cli(monkeypatch, capsys, "fit", table, "--out", tmp_path / "run2", "--backbone",
                           "efficientnet_lite0")
    assert code == 2 and "needs a text backbone" in err and "all-minilm-l6-v2" in err


def test_forecast_fit_report_and_predict(monkeypatch, capsys, tmp_path):
    from .tasks.test_forecaster import series_csv

    data = series_csv(tmp_path / "load.csv")
    run = tmp_path / "run"
    code, out, err = run_cli(monkeypatch, capsys, "fit", data, "--out", run, "--lookback", "48", "--horizon", "12",
                             "--epochs", "1", "--target", "load")
    assert code == 0, err
    assert "task: forecast" in out and "DLinear" in out
    html = (run / "report.html").read_text()
    assert "forecast vs actual" in html and "the best baseline" in html
    code, out, err = run_cli(monkeypatch, capsys, "predict", run, data, "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert len(rows) == 12 and rows[0]["time"] == "2020-02-07 12:00:00" and set(rows[0]) == {"time", "load"}
    code, out, _ = run_cli(monkeypatch, capsys, "evaluate", run, data, "--json")
    assert code == 0 and json.loads(out)["n"] == 900 - 48 - 12 + 1


@pytest.mark.parametrize("content, args, message", [
    ("date,x\n2020-01-01 00:00,1\n2020-01-01 01:00,oops\n", [], "non-numeric value 'oops' in column 'x' at line 3"),
    ("date,x\n2020-01-01 00:00,1\n2020-01-01 00:00,2\n", [], "duplicate"),
    ("date,x\n2020-01-01 00:00,1\n2020-01-01 03:00,2\n2020-01-01 04:00,2\n", [], "gap"),
    ("".join(f"2020-01-01 {h:02d}:00,{h}\n" for h in range(24)), ["--horizon", "96"], "shorter --lookback/--horizon"),
])
def test_forecast_bad_input_is_one_line(monkeypatch, capsys, tmp_path, content, args, message):
    data = tmp_path / "series.csv"
    data.write_text(content if content.startswith("date") else "date,x\n" + content)
    code, _, err = run_cli(monkeypatch, capsys, "fit", data, "--out", tmp_path / "run", "--task", "forecast", *args)
    assert code == 2 and message in err and "Traceback" not in err, err
