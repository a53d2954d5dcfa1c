"""`extend` as a user runs it, as real processes: data given as relative and absolute paths, commands run
from another directory, a parent whose data are gone, a grown run scored on all its classes as `fit`
scores a run, and no empty --out folder left by a command that failed."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import transferkit
from transferkit.rundir import read_metrics

from tests.helpers import assert_one_usage_line
from transferkit.testing import make_image_folder

SRC = Path(transferkit.__file__).resolve().parents[1]
SMALL = ["--image-size", "32", "--batch-size", "8", "--no-baseline", "--no-tta", "--quiet"]


def cli(*args: object, cwd: Path, columns: int = 160) -> subprocess.CompletedProcess:
    """`transferkit ARGS` run in `cwd` (the package found wherever that is), in a terminal `columns` wide."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": str(columns),
           "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "transferkit.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=600, cwd=cwd, env=env)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A project folder: old/ (2 classes, 12 images each: few enough that `fit` cross-validates), new/ (a
    third class), and runs/parent fitted from inside the folder with relative paths."""
    root = tmp_path_factory.mktemp("project")
    make_image_folder(root / "old", per_class=12, classes=("red", "green"), seed=1)
    make_image_folder(root / "new", per_class=12, classes=("blue",), seed=2)
    result = cli("fit", "old", "--out", "runs/parent", "--strategy", "linear-probe", *SMALL, cwd=root)
    assert result.returncode == 0, result.stderr
    return root


def test_new_data_as_an_absolute_path_beside_a_relative_parent(project):
    result = cli("extend", "runs/parent", project / "new", "--out", "runs/abs", "--quiet", cwd=project)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert json.loads((project / "runs/abs/config.json").read_text())["classes"] == ["green", "red", "blue"]


def test_extended_run_is_cross_validated_on_every_class_as_fit_would(project):
    """The parent was cross-validated (no test split): the grown run is too, on all 36 examples of its 3
    classes, never on the few held-out images of the new class alone."""
    result = cli("extend", "runs/parent", "new", "--out", "runs/grown", "--quiet", cwd=project)
    assert result.returncode == 0, result.stderr
    evaluation = read_metrics(project / "runs/grown")
    metrics = evaluation.metrics
    assert evaluation.kind == "cross_validation" and metrics["n"] == 36
    assert {c: m["support"] for c, m in metrics["per_class"].items()} == {"green": 12, "red": 12, "blue": 12}
    config = json.loads((project / "runs/grown/config.json").read_text())
    (step,) = config["run"]["lineage"]
    m = step["metrics"]
    assert step["evaluation"] == m["evaluation"] and "cross-validation" in m["evaluation"]
    assert m["old_accuracy_before"] is not None and m["forgetting"] is not None and m["forgetting_se"] is not None
    assert m["old_examples"] == 24 and m["new_examples"] == 12 and m["all_examples"] == 36
    assert abs(m["all_accuracy"] - metrics["accuracy"]) < 1e-6  # one estimate, told the same way everywhere
    # the report tells the extension's own story: its parent and what was added, not the parent's decisions
    decisions = [d[0] for d in config["run"]["decisions"]]
    assert decisions[0] == f"extended from run {project / 'runs/parent'}" and "classes added: blue" in decisions
    assert not any(d.startswith("strategy:") for d in decisions)
    assert config["run"]["timings"]["total extend"] >= sum(v for k, v in config["run"]["timings"].items()
                                                           if k not in ("total extend", "loading the parent run"))
    report = (project / "runs/grown/report.html").read_text()
    assert "<title>parent + blue" in report


def test_from_another_directory_compare_retrains_on_all_the_data(project, tmp_path):
    result = cli("extend", project / "runs/parent", project / "new", "--out", tmp_path / "grown", "--compare",
                 "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (step,) = json.loads((tmp_path / "grown/config.json").read_text())["run"]["lineage"]
    joint = step["comparison"]["joint"]
    assert "skipped" not in joint and joint["all_examples"] == 36  # the parent's images were found from here
    naive = step["comparison"]["naive"]
    assert naive["new_examples"] == 12
    # its old classes keep a head fitted on every old example: in-sample, so no forgetting figure, and said so
    assert naive["old_in_sample"] and "forgetting" not in naive and "scored in-sample" in result.stdout
    assert "parent run's data" not in result.stderr


def test_a_parent_whose_data_are_gone_says_so_in_one_line(project, tmp_path):
    moved = tmp_path / "project"
    shutil.copytree(project / "runs/parent", moved / "runs/parent")
    shutil.copytree(project / "new", moved / "new")
    # old/ stays behind under its recorded absolute path: hide it for this command by renaming it
    hidden = project / "old.hidden"
    (project / "old").rename(hidden)
    try:
        result = cli("extend", "runs/parent", "new", "--out", "runs/grown", "--compare", "--quiet", cwd=moved,
                     columns=60)
    finally:
        hidden.rename(project / "old")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if "parent run's data" in line]
    assert len(lines) == 1 and "24 of 24 recorded examples not found" in lines[0], result.stderr
    (step,) = json.loads((moved / "runs/grown/config.json").read_text())["run"]["lineage"]
    assert "skipped" in step["comparison"]["joint"]


def test_data_root_is_recorded_absolute_and_relative_to_the_run(tmp_path):
    from transferkit.rundir import record_data_location, resolve_data_root

    summary = record_data_location({"root": "old"}, tmp_path / "runs" / "r1")
    assert summary["root"] == os.path.abspath("old") and summary["root_from_run"] == os.path.relpath(
        os.path.abspath("old"), tmp_path / "runs" / "r1")
    # a run moved together with its data: found through the path relative to the run
    (tmp_path / "moved" / "data").mkdir(parents=True)
    assert resolve_data_root({"root": "/nowhere/data", "root_from_run": "../data"}, tmp_path / "moved" / "run") == \
        str(tmp_path / "moved" / "data")
    # a run saved with a relative root: found from the directory its fit ran in, whatever the current one
    (tmp_path / "proj" / "old").mkdir(parents=True)
    assert resolve_data_root({"root": "old"}, tmp_path / "proj" / "runs" / "p", "runs/p") == str(tmp_path / "proj" / "old")


@pytest.mark.parametrize("command", ["fit", "extend"])
def test_a_failed_command_leaves_no_empty_out_folder(project, tmp_path, command):
    make_image_folder(tmp_path / "one", per_class=3, classes=("red",))  # one class: fit refuses it
    (tmp_path / "junk" / "cls").mkdir(parents=True)
    (tmp_path / "junk" / "cls" / "notes.txt").write_text("no image here")  # extend refuses it
    out = tmp_path / "made" / "for" / "out"
    args = ["fit", tmp_path / "one", "--strategy", "linear-probe", *SMALL] if command == "fit" else \
        ["extend", project / "runs/parent", tmp_path / "junk"]
    result = cli(*args, "--out", out, cwd=tmp_path)
    assert_one_usage_line(result.returncode, result.stderr, "")
    assert not (tmp_path / "made").exists()
    # a folder that was there before stays, and so does anything in it
    (tmp_path / "mine").mkdir()
    result = cli(*args, "--out", tmp_path / "mine", cwd=tmp_path)
    assert result.returncode == 2 and (tmp_path / "mine").is_dir()


def test_a_failed_export_leaves_no_empty_out_folder(project, tmp_path):
    """The run's recorded examples are gone, so the export cannot be checked and fails: the folder it
    made for --out goes with it."""
    hidden = project / "old.hidden"
    (project / "old").rename(hidden)
    try:
        result = cli("export", project / "runs/parent", "--out", tmp_path / "made" / "model.onnx", cwd=tmp_path)
    finally:
        hidden.rename(project / "old")
    assert_one_usage_line(result.returncode, result.stderr, "restore the data")
    assert not (tmp_path / "made").exists()


def test_the_python_grow_example_saves_the_grown_runs_metrics(project, tmp_path, monkeypatch):
    """docs/python-api.md: `ImageClassifier.load(run).extend(new)` then `save`, run from another directory with the
    new data given by absolute path: metrics.json holds the estimate on every class."""
    from transferkit import ImageClassifier

    monkeypatch.chdir(tmp_path)
    grown = ImageClassifier.load(project / "runs/parent").extend(project / "new")
    grown.save(tmp_path / "grown")
    metrics = read_metrics(tmp_path / "grown").metrics
    assert metrics["n"] == 36 and metrics["accuracy"] == pytest.approx(grown.lineage_[-1]["metrics"]["all_accuracy"])
