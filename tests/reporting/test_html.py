"""Tests for the standalone HTML run report."""

from __future__ import annotations

import base64
import io
import json
import math
import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest

from transferkit import ImageClassifier, TextClassifier, load_run
from transferkit.diagnostics import transfer_verdict
from transferkit.reporting import RunReport, render_html, write_report, write_run_report
from transferkit.reporting.plots import confusion_matrix_png, learning_curves_png

PNG_MAGIC = b"\x89PNG"
IMG_TAG = '<img src="data:image/png;base64,'


def _full_report(classes: list[str]) -> RunReport:
    cm = [[8, 1, 1], [0, 9, 1], [2, 0, 8]]
    per_class = {
        c: {"precision": 0.8, "recall": 0.8 + 0.05 * i, "f1": 0.82, "support": 10}
        for i, c in enumerate(classes)
    }
    return RunReport(
        title="flowers5 — image classification",
        task="image-classification",
        config={"backbone": "resnet18", "train": {"epochs": 3, "lr": 1e-3}},
        metrics={
            "accuracy": 0.8333,
            "macro_f1": 0.82,
            "classes": classes,
            "confusion_matrix": cm,
            "per_class": per_class,
            "n": 30,
            "loss": 0.51,
        },
        history=[
            {"epoch": 1, "train_loss": 1.2, "val_loss": 1.0, "val_accuracy": 0.6, "lr": 1e-3,
             "trainable_groups": ["head"]},
            {"epoch": 2, "train_loss": 0.8, "val_loss": float("nan"), "val_accuracy": 0.75,
             "lr": 5e-4, "trainable_groups": ["head", "layer4"]},
            {"epoch": 3, "train_loss": 0.5, "val_accuracy": 0.83, "lr": 1e-4,
             "trainable_groups": ["head", "layer4"]},
        ],
        decisions=[("strategy: fine-tune", "38 images per class ≥ 10, so the backbone is fine-tuned")],
        data_summary={
            "root": "/data/flowers5",
            "counts": {s: {c: 10 for c in classes} for s in ("train", "val", "test")},
            "skipped": [{"path": "/data/flowers5/daisy/broken.jpg", "reason": "cannot decode image"}],
            "split": "stratified 70/15/15, seed 0",
        },
        timings={"feature extraction": 12.3, "training": 100.0},
        warnings=["1 file skipped (see Data)"],
        notes=["weights restored from the epoch with the lowest val loss (0.51)"],
    )


def test_full_report(tmp_path: Path) -> None:
    classes = ["daisy", "rose", "<script>alert(1)</script>"]
    out = write_report(tmp_path / "sub" / "report.html", _full_report(classes))

    assert out.exists()
    text = out.read_text(encoding="utf-8")
    assert "daisy" in text and "rose" in text
    assert "83.3%" in text
    assert text.count(IMG_TAG) >= 2
    assert "<script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "cannot decode image" in text
    assert "<details" in text and "resnet18" in text
    assert "not evaluated" not in text


def test_report_without_metrics_or_history(tmp_path: Path) -> None:
    report = RunReport(
        title="untrained", task="image-classification", config={}, metrics={}, history=[],
        decisions=[], data_summary={}, timings={},
    )
    text = write_report(tmp_path / "r.html", report).read_text(encoding="utf-8")
    assert "not evaluated" in text
    assert IMG_TAG not in text


def test_learning_curves_empty_and_sweep() -> None:
    assert learning_curves_png([]) is None
    assert learning_curves_png([{"epoch": 1, "train_loss": math.nan}]) is None

    sweep = [{"C": c, "val_accuracy": a} for c, a in ((0.01, 0.5), (0.1, 0.7), (1.0, 0.8), (10.0, 0.78))]
    png = learning_curves_png(sweep)
    assert isinstance(png, bytes) and png.startswith(PNG_MAGIC)


def test_plots_close_their_figures() -> None:
    before = len(plt.get_fignums())
    assert confusion_matrix_png([[1, 0], [0, 1]], ["a", "b"]).startswith(PNG_MAGIC)
    assert learning_curves_png([{"epoch": 1, "train_loss": 1.0}]).startswith(PNG_MAGIC)
    assert len(plt.get_fignums()) == before


