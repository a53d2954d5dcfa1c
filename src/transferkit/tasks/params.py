"""The task estimators' parameters, declared once: value rules and documentation.

An estimator's constructor signature names its parameters (scikit-learn's `_get_param_names`
reads it), its class docstring documents them in a numpydoc "Parameters" section, and its
`param_constraints` class attribute holds their value rules (in the spirit of scikit-learn's
`_parameter_constraints`). `fit` checks the rules with `check_params`; the CLI builds its `fit`
options from the same three sources, so a parameter is written in one place and the command line
and the Python API reject a bad value with the same words.

Pure Python: importing this module loads no torch.
"""
from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from typing import Any, Mapping, Union

from ..errors import TransferkitError


#: The params handed to Lightning's Trainer (`strategies.distributed`), in `TrainSettings` too.
COMPUTE_PARAMS = ("devices", "num_nodes", "accelerator", "precision", "compile", "dist_strategy")


class ParameterError(TransferkitError, ValueError):
    """An estimator parameter outside its declared range or choices."""


@dataclass(frozen=True)
class Interval:
    """Numbers from `low` to `high`, both included (`low` excluded with `above_low`, for "more
    than 0"); None leaves that side open."""

    low: float | None = None
    high: float | None = None
    above_low: bool = False

    def problem(self, value: Any) -> str | None:
        """Why `value` breaks the rule ("must be at least 1, not 0"), or None when it is allowed."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"must be a number, not {value!r}"
        if value != value or value in (float("inf"), float("-inf")):  # NaN passes every comparison below
            return f"must be a finite number, not {value}"
        too_low = self.low is not None and (value <= self.low if self.above_low else value < self.low)
        if self.low is not None and self.high is not None and (too_low or value > self.high):
            return f"must be {'above' if self.above_low else 'between'} {self.low:g} and " \
                   f"{'at most ' if self.above_low else ''}{self.high:g}, not {value:g}"
        if too_low:
            return f"must be {'more than' if self.above_low else 'at least'} {self.low:g}, not {value:g}"
        if self.high is not None and value > self.high:
            return f"must be at most {self.high:g}, not {value:g}"
        return None

    def describe(self) -> str:
        """The range as help texts write it: "x>=1", "x>0", "0.01<=x<=0.5"."""
        if self.low is None:
            return f"x<={self.high:g}"
        if self.high is None:
            return f"x{'>' if self.above_low else '>='}{self.low:g}"
        return f"{self.low:g}{'<' if self.above_low else '<='}x<={self.high:g}"


@dataclass(frozen=True)
class OneOf:
    """One of a few named values."""

    choices: tuple[str, ...]

    def problem(self, value: Any) -> str | None:
        if value in self.choices:
            return None
        return f"must be one of {', '.join(self.choices)}, not {value!r}"

    def describe(self) -> str:
        return "|".join(self.choices)


Constraint = Union[Interval, OneOf]


def constraint_to_json(rule: Constraint) -> dict:
    """A value rule as JSON ({"Interval": {"low": 1, "high": None}}), for caches of option specs."""
    return {type(rule).__name__: {k: list(v) if isinstance(v, tuple) else v for k, v in vars(rule).items()}}


def constraint_from_json(data: dict) -> Constraint:
    """The inverse of `constraint_to_json`."""
    ((kind, fields),) = data.items()
    rule = {"Interval": Interval, "OneOf": OneOf}[kind]
    return rule(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})


def check_params(params: Mapping[str, Any], constraints: Mapping[str, Constraint]) -> None:
    """Raise `ParameterError` ("epochs must be at least 1, not 0") for the first parameter that
    breaks its rule; None always passes (it means "the task's default")."""
    for name, rule in constraints.items():
        value = params.get(name)
        problem = None if value is None else rule.problem(value)
        if problem:
            raise ParameterError(f"{name} {problem}.")


_SECTION_RULE = re.compile(r"^\s*-{3,}\s*$")
_PARAM_LINE = re.compile(r"^(?P<names>\*{0,2}\w+(?:\s*,\s*\*{0,2}\w+)*)\s*(?::\s*(?P<type>.*))?$")


def parameter_docs(doc: str | None) -> dict[str, str]:
    """Descriptions of the parameters a numpydoc docstring documents, one line each:
    {"epochs": "Training epochs (default: chosen from data size)."}.

    The "Parameters" section is a title underlined with dashes, then for each parameter a line
    `name : type` (or `a, b : type`) and its description indented below it; the section ends at
    the next underlined title or at prose written flush with the names.
    """
    lines = inspect.cleandoc(doc or "").splitlines()
    docs: dict[str, list[str]] = {}
    current: list[list[str]] = []
    inside, base = False, 0
    for i, line in enumerate(lines):
        underlined = i + 1 < len(lines) and _SECTION_RULE.match(lines[i + 1]) and line.strip()
        if underlined:
            inside, base = line.strip() == "Parameters", len(line) - len(line.lstrip())
            current = []
            continue
        if not inside or _SECTION_RULE.match(line) or not line.strip():
            continue
        if len(line) - len(line.lstrip()) > base:  # a description line
            for description in current:
                description.append(line.strip())
            continue
        match = _PARAM_LINE.match(line.strip())
        if not match:  # prose after the section
            inside, current = False, []
            continue
        current = [docs.setdefault(n.strip().lstrip("*"), []) for n in match["names"].split(",")]
    return {name: " ".join(text) for name, text in docs.items()}


def parameter_doc(cls: type, name: str) -> str | None:
    """The description of parameter `name` of estimator class `cls`: from its own docstring's
    "Parameters" section, else from the nearest base class that documents it (parameters every
    task shares are documented once, on `TransferEstimator`)."""
    for klass in cls.__mro__:
        doc = parameter_docs(klass.__dict__.get("__doc__")).get(name)
        if doc:
            return doc
    return None
