"""The report of a multi-task run: a "Metrics per head" section with each head's metrics; none for one head."""
import re

from transferkit.reporting import RunReport, render_html


def _metrics(classes, accuracy):
    return {"accuracy": accuracy, "macro_f1": accuracy - 0.05, "n": 20, "classes": classes,
            "per_class": {c: {"precision": 0.9, "recall": 0.8, "f1": 0.85, "support": 10} for c in classes},
            "confusion_matrix": [[9, 1], [2, 8]]}


def _report(metrics):
    return RunReport(title="reviews", task="text-classification", config={}, metrics=metrics, history=[],
                     decisions=[], data_summary={}, timings={})


def test_each_head_gets_its_metrics():
    heads = {"sentiment": _metrics(["negative", "positive"], 0.85), "domain": _metrics(["amazon", "yelp"], 0.95)}
    text = render_html(_report({**heads["sentiment"], "primary_head": "sentiment", "heads": heads}))
    section = re.search(r'<section id="metrics-per-head">(.*?)</section>', text, re.S).group(1)
    assert "85.0%" in section and "95.0%" in section and "(primary)" in section
    assert section.index("<h3>sentiment</h3>") < section.index("<h3>domain</h3>")
    assert all(c in section for c in ("negative", "positive", "amazon", "yelp"))


def test_a_one_head_run_has_no_per_head_section():
    text = render_html(_report(_metrics(["negative", "positive"], 0.85)))
    assert 'id="metrics-per-head"' not in text and 'id="metrics"' in text