def _aside(text: str, kind: str) -> str:
    """The inner HTML of the report's <aside class=kind>, or "" when there is none."""
    found = re.search(rf'<aside class="{kind}">(.*?)</aside>', text, re.S)
    return found.group(1) if found else ""


def _verdict(text: str) -> re.Match:
    found = re.search(r'<p class="verdict (\w+)" data-verdict="(\w+)"><strong>(.*?)</strong>(.*?)</p>', text, re.S)
    assert found, "no verdict paragraph"
    return found


def _classification_report(check: dict | None, notes=(), warnings=()) -> str:
    metrics = {"accuracy": check["model"] if check else 0.8, "macro_f1": 0.8, "n": check.get("n", 72) if check else 72}
    if check:
        metrics["transfer"] = {**check, "control": "TF-IDF word 1-2-grams + char 2-5-grams, logistic regression"}
    return render_html(RunReport(title="reviews", task="text-classification", config={}, metrics=metrics,
                                 history=[], decisions=[], data_summary={}, timings={}, notes=list(notes),
                                 warnings=list(warnings)))


def test_notes_and_warnings_are_told_apart() -> None:
    note = "weights restored from the epoch with the lowest val loss (epoch 3)"
    warning = "2 file(s) skipped (not images or unreadable); see Data"
    text = _classification_report(None, notes=[note], warnings=[warning])
    assert warning in _aside(text, "warnings") and note not in _aside(text, "warnings")
    assert note in _aside(text, "notes") and "<strong>Notes</strong>" in text
    # only notes: no warnings box at all
    quiet = _classification_report(None, notes=[note])
    assert not _aside(quiet, "warnings") and "Warnings" not in quiet and note in _aside(quiet, "notes")


def test_inconclusive_verdict_is_neutral_and_says_how_many_examples_would_tell() -> None:
    check = transfer_verdict(0.78, 0.65, n=72, strategy="fine-tune", suggest=TextClassifier.transfer_suggestions)
    text = _classification_report(check)
    tone, verdict, headline, detail = _verdict(text).groups()
    assert (tone, verdict) == ("neutral", "inconclusive")
    assert headline.startswith("Inconclusive: the test set (72 examples) is too small to tell")
    assert f"about {check['needed_n']:,} examples" in headline
    assert "+13.0 points" in detail and f"±{100 * check['noise']:.1f} points" in detail
    assert "72 test examples" in detail
    neutral = re.search(r"p\.verdict\.neutral strong \{ color: (#[0-9a-f]{6}); \}", text).group(1)
    bad = re.search(r"p\.verdict\.bad strong \{ color: (#[0-9a-f]{6}); \}", text).group(1)
    assert neutral != bad
    assert not _aside(text, "warnings")  # a test set too small to tell is not a failure of the model
    advice = re.search(r'<ul class="advice">(.*?)</ul>', text, re.S).group(1)
    assert advice.count("<li>") == 1 and "test examples" in advice


def test_verdict_colours_and_advice_only_when_there_is_some() -> None:
    positive = _classification_report(transfer_verdict(0.90, 0.60, n=400, strategy="fine-tune", suggest=TextClassifier.transfer_suggestions))
    assert _verdict(positive).group(1) == "good" and 'class="advice"' not in positive
    negative_check = transfer_verdict(0.60, 0.70, n=400, strategy="full", suggest=TextClassifier.transfer_suggestions)
    negative = _classification_report(negative_check)
    assert _verdict(negative).groups()[:2] == ("bad", "negative")
    advice = re.search(r'<ul class="advice">(.*?)</ul>', negative, re.S).group(1)
    assert advice.count("<li>") == len(negative_check["advice"]) and "--strategy full" not in advice
    # negative transfer needs attention, so it also heads the report
    assert "negative transfer" in _aside(negative, "warnings")
    negligible = _classification_report(transfer_verdict(0.705, 0.70, n=20_000, strategy="full", suggest=TextClassifier.transfer_suggestions))
    assert _verdict(negligible).groups()[:2] == ("plain", "negligible")


