"""`fit`, `evaluate` and `predict` print what the task's presentation hooks return: the CLI holds no
task-specific table."""
from __future__ import annotations

import pytest

from transferkit.cli import render
from transferkit.tasks import Forecaster, ImageClassifier, TextClassifier

CLASSIFICATION = {"per_class": {"red": {"precision": 0.5, "recall": 0.25, "f1": 0.333, "support": 4},
                                "blue": {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 3}},
                  "accuracy": 0.5714, "macro_f1": 0.6667, "n": 7}
FORECAST = {"mse": 0.5, "mae": 0.4, "mase": 1.2, "n": 12,
            "baselines": {"naive": {"mse": 0.6, "mae": 0.5, "mase": 1.3}, "DLinear": {"mse": 0.55, "mae": 0.45}}}


def test_classification_metrics_print_per_class_rows_totals_and_the_accuracy_line(capsys):
    render._print_metrics(ImageClassifier(), CLASSIFICATION)
    out = capsys.readouterr().out
    assert "test split (7 examples)" in out and "macro F1" in out
    assert out.strip().splitlines()[-1] == "test accuracy (n=7) 0.571, macro-F1 0.667"
    render._print_metrics(TextClassifier(), {**CLASSIFICATION, "estimate": "5-fold cross-validation"}, data="dev.tsv")
    out = capsys.readouterr().out
    assert "dev.tsv (7 examples)" in out and out.strip().splitlines()[-1].startswith("accuracy on dev.tsv (n=7) 0.571")


def test_a_cross_validated_estimate_is_named_so_not_test_accuracy(capsys):
    render._print_metrics(ImageClassifier(), {**CLASSIFICATION, "estimate": "5-fold cross-validation", "folds": 5})
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1] == "cross-validated accuracy (5-fold, n=7) 0.571, macro-F1 0.667"
    assert "test" not in out


def test_forecast_metrics_print_the_model_and_its_baselines_counted_in_windows(capsys):
    table, headline = Forecaster().metrics_table(FORECAST, data="history.csv")
    assert headline is None and table.title == "history.csv (12 windows)"
    assert [row[0] for row in table.rows] == ["model (this run)", "naive", "DLinear"]
    assert table.rows[2][1:] == ("0.5500", "0.4500", "n/a")  # a metric not recorded is no number
    render._print_metrics(Forecaster(), FORECAST)
    assert "test split (12 windows)" in capsys.readouterr().out


@pytest.mark.parametrize("est, inputs, file, message", [
    (Forecaster(), ["a.csv", "b.csv"], None, "one CSV of history"),
    (ImageClassifier(), [], "texts.txt", "--file is for text models"),
    (ImageClassifier(), [], None, "nothing to predict"),
    (TextClassifier(), [], None, "pass inputs as arguments or --file"),
])
def test_each_task_reads_its_own_prediction_inputs(est, inputs, file, message):
    from pathlib import Path

    from transferkit.errors import TransferkitError

    with pytest.raises(TransferkitError, match=message):
        est.read_prediction_inputs(inputs, Path(file) if file else None)


def test_a_check_without_a_noise_band_prints_why_not_inf():
    from transferkit.cli.render import _noise

    assert _noise({"noise": 0.01234}) == "noise ±0.0123"
    text = _noise({"noise": float("inf"), "undefined": {"noise": "145 test windows hold 1 block of 96"}})
    assert "inf" not in text and text.startswith("noise n/a: 145 test windows")


@pytest.mark.parametrize("columns", ["80", "60"])
def test_a_wide_table_in_a_narrow_terminal_keeps_every_name_and_number_whole(columns, monkeypatch):
    """extend's comparison table at 80 columns squeezed its model names to nothing; now every cell is
    printed whole (wrapped, on its side, or as lines)."""
    import io

    from rich.console import Console

    from transferkit._format import Table

    spec = Table(columns=("model", "old acc before", "old acc after", "forgetting", "new-class acc", "all acc",
                          "seconds"),
                 right=("old acc before", "old acc after", "forgetting", "new-class acc", "all acc", "seconds"),
                 rows=[("extend (this run)", "0.650", "0.625", "2.5 ± 3.0 pts", "0.675", "0.635", "12.3"),
                       ("naive: new data only", "0.650", "0.000", "65.0 pts", "1.000", "0.200", "4.1"),
                       ("retrain on all data", "0.650", "0.625", "2.5 pts", "0.675", "0.635", "30.2")],
                 title="extended with tulip")
    out = io.StringIO()
    monkeypatch.setenv("COLUMNS", columns)
    monkeypatch.setattr(render, "console", Console(file=out, width=int(columns), force_terminal=False))
    render._print_table(spec)
    text = " ".join(out.getvalue().split())  # wrapped text joined again
    for row in spec.rows:
        for cell in row:
            assert cell in text, (cell, out.getvalue())
