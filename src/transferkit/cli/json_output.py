"""The one style of `--json` output: `json.dumps(indent=2, ensure_ascii=False)` written plainly to
stdout (never through rich, so neither highlighted nor wrapped): the same machine-readable text in a
terminal and through a pipe."""
from __future__ import annotations

import json
import sys
import textwrap
import typing
from typing import Any, Iterable


def _plain(value: Any) -> Any:
    """A value JSON has no type for: numpy numbers and arrays as numbers, anything else (a path, a
    date) as its text."""
    tolist = getattr(value, "tolist", None)
    return tolist() if callable(tolist) else str(value)


def json_text(data: Any) -> str:
    """`data` as the CLI writes JSON: indented by 2, non-ASCII characters kept."""
    return json.dumps(data, indent=2, ensure_ascii=False, default=_plain)


def print_json(data: Any) -> None:
    """`data` as JSON on stdout (`json_text`)."""
    sys.stdout.write(json_text(data) + "\n")
    sys.stdout.flush()


def stream_json_list(records: Iterable[dict], out: typing.TextIO) -> int:
    """`records` as one JSON list, written record by record, as `json_text(list(records))` writes it;
    returns the count."""
    count = 0
    for record in records:
        out.write(("[\n" if count == 0 else ",\n") + textwrap.indent(json_text(record), "  "))
        count += 1
    out.write("\n]\n" if count else "[]\n")
    out.flush()
    return count
