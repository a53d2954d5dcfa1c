"""`transferkit extend RUN NEW_DATA --out RUN2` as real processes: a fitted image classifier learns a new
class, the extended run records its parent and reloads, the report shows the lineage, and usage
mistakes are one line with exit status 2."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import assert_one_usage_line
from tests.helpers import cli_process as cli
from transferkit.testing import make_image_folder

SMALL = ["--image-size", "32", "--batch-size", "8", "--no-baseline", "--no-tta", "--quiet"]


@pytest.fixture(scope="module")
def parent(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("extend")
    for seed, (split, count) in enumerate((("train", 10), ("val", 3), ("test", 5))):
        make_image_folder(root / "old" / split, per_class=count, classes=("red", "green"), seed=seed)
    make_image_folder(root / "new", per_class=10, classes=("blue",), seed=7)
    result = cli("fit", root / "old", "--out", root / "run1", "--strategy", "prototypes", "--memory", "4", *SMALL)
    assert result.returncode == 0, result.stderr
    return root / "run1", root / "new"


def test_extend_adds_the_new_class_and_the_run_records_its_parent(parent, tmp_path):
    run1, new = parent
    result = cli("extend", run1, new, "--out", tmp_path / "run2", "--compare")
    assert result.returncode == 0, result.stderr
    # at 100 columns the model names wrap between words inside their cells
    assert "extended with blue" in result.stdout and "naive: new" in result.stdout
    assert "retrain on all" in result.stdout
    config = json.loads((tmp_path / "run2" / "config.json").read_text())
    assert config["classes"] == ["green", "red", "blue"]
    (step,) = config["run"]["lineage"]
    assert step["parent"] == str(run1) and step["added"] == ["blue"]
    assert set(step["comparison"]) == {"naive", "joint", "extend_seconds"}
    report = (tmp_path / "run2" / "report.html").read_text()
    assert 'id="lineage"' in report and "blue added to green, red" in report
    assert "extended from run" in report  # the header links the parent's report, relative to this one
    link = report.split('class="parent" href="', 1)[1].split('"', 1)[0]
    assert (tmp_path / "run2" / link).resolve() == (run1 / "report.html").resolve()
    predicted = cli("predict", tmp_path / "run2", *sorted(str(p) for p in new.rglob("*.jpg"))[:2], "--json")
    assert predicted.returncode == 0, predicted.stderr
    assert {r["label"] for r in json.loads(predicted.stdout)} <= {"green", "red", "blue"}
    # the parent is left as it was
    assert json.loads((run1 / "config.json").read_text())["classes"] == ["green", "red"]


@pytest.mark.parametrize("args, mentions", [
    (["extend", "{run}", "{new}", "--out", "{run}"], "is the run being extended"),
    (["extend", "{run}", "{missing}", "--out", "{out}"], "DATA {missing}: no such file or folder"),
    (["extend", "{missing}", "{new}", "--out", "{out}"], "{missing}"),
])
def test_extend_usage_mistakes_are_one_line_exit_2(parent, tmp_path, args, mentions):
    run1, new = parent
    names = {"run": run1, "new": new, "missing": tmp_path / "nowhere", "out": tmp_path / "out"}
    result = cli(*(a.format(**names) for a in args))
    assert_one_usage_line(result.returncode, result.stderr, mentions.format(**names))
    assert not (tmp_path / "out").exists()
