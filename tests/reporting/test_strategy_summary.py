"""A strategy's own summary (`Strategy.summarise`), drawn by the report and the CLI without either
naming the strategy: a plug-in strategy's tables, paragraphs, cards and warnings show like adapt's."""
from __future__ import annotations

import io
import re
from importlib import resources

import pytest

from transferkit.reporting import RunReport, render_html
from transferkit.strategies import STRATEGIES, StrategyInfo, register_strategy
from transferkit.strategies.summary import (Card, Heading, Paragraph, Span, StrategySummary, SummaryTable, plain,
                                            strategy_summary)

#: what the plug-in strategy below says about its run
SUMMARY = StrategySummary(
    title="Pruning",
    report=[Paragraph(("Kept ", Span("a <half> model", "strong"), " after ", Span("3", "code"), " rounds.")),
            Heading("Rounds"),
            SummaryTable(columns=("Round", "Sparsity", "Accuracy"), right=("Sparsity", "Accuracy"),
                         rows=[("1", "25%", "91.0%"), (("2 ", Span("✓ kept", "mark")), "50%", (Span("−1.0 points",
                                                                                                  "bad"),))],
                         highlighted=(1,)),
            Paragraph("Accuracy on the validation split.", "muted"),
            Paragraph((Span("Half the weights, 1 point lost.", "strong"),), "good", verdict=True)],
    terminal=[SummaryTable(columns=("round", "sparsity"), right=("sparsity",), rows=[("1", "0.25"), ("2", "0.50")],
                           title="pruning rounds"),
              Paragraph("kept round 2: the smallest within a point")],
    cards=[Card("50%", "sparsity"), Card("unknown", "latency (not measured)", missing=True)],
    card_prefix="pruned ",
    attention=["pruning cost 1 point; see Pruning"],
    lead=(Span("pruned to 50%", "strong"), " of the weights"),
    scored_on="the pruned model's test split",
    covers_notes=("kept round 2",),
)


@pytest.fixture
def pruning(monkeypatch):
    """A strategy registered from outside transferkit whose `summarise` returns `SUMMARY`."""
    monkeypatch.setattr(STRATEGIES, "_entries", dict(STRATEGIES._entries))  # the registration vanishes after

    @register_strategy("my-pruning", StrategyInfo(modalities=("image",)))
    class Pruning:
        """Prunes the model (a test plug-in)."""

        @classmethod
        def summarise(cls, settings, target=None, metrics=None):
            return SUMMARY if settings.get("rounds") else None

    return Pruning


def _report(strategy: str, settings: dict) -> str:
    return render_html(RunReport(
        title="pruned", task="image-classification", metrics={"accuracy": 0.9, "macro_f1": 0.88, "n": 50},
        config={"task": "image-classification", "strategy": {"used": strategy, "settings": settings}},
        history=[], decisions=[], data_summary={}, timings={}))


def _section(text: str, slug: str) -> str:
    found = re.search(rf'<section id="{slug}">(.*?)</section>', text, re.S)
    return found.group(1) if found else ""


def test_the_report_draws_a_plug_in_strategys_summary(pruning):
    text = _report("my-pruning", {"rounds": 2})
    section = _section(text, "pruning")
    assert "<h2>Pruning</h2>" in section
    assert "<p>Kept <strong>a &lt;half&gt; model</strong> after <code>3</code> rounds.</p>" in section
    assert "<h3>Rounds</h3>" in section and '<p class="muted">Accuracy on the validation split.</p>' in section
    assert '<tr class="kept"><td>2 <span class="kept-mark">✓ kept</span></td>' in section
    assert '<td class="num"><span class="bad">−1.0 points</span></td>' in section
    assert '<p class="verdict good"><strong>Half the weights, 1 point lost.</strong></p>' in section
    # its cards come first, the task's own named as the summary says; its warning heads the report
    cards = re.findall(r'<div class="(big[^"]*)">([^<]*)</div><div class="label">([^<]*)</div>', text)
    assert cards[:3] == [("big", "50%", "sparsity"), ("big na", "unknown", "latency (not measured)"),
                         ("big", "90.0%", "pruned accuracy")]
    assert "pruning cost 1 point; see Pruning" in re.search(r'<aside class="warnings">(.*?)</aside>', text).group(1)
    ids = re.findall(r'<section id="([^"]+)">', text)
    assert ids.index("decisions") < ids.index("pruning") < ids.index("data")


def test_a_run_whose_strategy_has_nothing_to_say_or_is_not_installed_has_no_section(pruning):
    for strategy, settings in (("my-pruning", {}), ("linear-probe", {"C": 1.0}), ("not-installed", {"rounds": 2})):
        text = _report(strategy, settings)
        assert "pruning" not in re.findall(r'<section id="([^"]+)">', text)
        assert "<div class=\"label\">accuracy</div>" in text  # no summary: the task's cards unprefixed
    assert strategy_summary({"strategy": {"used": "not-installed", "settings": {"rounds": 2}}}) is None
    assert strategy_summary({}) is None


def test_the_cli_prints_a_plug_in_strategys_summary(pruning, monkeypatch):
    from rich.console import Console

    from transferkit.cli import render

    out = io.StringIO()
    monkeypatch.delenv("COLUMNS", raising=False)  # a pipe: every column whole
    monkeypatch.setattr(render, "console", Console(file=out, width=80, force_terminal=False))
    summary = strategy_summary({"strategy": {"used": "my-pruning", "settings": {"rounds": 2}}})
    render._print_summary(summary.terminal)
    printed = out.getvalue()
    assert "pruning rounds" in printed and re.search(r"│\s*2\s*│\s*0\.50\s*│", printed)
    assert printed.rstrip().endswith("kept round 2: the smallest within a point")
    assert render._markup(summary.lead) == "[bold]pruned to 50%[/] of the weights"
    assert plain(summary.lead) == "pruned to 50% of the weights"


def test_the_style_sheet_is_a_package_file_inlined_in_every_report():
    css = resources.files("transferkit.reporting").joinpath("static", "report.css").read_text(encoding="utf-8")
    assert "tr.kept td" in css and "p.verdict.good" in css
    style = re.search(r"<style>(.*?)</style>", _report("linear-probe", {}), re.S).group(1)
    assert style.strip() == css.strip()


def test_the_adapt_strategy_summarises_only_runs_with_adaptation_results():
    from transferkit.strategies.adapt import DomainAdapt

    row = {"source_val_accuracy": 0.9, "target_entropy": 0.3, "dev_risk": 0.2, "epochs_run": 2}
    settings = {"criterion": "dev", "chosen_method": "dann", "reason": "dann: lowest dev risk",
                "candidates": [{**row, "method": "source-only", "epoch": None, "chosen": 0},
                               {**row, "method": "dann", "epoch": 1, "chosen": 1}]}
    assert DomainAdapt.summarise({"method": "dann"}) is None  # settings without candidates: nothing to say
    summary = strategy_summary({"strategy": {"used": "adapt", "settings": settings}},
                               metrics={"estimate": "5-fold cross-validation"})
    assert summary.title == "Domain adaptation" and summary.covers_notes == ("dann: lowest dev risk",)
    assert summary.scored_on == "the source domain's 5-fold cross-validation" and summary.card_prefix == "source "
    assert [c.missing for c in summary.cards] == [True] and plain(summary.lead).startswith("target accuracy: unknown")
    table = summary.terminal[0]
    assert [r[0] for r in table.rows] == ["source-only", "dann"] and table.rows[1][-1] == "✓"
    assert plain(summary.terminal[1].text) == "kept dann: lowest dev risk"
