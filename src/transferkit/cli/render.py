"""Rich printing for the command line: tables drawn to fit the terminal (every cell whole through a
pipe), metrics, checks, the search and twin lines, and a domain-adapted run's summary."""
from __future__ import annotations

import math
import os
import typing
from typing import Any

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from .._format import Table as PlainTable
from .._format import counted
from . import console, err_console


def _rich_table(spec, columns: typing.Sequence[str] | None = None) -> Table:
    """A task's `presentation.Table` drawn with rich (only `columns`, when given). Cells are text, never
    markup (a path `photos[raw]` stays whole); a cell too wide wraps instead of being cut short, and a
    number never breaks."""
    keep = [i for i, c in enumerate(spec.columns) if columns is None or c in columns]
    table = Table(title=Text(spec.title) if spec.title else None)
    for i in keep:
        column = spec.columns[i]
        number = column in spec.right
        table.add_column(Text(column), justify="right" if number else "left", overflow="fold",
                         no_wrap=number, min_width=min(len(column), 8) if number else None)
    for row in spec.rows:
        table.add_row(*(Text(str(row[i])) for i in keep))
    if spec.totals:
        table.add_section()
        for row in spec.totals:
            table.add_row(*(Text(str(row[i])) for i in keep), style="bold")
    return table


def _fits_terminal() -> int | None:
    """The width tables must fit: the terminal's (or COLUMNS'), None through a pipe (every cell whole)."""
    return console.width if console.is_terminal or os.environ.get("COLUMNS") else None


def _width(table: Table) -> tuple[int, int]:
    from rich.measure import Measurement

    m = Measurement.get(console, console.options.update(max_width=100_000), table)
    return m.minimum, m.maximum


def _transposed(spec):
    """`spec` turned on its side: a column per row (headed by its first text column, e.g. the
    candidate), a row per other column; None without such a column or with totals."""
    key = next((i for i, c in enumerate(spec.columns) if c not in spec.right), None)
    if key is None or spec.totals or not spec.rows:
        return None
    heads = [str(row[key]) for row in spec.rows]
    if len(set(heads)) != len(heads):
        return None
    rows = [(column, *(str(row[i]) for row in spec.rows)) for i, column in enumerate(spec.columns) if i != key]
    return PlainTable(columns=(spec.columns[key], *heads), rows=rows, title=spec.title, right=tuple(heads))


def _narrowest(spec, columns: typing.Sequence[str]) -> int:
    """The width `spec` needs with every number and number heading whole (they never wrap) and each
    text cell wrapped at its longest word: rich's own minimum lets a text column shrink to nothing."""
    total = 1
    for i, column in enumerate(spec.columns):
        if column not in columns:
            continue
        cells = [str(row[i]) for row in [*spec.rows, *spec.totals]]
        if column in spec.right:
            needed = max([len(cell) for cell in cells] + [len(column)])
        else:
            needed = max((len(word) for text in [*cells, column] for word in text.split()), default=1)
        total += needed + 3  # padding either side and the rule
    return total


def _print_table(spec) -> None:
    """`spec` printed so every header and value can be read in full: through a pipe at its natural width;
    in a terminal too narrow for it, its `optional` columns left out (named below it), the rest wrapped;
    still too narrow, one block of `column: value` lines per row."""
    width = _fits_terminal()
    if width is None:
        table = _rich_table(spec)
        width, console.width = console.width, max(_width(table)[1], len(spec.title or ""))
        try:
            console.print(table)
        finally:
            console.width = width
        return
    columns = list(spec.columns)
    dropped: list[str] = []
    table = _rich_table(spec)
    for name in [c for c in getattr(spec, "optional", ()) if c in columns]:
        if _width(table)[1] <= width:
            break
        columns.remove(name)
        dropped.append(name)
        table = _rich_table(spec, columns)
    transposed = _transposed(spec)
    if _width(table)[0] <= width and _narrowest(spec, columns) <= width:
        console.print(table)
    elif transposed is not None and _width(_rich_table(transposed))[1] <= width:
        console.print(_rich_table(transposed))  # many columns, few rows (rank --metric all): a row per column
        dropped = []
    else:  # even wrapped it does not fit: each row as lines
        if spec.title:
            console.print(Text(spec.title, style="italic"))
        columns, dropped = list(spec.columns), []
        for row in [*spec.rows, *spec.totals]:
            for name, value in zip(columns, row):
                console.print(Text.assemble((f"{name}: ", "bold"), str(value)), soft_wrap=False)
            console.print()
    if dropped:
        console.print(Text(f"(left out to fit {width} columns: {', '.join(dropped)}; --json or a wider terminal "
                           "shows them)", style="dim"))


def _print_metrics(est, metrics: dict, data: str | None = None) -> None:
    """The task's metrics tables (one per head of a multi-task model) and summary line: on the
    run's test split, or (evaluate) on `data`."""
    tables, summary = est.metrics_tables(metrics, data)
    for table in tables:
        console.print(_rich_table(table))
    if summary:
        console.print(f"{escape(summary.label)} [bold]{escape(summary.value)}[/]{escape(summary.detail)}",
                      highlight=False, soft_wrap=True)


def _noise(check: dict) -> str:
    """"noise ±0.0123", or "noise n/a" with the reason when the test data give no band (one block)."""
    if math.isfinite(check["noise"]):
        return f"noise ±{check['noise']:.4f}"
    why = (check.get("undefined") or {}).get("noise")
    return escape(f"noise n/a: {why}" if why else "noise n/a")


