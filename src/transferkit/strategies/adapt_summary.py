"""The `adapt` strategy's account of its run (`DomainAdapt.summarise`): what was kept and why, every
candidate's measures, the target accuracy against source-only, how the criterion ranked the candidates
and the domain shift before and after, for the report and for the terminal. Built from the recorded
strategy settings alone (no torch)."""
from __future__ import annotations

from typing import Any

from .._format import counted
from .._format import finite_number as _num
from .._format import fixed as _fmt
from .._format import percent as _pct
from .._format import whole as _int
from .summary import (Block, Card, CurvePlot, Heading, Paragraph, ScatterPlot, Span, StrategySummary, SummaryTable,
                      Text)

#: The reference candidates of a domain adaptation, as the strategy records them (method name →
#: how the report names them); the methods show under their own names.
SOURCE_ONLY = "source-only"
_REFERENCES = {SOURCE_ONLY: "source-only (logistic probe)", "none": "no adaptation (same bottleneck)"}
#: The per-candidate measures of an adaptation: key → (column title, what it is). Lower is better for
#: the unsupervised ones, which the strategy may choose by (its `criterion_metric` less "val_").
MEASURES = {
    "source_val_accuracy": ("Source val. accuracy", "on the source's validation split"),
    "target_entropy": ("Target entropy", "mean entropy of the predictions on the unlabelled target (lower: "
                                         "more confident)"),
    "dev_risk": ("DEV score", "source validation errors importance-weighted towards the target by a domain "
                              "classifier on the features (deep embedded validation's weights, self-normalised): "
                              "a relative score to rank the candidates without target labels (lower is better), "
                              "not an estimate of the target error, which it can understate many times over; "
                              "in brackets its 95% bootstrap band over the source validation examples, so "
                              "candidates whose bands overlap are not told apart"),
}
#: What the DEV column is, said under the terminal's adaptation table.
DEV_MEANING = ("DEV score: source validation errors re-weighted towards the target, a relative score to rank the "
               "candidates (lower is better), not an estimate of the target error (on Amazon → Yelp it was 2 to "
               "4,000 times below it); [95% band]: bootstrap over the source validation examples, so candidates "
               "whose bands overlap are not told apart")


def summarise(settings: dict, target: dict | None = None, metrics: dict | None = None) -> StrategySummary | None:
    """The summary of an adapted run from its recorded `settings` (`candidates` and a `chosen_method`),
    its target-data summary (config.json `run.target`) and test metrics; None for settings without
    adaptation results."""
    if not (isinstance(settings, dict) and settings.get("candidates") and settings.get("chosen_method")):
        return None
    metrics = metrics or {}
    table, lines = adaptation_summary(settings, target)
    return StrategySummary(
        title="Domain adaptation",
        report=report_blocks(settings, target or {}),
        terminal=[table, *(Paragraph(line) for line in lines)],
        cards=[target_card(metrics.get("target_domain") or {})],
        card_prefix="source ",
        attention=adaptation_attention(settings),
        lead=target_headline(metrics.get("target_domain") or {}),
        scored_on=f"the source domain's {metrics.get('estimate') or 'test split'}",
        covers_notes=(settings["reason"],) if settings.get("reason") else (),
    )


# --------------------------------------------------------------------------- formatting



def _points(value: float) -> str:
    return f"{100 * value:+.1f} points".replace("-", "−")


def _name(method: Any) -> str:
    return _REFERENCES.get(str(method), str(method))


# --------------------------------------------------------------------------- the report


def target_card(target: dict) -> Card:
    """An adapted run's first card: the kept model's accuracy on the labelled target data (count and
    95 % band), or "unknown" when no labelled target data were given."""
    if _num(target.get("accuracy")) is None:
        return Card("unknown", "target accuracy (no labelled target data given)", missing=True)
    band = target.get("band") or [None, None]
    return Card(_pct(target["accuracy"]), f"target accuracy, {_int(target.get('n'))} labelled target examples "
                                          f"(95% band {_pct(band[0])}–{_pct(band[1])})")


