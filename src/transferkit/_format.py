"""Small wording helpers for what transferkit prints and writes in reports, and the shapes of
predictions (JSON records and the printed table) shared by runs and exported models."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Iterator, Mapping, Sequence


def counted(n: int | float, noun: str, plural: str | None = None) -> str:
    """`1 epoch`, `2 epochs`, `0 examples`: the count with the noun in the right number."""
    word = noun if n == 1 else plural or f"{noun}s"
    return f"{n:g} {word}" if isinstance(n, float) else f"{n} {word}"


def column_format(values: Sequence[float | None]) -> str:
    """One format spec for a column of numbers (every row of a metric shown alike): three significant
    digits of its largest magnitude ("0.812", "12.34", "512.3"), whole numbers from 1000 on."""
    largest = max((abs(v) for v in values if v is not None and v == v and abs(v) != float("inf")), default=0.0)
    return ".0f" if largest >= 1000 else ".1f" if largest >= 100 else ".2f" if largest >= 10 else ".3f"


@dataclass(frozen=True)
class Table:
    """Rows of text under named columns; `right` names the columns aligned right (numbers) and
    `totals` are summary rows drawn in bold below a rule (accuracy and macro-F1 under the classes),
    `optional` the columns a narrow terminal may leave out.
    Tasks, the ONNX runtime and reports fill it; the CLI draws it."""

    columns: tuple[str, ...]
    rows: list[tuple[str, ...]]
    title: str | None = None
    right: tuple[str, ...] = ()
    totals: list[tuple[str, ...]] = field(default_factory=list)
    #: columns that may be left out where the terminal is too narrow for every one, first listed first
    optional: tuple[str, ...] = ()


# ------------------------------------------------------------------ predictions, as printed and as JSON
# One shape for `predict --json` and the server, whichever model answers (a run, or an exported file).


def top_classes(row: Any, classes: Sequence[str], top_k: int) -> dict:
    """{"label": best class, "top_k": [{"label", "probability"}, ...]} of one row of probabilities."""
    order = row.argsort()[::-1][:min(top_k, len(classes))]
    return {"label": classes[order[0]],
            "top_k": [{"label": classes[i], "probability": round(float(row[i]), 4)} for i in order]}


def classification_records(keys: Sequence[str], proba: Any, classes: Sequence[str] | None,
                           heads: Mapping[str, Sequence[str]], top_k: int, key: str) -> list[dict]:
    """{key: input, "label", "top_k"} per input; with a dict of probabilities per head (multi-task),
    "heads": {head: {"label", "top_k"}} too, "label" and "top_k" being the first head's."""
    if not isinstance(proba, Mapping):
        return [{key: name, **top_classes(row, classes or [], top_k)} for name, row in zip(keys, proba)]
    records = []
    for n, name in enumerate(keys):
        per_head = {head: top_classes(p[n], heads[head], top_k) for head, p in proba.items()}
        records.append({key: name, **next(iter(per_head.values())), "heads": per_head})
    return records


def classification_table(key: str, records: list[dict]) -> Table:
    """Predictions as `transferkit predict` prints them: top-k with probabilities, a column per head."""
    def shown(top: list[dict]) -> str:
        return ", ".join(f"{t['label']} ({t['probability']:.2f})" for t in top)

    if records and "heads" in records[0]:
        heads = list(records[0]["heads"])
        return Table(columns=(key, *heads), rows=[(r[key], *(shown(r["heads"][h]["top_k"]) for h in heads))
                                                  for r in records])
    return Table(columns=(key, "prediction"), rows=[(r[key], shown(r["top_k"])) for r in records])


def forecast_table(series: Sequence[str], records: list[dict], source: str) -> Table:
    """A forecast's step records ({"time", series: value}) as `transferkit predict` prints them."""
    return Table(columns=("time", *series), right=tuple(series),
                 rows=[(r["time"], *(f"{r[c]:.4f}" for c in series)) for r in records],
                 title=f"forecast of the next {counted(len(records), 'step')} after {source}")


# ------------------------------------------------------------------ streamed predictions
class Streamed:
    """Inputs read lazily, piece by piece (a text file far larger than memory): `head`, then every
    list `rest` yields. Iterable once; `chunked` cuts it without holding more than one piece."""

    def __init__(self, head: list, rest: Iterator[list]) -> None:
        self.head, self.rest = head, rest

    def __iter__(self) -> Iterator[Any]:
        yield from self.head
        for piece in self.rest:
            yield from piece


def chunked(items: Any, size: int) -> Iterator[list]:
    """`items` (a list, or any iterable such as `Streamed`) as lists of at most `size` items."""
    if isinstance(items, Sequence) and not isinstance(items, str):
        for start in range(0, len(items), size):
            yield list(items[start:start + size])
        return
    iterator = iter([items] if isinstance(items, str) else items)
    while piece := list(islice(iterator, size)):
        yield piece


def flat_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """One prediction record as one row of a CSV/TSV file: nested heads become `head.label`
    columns, top-k lists `label (probability); ...` text, and the best class's probability gets
    a `probability` column of its own."""
    out: dict[str, Any] = {}

    def put(name: str, value: Any) -> None:
        if isinstance(value, Mapping):  # "heads" adds no prefix: its heads' names are the prefixes
            for k, v in value.items():
                put("" if k == "heads" else f"{name}{k}." if isinstance(v, Mapping) else f"{name}{k}", v)
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) and {"label", "probability"} <= set(v)
                                                       for v in value):
            out[name.rsplit("top_k", 1)[0] + "probability"] = value[0]["probability"]
            out[name] = "; ".join(f"{v['label']} ({v['probability']:.4f})" for v in value)
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            out[name] = json.dumps(value, ensure_ascii=False)  # e.g. a detector's boxes: one JSON cell
        else:
            out[name] = value if isinstance(value, (str, int, float, bool)) or value is None else str(value)

    put("", record)
    return out


def finite_number(value: Any) -> float | None:
    """`value` as a finite float, or None for missing, NaN, infinite, boolean or non-numeric values."""
    if value is None or isinstance(value, bool):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def fixed(value: Any, digits: int = 3) -> str:
    """A number with `digits` decimals, "—" when there is none."""
    f = finite_number(value)
    return "—" if f is None else f"{f:.{digits}f}"


def percent(value: Any) -> str:
    """A fraction as a percentage with one decimal, "—" when there is none."""
    f = finite_number(value)
    return "—" if f is None else f"{100 * f:.1f}%"


def whole(value: Any) -> str:
    """A count with thousands separators, "—" when there is none."""
    f = finite_number(value)
    return "—" if f is None else f"{int(round(f)):,}"
