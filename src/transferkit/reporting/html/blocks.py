"""The report's building blocks: number formats, escaping, sections, tables and inlined plots."""
from __future__ import annotations

import base64
import math
import warnings
from html import escape
from typing import Any, Callable, Iterable, Sequence

from ..._format import finite_number as _num
from ..._format import fixed as _fmt  # noqa: F401  (the section modules import it from here)
from ..._format import percent as _pct
from ..._format import whole as _int

NOT_EVALUATED = "not evaluated"


def _duration(seconds: Any) -> str:
    s = _num(seconds)
    if s is None:
        return "—"
    if s < 60:
        return f"{s:.1f} s"
    minutes, sec = divmod(int(round(s)), 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _e(value: Any) -> str:
    return escape(str(value))


def _section(title: str, body: str) -> str:
    slug = title.lower().replace(" ", "-")
    return f'<section id="{slug}">\n<h2>{_e(title)}</h2>\n{body}\n</section>'


def _muted(text: str) -> str:
    return f'<p class="muted">{_e(text)}</p>'


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], foot: Sequence[str] | None = None,
           numeric_from: int = 1, row_classes: Sequence[str] | None = None) -> str:
    """HTML table from already-escaped cells; columns from ``numeric_from`` are right-aligned;
    ``row_classes`` gives each body row a class ("" for none)."""

    def cells(row: Sequence[str], tag: str) -> str:
        return "".join(
            f'<{tag} class="num">{c}</{tag}>' if i >= numeric_from else f"<{tag}>{c}</{tag}>"
            for i, c in enumerate(row)
        )

    parts = ["<table>", f"<thead><tr>{cells(head, 'th')}</tr></thead>", "<tbody>"]
    rows = list(rows)
    classes = list(row_classes or []) + [""] * (len(rows) - len(row_classes or []))
    parts += [f'<tr class="{c}">{cells(r, "td")}</tr>' if c else f"<tr>{cells(r, 'td')}</tr>"
              for r, c in zip(rows, classes)]
    parts.append("</tbody>")
    if foot is not None:
        parts.append(f"<tfoot><tr>{cells(foot, 'td')}</tr></tfoot>")
    parts.append("</table>")
    return "\n".join(parts)


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{_e(alt)}">'


def _plot(make: Callable[[], bytes | None], alt: str, empty: str) -> str:
    # A broken plot must not cost the user the rest of an end-of-run report.
    try:
        png = make()
    except Exception as exc:  # noqa: BLE001
        warnings.warn(f"transferkit report: could not draw {alt}: {exc!r}", stacklevel=2)
        return _muted(f"Plot unavailable ({type(exc).__name__}: {exc}).")
    return _muted(empty) if png is None else f'<figure>{_img(png, alt)}</figure>'


def _formatted(value: Any, format: str) -> str:
    """A headline value in a declared format: "percent", "count", or a float spec such as ".3f"."""
    if _num(value) is None:
        return "—"
    if format == "percent":
        return _pct(value)
    if format == "count":
        return _int(value)
    return f"{_num(value):{format}}"


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "—"
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return _e(", ".join(str(v) for v in value))
    return _e(value)


def _points(value: float) -> str:
    return f"{100 * value:+.1f} points".replace("-", "−")
