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


def _markup(text) -> str:
    """A strategy summary's text (`strategies.summary.Text`) as rich markup: strong pieces bold, the rest escaped."""
    from ..strategies.summary import Span

    if isinstance(text, str):
        return escape(text)
    return "".join(f"[bold]{escape(p.text)}[/]" if isinstance(p, Span) and p.style == "strong"
                   else escape(p.text if isinstance(p, Span) else p) for p in text)


def _print_summary(blocks: list) -> None:
    """A strategy's own summary of its run (`Strategy.summarise`): its tables, each row's first
    column whole, and its paragraphs, in order."""
    from ..strategies.summary import SummaryTable, plain

    for block in blocks:
        if not isinstance(block, SummaryTable):
            if hasattr(block, "text"):  # paragraphs and headings; a terminal draws no plot
                console.print(_markup(block.text), highlight=False, soft_wrap=True)
            continue
        table = PlainTable(columns=block.columns, rows=[tuple(plain(c) for c in row) for row in block.rows],
                           title=block.title, right=block.right)
        if _fits_terminal() is None:  # a pipe or a log file: every column whole
            _print_table(table)
        else:
            drawn = _rich_table(table)
            drawn.columns[0].no_wrap = True  # the row names whole: the number columns wrap their headings instead
            console.print(drawn)