def adaptation_attention(s: dict) -> list[str]:
    """A warning when the kept adapted model scores below source-only on the labelled target data
    (adaptation made things worse), for the top of the report; [] otherwise."""
    rows = {r.get("method"): r for r in s.get("candidates") or [] if isinstance(r, dict)}
    kept, probe = rows.get(s.get("chosen_method"), {}), rows.get(SOURCE_ONLY, {})
    kept_acc, probe_acc = _num(kept.get("target_accuracy")), _num(probe.get("target_accuracy"))
    if kept is probe or kept_acc is None or probe_acc is None or kept_acc >= probe_acc:
        return []
    return [f"adaptation hurt on the labelled target data: the kept {kept.get('method')} scores {_pct(kept_acc)}, "
            f"{_REFERENCES[SOURCE_ONLY]} {_pct(probe_acc)}; see Domain adaptation"]


def _epoch_of(row: dict) -> str:
    epoch = _num(row.get("epoch"))
    if epoch is None:
        return "—"
    run = _num(row.get("epochs_run"))
    return f"{int(epoch)} of {int(run)}" if run is not None else f"{int(epoch)}"


def report_blocks(s: dict, target: dict) -> list[Block]:
    """The report's section: what was kept and why, every candidate's measures (target accuracy only
    where labelled target data were given), the domain shift before and after, and plots of the
    features and of the criterion per epoch."""
    rows = [r for r in s["candidates"] if isinstance(r, dict)]
    kept = str(s["chosen_method"])
    kept_row = next((r for r in rows if r.get("method") == kept), {})
    probe = next((r for r in rows if r.get("method") == SOURCE_ONLY), {})

    blocks: list[Block] = []
    epoch = _num(kept_row.get("epoch"))
    when = f" (epoch {_epoch_of(kept_row)})" if epoch is not None else ""
    why = f" Why: {s['reason']}." if s.get("reason") else ""
    blocks.append(Paragraph(("Kept ", Span(_name(kept), "strong"), f"{when}.{why}")))

    # the target data: from config.json run.target, else the counts the strategy recorded
    unlabelled = _num(target.get("examples"))
    unlabelled = unlabelled if unlabelled is not None else _num(s.get("target_examples"))
    said: list[str | Span] = [f"Target data: {_int(unlabelled)} unlabelled examples"]
    if target.get("unlabeled"):
        said += [" from ", Span(str(target["unlabeled"]), "code")]
    labelled_n = _num(target.get("labelled_examples"))
    labelled_n = labelled_n if labelled_n is not None else _num(s.get("target_labelled"))
    has_labels = any(_num(r.get("target_accuracy")) is not None for r in rows)
    if has_labels:
        said.append(f"; {_int(labelled_n)} labelled target examples")
        if target.get("labelled"):
            said += [" from ", Span(str(target["labelled"]), "code")]
        said.append(", used only to evaluate (never to train or to choose).")
    else:
        said.append("; no labelled target data were given, so accuracy on the target is not measured.")
    said.append(" The first headline figure is the target accuracy; the others and the Metrics section score the "
                "source domain's test split.")
    blocks.append(Paragraph(tuple(said)))

    # adapted vs source-only on the labelled target: the comparison the user came for
    kept_acc, probe_acc = _num(kept_row.get("target_accuracy")), _num(probe.get("target_accuracy"))
    if kept_acc is not None and probe_acc is not None and kept != SOURCE_ONLY:
        gain = kept_acc - probe_acc
        tone = "good" if gain > 0 else "bad" if gain < 0 else "plain"
        blocks.append(Paragraph((Span(f"Target accuracy: {_name(SOURCE_ONLY)} {_pct(probe_acc)} → {_name(kept)} "
                                      f"{_pct(kept_acc)} ({_points(gain)}).", "strong"),), tone, verdict=True))
    elif kept_acc is not None:
        blocks.append(Paragraph((Span(f"Target accuracy of the kept {_name(kept)}: {_pct(kept_acc)}.", "strong"),),
                                "plain", verdict=True))

    # the candidates' table: the kept row highlighted, any loss against source-only in red
    criterion = str(s.get("criterion_metric") or "").removeprefix("val_")
    head = ["Candidate", "Chosen epoch"] + [
        title + (" (criterion)" if key == criterion else "") for key, (title, _) in MEASURES.items()]
    if has_labels:
        head += ["Target accuracy", "vs source-only"]
    table: list[tuple[Text, ...]] = []
    highlighted, worse = [], []
    for i, r in enumerate(rows):
        chosen = _num(r.get("chosen")) == 1 or r.get("method") == kept
        cell: Text = (_name(r.get("method")), " ", Span("✓ kept", "mark")) if chosen else _name(r.get("method"))
        row: list[Text] = [cell, _epoch_of(r)] + [
            _pct(r.get(key)) if key.endswith("accuracy") else _dev_cell(r) if key == "dev_risk" else
            _fmt(r.get(key), 4) for key in MEASURES]
        if has_labels:
            acc = _num(r.get("target_accuracy"))
            row.append(_pct(acc))
            if r is probe or acc is None or probe_acc is None:
                row.append("—")
            else:
                diff = acc - probe_acc
                row.append((Span(_points(diff), "bad" if diff < 0 else "good" if diff > 0 else ""),))
                if diff < 0:
                    worse.append((_name(r.get("method")), diff, chosen))
        table.append(tuple(row))
        if chosen:
            highlighted.append(i)
    blocks.append(SummaryTable(columns=tuple(head), rows=table, right=tuple(head[1:]), highlighted=tuple(highlighted)))
    if worse:
        items = ", ".join(f"{m} ({_points(d)}{', the kept one' if k else ''})" for m, d, k in worse)
        blocks.append(Paragraph(f"Below {_name(SOURCE_ONLY)} on the labelled target data: {items}.", "bad"))
    chooser = MEASURES.get(criterion, (criterion or "the criterion", ""))[0]
    explained: list[str | Span] = []
    for title, what in MEASURES.values():
        explained += (["; "] if explained else []) + [Span(title, "em"), f": {what}"]
    blocks.append(Paragraph((
        f"{_name(SOURCE_ONLY)}: the logistic probe on the frozen encoder's features (what a plain fit ships); "
        f"{_name('none')}: the bottleneck and head trained without an adaptation loss (what each method's loss adds "
        f"is measured against it). Chosen epoch: the epoch {chooser} picked for each candidate. ", *explained,
        "." + (" Target accuracy is measured after the choice and takes no part in it." if has_labels else "")),
        "muted"))

    blocks += _criterion_ranking(s, kept)
    blocks += _adaptation_shift(s, _name(kept), kept == SOURCE_ONLY)
    blocks += _adaptation_curves(s, rows, kept, criterion)
    return blocks