def _print_baseline_check(check: dict | None) -> None:
    """Forecasts: whether a baseline beats the model (the verdict of a run without transfer)."""
    if not check:
        return
    colour = {"model": "green", "baseline": "red"}.get(check["verdict"], "blue")
    console.print(f"[{colour}]{escape(check['headline'])}[/] (gain {check['gain']:+.4f}, {_noise(check)})",
                  highlight=False)
    for advice in check.get("advice", []):
        console.print(f"  - {escape(advice)}", highlight=False)


def _print_transfer(check: dict | None) -> None:
    from ..diagnostics.transfer_gain import verdict_headline

    if not check:
        return
    # red only for a real loss; a verdict the test set cannot settle is neutral, not a failure
    colour = {"positive": "green", "negative": "red", "inconclusive": "blue"}.get(check["verdict"], "default")
    name = check["metric"]
    console.print(f"[{colour}]{escape(verdict_headline(check))}[/]\n"
                  f"  {escape(name)} {check['model']:.4f} vs {check['baseline']:.4f} for {escape(str(check['control']))} "
                  f"(gain {check['gain']:+.4f}, {_noise(check)})", highlight=False)
    for advice in check.get("advice", []):
        console.print(f"  - {escape(advice)}", highlight=False)


def _score(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _print_search(study: dict | None) -> None:
    """One line on a `fit --search` study: trials, pruned, best and its gain over the defaults (on validation)."""
    if not study:
        return
    from ..tasks.search import summary_counts

    best, gain = study["best"], study.get("gain")
    chosen = "the defaults" if best["defaults"] else f"trial {best['number']}"
    versus = "" if gain is None else f", {gain:+.4g} over the defaults"
    console.print(f"[bold]search:[/] {escape(summary_counts(study))} in {study['seconds']:.0f} s; best {chosen}: "
                  f"{study['metric']} {best['value']:.4g}{versus}", soft_wrap=True)


def _print_twin(twin, quiet: bool) -> None:
    """One line on the ONNX twin: where and how close to PyTorch, or why there is none (even with --quiet)."""
    if twin is None:
        return
    if twin.path is None:
        err_console.print(f"[yellow]note:[/] {escape(twin.message)}", highlight=False, soft_wrap=True)
    elif not quiet:
        console.print(escape(twin.message), highlight=False, soft_wrap=True)


def adaptation_summary(settings: dict, target: dict | None = None) -> tuple[Any, list[str]]:
    """A domain-adapted run's candidates as a `presentation.Table` (source-only, the bottleneck
    without adaptation, each method: source validation accuracy, target entropy, DEV score with its
    bootstrap band, target accuracy when labelled target data were given; the kept one marked), and
    the lines below it: why it was kept, what the DEV score is (relative, not a target error), its
    target accuracy against source-only's, how the criterion ranked the candidates against the
    target, and the domain shift before → after.
    `settings` are the `adapt` strategy's (config.json's strategy settings); `target` the run's
    target summary (config.json's run.target), which names the labelled target data."""
    from ..tasks.presentation import Table

    rows = settings["candidates"]
    labelled = any(r.get("target_accuracy") is not None for r in rows)
    columns = ("method", "epoch", "source val acc", "target entropy", "DEV score [95% band]",
               *(("target acc",) if labelled else ()), "kept")
    table = Table(
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


def target_headline(target: dict) -> str:
    """An adapted run's headline line: the kept model's accuracy on the labelled target data with its
    count and 95 % band, or that it is unknown and why (rich markup; names escaped)."""
    if target.get("accuracy") is None:
        return (f"[bold]target accuracy: unknown[/] — {escape(target.get('why') or 'no labelled target data')}; "
                "the figures below score the SOURCE domain's test split, not the target")
    low, high = target["band"]
    where = f" on {escape(str(target['labelled']))}" if target.get("labelled") else ""
    return (f"[bold]target accuracy{where}: {target['accuracy']:.3f}[/] ({target['correct']} of "
            f"{counted(target['n'], 'labelled target example')}, 95% band {low:.3f}-{high:.3f}; "
            f"{escape(str(target.get('method')))} kept); the figures below score the source domain's test split")


def _source_split(metrics: dict) -> str:
    """How an adapted run's metrics table names what it scored: the source's test split (or estimate)."""
    return f"the source domain's {metrics.get('estimate') or 'test split'}"


#: What the DEV column is, said under the adaptation table and in the report.
DEV_MEANING = ("DEV score: source validation errors re-weighted towards the target, a relative score to rank the "
               "candidates (lower is better), not an estimate of the target error (on Amazon → Yelp it was 2 to "
               "4,000 times below it); [95% band]: bootstrap over the source validation examples, so candidates "
               "whose bands overlap are not told apart")


def _dev(row: dict) -> str:
    """A candidate's DEV score and its bootstrap band, "0.0079 [0.0000-0.0250]"."""
    band = row.get("dev_band")
    if row.get("dev_risk") is None or not band or None in band:
        return _score(row.get("dev_risk"))
    return f"{row['dev_risk']:.4f} [{band[0]:.4f}-{band[1]:.4f}]"


def _print_adaptation(settings: dict, target: dict | None = None) -> None:
    """The adaptation summary of a domain-adapted run (`adaptation_summary`)."""
    table, lines = adaptation_summary(settings, target)
    if _fits_terminal() is None:  # a pipe or a log file: every column whole
        _print_table(table)
    else:
        drawn = _rich_table(table)
        drawn.columns[0].no_wrap = True  # "source-only" whole: the number columns wrap their headings instead
        console.print(drawn)
    for line in lines:
        console.print(escape(line), highlight=False, soft_wrap=True)
