"""`transferkit fit --label-columns`: a head per label column from the command line, on a slice of
real reviews (sentiment + which site they come from); a mistyped column is one line, exit 2."""
import json

from transferkit.rundir import read_metrics

from tests.helpers import assert_one_usage_line, run_cli, run_subprocess, shared_dataset


def reviews_slice(path, per_site=40):
    """The first `per_site` reviews of Amazon and of Yelp, labelled with sentiment and domain."""
    rows = ["sentence\tsentiment\tdomain"]
    for site in ("amazon", "yelp"):
        lines = shared_dataset("sentiment", "reviews", f"{site}.txt").read_text(encoding="utf-8").splitlines()
        for line in lines[:per_site]:
            text, label = line.rsplit("\t", 1)
            rows.append(f"{text.strip()}\t{'positive' if label.strip() == '1' else 'negative'}\t{site}")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_fit_predict_evaluate_with_two_label_columns(monkeypatch, capsys, tmp_path):
    data = reviews_slice(tmp_path / "reviews.tsv")
    run = tmp_path / "run"
    code, out, err = run_cli(monkeypatch, capsys, "fit", data, "--label-columns", "sentiment,domain",
                             "--strategy", "linear-probe", "--no-baseline", "--out", run)
    assert code == 0, err
    assert "head 'sentiment'" in out and "head 'domain'" in out and "test accuracy per head" in out
    assert "heads: sentiment (2 classes), domain (2 classes)" in out
    config = json.loads((run / "config.json").read_text())
    assert config["heads"] == {"sentiment": ["negative", "positive"], "domain": ["amazon", "yelp"]}
    metrics = read_metrics(run).metrics
    assert set(metrics["heads"]) == {"sentiment", "domain"} and metrics["primary_head"] == "sentiment"
    report = (run / "report.html").read_text()
    assert 'id="metrics-per-head"' in report and "<h3>domain</h3>" in report

    code, out, err = run_cli(monkeypatch, capsys, "predict", run, "The battery died after a day.",
                             "The waiter was friendly.", "--json", "--top-k", "2")
    assert code == 0, err
    records = json.loads(out)
    assert [set(r["heads"]) for r in records] == [{"sentiment", "domain"}] * 2
    assert all(len(r["heads"]["domain"]["top_k"]) == 2 for r in records)
    code, out, err = run_cli(monkeypatch, capsys, "evaluate", run, data)
    assert code == 0 and "accuracy per head" in out, err


def test_unknown_label_column_is_one_line_exit_2(tmp_path):
    data = tmp_path / "reviews.csv"
    data.write_text("review,sentiment,domain\n" + "".join(f"text {i},{i % 2},{i % 3}\n" for i in range(30)))
    result = run_subprocess("fit", data, "--label-columns", "sentiment,topic", "--out", tmp_path / "run")
    assert_one_usage_line(result.returncode, result.stderr, "--label-columns")
    assert "no column 'topic'" in result.stderr and "columns found: review, sentiment, domain" in result.stderr