def _dev_cell(row: dict) -> str:
    """A candidate's DEV score with its bootstrap band when recorded: "0.0079 [0.0000–0.0250]"."""
    band = row.get("dev_band")
    low, high = (band if isinstance(band, list) and len(band) == 2 else (None, None))
    if _num(low) is None or _num(high) is None:
        return _fmt(row.get("dev_risk"), 4)
    return f"{_fmt(row.get('dev_risk'), 4)} [{_fmt(low, 4)}–{_fmt(high, 4)}]"


def _criterion_ranking(s: dict, kept: str) -> list[Block]:
    """How the criterion ordered the candidates against their real target error (labelled target
    data given): Spearman over the candidates and the best one on the target; nothing otherwise."""
    ranked = s.get("criterion_vs_target")
    if not isinstance(ranked, dict) or _num(ranked.get("spearman")) is None:
        return []
    rho = _num(ranked["spearman"])
    best = ", ".join(_name(m) for m in ranked.get("best_on_target") or [])
    tone = "good" if rho >= 0.5 else "bad" if rho <= 0 else "plain"
    tail = "" if ranked.get("kept_is_best") else f", not the kept {_name(kept)}"
    return [Paragraph(f"The {s.get('criterion', 'criterion')} criterion against the real target error over "
                      f"{_int(ranked.get('candidates'))} candidates: Spearman {rho:+.2f} (1: the same order, 0: "
                      f"unrelated, below 0: reversed). Best on the labelled target: {best}{tail}.", tone, verdict=True)]


def _a_distance(measure: Any) -> str:
    return _fmt(measure.get("a_distance"), 2) if isinstance(measure, dict) else "—"


