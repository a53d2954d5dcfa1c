"""Reading JSON back safely: one parser with limits, and typed schemas for what was read.

Every JSON file or text transferkit reads back (a run's files, an exported model's metadata, the
feature cache's meta.json, a request body) goes through `parse_json`, then `schema_problem`: a
damaged, hostile or foreign file becomes one line naming what is wrong, never a `KeyError`,
`RecursionError` or `TypeError` further on. Pure Python (the ONNX runtime imports it without torch).
"""
from __future__ import annotations

import json
import re
import typing
from typing import Any, Mapping

from .errors import TransferkitError

#: Limits of `parse_json`: far above anything transferkit writes, far below what exhausts memory or
#: the interpreter's stack (json's decoder recurses once per nesting level; int() of a long digit
#: string is quadratic and Python refuses one over 4,300 digits with a ValueError).
MAX_JSON_BYTES = 256 * 2**20
MAX_JSON_DEPTH = 100
MAX_JSON_DIGITS = 400

# a JSON string literal, written so the regex engine does not backtrack per character
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_JSON_BRACKETS = re.compile(r"[\[\]{}]")


class JsonProblem(TransferkitError, ValueError):
    """A JSON text `parse_json` refuses; the message is the reason alone, without the file or request."""


def _json_depth_over(text: str, limit: int) -> bool:
    depth = 0
    for match in _JSON_BRACKETS.finditer(_JSON_STRING.sub('""', text)):
        depth += 1 if match.group() in "[{" else -1
        if depth > limit:
            return True
    return False


def _json_int(digits: str, limit: int) -> int:
    if len(digits.lstrip("-")) > limit:
        raise JsonProblem(f"a number of {len(digits.lstrip('-'))} digits (at most {limit} are read)")
    return int(digits)


def _json_float(text: str, limit: int) -> float:
    if len(text) > limit:
        raise JsonProblem(f"a number of {len(text)} characters (at most {limit} are read)")
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise JsonProblem(f"a number too large for a float ({text[:20]}...)")
    return value


def _json_strings_problem(value: Any) -> str | None:
    """The first string (or key) that is not valid Unicode (a lone surrogate such as "\\ud800", which
    no UTF-8 file, tokenizer or terminal can take), or None. `value` is depth-limited already."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return f"a string with a lone surrogate ({ascii(item[:20])}); send valid Unicode text"
    return None


def parse_json(text: str | bytes, max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_JSON_DEPTH,
               max_digits: int = MAX_JSON_DIGITS, allow_nan: bool = True) -> Any:
    """The value of a JSON text, read within limits: size, nesting depth, digits of a number, valid
    Unicode (no lone surrogates) and, unless `allow_nan`, no NaN/Infinity. Anything else raises one
    `JsonProblem` line (the reason, for the caller to prefix with the file or request it read)."""
    if len(text) > max_bytes:
        raise JsonProblem(f"{len(text)} bytes, over the limit of {max_bytes}")
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise JsonProblem(f"not UTF-8 (byte {exc.start})") from None
    if _json_depth_over(text, max_depth):
        raise JsonProblem(f"nested more than {max_depth} levels deep")

    def constant(name: str) -> float:
        if not allow_nan:
            raise JsonProblem(f"{name} is not a JSON number; send finite numbers")
        return float(name)

    try:
        value = json.loads(text, parse_int=lambda s: _json_int(s, max_digits),
                           parse_float=lambda s: _json_float(s, max_digits), parse_constant=constant)
    except json.JSONDecodeError as exc:
        raise JsonProblem(f"{exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except RecursionError:  # the depth scan above makes this unreachable short of a tiny stack
        raise JsonProblem("nested too deep") from None
    except ValueError as exc:  # a hook's JsonProblem, or int()'s own digit limit
        raise JsonProblem(str(exc).splitlines()[0] if str(exc) else "invalid JSON") from None
    problem = _json_strings_problem(value)
    if problem:
        raise JsonProblem(problem)
    return value


def _type_name(expected: Any) -> str:
    if isinstance(expected, dict):
        return "an object"
    origin = typing.get_origin(expected)
    if origin is list:
        (item,) = typing.get_args(expected) or (Any,)
        plural = {str: "strings", int: "integers", float: "numbers", dict: "objects"}
        return f"a list of {plural.get(item, _type_name(item))}" if item is not Any else "a list"
    if origin is dict:
        return "an object"
    if isinstance(expected, tuple):
        return " or ".join(_type_name(e) for e in expected)
    return {str: "a string", int: "an integer", float: "a number", bool: "true/false", list: "a list",
            dict: "an object"}.get(expected, getattr(expected, "__name__", str(expected)))


def _matches(value: Any, expected: Any) -> bool:
    if expected is Any:
        return True
    if isinstance(expected, tuple):
        return any(_matches(value, e) for e in expected)
    if isinstance(expected, dict):
        return isinstance(value, dict)
    origin = typing.get_origin(expected)
    if origin is list:
        (item,) = typing.get_args(expected) or (Any,)
        return isinstance(value, list) and all(_matches(v, item) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if expected is float:  # JSON writes 1.0 as 1
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)


def schema_problem(data: Any, schema: Mapping[str, Any], where: str = "",
                   optional: Mapping[str, Any] | None = None) -> str | None:
    """The first way `data` breaks `schema` ("missing key 'classes'", "'lookback' must be an
    integer, not 'abc'"), or None. Keys not in the schema are allowed (newer versions add some);
    those in `optional` may be absent or null, and must have their type when given."""
    if not isinstance(data, dict):
        return f"{where or 'the file'} must be a JSON object, not {type(data).__name__}"
    given = {k: v for k, v in (optional or {}).items() if data.get(k) is not None}
    for key, expected in {**schema, **given}.items():
        name = f"{where}.{key}" if where else key
        if key not in data:
            return f"missing key {name!r}"
        value = data[key]
        if not _matches(value, expected):
            shown = json.dumps(value)
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            return f"{name!r} must be {_type_name(expected)}, not {shown}"
        if isinstance(expected, dict):
            problem = schema_problem(value, expected, name)
            if problem:
                return problem
    return None
