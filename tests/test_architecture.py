"""The package's structure, checked on every test run: the import-linter contracts in pyproject.toml
(layers, no cycles), no task-specific branching outside `transferkit.tasks`, and no strategy-specific
branching outside `transferkit.strategies`."""
from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest

from transferkit.strategies import STRATEGIES
from transferkit.tasks import TASKS

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "transferkit"
TASKS_DIR = PACKAGE / "tasks"
#: the contract checks compare a task class's attributes with the name it was registered under: that is
#: what they check, not behaviour chosen by task
TESTING_DIR = PACKAGE / "testing"
STRATEGIES_DIR = PACKAGE / "strategies"

def test_import_contracts_hold():
    """`lint-imports` (the console script beside this interpreter) passes on this checkout."""
    script = Path(sys.executable).with_name("lint-imports")
    # this checkout's source first, so the linter reads it whichever copy is installed in the venv
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([str(script)], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr


_TASK_NAMES = "|".join(map(re.escape, TASKS.names()))
_STRING = r"""["'](?:{})["']"""
_COMPARE = r"(?:==|!=|(?:\bnot\s+)?\bin\b)"
#: a comparison or membership test on a task (its name attribute, its config key, or one of the
#: registered task names as a literal), or a membership test of a key in a metrics mapping
BRANCH = re.compile("|".join([
    rf"\btask\s*{_COMPARE}",                                  # task == …, est.task in (…)
    rf"{_COMPARE}\s*[\w.]*\btask\b(?![\w(])",                 # … == self.task
    rf"""["']task["']\s*[\])]\s*{_COMPARE}""",                # config["task"] == …, .get("task") in …
    rf"{_STRING.format(_TASK_NAMES)}\s*{_COMPARE}",           # "forecast" == …
    rf"{_COMPARE}\s*[(\[{{]?\s*{_STRING.format(_TASK_NAMES)}",  # … == "forecast", … in ("forecast", …)
    rf"""["'][\w-]+["']\s*(?:not\s+)?in\s+[\w.()\[\]"']*metrics\b""",  # "mse" in metrics, … in run.metrics
]))
#: a `for` loop's target is not a membership test: `for task in TASKS.names()` is fine
_FOR_TARGET = re.compile(r"\bfor\s+[\w\s,()\[\]]+?\s+in\b")
#: a string literal that cannot be a task name or a key: prose, which may say "the task in …"
_SHORT_LITERAL = re.compile(r"""[rRbBuU]*(['"])[\w.-]*\1""")


def code_lines(source: str) -> list[tuple[int, str]]:
    """(line number, line) of Python source with comments, prose strings and docstrings blanked
    and `for` targets neutralised; f-strings are kept, since their expressions are code."""
    lines = source.splitlines()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        prose = tok.type == tokenize.STRING and "{" not in tok.string and not _SHORT_LITERAL.fullmatch(tok.string)
        if tok.type == tokenize.COMMENT or prose:
            (first, start), (last, end) = tok.start, tok.end
            for row in range(first, last + 1):
                line = lines[row - 1]
                a, b = (start if row == first else 0), (end if row == last else len(line))
                lines[row - 1] = line[:a] + " " * (b - a) + line[b:]
    return [(number, _FOR_TARGET.sub("for _ :", line)) for number, line in enumerate(lines, 1)]


@pytest.mark.parametrize(("line", "branches"), [
    ('if est.task == "forecast":', True),
    ('key = "path" if self.task in IMAGE_TASKS else "text"', True),
    ('if config.get("task") != kind:', True),
    ('if kind == "image-classification":', True),
    ('if name in ("forecast", "other"):', True),
    ('forecast = "mse" in metrics or x', True),
    ('if "per_class" not in report.metrics:', True),
    ('label = f"{counted(n, \'window\' if \'mse\' in metrics else \'example\')}"', True),
    ('for task in TASKS.names():', False),
    ('raise Error("the task in config.json is unknown")  # task == x', False),
    ('self.task = task', False),
    ('if data.modality == "image":', False),
    ('value = metrics["accuracy"]', False),
])
def test_branch_rule(line, branches):
    """The rule flags comparisons on tasks and metric-key membership, not loops, prose or lookups."""
    assert any(BRANCH.search(code) for _, code in code_lines(line)) == branches


def test_no_task_or_metric_branches_outside_tasks():
    """Task-specific behaviour is a hook or class attribute of the task estimator, so a new task
    touches no module outside `transferkit.tasks` (and its own registration)."""
    hits = [f"{path.relative_to(REPO)}:{number}: {path.read_text().splitlines()[number - 1].strip()}"
            for path in sorted(PACKAGE.rglob("*.py")) if not {TASKS_DIR, TESTING_DIR} & set(path.parents)
            for number, line in code_lines(path.read_text()) if BRANCH.search(line)]
    assert not hits, "branches on a task name or metric key outside tasks/:\n" + "\n".join(hits)


# "auto" is also the word for backbone="auto", engine="auto", precision="auto": compared with a
# literal it counts only where the other side names a strategy (the first two alternatives)
_STRATEGY_NAMES = "|".join(map(re.escape, (n for n in STRATEGIES.names() if n != "auto")))
#: a comparison or membership test on a strategy (an attribute, variable or key named strategy…,
#: other than asking the registry whether a name is registered), or on one of the registered
#: strategy names as a literal
STRATEGY_BRANCH = re.compile("|".join([
    # strategy == …, est.strategy_ in …, config["strategy"]["used"] != …, .get("strategy", x.strategy) == …
    rf"""\bstrateg\w*(?:\[["'][\w-]+["']\]|\.get\(["'][\w-]+["'][^)]*\)|["']?\)|["']\])*\s*{_COMPARE}(?!\s*STRATEGIES\b)""",
    rf"""{_COMPARE}\s*[\w.]*\bstrateg\w*\b(?![\w(])""",                 # … == self.strategy_
    rf"{_STRING.format(_STRATEGY_NAMES)}\s*{_COMPARE}",                  # "full" == …
    rf"""{_COMPARE}\s*[(\[{{]?\s*(?:["'][\w-]*["']\s*,\s*)*{_STRING.format(_STRATEGY_NAMES)}""",  # … in ("auto", "lora")
]))


@pytest.mark.parametrize(("line", "branches"), [
    ('if self.strategy_ == "linear-probe":', True),
    ('if est.strategy == "auto":', True),
    ('if name not in ("auto", "adapt"):', True),
    ('advice = strategy != "full"', True),
    ('if config["strategy"]["used"] in ("prototypes", "lora"):', True),
    ('if settings.get("head") == "prototypes":', True),
    ('if chosen.get("strategy", est.strategy) == "auto":', True),
    ('if kind == self.strategy_:', True),
    ('if self.strategy_ in STRATEGIES and not multi:', False),
    ('if traits(self.strategy_).unlabelled:', False),
    ('if est.backbone == "auto":', False),
    ('if engine == "auto":', False),
    ('for strategy in STRATEGIES.names():', False),
    ('raise Error("strategy \'full\' == every layer")  # strategy == "full"', False),
    ('weights = config.get("weights", "full")', False),
])
def test_strategy_branch_rule(line, branches):
    """The rule flags comparisons on strategies and their names, not registry look-ups, other
    meanings of "auto", loops or prose."""
    assert any(STRATEGY_BRANCH.search(code) for _, code in code_lines(line)) == branches


def test_no_strategy_name_comparisons_outside_strategies():
    """What a strategy does is a trait the tasks ask (`Strategy.trains_backbone`, `feature_head`,
    `StrategyInfo.unlabelled`, `chooses`...), so a new strategy touches no module outside
    `transferkit.strategies` (and its registration)."""
    hits = [f"{path.relative_to(REPO)}:{number}: {path.read_text().splitlines()[number - 1].strip()}"
            for path in sorted(PACKAGE.rglob("*.py")) if STRATEGIES_DIR not in path.parents
            for number, line in code_lines(path.read_text()) if STRATEGY_BRANCH.search(line)]
    assert not hits, "comparisons of strategy names outside strategies/:\n" + "\n".join(hits)
