"""Forecaster end to end on small synthetic series: fit, baselines, save/load, transfer, probe."""
import json

import numpy as np
import pandas as pd
import pytest
from safetensors.torch import load_file

from transferkit import Forecaster, load_run
from transferkit.reporting import write_run_report
from transferkit.backbones.run_dir import load_run_backbone
from transferkit.errors import BackboneUnavailableError, DataError, RunDirectoryError
from transferkit.rundir import read_metrics

from tests.helpers import series_csv

FAST = dict(lookback=48, horizon=12, epochs=2, progress=False)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return series_csv(tmp_path_factory.mktemp("ts") / "source.csv")


@pytest.fixture(scope="module")
def fitted(source, tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    model = Forecaster(run_dir=run, **FAST).fit(source)
    model.evaluate()
    model.save(run)
    return model, run


def test_fit_trains_from_scratch_and_reports_baselines(fitted):
    model, _ = fitted
    metrics = model.metrics_
    assert model.strategy_ == "full" and "no pretrained weights" in model.strategy_settings_["reason"]
    assert model.strategy_settings_["freeze_bn_stats"] is False  # untrained BN statistics must be learnt
    assert model.split_["description"].startswith("chronological 70/10/20")
    assert set(metrics["baselines"]) == {"seasonal naive (24)", "naive (last value)", "DLinear"}
    # a daily sine is easy: the model must be far better than forecasting the mean (MSE ≈ 1)
    assert metrics["mse"] < 0.3 and metrics["n"] == 180 - 12 + 1  # test rows - horizon + 1
    assert metrics["per_channel"].keys() == {"load", "temp"}
    assert [row["epoch"] for row in model.history_] == [1, 2] and "val_mae" in model.history_[0]


def test_a_run_without_pretrained_weights_has_no_transfer_verdict(fitted):
    """Nothing was transferred: the run is judged against its baselines, not as a transfer."""
    model, run = fitted
    metrics = model.metrics_
    assert "transfer" not in metrics and model.control_ is None and model.domain_ is None
    check = metrics["baseline_check"]
    best = min(metrics["baselines"], key=lambda name: metrics["baselines"][name]["mse"])
    assert check["best_baseline"] == best and check["baseline"] == pytest.approx(metrics["baselines"][best]["mse"])
    assert check["model"] == pytest.approx(metrics["mse"]) and check["noise"] > 0 and check["blocks"] == 169 // 12
    expected = {"model": "The model beats every baseline", "baseline": "A baseline beats the model",
                "tie": "No measurable difference between the model and the best baseline"}[check["verdict"]]
    assert check["headline"].startswith(expected)
    assert ("transfer check: none", "no pretrained weights, so nothing was transferred: the model is compared "
            "with the baselines only") in model.decisions_
    html = write_run_report(run).read_text()
    assert "Transfer check" not in html and "NEGATIVE TRANSFER" not in html and "--strategy full" not in html
    assert check["headline"] in html


def test_a_baseline_that_beats_the_model_is_named_with_possible_advice(tmp_path):
    """One epoch on a trended random walk: the last value is hard to beat, and the run says so."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"date": pd.date_range("2020-01-01", periods=600, freq="h").strftime("%Y-%m-%d %H:%M"),
                          "level": np.cumsum(rng.normal(0, 1, 600))})
    frame.to_csv(tmp_path / "walk.csv", index=False)
    model = Forecaster(lookback=24, horizon=6, epochs=1, progress=False).fit(tmp_path / "walk.csv")
    check = model.evaluate()["baseline_check"]
    assert check["verdict"] == "baseline", check
    assert check["headline"] == (f"A baseline beats the model: the best baseline ({check['best_baseline']}) has "
                                 f"test MSE {check['baseline']:.4f} against {check['model']:.4f}")
    assert check["advice"][0] == ("train longer: the run stopped at its limit of 1 epoch, not by early stopping "
                                  "(--epochs 10)")
    assert not any("--strategy full" in a or "domain adaptation" in a for a in check["advice"])


def test_run_directory_reloads_and_predicts_in_original_units(fitted, source):
    model, run = fitted
    config = json.loads((run / "config.json").read_text())
    assert config["task"] == "forecast" and config["lookback"] == 48 and config["series"] == ["load", "temp"]
    assert (run / "forecast_examples.json").is_file()
    again = load_run(run)
    history = pd.read_csv(source)[["load", "temp"]].to_numpy()
    forecast = again.predict(history)
    np.testing.assert_allclose(forecast, model.predict(history), atol=1e-5)
    assert forecast.shape == (12, 2) and 15 < forecast[:, 1].mean() < 25  # temp stays near its level
    np.testing.assert_allclose(again.predict(source), forecast, atol=1e-5)
    with pytest.raises(DataError, match="needs the last 48"):
        again.predict(history[:10])


def test_transfer_carries_the_head_and_never_ships_worse_than_it_started(fitted, tmp_path):
    _, run = fitted
    target = series_csv(tmp_path / "target.csv", seed=1, phase=1.0, level=30.0)
    tuned = Forecaster(backbone=str(run), train_fraction=0.2, **{**FAST, "lookback": None}).fit(target)
    assert tuned.strategy_ == "fine-tune" and tuned.lookback_ == 48
    # what the run did is a note, not a warning
    assert any("so its forecast head is kept" in n for n in tuned.notes_)
    assert any("validation MSE" in n for n in tuned.notes_)
    assert not any("forecast head" in w or "validation MSE" in w for w in getattr(tuned, "warnings_", []))
    assert tuned.evaluate()["mse"] < 0.5
    with pytest.raises(DataError, match="reads windows of 48 steps"):
        Forecaster(backbone=str(run), lookback=96, horizon=12, progress=False).fit(target)


def test_lora_that_does_not_help_a_transferred_forecaster_is_flagged_not_a_crash(fitted, tmp_path):
    """LoRA adds layers, so the starting weights no longer fit the model: a LoRA run whose
    adaptation does not lower the validation MSE cannot fall back to them, and says so."""
    _, run = fitted
    target = series_csv(tmp_path / "target.csv", seed=4, level=20.0)
    tuned = Forecaster(backbone=str(run), strategy="lora", lr=1e-30, baseline=False,
                       **{**FAST, "lookback": None, "epochs": 1}).fit(target)
    assert any("could not be kept instead; try --strategy auto" in w for w in tuned.warnings_)
    assert tuned.evaluate()["mse"] > 0


def test_linear_probe_refits_only_the_output_layer(fitted, tmp_path):
    _, run = fitted
    target = series_csv(tmp_path / "target.csv", seed=2, level=5.0)
    source_model = load_run(run)
    probe = Forecaster(backbone=str(run), strategy="linear-probe", horizon=12, baseline=False,
                       progress=False).fit(target)
    assert probe.control_ is None and ("transfer check: skipped", "baseline=False (--no-baseline): no from-scratch "
                                       "control was trained") in probe.decisions_
    for (name, before), after in zip(source_model.model_.backbone.state_dict().items(),
                                     probe.model_.backbone.state_dict().values()):
        assert np.array_equal(before.numpy(), after.numpy()), name
    assert "ridge_lambda" in probe.strategy_settings_


def test_bad_forecast_requests(source):
    with pytest.raises(DataError, match="or a shorter --lookback/--horizon"):
        Forecaster(lookback=336, horizon=400, progress=False).fit(source)
    with pytest.raises(DataError, match="keeps 31 of 630 training rows, fewer than lookback \\+ horizon = 60: the "
                                        "training segment needs at least 1200 rows, a series split 70/10/20 at least"):
        Forecaster(lookback=48, horizon=12, train_fraction=0.05, progress=False).fit(source)
    with pytest.raises(DataError, match="--target; columns found: date, load, temp"):
        Forecaster(target="OT", **FAST).fit(source)


def test_transfer_is_judged_against_the_same_architecture_from_scratch(fitted, tmp_path):
    _, run = fitted
    target = series_csv(tmp_path / "target.csv", seed=3, level=50.0)
    tuned = Forecaster(backbone=str(run), train_fraction=0.3, **{**FAST, "lookback": None}).fit(target)
    shift = tuned.domain_["batchnorm_shift"]
    assert shift is not None and shift["shift"] >= 0 and "interpretation" in shift
    metrics = tuned.evaluate()
    check = metrics["transfer"]
    # the control: the source's architecture with random weights, trained on the same windows, not a baseline
    assert check["control"].startswith("patchtst-small architecture, random weights, trained from scratch on the "
                                       "same windows (") and "at most 2 epochs" in check["control"]
    assert check["control"] not in metrics["baselines"] and tuned.control_["mse"] == pytest.approx(check["baseline"])
    assert check["metric"] == "mse" and check["model"] == pytest.approx(metrics["mse"])
    assert check["gain"] == pytest.approx(check["baseline"] - check["model"])
    assert check["verdict"] in ("positive", "negative", "negligible", "inconclusive") and check["n"] == metrics["n"]
    if check["verdict"] != "positive":
        assert not any("--strategy full" in a for a in check["advice"])  # auto fine-tunes; full is possible advice
    assert "baseline_check" in metrics  # the baselines still say whether they beat the model
    assert tuned.timings_["from-scratch control"] > 0
    assert any(d[0] == f"control: {check['control']}" for d in tuned.decisions_)


def test_constant_series_fits_evaluates_and_reports(tmp_path):
    frame = pd.DataFrame({"date": pd.date_range("2020-01-01", periods=300, freq="h").strftime("%Y-%m-%d %H:%M"),
                          "flat": np.full(300, 3.5)})
    frame.to_csv(tmp_path / "flat.csv", index=False)
    run = tmp_path / "run"
    model = Forecaster(lookback=24, horizon=6, epochs=1, progress=False, run_dir=run).fit(tmp_path / "flat.csv")
    metrics = model.evaluate()
    assert metrics["baselines"]["DLinear"]["mse"] == 0.0 and np.isfinite(metrics["mse"])
    assert any("'flat' is constant in the training segment" in n for n in model.notes_)
    np.testing.assert_allclose(model.predict(frame["flat"].to_numpy()), 3.5, atol=0.05)
    model.save(run)
    assert "constant in the training segment" in write_run_report(run).read_text()


def test_cli_prints_the_baseline_verdict_without_transfer_and_the_control_with_it(monkeypatch, capsys, tmp_path):
    from tests.helpers import run_cli

    source = series_csv(tmp_path / "source.csv", rows=500)
    target = series_csv(tmp_path / "target.csv", seed=4, rows=500)
    common = ("--lookback", "24", "--horizon", "6", "--epochs", "1", "--target", "load")
    code, out, err = run_cli(monkeypatch, capsys, "fit", source, "--out", tmp_path / "scratch", *common)
    assert code == 0, err
    said = " ".join(out.split())  # rich wraps long lines
    metrics = read_metrics(tmp_path / "scratch").metrics
    assert " ".join(metrics["baseline_check"]["headline"].split()) in said
    assert "transfer" not in metrics and "NEGATIVE TRANSFER" not in said and "transfer positive" not in said
    code, out, err = run_cli(monkeypatch, capsys, "fit", target, "--out", tmp_path / "moved", "--backbone",
                             tmp_path / "scratch", *common)
    assert code == 0, err
    said = " ".join(out.split())
    assert "for patchtst-small architecture, random weights, trained from scratch on the same windows" in said


def test_lora_on_an_untrained_encoder_saves_the_whole_model_and_reloads_it(source, tmp_path):
    """patchtst-small has no pretrained weights and the run resizes it (lookback 48): the base
    cannot be rebuilt from its name, so LoRA saves base, adapters and head, and says so."""
    model = Forecaster(strategy="lora", strategy_options={"r": 2}, **{**FAST, "epochs": 1}).fit(source)
    run = model.save(tmp_path / "run")
    config = json.loads((run / "config.json").read_text())
    assert config["weights"] == "full" and config["strategy"]["settings"]["weights"] == "full"
    assert any("the base has no pretrained weights, so the whole model is saved" in n for n in model.notes_)
    state = load_file(str(run / "model.safetensors"))
    assert state.keys() == model.model_.state_dict().keys() and any("lora_" in k for k in state)
    history = pd.read_csv(source)[["load", "temp"]].to_numpy()[-200:]
    np.testing.assert_allclose(load_run(run).predict(history), model.predict(history), atol=0, rtol=0)
    with pytest.raises(BackboneUnavailableError, match="LoRA adapters; fit with --strategy fine-tune"):
        load_run_backbone(run)  # its backbone holds adapters, which a plain encoder cannot take

    config["weights"] = "adapter"  # edited to disagree with what the strategy saved for these settings
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(RunDirectoryError, match="strategy 'lora' saves 'full' weights"):
        load_run(run)