def _adaptation_shift(s: dict, kept: str, features_unchanged: bool) -> list[Block]:
    """Proxy A-distance before → after (after: unchanged when source-only was kept, which uses the
    encoder's own features; None when the data were too few to measure) and the 2-D projection plot."""
    before = s.get("a_distance_before")
    after = s.get("a_distance_after")
    after_text: list[str | Span]
    if features_unchanged:
        after_text = ["features unchanged (the kept model uses the encoder's features)"]
    elif isinstance(after, dict) and _num(after.get("a_distance")) is not None:
        after_text = [Span(_a_distance(after), "strong"), f" after (the {kept} bottleneck's features)"]
    else:  # None: too few examples to train a domain classifier on
        after_text = ["not measured after" + (" (too few examples)" if "a_distance_after" in s else "")]
    before_text: list[str | Span] = (
        [Span(_a_distance(before), "strong"), " before (the encoder's features)"]
        if isinstance(before, dict) and _num(before.get("a_distance")) is not None
        else ["not measured before (too few examples)"])
    accuracy = [m for m in (before, after) if isinstance(m, dict) and _num(m.get("domain_accuracy")) is not None]
    detail = ""
    if accuracy:
        per_domain = _num(accuracy[0].get("examples_per_domain"))
        counted_ = f" ({_int(per_domain)} examples per domain)" if per_domain is not None else ""
        detail = (" Domain classifier accuracy " + " → ".join(_pct(m.get("domain_accuracy")) for m in accuracy)
                  + counted_ + ".")
    blocks: list[Block] = [
        Heading("Domain shift"),
        Paragraph(("Proxy A-distance between source and target: ", *before_text, " → ", *after_text, f".{detail}")),
        Paragraph("A domain classifier is trained to tell source from target features: 0 means the domains are "
                  "indistinguishable, 2 that they are perfectly separable; adaptation aims to lower it.", "muted")]
    projection = s.get("projection") or {}
    titles = {"before": "before: the encoder's features", "after": f"after: the {kept} bottleneck's features"}
    distances = {"before": before, "after": after}
    panels = [(titles[when] + (f" (A-distance {_a_distance(distances[when])})"
                               if _a_distance(distances[when]) != "—" else ""), projection[when])
              for when in titles if isinstance(projection.get(when), dict)]
    if panels:
        sizes = {len((p.get("source") or [])) for _, p in panels} | {len((p.get("target") or [])) for _, p in panels}
        blocks.append(ScatterPlot(panels, "source and target features before and after", "No projection recorded."))
        blocks.append(Paragraph(f"2-D PCA of up to {max(sizes)} source (training split) and target examples; each "
                                "panel is its own projection of its own features, so compare how much the colours "
                                "overlap, not the axes.", "muted"))
    return blocks


def _adaptation_curves(s: dict, rows: list[dict], kept: str, criterion: str) -> list[Block]:
    """The criterion per epoch for each trained candidate, each one's chosen epoch circled."""
    metric = s.get("criterion_metric")
    by_method = s.get("epochs_by_method") or {}
    if not metric or not by_method:
        return []
    title = MEASURES.get(criterion, (str(metric), ""))[0]
    curves = {_name(m): h for m, h in by_method.items() if isinstance(h, list)}
    chosen = {_name(r.get("method")): r.get("epoch") for r in rows}
    probe = next((r for r in rows if r.get("method") == SOURCE_ONLY), {})
    reference = (_name(SOURCE_ONLY), probe[criterion]) if _num(probe.get(criterion)) is not None else None
    return [Heading(f"{title} per epoch"),
            CurvePlot(curves, str(metric), f"{title} (lower is better)", chosen, f"{title} per epoch",
                      kept=_name(kept), reference=reference),
            Paragraph(f"Each candidate keeps the epoch with the lowest {title} (circled); the dashed line is "
                      f"{_name(SOURCE_ONLY)}, which trains no epochs.", "muted")]


# --------------------------------------------------------------------------- the terminal


