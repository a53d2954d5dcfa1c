"""What a forecast run says comes from what it did: the horizon a transferred forecaster takes,
the plan and decisions of a run trained from scratch, undefined metrics, and detection."""
import json
import logging
import re
from html import unescape

import numpy as np
import pandas as pd
import pytest
from safetensors.torch import load_file

from tests.helpers import assert_one_usage_line, run_subprocess, series_csv
from transferkit import Forecaster
from transferkit.data.timeseries import load_series_csv
from transferkit.errors import DataError
from transferkit.reporting import write_run_report
from transferkit.tasks import detect_task

FAST = dict(lookback=24, epochs=1, target="load", progress=False)


def report_text(run) -> str:
    """The report's visible text, one space between words."""
    html = (run / "report.html").read_text()
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def said(out: str) -> str:
    return " ".join(out.split())  # rich wraps long lines


def fitted_run(model: Forecaster, data, run) -> tuple[Forecaster, dict, str]:
    """`model` fitted on `data`, evaluated and saved to `run` with its report: (model, config, report text)."""
    model.fit(data)
    model.evaluate()
    model.save(run)
    write_run_report(run)
    return model, json.loads((run / "config.json").read_text()), report_text(run)


@pytest.fixture(scope="module")
def source_run(tmp_path_factory):
    """A forecaster trained from scratch at horizon 6 on half its training segment, with epochs given,
    and the plan it announced."""
    tmp = tmp_path_factory.mktemp("forecast_text")
    plan: list = []
    handler = logging.Handler()
    handler.emit = lambda record: plan.extend(getattr(record, "plan", []))
    logger = logging.getLogger("transferkit.plan")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        model, config, text = fitted_run(Forecaster(horizon=6, train_fraction=0.5, **FAST),
                                         series_csv(tmp / "source.csv", rows=500), tmp / "source")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return tmp, tmp / "source", model, config, text, dict(plan)


def test_a_run_trained_from_scratch_says_so_in_plan_decisions_advice_and_report(source_run):
    _, run, model, config, text, plan = source_run
    # the plan announces what the run then does: no control without pretrained weights
    assert plan["from-scratch control: none"].startswith("no pretrained weights, so nothing is transferred")
    decisions = dict(map(tuple, config["run"]["decisions"]))
    assert decisions["transfer check: none"].startswith("no pretrained weights")
    # epochs were given: the decision does not claim it chose more epochs
    [training] = [why for what, why in decisions.items() if what.startswith("training:")]
    assert "--epochs as given" in training and "more epochs" not in training and "smaller batches" in training
    # the advice names one value to try, not "1 or 1"
    assert model.metrics_["baseline_check"]["verdict"] != "model"  # one epoch on a sine: a baseline wins
    assert "train on more of the history: this run kept 0.5 of the training segment (--train-fraction 1)" \
        in model.metrics_["baseline_check"]["advice"]
    assert "(--train-fraction 1)" in text and "1 or 1" not in text
    assert "training from scratch" in config["run"]["timings"] and "fine-tuning" not in config["run"]["timings"]
    assert "fine-tuning" not in text.split("Timings", 1)[1].split("Configuration")[0]
    # `full` trains every group from the first epoch: no unfreezing lines to explain
    assert "unfreezing" not in text


def test_a_transferred_forecaster_takes_the_backbone_runs_horizon_and_keeps_its_head(source_run):
    tmp, source, *_ = source_run
    target = series_csv(tmp / "target.csv", seed=3, phase=1.0, rows=500)
    model, config, text = fitted_run(Forecaster(backbone=str(source), baseline=False, **{**FAST, "lookback": None}),
                                     target, tmp / "kept")
    assert config["horizon"] == 6 and config["params"]["horizon"] is None and model.horizon_ == 6
    assert any(n.startswith(f"horizon 6 taken from the backbone run {source}, so its forecast head is kept")
               for n in config["run"]["notes"])
    assert "horizon 6 of the backbone run (no --horizon): its forecast head is kept" in text
    assert load_file(str(tmp / "kept" / "model.safetensors"))["heads.main.linear.bias"].shape == (6,)
    assert model.predict(pd.read_csv(target)[["load"]].to_numpy()).shape == (6, 1)
    # the report quotes no image data sets as references for a series' domain shift
    assert "Domain shift" in text and "flowers" not in text and "digits" not in text
    assert "not graded: no reference shifts were measured for this kind of data" in text
    assert re.search(r"measured on [\d,]+ of the [\d,]+ training windows|measured on all [\d,]+ training windows", text)


