"""`transferkit adapt SOURCE TARGET` and `fit --adapt-to TARGET`: domain adaptation from the command
line, as real processes on tiny texts (one epoch, an 8-wide bottleneck, one method), the adapted run
evaluated, the usage mistakes one line; and once on the real review sentences (amazon → yelp)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from transferkit.strategies.adapt_summary import DEV_MEANING, adaptation_summary
from transferkit.strategies.adaptation import METHODS

from tests.helpers import assert_one_usage_line, shared_dataset
from tests.helpers import cli_process as cli
from transferkit.testing import tiny_series, tiny_texts

#: the smallest adaptation the CLI runs: one method, one epoch, a tiny bottleneck, no control
SMALL = ["--method", "dann", "--epochs", "1", "--option", "bottleneck=8", "--max-length", "16", "--batch-size", "4",
         "--no-baseline", "--quiet"]


def labelled_target(root: Path) -> Path:
    """A few labelled sentences of the tiny target domain (restaurants), only to report accuracy."""
    path = root / "restaurant_labelled.csv"
    path.write_text("text,label\nthe meal was wonderful,positive\nthe meal was awful,negative\n"
                    "the meal was superb,positive\nthe meal was dreadful,negative\n")
    return path


def target_accuracy_line(out: str) -> str:
    (line,) = [line for line in out.splitlines() if line.startswith("target accuracy") and "used only to report" in line]
    return line


def candidates(run: Path) -> dict[str, dict]:
    settings = json.loads((run / "config.json").read_text())["strategy"]["settings"]
    return {row["method"]: row for row in settings["candidates"]}


@pytest.fixture(scope="module")
def adapted(tmp_path_factory) -> tuple[Path, Path, subprocess.CompletedProcess]:
    """One `transferkit adapt` run on tiny texts: (run folder, labelled target table, the process)."""
    root = tmp_path_factory.mktemp("adapt")
    data = tiny_texts(root / "texts")
    labelled = labelled_target(root)
    run = root / "run"
    result = cli("adapt", data.fit_on, data.unlabeled, "--out", run, "--target-labels", labelled, *SMALL)
    return run, labelled, result


def test_adapt_writes_an_adapted_run_and_prints_the_adaptation_summary(adapted):
    run, labelled, result = adapted
    assert result.returncode == 0, result.stderr
    config = json.loads((run / "config.json").read_text())
    assert config["strategy"]["used"] == "adapt" and config["strategy"]["settings"]["method"] == "dann"
    assert config["run"]["target"]["labelled"] == str(labelled) and config["run"]["target"]["labelled_examples"] == 4
    assert (run / "report.html").is_file() and "accuracy on the source domain's test split" in result.stdout
    rows = candidates(run)
    assert list(rows) == ["source-only", "none", "dann"]
    table = result.stdout[result.stdout.index("domain adaptation"):]
    for method, row in rows.items():  # each candidate's row, its DEV risk as printed
        assert re.search(rf"{re.escape(method)}\s.*{row['dev_risk']:.4f}", table), (method, table)
    kept = next(r for r in rows.values() if r["chosen"])
    assert f"kept {kept['method']}: " in result.stdout
    assert re.search(r"proxy A-distance.*: (\d\.\d\d|n/a.*) before → ", result.stdout)
    line = target_accuracy_line(result.stdout)
    assert f"{kept['method']} {kept['target_accuracy']:.4f}" in line and "(4 labelled examples)" in line
    # the headline is the target the run was adapted to, before the source's test split
    headline = next(line for line in result.stdout.splitlines() if line.startswith(f"target accuracy on {labelled}"))
    correct = round(4 * kept["target_accuracy"])
    assert f": {kept['target_accuracy']:.3f} ({correct} of 4 labelled target examples, 95% band " in headline
    assert result.stdout.index(headline) < result.stdout.index("the source domain's test split (")
    assert "DEV score [95% band]" in table and "est. target error" not in result.stdout
    assert re.search(r"the DEV weights rest on \d+ to \d+ effective source validation examples", result.stdout)
    metrics = json.loads((run / "metrics.json").read_text())["test"]["target_domain"]
    assert metrics["accuracy"] == pytest.approx(kept["target_accuracy"]) and metrics["n"] == 4


def test_evaluate_on_the_adapted_run_measures_the_kept_model_on_labelled_target_data(adapted):
    run, labelled, result = adapted
    assert result.returncode == 0, result.stderr
    evaluated = cli("evaluate", run, labelled, "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    kept = next(r for r in candidates(run).values() if r["chosen"])
    # the saved model on the same labelled target data: the accuracy the fit reported for what it kept
    assert json.loads(evaluated.stdout)["accuracy"] == pytest.approx(kept["target_accuracy"], abs=1e-6)


def test_fit_adapt_to_adapts_through_fit_with_the_method_as_a_strategy_option(tmp_path):
    data = tiny_texts(tmp_path / "texts")
    run = tmp_path / "run"
    small = [a for a in SMALL if a not in ("--method", "dann")]
    result = cli("fit", data.fit_on, "--adapt-to", data.unlabeled, "--out", run, "--option", "method=coral", *small)
    assert result.returncode == 0, result.stderr
    strategy = json.loads((run / "config.json").read_text())["strategy"]
    assert (strategy["requested"], strategy["used"], strategy["settings"]["method"]) == ("auto", "adapt", "coral")
    assert "kept coral: " in result.stdout  # no labelled target given: the target accuracy is unknown, said so
    assert "target accuracy: unknown — no labelled target data were given (--target-labels)" in result.stdout
    assert "score the SOURCE domain's test split" in result.stdout


@pytest.fixture(scope="module")
def texts(tmp_path_factory):
    return tiny_texts(tmp_path_factory.mktemp("mistakes") / "texts")


@pytest.mark.parametrize("args, mentions, creates_run", [
    (["adapt", "{source}", "{missing}", "--out", "{run}"], "TARGET {missing}: no such file or folder", False),
    (["adapt", "{source}", "--out", "{run}"], "missing argument TARGET", False),
    (["adapt", "{source}", "{target}", "--out", "{run}", "--method", "dan"],
     "is not one of " + ", ".join(repr(m) for m in ("auto", *METHODS, "none")), False),
    (["adapt", "{source}", "{target}", "--out", "{run}", "--encoder", "thawed"], "--encoder", False),
    (["adapt", "{source}", "{target}", "--out", "{run}", "--target-labels", "{missing}"],
     "--target-labels {missing}: no such file or folder", False),
    (["adapt", "{source}", "{target}", "--out", "{run}", "--method", "coral", "--option", "method=dann"],
     "--method coral and --option method=dann disagree", False),
    (["fit", "{source}", "--out", "{run}", "--target-labels", "{source}"], "give the unlabelled target data too",
     False),
    (["fit", "{source}", "--out", "{run}", "--adapt-to", "{missing}"], "--adapt-to {missing}: no such file", False),
    # the API's own words, once the estimator is built (the run folder is made by then)
    (["fit", "{source}", "--adapt-to", "{target}", "--out", "{run}", "--strategy", "linear-probe", "-q"],
     "used by strategy 'adapt', not 'linear-probe'", True),
    (["adapt", "{series}", "{series}", "--out", "{run}", "-q"], "for image and text tasks, not forecast", True),
])
def test_adapt_usage_mistakes_are_one_line_exit_2(texts, tmp_path, args, mentions, creates_run):
    names = {"source": texts.fit_on, "target": texts.unlabeled, "missing": tmp_path / "nowhere.txt",
             "run": tmp_path / "run"}
    if "{series}" in args:
        names["series"] = tiny_series(tmp_path / "series").fit_on
    result = cli(*(a.format(**names) for a in args))
    assert_one_usage_line(result.returncode, result.stderr, mentions.format(**names))
    if not creates_run:  # refused before anything is written
        assert not (tmp_path / "run").exists()


def test_method_choices_are_the_strategys():
    from transferkit.cli.options import adapt_option_specs
    from transferkit.strategies.adapt import ENCODERS, AdaptOptions

    specs = {s["name"]: s for s in adapt_option_specs()}
    assert set(specs["method"]["choices"]) == {"auto", "none", *METHODS}
    assert specs["encoder"]["choices"] == list(ENCODERS) and specs["encoder"]["default"] == AdaptOptions.encoder


def test_summary_of_a_run_that_kept_source_only_says_the_features_did_not_move():
    row = {"source_val_accuracy": 0.9, "target_entropy": 0.3, "dev_risk": 0.2, "criterion": 0.2, "epochs_run": 2}
    settings = {"criterion": "dev", "reason": "source-only kept: no method's dev risk was below ...",
                "a_distance_before": {"a_distance": 1.234, "domain_accuracy": 0.8, "examples_per_domain": 40},
                "candidates": [{**row, "method": "source-only", "epoch": None, "chosen": 1},
                               {**row, "method": "none", "epoch": 2, "chosen": 0},
                               {**row, "method": "dann", "epoch": 1, "dev_risk": 0.25, "chosen": 0}]}
    table, lines = adaptation_summary(settings)
    assert "target acc" not in table.columns  # no labelled target data: no column, no accuracy line
    assert [r[0] for r in table.rows] == ["source-only", "none", "dann"] and table.rows[0][-1] == "✓"
    assert table.rows[2][1:5] == ("1/2", "0.9000", "0.3000", "0.2500")
    assert lines == ["kept source-only: no method's dev risk was below ...", DEV_MEANING,
                     "domain shift (proxy A-distance, 0 = features alike, 2 = fully separable): 1.23 before → "
                     "the same after (source-only kept: the encoder's features)"]


@pytest.mark.slow
def test_adapt_amazon_to_yelp_prints_the_target_accuracy_the_run_records(tmp_path):
    reviews = shared_dataset("sentiment", "reviews")
    run = tmp_path / "run"
    result = cli("adapt", reviews / "amazon.txt", reviews / "yelp.txt", "--out", run, "--target-labels",
                 reviews / "yelp.txt", "--method", "coral", "--epochs", "2", "--no-baseline", "--quiet", timeout=900)
    assert result.returncode == 0, result.stderr
    rows = candidates(run)
    assert list(rows) == ["source-only", "none", "coral"] and rows["coral"]["chosen"] == 1
    line = target_accuracy_line(result.stdout)
    coral, source_only = rows["coral"]["target_accuracy"], rows["source-only"]["target_accuracy"]
    assert "(1000 labelled examples)" in line
    assert f"coral {coral:.4f} vs source-only {source_only:.4f} ({100 * (coral - source_only):+.1f} points)" in line
    # measured 0.839 for the source-only probe (MiniLM features, amazon → yelp): the real gap is there
    assert 0.75 <= source_only <= 0.95 and coral > 0.5


def test_adapt_help_reads_the_strategy_once_then_answers_from_the_cache(tmp_path):
    """The method and encoder choices come from the strategy (torch): read once, then cached like fit's options."""
    code = ("import sys\nfrom transferkit.cli import main\nsys.argv = ['transferkit', 'adapt', '--help']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\nprint('torch' in sys.modules)")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path), "COLUMNS": "200"}
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
            for _ in range(2)]
    assert [r.stdout.strip().splitlines()[-1] for r in runs] == ["True", "False"], runs[1].stderr
    assert "|".join(("auto", *METHODS, "none")) in runs[1].stdout and "--horizon" not in runs[1].stdout
    assert len(list((tmp_path / "transferkit").glob("adapt-options-*.json"))) == 1
