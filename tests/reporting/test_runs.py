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
from transferkit.reporting.runs import compare_runs, comparison_tables, find_runs, runs_table, runs_tables
from transferkit.rundir import LOCK_FILE, read_metrics, run_parents

from transferkit.testing import make_image_folder

FAST = dict(epochs=1, image_size=32, baseline=False, progress=False, tta=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """runs/probe and runs/protos (two strategies on one folder, 5-fold cross-validated; probe exported
    to ONNX), runs/child/tuned (a probe on runs/probe's backbone), runs/held (scored on a test split of 6)
    and runs/broken (a fit's lock, no model)."""
    root = tmp_path_factory.mktemp("runs")
    data = make_image_folder(root / "data", per_class=8)
    out = root / "runs"
    fits = {"probe": dict(strategy="linear-probe"), "protos": dict(strategy="prototypes"),
            "child/tuned": dict(strategy="linear-probe", backbone=str(out / "probe"))}
    held = root / "held"  # given train/test folders: scored on its test split, not cross-validated
    for part, count in (("train", 6), ("test", 2)):
        make_image_folder(held / part, per_class=count, seed=int(part == "test"))
    fits["held"] = dict(strategy="linear-probe", data=held)
    for name, params in fits.items():
        est = ImageClassifier(**{k: v for k, v in params.items() if k != "data"}, **FAST).fit(params.get("data", data))
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
    assert set(found) == {"probe", "protos", "child/tuned", "held", "broken"}
    assert found["probe"].strategy == "linear-probe" and found["protos"].strategy == "prototypes"
    assert found["probe"].backbone == "efficientnet_lite0"
    saved = read_metrics(runs / "probe").metrics
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
    a = read_metrics(runs / "probe").metrics
    b = read_metrics(runs / "protos").metrics
    assert rows["accuracy"]["a"] == a["accuracy"] and rows["accuracy"]["b"] == b["accuracy"]
    assert rows["accuracy"]["difference"] == pytest.approx(b["accuracy"] - a["accuracy"])
    # both 5-fold cross-validations of the same 24 images: comparable, and each gap has its band
    assert comparison.not_comparable == [] and rows["accuracy"]["band"] > 0 and rows["macro_f1"]["band"] > 0
    gap, band = abs(rows["accuracy"]["difference"]), rows["accuracy"]["band"]
    assert rows["accuracy"]["better"] == ("" if gap <= band else "a" if a["accuracy"] > b["accuracy"] else "b")
    differing = {r["key"]: (r["a"], r["b"]) for r in comparison.config}
    assert differing["strategy.used"] == ("linear-probe", "prototypes")
    assert "created" not in differing and "params.image_size" not in differing  # volatile / equal keys left out
    metrics_table, config_table = comparison_tables(comparison)
    assert metrics_table.columns[1:3] == ("probe", "protos")
    assert "5-fold cross-validation, n=24" in metrics_table.title
    assert ("strategy.used", "linear-probe", "prototypes") in config_table.rows


def test_compare_calls_no_run_better_on_a_gap_inside_the_noise_band(runs):
    """24 images: the Agresti–Caffo band of an accuracy difference is about ±0.13, so 0.96 against 1.0 is noise."""
    comparison = compare_runs(runs / "probe", runs / "protos")
    for row in comparison.metrics:
        if row["band"] is not None and row["difference"] is not None and abs(row["difference"]) <= row["band"]:
            assert row["better"] == "" and row["verdict"] == "within noise"
    accuracy = next(r for r in comparison.metrics if r["metric"] == "accuracy")
    a, b = read_metrics(runs / "probe"), read_metrics(runs / "protos")
    adjusted = [(e.metrics["accuracy"] * e.n + 1) / (e.n + 2) for e in (a, b)]
    expected = 1.96 * sum(p * (1 - p) / (e.n + 2) for p, e in zip(adjusted, (a, b))) ** 0.5
    assert accuracy["band"] == pytest.approx(expected)


def test_compare_lists_only_the_settings_that_differ(runs):
    """No per-epoch arrays, measured values or free text: the few settings that make the runs differ."""
    comparison = compare_runs(runs / "probe", runs / "protos")
    keys = [r["key"] for r in comparison.config]
    assert 1 <= len(keys) <= 12, keys
    assert all(k.split(".")[0] in {"task", "backbone", "weights", "params", "strategy", "run"} for k in keys)
    assert not any(k.startswith(("run.decisions", "run.timings", "split", "versions")) for k in keys)
    assert not any(isinstance(r[side], list) and len(r[side]) > 8 for r in comparison.config for side in "ab")
    assert not any("accuracy" in k or "chosen_by" in k for k in keys)  # what the strategy measured, not set


def test_compare_cross_validation_against_a_test_split_is_not_comparable(runs):
    compared = _cli("compare", str(runs / "probe"), str(runs / "held"), columns=100)
    assert compared.returncode == 0, compared.stderr
    text = " ".join(compared.stdout.split())
    assert "not comparable" in text and "better" not in text.replace("is called better", "")
    assert "5-fold cross-validation, n=24" in text and "test split, n=6" in text
    as_json = json.loads(_cli("compare", str(runs / "probe"), str(runs / "held"), "--json").stdout)
    assert as_json["comparable"] is False and as_json["evaluations"][0]["kind"] == "cross_validation"
    assert as_json["evaluations"][1] == {"kind": "test", "n": 6}
    assert all(r["better"] == "" for r in as_json["metrics"])


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


def _cli(*args: str, columns: int | None = 200) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    return subprocess.run([sys.executable, "-m", "transferkit.cli", *args], capture_output=True, text=True,
                          env={**env, **({"COLUMNS": str(columns)} if columns else {})}, timeout=120)


def test_cli_runs_and_compare(runs):
    listed = _cli("runs", str(runs), "--json")
    assert listed.returncode == 0, listed.stderr
    paths = {Path(r["path"]).name for r in json.loads(listed.stdout)}
    assert paths == {"probe", "protos", "tuned", "held", "broken"}
    shown = _cli("runs", str(runs), "--task", "image-classification")
    assert shown.returncode == 0 and "linear-probe" in shown.stdout and "prototypes" in shown.stdout
    compared = _cli("compare", str(runs / "probe"), str(runs / "protos"))
    assert compared.returncode == 0, compared.stderr
    assert "strategy.used" in compared.stdout and "accuracy" in compared.stdout
    missing = _cli("compare", str(runs / "probe"), str(runs / "nowhere"))
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
    assert "not a run directory" in missing.stderr


def _copy_run(run: Path, to: Path) -> Path:
    """A run's JSON files (what `runs` reads) under `to`."""
    to.mkdir(parents=True)
    for name in ("config.json", "metrics.json", "split.json"):
        (to / name).write_bytes((run / name).read_bytes())
    return to


def test_runs_names_what_each_figure_was_measured_on(runs):
    found = {r.path.name: r for r in find_runs(runs)}
    assert found["probe"].evaluation.kind == "cross_validation" and found["probe"].evaluation.folds == 5
    assert found["held"].evaluation.kind == "test" and found["held"].evaluation.n == 6
    table = runs_table([found["probe"], found["held"]], runs)
    measured = {row[0]: row[table.columns.index("measured on")] for row in table.rows}
    assert measured == {"probe": "5-fold CV n=24", "held": "test n=6"}
    listed = json.loads(_cli("runs", str(runs), "--json").stdout)
    assert {Path(r["path"]).name: r["evaluation"] for r in listed}["probe"] == {
        "kind": "cross_validation", "n": 24, "folds": 5}


def test_an_old_run_that_kept_its_cross_validation_under_test_is_read_as_one(runs, tmp_path):
    """Runs saved before the two were told apart: metrics.json {"test": {..., "estimate": "5-fold ..."}}."""
    old = _copy_run(runs / "probe", tmp_path / "old")
    block = json.loads((old / "metrics.json").read_text())["cross_validation"]
    block.pop("folds")
    (old / "metrics.json").write_text(json.dumps({"test": block}))
    evaluation = read_metrics(old)
    assert (evaluation.kind, evaluation.folds, evaluation.n) == ("cross_validation", 5, 24)
    assert evaluation.label("accuracy") == "cross-validated accuracy (5-fold, n=24)"
    block.pop("estimate")  # older still: only split.json says it was cross-validated
    (old / "metrics.json").write_text(json.dumps({"test": block}))
    assert read_metrics(old).kind == "cross_validation"
    shown = _cli("runs", str(tmp_path), columns=None)
    assert shown.returncode == 0 and "5-fold CV n=24" in shown.stdout and "old" in shown.stdout


@pytest.mark.parametrize("content, problem", [
    ({"test": {"n": "many", "accuracy": 0.5}}, "'test.n' must be an integer"),
    ({"cross_validation": {"n": 24, "accuracy": 0.5}}, "missing key 'cross_validation.folds'"),
    ({"accuracy": 0.5}, "missing key 'test' or 'cross_validation'"),
    ([1, 2], "must be a JSON object"),
])
def test_a_metrics_file_with_bad_types_is_one_line_and_runs_lists_the_run_with_the_reason(runs, tmp_path, content,
                                                                                        problem):
    bad = _copy_run(runs / "probe", tmp_path / "bad")
    (bad / "metrics.json").write_text(json.dumps(content))
    with pytest.raises(RunDirectoryError, match=problem.replace("(", r"\(")) as caught:
        read_metrics(bad)
    assert "\n" not in str(caught.value) and "metrics.json" in str(caught.value)
    listed = json.loads(_cli("runs", str(tmp_path), "--json").stdout)
    assert len(listed) == 1 and problem in listed[0]["problem"]
    compared = _cli("compare", str(bad), str(runs / "probe"))
    assert compared.returncode == 2 and len(compared.stderr.strip().splitlines()) == 1, compared.stderr
    assert problem in " ".join(compared.stderr.split())


def test_runs_lists_each_run_once_through_a_symlink_loop(runs, tmp_path):
    root = tmp_path / "runs"
    _copy_run(runs / "probe", root / "probe")
    (root / "group").mkdir()
    (root / "group" / "loop").symlink_to(root, target_is_directory=True)
    (root / "again").symlink_to(root / "probe", target_is_directory=True)
    assert len(find_runs(root)) == 1


@pytest.mark.parametrize("columns", [80, 100, None])  # None: through a pipe, no COLUMNS
def test_runs_table_is_readable_in_full_at_80_and_100_columns_and_through_a_pipe(runs, columns):
    shown = _cli("runs", str(runs), columns=columns)
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert "…" not in out and "..." not in out
    width = max(len(line) for line in out.splitlines())
    if columns:
        assert width <= columns
    left_out = out.split("left out to fit", 1)[1] if "left out to fit" in out else ""
    for run in find_runs(runs):
        if run.problem:
            continue
        table = runs_table([run], runs)
        for header, cell in zip(table.columns, table.rows[0]):
            if header in left_out:
                continue
            assert header in out, (header, out)
            if header in ("accuracy", "macro F1", "measured on", "backbone", "status"):
                assert cell in out, (header, cell, out)
    assert out.count("0.") >= 2  # the scores themselves, not "0.…"


def test_report_and_serve_info_say_what_the_figures_were_measured_on(runs):
    for name, said in (("probe", "measured on the 5-fold cross-validation, n=24"),
                       ("held", "measured on the test split, n=6")):
        assert said in write_run_report(runs / name).read_text()
    from transferkit.serving.backends import load_backend

    info = load_backend(runs / "probe").summary()
    assert info["evaluation"] == {"kind": "cross_validation", "n": 24, "folds": 5,
                                  "label": "cross-validated accuracy (5-fold, n=24)"}
    exported = load_backend(runs / "probe" / "model.onnx")  # exported into its run, beside its report
    summary = exported.summary()
    assert summary["report"] is True and exported.run_dir == runs / "probe"
    assert summary["evaluation"]["label"] == "cross-validated accuracy (5-fold, n=24)"


def test_compare_calls_a_run_better_only_outside_the_band(runs, tmp_path):
    """Two test splits of 200: 0.95 against 0.60 is far outside a band of about ±0.08; 0.95 against 0.93 is not."""
    def run(name: str, accuracy: float) -> Path:
        path = _copy_run(runs / "held", tmp_path / name)
        block = {"n": 200, "accuracy": accuracy, "macro_f1": accuracy}
        (path / "metrics.json").write_text(json.dumps({"format": 2, "test": block}))
        return path

    strong, weak, close = run("strong", 0.95), run("weak", 0.60), run("close", 0.93)
    rows = {r["metric"]: r for r in compare_runs(weak, strong).metrics}
    assert rows["accuracy"]["better"] == "b" and rows["accuracy"]["verdict"] == "better"
    assert 0.05 < rows["accuracy"]["band"] < 0.12
    assert rows["macro_f1"]["verdict"] == "no noise band"  # no confusion matrix to resample
    rows = {r["metric"]: r for r in compare_runs(close, strong).metrics}
    assert rows["accuracy"]["better"] == "" and rows["accuracy"]["verdict"] == "within noise"


def test_runs_of_two_tasks_are_listed_in_a_table_each_with_their_own_metrics(runs, tmp_path):
    root = tmp_path / "mixed"
    _copy_run(runs / "held", root / "photos")
    series = _copy_run(runs / "held", root / "series")
    config = json.loads((series / "config.json").read_text())
    (series / "config.json").write_text(json.dumps({**config, "task": "forecast"}))
    (series / "metrics.json").write_text(json.dumps({"format": 2, "test": {"n": 40, "mse": 0.41234, "mae": 0.5,
                                                                            "mase": 1.1}}))
    tables = {t.rows[0][1]: t for t in runs_tables(find_runs(root), root)}
    assert set(tables) == {"image-classification", "forecast"}
    assert "MSE" not in tables["image-classification"].columns and "accuracy" not in tables["forecast"].columns
    row = dict(zip(tables["forecast"].columns, tables["forecast"].rows[0]))
    assert (row["MSE"], row["MASE"], row["measured on"]) == ("0.4123", "1.100", "test n=40")


def test_measured_lists_are_not_settings():
    from transferkit.reporting.runs import _compared

    assert not _compared("strategy.settings.val_loss", [0.52, 0.41, 0.38])  # per-epoch values, however few
    assert not _compared("run.domain.points", [1, 2])  # outside the settings
    assert _compared("strategy.settings.C_grid", [0.01, 0.1, 1.0]) and _compared("params.layers", [2, 4])
    assert _compared("params.lr", 0.001) and not _compared("params.run_dir", "/tmp/x")
