"""`transferkit runs` and `compare`: real runs listed and compared from their files, and a run's
report linking the run it was built from."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from transferkit import ImageClassifier
from transferkit.errors import DataError, RunDirectoryError
from transferkit.export import export_run
from transferkit.reporting import write_run_report
from transferkit.reporting.runs import compare_runs, comparison_tables, find_runs, runs_table
from transferkit.rundir import LOCK_FILE, run_parents

from ..conftest import make_image_folder

FAST = dict(epochs=1, image_size=32, baseline=False, progress=False, tta=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """runs/probe and runs/protos (two strategies on one folder; probe exported to ONNX),
    runs/child/tuned (a probe on runs/probe's backbone), and runs/broken (a fit's lock, no model)."""
    root = tmp_path_factory.mktemp("runs")
    data = make_image_folder(root / "data", per_class=8)
    out = root / "runs"
    fits = {"probe": dict(strategy="linear-probe"), "protos": dict(strategy="prototypes"),
            "child/tuned": dict(strategy="linear-probe", backbone=str(out / "probe"))}
    for name, params in fits.items():
        est = ImageClassifier(**params, **FAST).fit(data)
        est.evaluate()
        est.save(out / name)
    for name in ("probe", "protos", "child/tuned"):
        write_run_report(out / name)
    export_run(out / "probe")  # runs/probe/model.onnx, recorded in its exports.json
    (out / "broken").mkdir()
    (out / "broken" / LOCK_FILE).write_text("999999999 nowhere\n")
    return out


def test_find_runs_lists_every_run_with_task_metrics_status_and_parent(runs):
    found = {r.path.relative_to(runs).as_posix(): r for r in find_runs(runs)}
    assert set(found) == {"probe", "protos", "child/tuned", "broken"}
    assert found["probe"].strategy == "linear-probe" and found["protos"].strategy == "prototypes"
    assert found["probe"].backbone == "efficientnet_lite0"
    saved = json.loads((runs / "probe" / "metrics.json").read_text())["test"]
    assert found["probe"].metrics["accuracy"] == saved["accuracy"]
    assert found["probe"].status == "complete" and found["broken"].status in {"running", "interrupted"}
    assert found["probe"].exports == ["onnx fp32"] and found["protos"].exports == []
    assert [p["path"] for p in found["child/tuned"].parents] == [str((runs / "probe").resolve())]
    assert found["child/tuned"].backbone == "run probe (efficientnet_lite0)"
    created = [r.created for r in find_runs(runs) if r.created]
    assert created == sorted(created, reverse=True)  # newest first

    table = runs_table(find_runs(runs), runs)
    assert table.columns[:6] == ("run", "task", "backbone", "strategy", "accuracy", "macro F1")
    assert table.columns[-2:] == ("exports", "parent")
    row = next(r for r in table.rows if r[0] == os.path.join("child", "tuned"))
    assert row[-2:] == ("—", "probe")
    assert next(r for r in table.rows if r[0] == "probe")[-2] == "onnx fp32"


def test_find_runs_refuses_a_missing_folder_in_one_line(tmp_path):
    with pytest.raises(DataError, match="no such folder"):
        find_runs(tmp_path / "nowhere")


def test_compare_puts_metrics_side_by_side_and_lists_config_differences(runs):
    comparison = compare_runs(runs / "probe", runs / "protos")
    rows = {r["metric"]: r for r in comparison.metrics}
    a = json.loads((runs / "probe" / "metrics.json").read_text())["test"]
    b = json.loads((runs / "protos" / "metrics.json").read_text())["test"]
    assert rows["accuracy"]["a"] == a["accuracy"] and rows["accuracy"]["b"] == b["accuracy"]
    assert rows["accuracy"]["difference"] == pytest.approx(b["accuracy"] - a["accuracy"])
    if a["accuracy"] != b["accuracy"]:
        assert rows["accuracy"]["better"] == ("a" if a["accuracy"] > b["accuracy"] else "b")
    differing = {r["key"]: (r["a"], r["b"]) for r in comparison.config}
    assert differing["strategy.used"] == ("linear-probe", "prototypes")
    assert "created" not in differing and "params.image_size" not in differing  # volatile / equal keys left out
    metrics_table, config_table = comparison_tables(comparison)
    assert metrics_table.columns[1:3] == ("probe", "protos")
    assert ("strategy.used", "linear-probe", "prototypes") in config_table.rows


def test_compare_refuses_a_folder_that_is_not_a_run(runs, tmp_path):
    with pytest.raises(RunDirectoryError, match="not a run directory"):
        compare_runs(runs / "probe", tmp_path)


def test_report_links_the_parent_run_and_the_link_resolves(runs):
    child = runs / "child" / "tuned"
    assert run_parents(json.loads((child / "config.json").read_text())) == [
        {"path": str((runs / "probe").resolve()), "relation": "backbone"}]
    html = (child / "report.html").read_text()
    link = html.split('class="parent" href="', 1)[1].split('"', 1)[0]
    assert link == "../../probe/report.html"
    assert (child / link).resolve() == (runs / "probe" / "report.html").resolve()
    assert 'class="parent"' not in (runs / "probe" / "report.html").read_text()


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "transferkit.cli", *args], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200"}, timeout=120)


def test_cli_runs_and_compare(runs):
    listed = _cli("runs", str(runs), "--json")
    assert listed.returncode == 0, listed.stderr
    paths = {Path(r["path"]).name for r in json.loads(listed.stdout)}
    assert paths == {"probe", "protos", "tuned", "broken"}
    shown = _cli("runs", str(runs), "--task", "image-classification")
    assert shown.returncode == 0 and "linear-probe" in shown.stdout and "prototypes" in shown.stdout
    compared = _cli("compare", str(runs / "probe"), str(runs / "protos"))
    assert compared.returncode == 0, compared.stderr
    assert "strategy.used" in compared.stdout and "accuracy" in compared.stdout
    missing = _cli("compare", str(runs / "probe"), str(runs / "nowhere"))
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
    assert "not a run directory" in missing.stderr