def test_an_explicit_horizon_other_than_the_backbone_runs_re_initialises_the_head(source_run):
    tmp, source, *_ = source_run
    target = series_csv(tmp / "target3.csv", seed=5, rows=500)
    model, config, text = fitted_run(Forecaster(backbone=str(source), horizon=3, baseline=False,
                                                **{**FAST, "lookback": None}), target, tmp / "new")
    assert config["horizon"] == 3
    assert any(n.startswith(f"--horizon 3 differs from the horizon 6 of the backbone run {source}: its forecast head "
                            "cannot be kept, so a new head is trained from zero") for n in config["run"]["notes"])
    decisions = dict(map(tuple, config["run"]["decisions"]))
    assert "horizon as given, not the backbone run's 6: its forecast head is re-initialised" in \
        decisions["lookback 24, horizon 3"]
    assert "cannot be kept, so a new head is trained from zero" in text


def test_a_constant_series_fits_through_the_cli_with_undefined_metrics_shown_as_na(tmp_path):
    frame = pd.DataFrame({"date": pd.date_range("2020-01-01", periods=300, freq="h").strftime("%Y-%m-%d %H:%M"),
                          "flat": np.full(300, 3.5)})
    frame.to_csv(tmp_path / "flat.csv", index=False)
    result = run_subprocess("fit", tmp_path / "flat.csv", "--out", tmp_path / "run", "--lookback", "24", "--horizon",
                            "6", "--epochs", "1", "--quiet", timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    out = said(result.stdout)
    assert "MASE n/a: 'flat' never changes from one season to the next in the training data, so the seasonal-naive " \
           "error MASE divides by is zero" in out
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())["test"]
    assert metrics["mase"] is None and "seasonal-naive error" in metrics["undefined"]["mase"]
    text = report_text(tmp_path / "run")
    assert "n/a MASE 'flat' never changes" in text and "MASE n/a: 'flat' never changes" in text
    # a baseline that is exact leaves nothing to try
    assert "What to try" not in text


def test_a_time_column_named_twice_is_a_series_error_not_text_classification(tmp_path):
    path = tmp_path / "dup.csv"
    times = pd.date_range("2020-01-01", periods=200, freq="h").strftime("%Y-%m-%d %H:%M")
    frame = pd.DataFrame({"a": times, "b": times, "OT": np.arange(200.0)})
    frame.to_csv(path, index=False, header=["date", "date", "OT"])
    assert detect_task(path)[0] == "forecast"
    with pytest.raises(DataError, match="time column name 'date' appears twice in the header"):
        load_series_csv(path)
    result = run_subprocess("fit", path, "--out", tmp_path / "run", "--epochs", "1")
    assert_one_usage_line(result.returncode, result.stderr, "time column name 'date' appears twice in the header "
                                                            "(columns 1 and 2)")


def test_a_test_period_of_one_block_has_no_noise_band_and_says_why():
    from transferkit.reporting import RunReport, render_html
    from transferkit.tasks.forecast_metrics import compare_with_baselines, transfer_check

    rng = np.random.default_rng(0)
    model, other = rng.random(145), rng.random(145) + 0.01
    check = compare_with_baselines(model, {"DLinear": other}, horizon=96)
    why = "145 test windows hold 1 block of 96 non-overlapping forecast targets, and the spread needs at least 2"
    assert check["undefined"]["noise"].startswith(why) and check["verdict"] == "tie"
    assert "inside the noise band" not in check["headline"] and "too short to estimate the noise" in check["headline"]
    transfer = {**transfer_check(model, other, horizon=96), "control": "scratch"}
    assert transfer["undefined"]["noise"].startswith(why) and transfer["verdict"] == "inconclusive"
    metrics = {"mse": 0.5, "mae": 0.5, "n": 145, "baseline_check": {**check, "noise": None},
               "transfer": {**transfer, "noise": None}}  # metrics.json stores the infinite band as null
    html = render_html(RunReport(title="t", task="forecast", config={}, metrics=metrics, history=[], decisions=[],
                                 data_summary={}, timings={}))
    text = " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())
    assert f"noise band n/a: {why}" in text and f"noise band n/a ({why}" in text and "±—" not in text