def test_run_saved_before_warnings_existed_renders_its_notes(tmp_path: Path) -> None:
    # config.json of an older run: only `notes`, which then held warnings and notes alike
    (tmp_path / "config.json").write_text(json.dumps(
        {"task": "image-classification", "run": {"notes": ["resumed from checkpoint last.ckpt"]}}))
    text = write_run_report(tmp_path).read_text(encoding="utf-8")
    assert "resumed from checkpoint last.ckpt" in _aside(text, "notes") and not _aside(text, "warnings")


def test_skipped_files_are_a_warning_and_restored_weights_a_note(tmp_path: Path, colour_folder: Path) -> None:
    (colour_folder / "blue" / "garbage.png").write_bytes(b"\x89PNG not really")
    clf = ImageClassifier(strategy="fine-tune", epochs=1, image_size=64, batch_size=8, baseline=False,
                          progress=False).fit(colour_folder)
    clf.evaluate()
    run = clf.save(tmp_path / "run")
    assert any("skipped" in w for w in clf.warnings_) and not any("skipped" in n for n in clf.notes_)
    assert any("weights restored" in n for n in clf.notes_) and not any("restored" in w for w in clf.warnings_)
    assert json.loads((run / "config.json").read_text())["run"]["warnings"] == clf.warnings_
    assert load_run(run).warnings_ == clf.warnings_
    text = write_run_report(run).read_text(encoding="utf-8")
    assert "1 file(s) skipped" in _aside(text, "warnings") and "weights restored" not in _aside(text, "warnings")
    assert "weights restored" in _aside(text, "notes")


def test_a_tie_with_a_baseline_is_no_warning_but_a_loss_beyond_the_band_is():
    from transferkit.reporting.html import attention

    gain = {"mse": -0.0003, "baseline": "DLinear"}  # lower raw error for the baseline, inside the band
    tie = {"gain_over_best_baseline": gain, "baseline_check": {"verdict": "tie"}}
    loss = {"gain_over_best_baseline": gain, "baseline_check": {"verdict": "baseline"}}
    assert attention([], tie) == []
    assert any("a baseline beats the model" in w for w in attention([], loss))


def test_an_inconclusive_forecast_counts_test_windows_not_examples():
    from transferkit.diagnostics.transfer_gain import verdict_headline
    from transferkit.tasks.forecast_metrics import transfer_check

    rng = np.random.default_rng(0)
    errors = rng.gamma(2.0, 0.5, size=60)
    check = transfer_check(errors * 1.02, errors * rng.uniform(0.2, 1.8, size=60), horizon=24)
    check["verdict"] = "inconclusive"
    assert "60 test windows" in verdict_headline(check) and "examples" not in verdict_headline(check)


FORECAST_METRICS = {"mse": 0.41, "mae": 0.45, "mase": 0.9, "n": 30, "n_windows": 30,
                    "baselines": {"DLinear": {"mse": 0.43, "mae": 0.46, "mase": 0.95}}}
FORECAST_EXAMPLES = {"channel": "load", "windows": [{"history": [0.1 * i for i in range(24)], "actual": [1.0] * 12,
                                                     "forecast": [0.9] * 12, "baselines": {"naive": [0.8] * 12}}]}


def _section_ids(text: str) -> list[str]:
    return re.findall(r'<section id="([^"]+)">', text)


def _cards(text: str) -> dict[str, str]:
    found = re.findall(r'<div class="card"><div class="big[^"]*">(.*?)</div><div class="label">(.*?)</div></div>', text)
    return {label: value for value, label in found}