def _score(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def adaptation_summary(settings: dict, target: dict | None = None) -> tuple[SummaryTable, list[str]]:
    """A domain-adapted run's candidates as a table (source-only, the bottleneck without adaptation,
    each method: source validation accuracy, target entropy, DEV score with its bootstrap band,
    target accuracy when labelled target data were given; the kept one marked), and the lines below
    it: why it was kept, what the DEV score is (relative, not a target error), its target accuracy
    against source-only's, how the criterion ranked the candidates against the target, and the
    domain shift before → after. `target` names the labelled target data (config.json's run.target)."""
    rows = settings["candidates"]
    labelled = any(r.get("target_accuracy") is not None for r in rows)
    columns = ("method", "epoch", "source val acc", "target entropy", "DEV score [95% band]",
               *(("target acc",) if labelled else ()), "kept")
    table = SummaryTable(
        columns=columns, right=columns[1:-1],
        title=f"domain adaptation: each candidate at the epoch its {settings['criterion']} criterion picked",
        rows=[(r["method"], "-" if r.get("epoch") is None else f"{r['epoch']}/{r['epochs_run']}",
               _score(r.get("source_val_accuracy")), _score(r.get("target_entropy")), _dev(r),
               *((_score(r.get("target_accuracy")),) if labelled else ()), "✓" if r.get("chosen") else "")
              for r in rows])
    chosen = next(r for r in rows if r.get("chosen"))
    reason = settings["reason"]
    for said in (f"{chosen['method']}: ", f"{chosen['method']} kept: "):  # the reason may name it first
        reason = reason.removeprefix(said)
    lines = [f"kept {chosen['method']}: {reason}", DEV_MEANING]
    effective = [r["dev_effective_n"] for r in rows if r.get("dev_effective_n") is not None]
    if effective:  # the importance weights concentrate on the few source examples that look like the target
        lines.append(f"the DEV weights rest on {min(effective):.0f} to {max(effective):.0f} effective source "
                     "validation examples (Kish's effective sample size), hence the wide bands")
    if labelled:
        source_only = rows[0]  # the probe every plain fit ships, first by construction
        where = f" on {target['labelled']} ({counted(target['labelled_examples'], 'labelled example')})" \
            if target and target.get("labelled") else ""
        versus = "" if chosen is source_only else \
            (f" vs {source_only['method']} {_score(source_only['target_accuracy'])} "
             f"({100 * (chosen['target_accuracy'] - source_only['target_accuracy']):+.1f} points)")
        lines.append(f"target accuracy{where}, used only to report: {chosen['method']} "
                     f"{_score(chosen['target_accuracy'])}{versus}")
        ranked = settings.get("criterion_vs_target")
        if ranked and ranked.get("spearman") is not None:
            lines.append(f"the {settings['criterion']} criterion against the real target error over "
                         f"{ranked['candidates']} candidates: Spearman {ranked['spearman']:+.2f} (1 = same order, "
                         f"0 = unrelated); best on the target: {', '.join(ranked['best_on_target'])}"
                         + ("" if ranked["kept_is_best"] else f", not the kept {chosen['method']}"))

    def distance(shift: dict | None) -> str:
        if not shift or shift.get("a_distance") is None:
            return "n/a (too few examples)"
        return f"{shift['a_distance']:.2f}"

    after = f"{distance(settings.get('a_distance_after'))} after" if "a_distance_after" in settings \
        else "the same after (source-only kept: the encoder's features)"
    lines.append(f"domain shift (proxy A-distance, 0 = features alike, 2 = fully separable): "
                 f"{distance(settings.get('a_distance_before'))} before → {after}")
    return table, lines


def target_headline(target: dict) -> Text:
    """An adapted run's headline line: the kept model's accuracy on the labelled target data with its
    count and 95 % band, or that it is unknown and why."""
    if target.get("accuracy") is None:
        return (Span("target accuracy: unknown", "strong"),
                f" — {target.get('why') or 'no labelled target data'}; the figures below score the SOURCE domain's "
                "test split, not the target")
    low, high = target["band"]
    where = f" on {target['labelled']}" if target.get("labelled") else ""
    return (Span(f"target accuracy{where}: {target['accuracy']:.3f}", "strong"),
            f" ({target['correct']} of {counted(target['n'], 'labelled target example')}, 95% band "
            f"{low:.3f}-{high:.3f}; {target.get('method')} kept); the figures below score the source domain's test "
            "split")


def _dev(row: dict) -> str:
    """A candidate's DEV score and its bootstrap band, "0.0079 [0.0000-0.0250]"."""
    band = row.get("dev_band")
    if row.get("dev_risk") is None or not band or None in band:
        return _score(row.get("dev_risk"))
    return f"{row['dev_risk']:.4f} [{band[0]:.4f}-{band[1]:.4f}]"
