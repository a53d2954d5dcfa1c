"""End to end on real review sentences (skipped where ../shared/datasets is absent)."""
import json

import pytest

from transferkit.rundir import read_metrics

from tests.helpers import run_cli, shared_dataset


@pytest.mark.slow
def test_linear_probe_on_yelp_reviews(monkeypatch, capsys, tmp_path):
    yelp = shared_dataset("sentiment", "reviews", "yelp.txt")
    run = tmp_path / "run"
    code, out, err = run_cli(monkeypatch, capsys, "fit", yelp, "--out", run, "--strategy", "linear-probe", "--quiet")
    assert code == 0, err
    metrics = read_metrics(run).metrics
    assert metrics["n"] == 200  # 20 % of 1,000 sentences
    # measured 0.905 with MiniLM mean-pooled embeddings + tuned logistic regression
    assert metrics["accuracy"] >= 0.85, metrics["accuracy"]
    code, out, _ = run_cli(monkeypatch, capsys, "predict", run, "The waiters were rude and the food was cold.", "--json")
    assert code == 0 and json.loads(out)[0]["label"] == "0"