def test_each_task_lays_out_its_report_as_its_estimator_declares():
    from transferkit.reporting.html import SECTIONS
    from transferkit.tasks import TASKS

    metrics = {"image-classification": _full_report(["a", "b", "c"]).metrics,
               "text-classification": _full_report(["a", "b", "c"]).metrics, "forecast": FORECAST_METRICS}
    texts = {}
    for task in TASKS.names():  # a task registered later is checked too, on empty metrics
        declared, values = TASKS.get(task), metrics.get(task, {})
        report = RunReport(title=task, task=task, config={}, metrics=values, history=[], decisions=[],
                           data_summary={}, timings={}, examples=FORECAST_EXAMPLES)
        text = texts[task] = render_html(report)
        # a section with nothing to show for this run (per-head metrics of a one-head model) is left out
        own = [SECTIONS[name][0].lower().replace(" ", "-") for name in declared.report_sections
               if SECTIONS[name][1](report)]
        ids = _section_ids(text)
        # the declared sections, in order, between Data and Learning curves, and no other task's
        assert ids[ids.index("data") + 1: ids.index("learning-curves")] == own, task
        cards = _cards(text)
        assert list(cards) == [h.label for h in declared.headline_metrics(values) if h.key in values or h.always]
    forecast = texts["forecast"]
    assert {"forecasts", "confusion-matrix"} & set(_section_ids(forecast)) == {"forecasts"}
    assert _cards(forecast)["MSE (standardised)"] == "0.4100" and _cards(forecast)["test windows"] == "30"
    assert "forecast vs actual" in forecast and "DLinear" in forecast
    text = texts["text-classification"]
    assert {"forecasts", "confusion-matrix"} & set(_section_ids(text)) == {"confusion-matrix"}
    assert _cards(text)["accuracy"] == "83.3%" and "forecast vs actual" not in text


def test_a_classification_report_has_a_confusion_matrix_and_per_class_metrics():
    text = render_html(_full_report(["daisy", "rose", "tulip"]))
    ids = _section_ids(text)
    assert "confusion-matrix" in ids and "forecasts" not in ids and "confusion matrix" in text
    assert _cards(text) == {"accuracy": "83.3%", "macro F1": "0.820", "loss": "0.510", "test examples": "30"}
    cross_validated = _full_report(["a", "b", "c"])
    cross_validated.metrics["estimate"] = "5-fold cross-validation"
    assert "examples, 5-fold cross-validation" in _cards(render_html(cross_validated))


def test_a_task_not_installed_here_gets_its_numeric_metrics_listed():
    report = RunReport(title="plug-in run", task="sorting", config={}, metrics={"kendall_tau": 0.71, "n": 12,
                       "per_item": {"x": 1}}, history=[], decisions=[], data_summary={}, timings={})
    text = render_html(report)
    metrics = re.search(r'<section id="metrics">(.*?)</section>', text, re.S).group(1)
    assert "kendall_tau" in metrics and "0.71" in metrics and "per_item" not in metrics
    assert not _cards(text) and "confusion-matrix" not in _section_ids(text)


# --------------------------------------------------------------------------- domain adaptation


def _section_html(text: str, slug: str) -> str:
    found = re.search(rf'<section id="{slug}">(.*?)</section>', text, re.S)
    return found.group(1) if found else ""


def _rows(section: str) -> list[list[str]]:
    """The adaptation table's body rows as cell texts (tags stripped), the kept row marked "KEPT" first."""
    body = re.search(r"<tbody>(.*?)</tbody>", section, re.S).group(1)
    rows = []
    for attrs, row in re.findall(r"<tr([^>]*)>(.*?)</tr>", body, re.S):
        cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        rows.append((["KEPT"] if 'class="kept"' in attrs else [""]) + cells)
    return rows


def test_an_adapted_run_reports_its_candidates_shift_and_features(adapted_run: Path) -> None:
    config = json.loads((adapted_run / "config.json").read_text())
    settings, target = config["strategy"]["settings"], config["run"]["target"]
    text = (adapted_run / "report.html").read_text(encoding="utf-8")
    section = _section_html(text, "domain-adaptation")
    assert section, "no Domain adaptation section"
    ids = _section_ids(text)
    assert ids.index("decisions") < ids.index("domain-adaptation") < ids.index("data")

    # what was kept and why, and the target data with its counts
    assert f"Kept <strong>{settings['chosen_method']}</strong> (epoch 1 of 1)" in section
    assert settings["reason"] in section
    assert f"{target['examples']} unlabelled examples from <code>{target['unlabeled']}</code>" in section
    assert f"{target['labelled_examples']} labelled target examples" in section and "used only to evaluate" in section

    # one row per candidate, in the recorded order, with the recorded figures; the kept one marked
    rows = _rows(section)
    names = {"source-only": "source-only (logistic probe)", "none": "no adaptation (same bottleneck)"}
    probe = settings["candidates"][0]
    assert len(rows) == len(settings["candidates"]) == 3
    for row, c in zip(rows, settings["candidates"]):
        kept = c["method"] == settings["chosen_method"]
        assert row[0] == ("KEPT" if kept else "")
        assert row[1] == names.get(c["method"], c["method"]) + (" ✓ kept" if kept else "")
        assert row[2] == ("—" if c["epoch"] is None else f"{c['epoch']} of {c['epochs_run']}")
        low, high = c["dev_band"]  # the DEV score with its bootstrap band: a relative score, not an error rate
        assert low <= c["dev_risk"] <= high
        assert row[3:7] == [f"{100 * c['source_val_accuracy']:.1f}%", f"{c['target_entropy']:.4f}",
                            f"{c['dev_risk']:.4f} [{low:.4f}–{high:.4f}]", f"{100 * c['target_accuracy']:.1f}%"]
        gain = 100 * (c["target_accuracy"] - probe["target_accuracy"])
        assert row[7] == ("—" if c is probe else f"{gain:+.1f} points".replace("-", "−"))
    assert "DEV score (criterion)" in section  # the criterion the settings name (criterion "dev")
    assert "not an estimate of the target error" in section and "Est. target error" not in text
    ranked = settings["criterion_vs_target"]
    assert ranked["candidates"] == 3 and -1 <= ranked["spearman"] <= 1
    assert f"over 3 candidates: Spearman {ranked['spearman']:+.2f}" in section

    # the headline is the target domain: its accuracy first, the task's cards named as the source's
    kept_row = next(c for c in settings["candidates"] if c["chosen"])
    cards = _cards(text)
    first_label, first_value = next(iter(cards.items()))
    assert first_label.startswith(f"target accuracy, {target['labelled_examples']} labelled target examples (95% band")
    assert first_value == f"{100 * kept_row['target_accuracy']:.1f}%"
    assert all(label.startswith("source ") for label in list(cards)[1:]) and "source accuracy" in cards
    assert re.search(r"<h1>[^<]* → [^<]* adapted</h1>", text)

    # a method below source-only on the target is said in red, and heads the report when it is the kept one
    worse = [c for c in settings["candidates"][1:] if c["target_accuracy"] < probe["target_accuracy"]]
    if worse:
        said = re.search(r'<p class="bad">Below source-only \(logistic probe\) on the labelled target data: (.*?)</p>',
                         section).group(1)
        assert all(names.get(c["method"], c["method"]) in said for c in worse)
    kept = next(c for c in settings["candidates"] if c["chosen"])
    assert ("adaptation hurt" in _aside(text, "warnings")) == (kept["target_accuracy"] < probe["target_accuracy"])

    # the domain shift before → after, as recorded, and the features plotted
    before, after = settings["a_distance_before"], settings["a_distance_after"]
    shift = re.search(r"<p>Proxy A-distance between source and target: (.*?)</p>", section, re.S).group(1)
    assert f"<strong>{before['a_distance']:.2f}</strong> before" in shift
    assert f"<strong>{after['a_distance']:.2f}</strong> after (the dann bottleneck" in shift
    assert f"({before['examples_per_domain']} examples per domain)" in shift
    assert "0 means the domains are indistinguishable, 2 that they are perfectly separable" in section
    for alt in ("source and target features before and after", "DEV score per epoch"):
        png = re.search(rf'<img src="data:image/png;base64,([^"]+)" alt="{alt}">', section).group(1)
        assert base64.b64decode(png).startswith(PNG_MAGIC)


def test_a_run_without_adaptation_has_no_adaptation_section(tmp_path: Path) -> None:
    from transferkit.testing import tiny_texts

    data = tiny_texts(tmp_path / "data")
    est = TextClassifier(strategy="linear-probe", baseline=False, progress=False).fit(data.fit_on)
    run = est.save(tmp_path / "run")
    text = write_run_report(run).read_text(encoding="utf-8")
    assert "data" in _section_ids(text) and "domain-adaptation" not in _section_ids(text)
    assert "A-distance" not in text and "adaptation hurt" not in text


#: The candidates of a synthetic adapted run (amazon → yelp-like figures): coral loses to source-only.
CANDIDATES = [
    {"method": "source-only", "epoch": None, "epochs_run": 0, "source_val_accuracy": 0.9, "target_entropy": 0.3,
     "dev_risk": 0.17, "criterion": 0.17, "target_accuracy": 0.84, "chosen": 0},
    {"method": "none", "epoch": 3, "epochs_run": 3, "source_val_accuracy": 0.9, "target_entropy": 0.42,
     "dev_risk": 0.21, "criterion": 0.21, "target_accuracy": 0.86, "chosen": 0},
    {"method": "coral", "epoch": 2, "epochs_run": 3, "source_val_accuracy": 0.88, "target_entropy": 0.41,
     "dev_risk": 0.28, "criterion": 0.28, "target_accuracy": 0.81, "chosen": 0},
    {"method": "cdan", "epoch": 3, "epochs_run": 3, "source_val_accuracy": 0.91, "target_entropy": 0.40,
     "dev_risk": 0.18, "criterion": 0.18, "target_accuracy": 0.88, "chosen": 1},
]


def _adaptation_report(**changes) -> str:
    """The report of a synthetic adapted run (`CANDIDATES`, cdan kept), `changes` applied to the
    strategy settings (None removes a key)."""
    epochs = {m: [{"epoch": e, "val_dev_risk": 0.3 - 0.02 * e, "val_target_entropy": 0.5 - 0.03 * e} for e in (1, 2, 3)]
              for m in ("none", "coral", "cdan")}
    rng = np.random.default_rng(0)
    points = {"source": rng.normal(0, 1, (40, 2)).tolist(), "target": rng.normal(2, 1, (40, 2)).tolist()}
    settings = {"method": "auto", "criterion": "dev", "chosen_method": "cdan", "criterion_metric": "val_dev_risk",
                "reason": "cdan: lowest dev risk of 2 methods (0.1800), below the same bottleneck without adaptation "
                          "(0.2100)",
                "candidates": CANDIDATES, "epochs_by_method": epochs, "target_examples": 300, "target_labelled": 300,
                "a_distance_before": {"a_distance": 1.7, "domain_accuracy": 0.925, "examples_per_domain": 120},
                "a_distance_after": {"a_distance": 1.55, "domain_accuracy": 0.8875, "examples_per_domain": 120},
                "projection": {"before": points, "after": points}}
    for key, value in changes.items():
        if value is None:
            settings.pop(key, None)
        else:
            settings[key] = value
    return render_html(RunReport(
        title="amazon → yelp", task="text-classification", metrics={"accuracy": 0.9, "macro_f1": 0.9, "n": 200},
        config={"task": "text-classification", "strategy": {"requested": "adapt", "used": "adapt", "settings": settings}},
        history=[], decisions=[], data_summary={}, timings={},
        target={"unlabeled": "/data/yelp.txt", "examples": 300, "labelled": "/data/yelp_labelled.txt",
                "labelled_examples": 300}))


def _png_width(section: str, alt: str) -> int:
    from PIL import Image

    data = re.search(rf'<img src="data:image/png;base64,([^"]+)" alt="{alt}">', section).group(1)
    return Image.open(io.BytesIO(base64.b64decode(data))).size[0]


def test_a_method_below_source_only_is_shown_in_red_and_the_kept_gain_is_said() -> None:
    text = _adaptation_report()
    section = _section_html(text, "domain-adaptation")
    coral = next(r for r in _rows(section) if r[1] == "coral")
    assert coral[6:] == ["81.0%", "−3.0 points"]
    assert '<span class="bad">−3.0 points</span>' in section
    assert '<p class="bad">Below source-only (logistic probe) on the labelled target data: coral (−3.0 points).</p>' in section
    assert ('<p class="verdict good"><strong>Target accuracy: source-only (logistic probe) 84.0% → cdan 88.0% '
            "(+4.0 points).</strong></p>") in section
    assert [r[1] for r in _rows(section) if r[0] == "KEPT"] == ["cdan ✓ kept"]
    assert "1.70</strong> before" in section and "1.55</strong> after" in section and "92.5% → 88.8%" in section
    assert not _aside(text, "warnings")  # the kept cdan beats source-only: nothing needs attention


def test_the_kept_method_losing_to_source_only_heads_the_report() -> None:
    losing = [{**c, "target_accuracy": 0.80} if c["method"] == "cdan" else c for c in CANDIDATES]
    text = _adaptation_report(candidates=losing)
    assert ("adaptation hurt on the labelled target data: the kept cdan scores 80.0%, source-only (logistic probe) "
            "84.0%; see Domain adaptation") in _aside(text, "warnings")
    section = _section_html(text, "domain-adaptation")
    assert '<p class="verdict bad"><strong>Target accuracy: source-only (logistic probe) 84.0% → cdan 80.0%' in section
    assert "cdan (−4.0 points, the kept one)" in section


def test_source_only_kept_leaves_the_features_unchanged_and_plots_one_panel() -> None:
    candidates = [{**c, "chosen": int(c["method"] == "source-only")} for c in CANDIDATES]
    two_panels = _png_width(_section_html(_adaptation_report(), "domain-adaptation"),
                            "source and target features before and after")
    points = {"source": [[0.0, 1.0], [1.0, 0.0]], "target": [[1.0, 1.0], [2.0, 2.0]]}
    text = _adaptation_report(chosen_method="source-only", candidates=candidates, a_distance_after=None,
                              projection={"before": points},
                              reason="source-only kept: no method's dev risk was below the bottleneck's without "
                                     "adaptation (0.2100; best: cdan 0.2200), so adaptation is not predicted to help")
    section = _section_html(text, "domain-adaptation")
    assert "Kept <strong>source-only (logistic probe)</strong>. Why: source-only kept: no method" in section
    assert "1.70</strong> before (the encoder's features) → features unchanged" in section
    assert 'class="verdict good"' not in section and "Target accuracy of the kept source-only (logistic probe): 84.0%" in section
    assert [r[1] for r in _rows(section) if r[0] == "KEPT"] == ["source-only (logistic probe) ✓ kept"]
    one_panel = _png_width(section, "source and target features before and after")
    assert one_panel < 0.7 * two_panels


def test_without_target_labels_no_accuracy_column_and_unmeasured_shift_is_said() -> None:
    unlabelled = [{k: v for k, v in c.items() if k != "target_accuracy"} for c in CANDIDATES]
    text = _adaptation_report(candidates=unlabelled, criterion_metric="val_target_entropy",
                              a_distance_before={"a_distance": None, "domain_accuracy": None}, a_distance_after=None)
    section = _section_html(text, "domain-adaptation")
    assert "Target accuracy" not in section and "vs source-only" not in section
    assert "no labelled target data were given, so accuracy on the target is not measured" in section
    assert "Target entropy (criterion)" in section and "DEV score (criterion)" not in section
    assert all(len(r) == 1 + 5 for r in _rows(section))  # marker, candidate, epoch, 3 measures
    # neither distance measured; "features unchanged" is only said when source-only was kept
    assert "not measured before (too few examples) → not measured after." in section
    assert "Target entropy per epoch" in section
    measured_none = _section_html(_adaptation_report(a_distance_after={"a_distance": None}), "domain-adaptation")
    assert "→ not measured after (too few examples)." in measured_none
