"""The `transferkit` command line: fit, adapt, extend, evaluate, predict, rank, lr-find, runs, compare, list, demo."""
from __future__ import annotations

import contextlib
import difflib
import inspect
import json
import logging
import math
import os
import sys
import time
import typing
from enum import Enum
from pathlib import Path
from typing import Any, Iterator, Optional

import typer
import typer.main
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from typer.core import TyperCommand

from ._format import Table as PlainTable
from ._format import counted
from .errors import TrainingInterrupted, TransferkitError
from .safe_json import JsonProblem, parse_json, schema_problem
from .serving.settings import ServeSettings
from .strategies.lr_finder import MAX_LR, MIN_LR, STEPS

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Transfer learning from pretrained models, with every decision explained.")
console = Console()
err_console = Console(stderr=True)

DEMO_DATA = Path(__file__).parent / "data" / "demo" / "flowers"


def _configure_logging() -> None:
    """transferkit's own log warnings as `warning: ...` lines (Lightning is quieted where training runs)."""
    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")


def parse_options(items: list[str]) -> dict:
    """KEY=VALUE strings → dict, values parsed as JSON where they are (numbers, true/false, null)."""
    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise TransferkitError(f"--option {item!r}: expected KEY=VALUE, e.g. --option layer_decay=0.7")
        try:
            options[key.strip()] = parse_json(value, max_bytes=10_000, max_depth=10)
        except JsonProblem:  # not JSON: a word (method=dann), or a value the option's own check refuses
            options[key.strip()] = value
    return options


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
    from .diagnostics.transfer_gain import verdict_headline

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


def _markup(text) -> str:
    """A strategy summary's text (`strategies.summary.Text`) as rich markup: strong pieces bold, the rest escaped."""
    from .strategies.summary import Span

    if isinstance(text, str):
        return escape(text)
    return "".join(f"[bold]{escape(p.text)}[/]" if isinstance(p, Span) and p.style == "strong"
                   else escape(p.text if isinstance(p, Span) else p) for p in text)


def _print_summary(blocks: list) -> None:
    """A strategy's own summary of its run (`Strategy.summarise`): its tables, each row's first
    column whole, and its paragraphs, in order."""
    from .strategies.summary import SummaryTable, plain

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


class _PlanPrinter(logging.Handler):
    """Prints the plan an estimator logs before training starts (logger `transferkit.plan`), and
    keeps what it printed so the decisions after training do not say it again."""

    def __init__(self) -> None:
        super().__init__()
        self.printed: set[tuple[str, str]] = set()

    def emit(self, record: logging.LogRecord) -> None:
        lines = getattr(record, "plan", None) or [(record.getMessage(), "")]
        if len(lines) > 1:
            console.print("[bold]plan[/]")
        self.printed.update((str(d), str(w)) for d, w in lines)
        for decision, why in lines:
            console.print(f"  [bold]{escape(decision)}[/]" + (f" — {escape(why)}" if why else ""), highlight=False)


@contextlib.contextmanager
def _printing_plan(enabled: bool) -> Iterator[set[tuple[str, str]]]:
    """While fitting from the CLI (not --quiet), print each plan as it is logged; yields the set of
    (decision, why) lines printed."""
    log = logging.getLogger("transferkit.plan")
    handler, state = _PlanPrinter(), (log.level, log.propagate)
    if enabled:
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False  # printed here, not again as a `warning:` line
    try:
        yield handler.printed
    finally:
        log.removeHandler(handler)
        log.level, log.propagate = state


def run_fit(data: Path | str, out: Path, task: str | None = None, quiet: bool = False, unlabeled: Path | None = None,
            target_labels: Path | None = None, onnx_twin: bool = True, **params) -> dict:
    """Fit the task's estimator, evaluate on the held-out test split, save the run (with its ONNX
    twin unless `onnx_twin=False`) and its report; returns the test metrics. `task=None` detects it from the data path; params the task's
    estimator does not take raise (with the task's valid names). `unlabeled` (and `target_labels`,
    only to report) adapt the model to a target domain (`fit(data, unlabeled=...)`)."""
    from .reporting import write_run_report
    from .strategies.summary import strategy_summary
    from .tasks import TASKS, detect_task

    if task is None:
        task, why = detect_task(data)
        if not quiet:
            console.print(f"[bold]task: {escape(task)}[/] — {escape(why)} (override with --task)", highlight=False)
    cls = TASKS.get(task)
    accepted = set(cls._get_param_names())
    foreign = sorted(k for k, v in params.items() if k not in accepted and v is not None)
    if foreign:
        raise TransferkitError(f"{task} does not take {', '.join('--' + k.replace('_', '-') for k in foreign)}.")
    est = cls(run_dir=out, progress=not quiet, **{k: v for k, v in params.items() if k in accepted})
    with _printing_plan(not quiet) as planned:
        est.fit(data, unlabeled=unlabeled, target_labels=target_labels)
    from .strategies.distributed import is_global_zero

    if not is_global_zero():  # another process of a distributed run: rank 0 evaluates, saves and reports
        return {}
    metrics = est.evaluate()
    est.save(out)
    twin = _write_twin(out, onnx_twin)
    report = write_run_report(out)
    summary = strategy_summary({"strategy": {"used": est.strategy_, "settings": est.strategy_settings_}},
                               (getattr(est, "target_", None) or {}).get("summary"), metrics)
    if not quiet:
        for decision, why in est.decisions_:
            if (str(decision), str(why)) not in planned:  # the plan said it already
                console.print(f"[bold]{escape(str(decision))}[/] — {escape(str(why))}", highlight=False)
        for note in est.notes_:
            if not summary or note not in summary.covers_notes:  # the strategy's summary says it
                console.print(f"[dim]note:[/] {escape(note)}", highlight=False)
    for warning in getattr(est, "warnings_", []):  # need attention, so shown even with --quiet
        err_console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
    if summary and summary.lead is not None:  # e.g. the domain adapted to, before the source's test split
        console.print(_markup(summary.lead), highlight=False, soft_wrap=True)
    _print_metrics(est, metrics, summary.scored_on if summary else None)
    _print_search(getattr(est, "search_", None))
    _print_baseline_check(metrics.get("baseline_check"))
    _print_transfer(metrics.get("transfer"))
    if summary:
        _print_summary(summary.terminal)
    _print_twin(twin, quiet)
    console.print(Text(f"run saved to {out}\nreport: {report}"), soft_wrap=True)
    return metrics


def _write_twin(run_dir: Path, enabled: bool):
    """The run's ONNX twin written and checked (`transferkit.export.write_twin`), or None when not asked."""
    if not enabled:
        return None
    from .export import write_twin

    return write_twin(run_dir)


def _print_twin(twin, quiet: bool) -> None:
    """One line on the ONNX twin: where and how close to PyTorch, or why there is none (even with --quiet)."""
    if twin is None:
        return
    if twin.path is None:
        err_console.print(f"[yellow]note:[/] {escape(twin.message)}", highlight=False, soft_wrap=True)
    elif not quiet:
        console.print(escape(twin.message), highlight=False, soft_wrap=True)


def _print_search(study: dict | None) -> None:
    """One line on a `fit --search` study: trials, pruned, best and its gain over the defaults (on validation)."""
    if not study:
        return
    from .tasks.search import summary_counts

    best, gain = study["best"], study.get("gain")
    chosen = "the defaults" if best["defaults"] else f"trial {best['number']}"
    versus = "" if gain is None else f", {gain:+.4g} over the defaults"
    console.print(f"[bold]search:[/] {escape(summary_counts(study))} in {study['seconds']:.0f} s; best {chosen}: "
                  f"{study['metric']} {best['value']:.4g}{versus}", soft_wrap=True)


#: Estimator parameters the CLI sets from its own options instead of offering them as options.
SET_BY_CLI = {"run_dir": "--out", "progress": "--quiet", "strategy_options": "--option"}
#: The value types an option can parse.
_SIMPLE_TYPES = (bool, int, float, str)


def _cli_type(cls: type, name: str, annotation: Any) -> type:
    """The command-line value type of an estimator parameter: the first of its annotation's
    types (`int | None` → int, `str | dict | None` → str), which must be a plain value type."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)] if typing.get_args(annotation) else [annotation]
    if not args or args[0] not in _SIMPLE_TYPES:
        raise TypeError(f"{cls.__name__}({name}: {annotation}) has no command-line form: give it a bool, int, "
                        f"float or str type first, or set it from a CLI option (SET_BY_CLI)")
    return args[0]


def _check_value(rule):
    """An option callback applying an estimator's value rule, in the estimator's own words."""

    def check(value: Any) -> Any:
        problem = None if value is None else rule.problem(value)
        if problem:
            raise typer.BadParameter(problem)
        return value

    return check


def estimator_option_specs() -> list[dict[str, Any]]:
    """One `fit` option per parameter of the registered task estimators (except SET_BY_CLI), in
    signature order, as JSON-ready specs read from what each estimator declares once: the name
    (--snake-case), type and default from the constructor signature (the default shown where every
    task taking the parameter agrees on it), the help from the "Parameters" sections of the class
    docstrings, the value rule from `param_constraints`, extra names from `option_aliases`, and
    the help panel: the task's `option_panel` when only one task takes it, else the panel
    `shared_option_panels` names (or the main one); and
    the names of the tasks that take it.

    Reading the declarations imports every task estimator, and with them torch and scikit-learn
    (about 6 s of CPU), so the specs are cached per version of the package's source files
    (`_cached_option_specs`)."""
    from .tasks import TASKS
    from .tasks.params import constraint_to_json, parameter_doc

    takers: dict[str, list[type]] = {}
    task_names: dict[str, list[str]] = {}
    for task in TASKS.names():
        cls = TASKS.get(task)
        for param in inspect.signature(cls.__init__).parameters.values():
            if param.name != "self" and param.kind is not param.VAR_KEYWORD and param.name not in SET_BY_CLI:
                takers.setdefault(param.name, []).append(cls)
                task_names.setdefault(param.name, []).append(task)
    specs = []
    for name, classes in takers.items():
        signatures = [inspect.signature(cls.__init__).parameters[name] for cls in classes]
        types = {_cli_type(cls, name, typing.get_type_hints(cls.__init__)[name]) for cls in classes}
        rules = {cls.param_constraints.get(name) for cls in classes} - {None}
        if len(types) > 1 or len(rules) > 1:
            raise TypeError(f"tasks disagree on the type or value rule of {name!r}: "
                            f"{', '.join(cls.__name__ for cls in classes)}")
        value_type, rule = types.pop(), (rules.pop() if rules else None)
        defaults = [p.default for p in signatures]
        default = defaults[0] if all(d == defaults[0] for d in defaults) else None
        helps = [h for h in (parameter_doc(cls, name) for cls in classes) if h]
        specs.append({
            "name": name, "type": value_type.__name__, "default": default, "help": helps[0] if helps else None,
            "aliases": list(dict.fromkeys(a for cls in classes for a in cls.option_aliases.get(name, ()))),
            "rule": constraint_to_json(rule) if rule is not None else None,
            "panel": classes[0].option_panel if len(classes) == 1 else classes[0].shared_option_panels.get(name),
            "tasks": task_names[name],
        })
    # shared options first, then the task panels by title (help shows panels in order of first use)
    return sorted(specs, key=lambda s: (s["panel"] is not None, s["panel"] or ""))


#: The `adapt` strategy's options that `transferkit adapt` offers as flags of their own (the others,
#: e.g. bottleneck, through --option KEY=VALUE), with their help; choices and defaults come from
#: the strategy (`adapt_option_specs`).
ADAPT_FLAGS = {
    "method": "How to adapt: auto trains each method and keeps the one the unsupervised criterion predicts best "
              "(source-only when none is predicted to help); none trains the same bottleneck without an "
              "adaptation loss.",
    "encoder": "frozen: a bottleneck and head train on features extracted once (cheap, the CPU default); "
               "fine-tune: the encoder trains too (slower, for a GPU).",
}


def adapt_option_specs() -> list[dict[str, Any]]:
    """The `adapt` command's strategy flags (`ADAPT_FLAGS`) as JSON-ready specs: name, default
    (the strategy's `Options`) and choices (the methods and encoders the strategy knows). Reading
    them imports the strategy, and with it torch: cached like the estimator options."""
    import dataclasses

    from .strategies import STRATEGIES
    from .strategies.adapt import ENCODERS, NO_ADAPTATION
    from .strategies.adaptation import METHODS
    from .tasks.base import ADAPT

    defaults = {f.name: f.default for f in dataclasses.fields(STRATEGIES.get(ADAPT).Options)}
    # "auto" (the default) tries each method; "none" is the bottleneck without an adaptation loss
    choices = {"method": (defaults["method"], *METHODS, NO_ADAPTATION), "encoder": ENCODERS}
    return [{"name": name, "default": defaults[name], "choices": list(dict.fromkeys(choices[name])), "help": text}
            for name, text in ADAPT_FLAGS.items()]


def _cached_option_specs() -> list[dict[str, Any]]:
    """`estimator_option_specs()`, cached (`_cached_specs`)."""
    return _cached_specs("fit-options", estimator_option_specs)


#: Keys an option spec may have (`estimator_option_specs`, `adapt_option_specs`), typed: a cached
#: spec of another shape (a damaged or foreign file) is recomputed rather than used.
_SPEC_OPTIONAL = {"type": str, "help": str, "aliases": list[str], "rule": dict, "panel": str, "tasks": list[str],
                  "choices": list[str]}


def _cached_specs(kind: str, compute: typing.Callable[[], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """`compute()`, from a cache file `{kind}-{key}.json` when the package's source files and the
    task registry are what they were when it was written (so `fit --help` and a mistyped option
    answer at once instead of after importing torch); any problem with the cache just recomputes."""
    import hashlib

    from . import __version__
    from .tasks import TASKS

    package = Path(__file__).resolve().parent
    key = hashlib.sha256(repr((__version__, TASKS.names(), sorted(
        (str(f.relative_to(package)), f.stat().st_mtime_ns, f.stat().st_size) for f in package.rglob("*.py"))
    )).encode()).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "transferkit" / f"{kind}-{key}.json"
    try:
        cached = parse_json(cache.read_bytes())
        if isinstance(cached, list) and all(not schema_problem(s, {"name": str}, optional=_SPEC_OPTIONAL) for s in cached):
            return cached
    except (OSError, JsonProblem):
        pass
    specs = compute()
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_name(f"{cache.name}.{os.getpid()}.partial")
        partial.write_text(json.dumps(specs))
        partial.replace(cache)
    except (OSError, TypeError, ValueError):  # a read-only home, or a default JSON cannot hold
        pass
    return specs


def estimator_options(tasks: typing.Collection[str] | None = None) -> list[inspect.Parameter]:
    """The `fit` options of `estimator_option_specs()` (cached), as typer parameters; with `tasks`,
    only the options one of those tasks takes."""
    from .tasks.params import Interval, constraint_from_json

    options = []
    for spec in _cached_option_specs():
        if tasks is not None and not set(spec["tasks"]) & set(tasks):
            continue
        value_type = {t.__name__: t for t in _SIMPLE_TYPES}[spec["type"]]
        rule = constraint_from_json(spec["rule"]) if spec["rule"] else None
        flag, aliases, default = spec["name"].replace("_", "-"), spec["aliases"], spec["default"]
        if value_type is bool:
            decls = [*(f"{a}/--no-{a.removeprefix('--')}" for a in aliases), f"--{flag}/--no-{flag}"]
        else:
            decls = [*aliases, f"--{flag}"]  # an alias is the older, shorter spelling: shown first
        metavar = None
        if rule is not None:  # the rule's range or choices, shown as typer shows its own
            metavar = f"<{value_type.__name__} range> [{rule.describe()}]" if isinstance(rule, Interval) \
                else f"<{rule.describe()}>"
        info = typer.Option(default, *decls, help=escape(spec["help"] or ""), metavar=metavar,
                            callback=_check_value(rule) if rule is not None else None, rich_help_panel=spec["panel"])
        annotation = value_type if value_type is bool and default is not None else Optional[value_type]
        options.append(inspect.Parameter(spec["name"], inspect.Parameter.KEYWORD_ONLY, default=info,
                                         annotation=annotation))
    return options


def adapt_options() -> list[inspect.Parameter]:
    """The `adapt` command's strategy flags (`adapt_option_specs()`, cached), as typer parameters:
    a choice each, None unless given (the strategy's default applies)."""
    options = []
    for spec in _cached_specs("adapt-options", adapt_option_specs):
        # typer reads an option's choices from an Enum
        choices = Enum(spec["name"].title(), [(c, c) for c in spec["choices"]], type=str)
        info = typer.Option(None, f"--{spec['name']}", help=escape(f"{spec['help']} (default: {spec['default']})"),
                            show_default=False, rich_help_panel="Domain adaptation")
        options.append(inspect.Parameter(spec["name"], inspect.Parameter.KEYWORD_ONLY, default=info,
                                         annotation=Optional[choices]))
    return options


class _EstimatorOptionsCommand(TyperCommand):
    """A command whose estimator options are built on first use (a parse or its --help): building
    them imports every task estimator, and with them torch, which `transferkit --help` and
    `transferkit list` must not pay. Its callback's `**params` receive those options."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._pending = True
        super().__init__(*args, **kwargs)

    @property
    def params(self) -> list:
        if self._pending:
            self._pending = False
            full = self._with_estimator_options()
            self._params, self.callback = full.params, full.callback
        return self._params

    @params.setter
    def params(self, value: list) -> None:
        self._params = value

    def _lazy_options(self) -> list[inspect.Parameter]:
        """The options built on first use: the estimators' (`estimator_options()`)."""
        return estimator_options()

    def _with_estimator_options(self):
        """The same command built by typer from its function's signature plus `estimator_options()`."""
        function = self.callback.__wrapped__
        hints = typing.get_type_hints(function)
        declared = {p.name: p.replace(annotation=hints.get(p.name, p.annotation), kind=p.KEYWORD_ONLY)
                    for p in inspect.signature(function).parameters.values()}
        cut = list(declared).index("task") + 1  # the estimator's options follow --task
        order = [*list(declared.values())[:cut], *self._lazy_options(), *list(declared.values())[cut:]]

        def with_options(**kwargs: Any) -> Any:
            return function(**kwargs)

        with_options.__signature__ = inspect.Signature(order)
        with_options.__doc__ = function.__doc__
        builder = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
        builder.command(self.name, help=self.help)(with_options)
        return typer.main.get_command(builder)


class _AdaptCommand(_EstimatorOptionsCommand):
    """`adapt`: the `adapt` strategy's own flags (`adapt_options()`), then the options of the tasks
    it adapts (the registries say which: no import)."""

    def _lazy_options(self) -> list[inspect.Parameter]:
        from .strategies import STRATEGIES
        from .tasks import TASKS

        modalities = STRATEGIES.entry(self.name).info.modalities  # the command is named after its strategy
        tasks = [name for name in TASKS.names() if TASKS.entry(name).info.modality in modalities]
        return [*adapt_options(), *estimator_options(tasks)]


def _declared_without(function):
    """`function` with a signature that hides its `**params`: typer builds the command from the
    named parameters, and `_EstimatorOptionsCommand` adds the estimator options on first use."""
    signature = inspect.signature(function)
    function.__signature__ = signature.replace(
        parameters=[p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD])
    return function


#: Help of the target-domain data, shared by `fit --adapt-to` / `--target-labels` and `adapt`.
TARGET_HELP = ("The target domain's unlabelled data: a folder of images (searched recursively), or a text file with "
               "one text per line (or a table; its label column is ignored).")
TARGET_LABELS_HELP = ("Labelled target data, used only to report target accuracy (never to train or choose): a folder "
                      "of class folders, or a labelled text table.")

# the options `fit` and `adapt` share, declared once (typer reads each declaration, never changes it)
OUT_OPTION = typer.Option(..., "--out", "-o", help="Run directory to write (model, config, metrics, report).")
OVERWRITE_OPTION = typer.Option(False, help="Replace an existing run directory.")
QUIET_OPTION = typer.Option(False, "--quiet", "-q", help="No progress bars or decision log.")
TARGET_LABELS_OPTION = typer.Option(None, "--target-labels", metavar="FEW", help=TARGET_LABELS_HELP,
                                    rich_help_panel="Domain adaptation")
# what every command that writes a run (fit, adapt, extend) and every one that predicts with a run share
ONNX_TWIN_OPTION = typer.Option(True, "--onnx-twin/--no-onnx-twin", envvar="TRANSFERKIT_ONNX_TWIN",
                                help="Also write the run's ONNX twin (RUN/model.onnx, checked against PyTorch on "
                                     "held-out examples), which predict and serve answer with in about a second; "
                                     "adds the export's seconds to the run.")
class Engine(str, Enum):
    """What answers predictions of a run directory (`transferkit.tasks.twin.ENGINES`)."""

    auto = "auto"
    onnx = "onnx"
    torch = "torch"


ENGINE_OPTION = typer.Option(Engine.auto, "--engine", case_sensitive=False,
                             help="What answers for a run directory: auto (its ONNX twin when present and valid, "
                                  "else PyTorch), onnx (the twin, or an error saying why not), torch.")


def _existing(path: Path | None, flag: str, what: str) -> None:
    """Refuse a data path that does not exist before anything slow starts (or a run folder is made)."""
    if path is not None and not Path(path).expanduser().exists():
        raise TransferkitError(f"{flag} {path}: no such file or folder; give {what}.")


def _check_output_file(path: Path, flag: str) -> None:
    """Refuse an output file path that cannot be written, before the work that produces it: a folder,
    a path under a file, or a folder that cannot be created or written in."""
    import tempfile

    if path.is_dir():
        raise TransferkitError(f"{flag} {path}: is a folder; name a file, e.g. {flag} {path / 'lr_find.png'}.")
    from .rundir import file_above

    blocking = file_above(path)
    if blocking is not None:
        raise TransferkitError(f"{flag} {path}: {blocking} is a file, so nothing can be written under it; "
                               "choose another path.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".transferkit-write-test-"):
            pass
    except OSError as exc:
        raise TransferkitError(f"{flag} {path}: cannot write in {path.parent} ({exc.strerror or exc}); choose a "
                               "writable location.") from None


def _check_environment() -> None:
    """The environment variables a fit reads, checked before the run folder is made (one line each)."""
    from .data.datasets import image_cache_bytes
    from .models.feature_cache import check_cache_environment

    image_cache_bytes()
    check_cache_environment()


def _check_strategy_options(strategy: Any, adapting: bool, options: dict[str, Any]) -> None:
    """Check --option names and values against the strategy that will run, before any data are read:
    `adapt` when adapting, else the one named (`auto` hands its options to the strategy it picks,
    which checks them then)."""
    name = "adapt" if adapting and strategy in (None, "auto", "adapt") else getattr(strategy, "value", strategy)
    if not options or name in (None, "auto"):
        return
    from .strategies import STRATEGIES, create_strategy

    if name in STRATEGIES.names():  # an unknown name is the estimator's to refuse, in its words
        create_strategy(name, **options)


def _given(ctx: typer.Context, params: dict[str, Any]) -> dict[str, Any]:
    """Only what the command line set (ParameterSource COMMANDLINE or ENVIRONMENT): the rest are the
    detected task's own defaults, and an option that task does not take is refused only when given."""
    return {name: value for name, value in params.items()
            if getattr(ctx.get_parameter_source(name), "name", "DEFAULT") not in ("DEFAULT", "DEFAULT_MAP")}


def _fit_command(ctx: typer.Context, data: str, out: Path, task: str | None, option: list[str], overwrite: bool,
                 quiet: bool, params: dict[str, Any], target: tuple[str, Path | None] = ("--adapt-to", None),
                 target_labels: Path | None = None, strategy_flags: dict[str, Any] | None = None,
                 onnx_twin: bool = True) -> None:
    """What `fit` and `adapt` run: check the target-domain paths, prepare and lock `out`, fit with
    the options given on the command line (`target` = (its flag, the path) adapts to that domain;
    `strategy_flags` are strategy options given as flags of their own), save, report."""
    from .rundir import prepare_out
    from .strategies.distributed import launch_rank

    flag, unlabeled = target
    if target_labels is not None and unlabeled is None:
        raise TransferkitError(f"--target-labels {target_labels}: labelled target data only evaluate a domain "
                               "adaptation; give the unlabelled target data too (--adapt-to TARGET, or "
                               "`transferkit adapt SOURCE TARGET`).")
    _existing(unlabeled, flag, "the target domain's unlabelled data (a folder of images, or a text file with one "
                               "text per line)")
    _existing(target_labels, "--target-labels", "labelled target data (a folder of class folders, or a labelled "
                                                "text table)")
    strategy_options = parse_options(option)
    for name, value in (strategy_flags or {}).items():
        if value is None:
            continue
        value = value.value if isinstance(value, Enum) else value
        if strategy_options.get(name, value) != value:
            raise TransferkitError(f"--{name} {value} and --option {name}={strategy_options[name]} disagree; "
                                   f"give the {name} once.")
        strategy_options[name] = value
    _check_strategy_options(params.get("strategy"), unlabeled is not None, strategy_options)
    _check_environment()
    resume = bool(params.get("resume"))
    if launch_rank() != 0:
        # another process of a distributed run (started by Lightning's launcher, torchrun or srun): it
        # trains with rank 0, which alone checks, locks and writes `out` and prints
        run_fit(data, out, task=task, quiet=True, strategy_options=strategy_options, unlabeled=unlabeled,
                target_labels=target_labels, **_given(ctx, params))
        return
    prepared = prepare_out(out, data, overwrite=overwrite, resume=resume)  # checked and locked until the end
    if prepared.complete:
        prepared.release()
        console.print(Text(prepared.message), soft_wrap=True)
        return
    try:
        run_fit(data, out, task=task, quiet=quiet, strategy_options=strategy_options, unlabeled=unlabeled,
                target_labels=target_labels, onnx_twin=onnx_twin, **_given(ctx, params))
    except TrainingInterrupted as exc:
        if not quiet:  # the progress bar's line is left open (no newline): the message starts its own
            err_console.file.write("\n")
        err_console.print(Text(f"interrupted: {exc}"), soft_wrap=True)
        raise typer.Exit(130) from None
    finally:
        prepared.release()


@app.command(cls=_EstimatorOptionsCommand)
@_declared_without
def fit(
    ctx: typer.Context,
    data: str = typer.Argument(..., help="Image folder (class sub-folders), text table (CSV/TSV/JSONL or a folder "
                               "with train/dev files, or a Hugging Face data set name), or a time-series CSV."),
    out: Path = OUT_OPTION,
    task: Optional[str] = typer.Option(None, help="image-classification, text-classification or forecast "
                                       "(default: detected from the data)."),
    option: list[str] = typer.Option([], "--option", help="Strategy knob KEY=VALUE, repeatable (e.g. layer_decay=0.7)."),
    overwrite: bool = OVERWRITE_OPTION,
    quiet: bool = QUIET_OPTION,
    adapt_to: Optional[Path] = typer.Option(None, "--adapt-to", metavar="TARGET", rich_help_panel="Domain adaptation",
                                            help=f"{TARGET_HELP} Strategy auto becomes adapt (as `adapt` does)."),
    target_labels: Optional[Path] = TARGET_LABELS_OPTION,
    onnx_twin: bool = ONNX_TWIN_OPTION,
    **params: Any,
) -> None:
    """Adapt a pretrained backbone to your data; writes a run directory with model, metrics and report."""
    _fit_command(ctx, data, out, task, option, overwrite, quiet, params, target=("--adapt-to", adapt_to),
                 target_labels=target_labels, onnx_twin=onnx_twin)


@app.command(cls=_AdaptCommand)
@_declared_without
def adapt(
    ctx: typer.Context,
    source: str = typer.Argument(..., help="Labelled source data: an image folder (class sub-folders) or a text "
                                 "table, as for `fit`."),
    target_data: Path = typer.Argument(..., metavar="target", help=TARGET_HELP),
    out: Path = OUT_OPTION,
    task: Optional[str] = typer.Option(None, help="image-classification or text-classification (default: detected "
                                       "from the source data)."),
    option: list[str] = typer.Option([], "--option", help="Strategy knob KEY=VALUE, repeatable (e.g. bottleneck=64, "
                                     "trade_off=0.5, criterion=entropy)."),
    overwrite: bool = OVERWRITE_OPTION,
    quiet: bool = QUIET_OPTION,
    target_labels: Optional[Path] = TARGET_LABELS_OPTION,
    onnx_twin: bool = ONNX_TWIN_OPTION,
    **params: Any,
) -> None:
    """Adapt to a target domain from its unlabelled data: DANN, CDAN, CORAL, MMD or self-training.

    Epochs, and under --method auto the method, are chosen without target labels; source-only stays unless one helps.
    """
    strategy_flags = {name: params.pop(name, None) for name in ADAPT_FLAGS}
    _fit_command(ctx, source, out, task, option, overwrite, quiet, params, target=("TARGET", target_data),
                 target_labels=target_labels, strategy_flags=strategy_flags, onnx_twin=onnx_twin)


@app.command()
def extend(
    run_dir: Path = typer.Argument(..., metavar="RUN", help="Run directory of a classifier (`transferkit fit`)."),
    data: str = typer.Argument(..., help="Labelled new data, read as `fit` reads it (class folders, a labelled "
                               "table): its new classes are added, examples of old classes are learned too."),
    out: Path = OUT_OPTION,
    compare: bool = typer.Option(False, "--compare", help="Also measure naive fine-tuning on the new data alone and "
                                 "retraining on all data (the upper bound; costs a full fit)."),
    train_backbone: bool = typer.Option(False, "--train-backbone", help="Fine-tuned runs: fine-tune the whole model "
                                        "(exemplar replay, distillation of the old classes' logits, weight aligning) "
                                        "instead of refitting the head on the stored exemplar features; slower, and "
                                        "it forgets more (benchmarks/incremental.py)."),
    overwrite: bool = OVERWRITE_OPTION,
    quiet: bool = QUIET_OPTION,
    onnx_twin: bool = ONNX_TWIN_OPTION,
) -> None:
    """Add the classes of new data to a trained classifier without forgetting the old ones."""
    from .reporting import write_run_report
    from .rundir import prepare_out
    from .tasks import load_run
    from .tasks.growth import growth_table

    _existing(Path(data), "DATA", "labelled new data (a folder of class folders, or a labelled text table)")
    if Path(out).expanduser().resolve() == Path(run_dir).expanduser().resolve():
        raise TransferkitError(f"--out {out}: is the run being extended; write the extended run to a new folder "
                               "(the parent stays as it was, and the new run records it as its parent).")
    started = time.perf_counter()
    est = load_run(run_dir)
    if not hasattr(est, "extend"):
        raise TransferkitError(f"{run_dir}: a {est.task} run; only classifiers can be extended with new classes.")
    loaded = time.perf_counter() - started
    prepared = prepare_out(out, data, overwrite=overwrite)
    try:
        est.progress = not quiet
        est.extend(data, compare=compare, train_backbone=train_backbone)
        metrics = est.metrics_  # scored as a fit is: its cross-validated estimate, else the merged test split
        est.timings_ = {"loading the parent run": loaded, **est.timings_}
        est.timings_["total extend"] = time.perf_counter() - started  # the whole command, but saving the run
        est.save(out)
        twin = _write_twin(out, onnx_twin)
        report = write_run_report(out)
    finally:
        prepared.release()
    step = est.lineage_[-1]
    if not quiet:
        for note in est.notes_:
            console.print(f"[dim]note:[/] {escape(note)}")
    for warning in est.warnings_:  # one line each, whatever the terminal's width (paths may hold brackets)
        err_console.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True, highlight=False)
    _print_table(growth_table(step))
    if metrics is not None:
        _print_metrics(est, metrics)
    _print_twin(twin, quiet)
    console.print(Text(f"run saved to {out} (parent: {run_dir})\nreport: {report}"), soft_wrap=True)


@app.command()
def evaluate(
    run_dir: Path = typer.Argument(..., help="Run directory written by `transferkit fit` or `adapt`."),
    data: str = typer.Argument(..., help="Labelled data of the run's kind (image folder, text table...); for an "
                               "adapted run, labelled target-domain data measure the adaptation."),
    as_json: bool = typer.Option(False, "--json", help="Print metrics as JSON."),
) -> None:
    """Evaluate a saved model on labelled data."""
    from .tasks import load_run

    est = load_run(run_dir)
    metrics = est.evaluate(data)
    if as_json:
        console.print_json(json.dumps(metrics, default=float))
    else:
        _print_metrics(est, metrics, data=data)


#: `predict` prints at most this many predictions as a table; --output FILE or --json give them all.
PREDICT_TABLE_ROWS = 200
#: Inputs predicted at a time when every prediction is written (--output, --json): memory stays bounded.
PREDICT_CHUNK = 512
PREDICTION_FORMATS = (".csv", ".tsv", ".jsonl", ".json")


@app.command()
def predict(
    run_dir: Path = typer.Argument(..., help="Run directory written by `transferkit fit` or `adapt`, or a model.onnx "
                                   "written by `transferkit export`."),
    inputs: list[str] = typer.Argument(None, help="Image files/folders, texts for a text model, or a history CSV "
                                       "for a forecast model."),
    file: Optional[Path] = typer.Option(None, "--file", "-f", help="Text model: a file of texts (one per line, "
                                        "or a CSV/TSV/JSONL table with a text column), read in pieces."),
    top_k: int = typer.Option(1, min=1, help="How many classes to show per input."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON list of predictions."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write every prediction to this file "
                                          "(.csv, .tsv, .jsonl or .json), streamed as they are made: inputs far "
                                          "larger than memory are predicted in bounded memory."),
    engine: Engine = ENGINE_OPTION,
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Say on stderr which engine answered (onnx or "
                                 "torch) and why."),
) -> None:
    """Predict with a saved model (a run, or a model.onnx from `transferkit export`): images, texts,
    or the next steps of a series. The terminal shows at most 200 predictions; --output writes all."""
    if output is not None and output.suffix.lower() not in PREDICTION_FORMATS:
        raise TransferkitError(f"--output {output}: unsupported file type {output.suffix or '(none)'}; use "
                               f"{', '.join(PREDICTION_FORMATS)}.")
    if run_dir.suffix.lower() == ".onnx" or run_dir.is_file():  # an exported model: onnxruntime only, no torch
        from .runtime import OnnxPredictor

        if engine is Engine.torch:
            raise TransferkitError(f"--engine torch: {run_dir} is an exported model, which runs with onnxruntime only; "
                                   "pass its run directory for PyTorch.")
        est = OnnxPredictor.load(run_dir)
        if verbose:
            err_console.print(f"engine: onnx ({escape(str(run_dir))})", highlight=False, soft_wrap=True)
    else:
        from .tasks import predictor_for

        est, choice = predictor_for(run_dir, engine.value)  # the ONNX twin when valid: no torch import
        if verbose:
            err_console.print(escape(choice.describe(run_dir)), highlight=False, soft_wrap=True)
    items = est.read_prediction_inputs(list(inputs or []), file)
    if output is not None or as_json:
        records = (r for piece in est.prediction_chunks(items, PREDICT_CHUNK) for r in est.prediction_records(piece, top_k))
        if output is None:
            _stream_json_list(records, sys.stdout)
            return
        shown, count = _write_predictions(records, output, keep=0 if as_json else PREDICT_TABLE_ROWS)
        if shown:
            console.print(_rich_table(est.prediction_table(items, shown)))
        console.print(f"{counted(count, 'prediction')} written to {escape(str(output))}", highlight=False,
                      soft_wrap=True)
        return
    pieces = est.prediction_chunks(items, PREDICT_TABLE_ROWS)
    first = next(pieces, [])
    records = est.prediction_records(first, top_k)
    console.print(_rich_table(est.prediction_table(items, records)))
    if next(pieces, None) is not None:  # more inputs: read, not predicted
        err_console.print(f"[yellow]note:[/] showing the first {counted(len(records), 'prediction')}; "
                          "--output FILE (.csv, .jsonl...) or --json writes every one", highlight=False,
                          soft_wrap=True)


def _stream_json_list(records: Iterator[dict], out: typing.TextIO) -> int:
    """`records` as one JSON list, written record by record (as `json.dumps(list, indent=2)` writes it)."""
    import textwrap

    count = 0
    for record in records:
        out.write(("[\n" if count == 0 else ",\n") + textwrap.indent(json.dumps(record, indent=2, ensure_ascii=False),
                                                                     "  "))
        count += 1
    out.write("\n]\n" if count else "[]\n")
    out.flush()
    return count


def _write_predictions(records: Iterator[dict], path: Path, keep: int) -> tuple[list[dict], int]:
    """Write `records` to `path` (.csv/.tsv: one row each, `flat_record`; .jsonl: one object per line;
    .json: one list) as they come, under a temporary name renamed at the end, so a stopped run
    leaves no half-written file under `path`; returns the first `keep` records and the count."""
    import csv

    from ._format import flat_record

    suffix = path.suffix.lower()
    path = path.expanduser()
    part = path.with_name(path.name + ".part")
    kept: list[dict] = []
    count = 0
    try:
        with open(part, "w", encoding="utf-8", newline="") as f:
            if suffix == ".json":
                def counting():
                    nonlocal count
                    for record in records:
                        count += 1
                        if len(kept) < keep:
                            kept.append(record)
                        yield record
                _stream_json_list(counting(), f)
            else:
                writer = None
                for record in records:
                    if suffix == ".jsonl":
                        f.write(json.dumps(record, ensure_ascii=False) + "\n")
                    else:
                        row = flat_record(record)
                        if writer is None:
                            writer = csv.DictWriter(f, fieldnames=list(row), delimiter="\t" if suffix == ".tsv" else ",",
                                                    extrasaction="ignore")
                            writer.writeheader()
                        writer.writerow(row)
                    count += 1
                    if len(kept) < keep:
                        kept.append(record)
        os.replace(part, path)
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise TransferkitError(f"--output {path}: cannot write ({exc.strerror or exc}); pick a writable path.") from None
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return kept, count


def _listening_socket(host: str, port: int):
    """A socket bound to host:port (port 0: a free one), or one line saying why it cannot be."""
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise TransferkitError(f"--host {host}: not an address of this machine ({exc.strerror}); "
                               "use 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart need not wait for TIME_WAIT
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        hint = "pick another with --port (0: any free port)" if exc.errno in (98, 48, 10048) else "check --host and --port"
        raise TransferkitError(f"cannot listen on {host}:{port} ({exc.strerror}); {hint}") from None
    return sock


_SERVE = ServeSettings()


@app.command()
def serve(
    source: Path = typer.Argument(..., metavar="RUN_OR_ONNX", help="Run directory of `transferkit fit`, or an .onnx "
                                  "file of `transferkit export`."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on; 127.0.0.1 keeps it to this machine "
                             "(0.0.0.0: every interface, without authentication)."),
    port: int = typer.Option(8000, min=0, max=65535, help="Port (0: any free port)."),
    max_body_mb: float = typer.Option(_SERVE.max_body_bytes / 2**20, min=0.001, help="Largest request body in MB "
                                      "(413 above)."),
    max_batch: int = typer.Option(_SERVE.max_batch, min=1, help="Most images or texts in one request (413 above)."),
    timeout: float = typer.Option(_SERVE.timeout_s, min=0.001, help="Seconds a request may take, queue and model "
                                  "together (503 after)."),
    batch_size: int = typer.Option(_SERVE.batch_max_size, min=1, help="Micro-batching: most items in one model call, "
                                   "gathered from concurrent requests."),
    batch_wait_ms: float = typer.Option(_SERVE.batch_max_wait_ms, min=0, help="Micro-batching: how long a model call "
                                        "waits for more requests after the first."),
    engine: Engine = ENGINE_OPTION,
) -> None:
    """Serve a model over HTTP: POST /predict, a page at / to try it, OpenAPI docs at /docs."""
    import ipaddress
    import math

    from .serving import create_app, load_backend

    for flag, value in (("--max-body-mb", max_body_mb), ("--timeout", timeout), ("--batch-wait-ms", batch_wait_ms)):
        if not math.isfinite(value):  # NaN passes click's ranges, and an infinite limit is none
            raise TransferkitError(f"{flag} {value}: must be a finite number (default: see `transferkit serve --help`).")

    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        err_console.print(f"[yellow]warning:[/] listening on {host}: anyone who can reach this machine can send "
                          "requests (the server has no authentication); use 127.0.0.1 to keep it local",
                          soft_wrap=True, highlight=False)
    sock = _listening_socket(host, port)
    try:
        backend = load_backend(source, engine.value)
        import uvicorn

        app_ = create_app(backend, max_body_bytes=int(max_body_mb * 2**20), max_batch=max_batch, timeout_s=timeout,
                          batch_max_size=batch_size, batch_max_wait_ms=batch_wait_ms)
        bound_host, bound_port = sock.getsockname()[:2]
        everywhere = bound_host in ("0.0.0.0", "::")  # every interface: this machine reaches it on loopback
        shown = "127.0.0.1" if everywhere else f"[{bound_host}]" if ":" in bound_host else bound_host
        console.print(f"serving {escape(str(source))} ({backend.task}, {backend.kind}) at [bold]http://{shown}:{bound_port}/[/]"
                      f"{' (and on every interface)' if everywhere else ''} — API docs /docs; Ctrl-C stops",
                      highlight=False, soft_wrap=True)
        server = uvicorn.Server(uvicorn.Config(app_, log_level="warning", timeout_graceful_shutdown=5))
        server.run(sockets=[sock])
    finally:
        sock.close()


@app.command()
def export(
    run_dir: Path = typer.Argument(..., metavar="RUN", help="Run directory written by `transferkit fit` or `adapt`."),
    format: str = typer.Option("onnx", "--format", help="Export format (onnx)."),
    quantize: Optional[str] = typer.Option(None, "--quantize", help="Also write an int8 model (int8): kept only if "
                                           "it loses at most --max-drop accuracy against the fp32 model (the "
                                           "layers left in float chosen on the validation split, then checked "
                                           "on the test split)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="The fp32 model file (default RUN/model.onnx); the "
                                       "int8 model goes beside it as <name>.int8.onnx."),
    max_drop: float = typer.Option(0.01, "--max-drop", help="Largest accuracy loss of int8 against fp32 (absolute, "
                                   "0.01 = 1 point; forecasts: relative increase of the MSE). Over it, the int8 "
                                   "model is not kept: a warning says why, the fp32 model is the result, exit 0."),
    tta: Optional[bool] = typer.Option(None, "--tta/--no-tta", help="Images: the flip average inside the graph "
                                       "(default: as the run predicts; --no-tta halves the cost per image)."),
) -> None:
    """Export a run to ONNX for onnxruntime (fp32, and int8 with --quantize int8), checked against PyTorch."""
    from .export import describe_export, export_run
    from .rundir import output_folder

    with output_folder(Path(out).expanduser().parent if out else run_dir):  # a failed export leaves no empty folder
        result = export_run(run_dir, format=format, quantize=quantize, out=out, max_drop=max_drop, tta=tta)
    for entry in result.exports:
        console.print(escape(describe_export(entry)), highlight=False, soft_wrap=True)
    for warning in result.warnings:
        err_console.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True, highlight=False)
    console.print(f"ship: {escape(str(result.path))}", highlight=False, soft_wrap=True)


@app.command()
def rank(
    data: str = typer.Argument(..., help="Image folder or text table, as for `fit`."),
    candidates: Optional[str] = typer.Option(None, help="Comma-separated backbone names or run directories "
                                             "(default: every installed backbone for the data)."),
    metric: Optional[str] = typer.Option(None, help="Score(s), comma-separated, 'ensemble' (mean rank of knn, "
                                         "linear, logme) or 'all' (see `transferkit list scores`); the first "
                                         "orders the ranking (default: the score `fit --backbone auto` uses, "
                                         "the best on the selection benchmark)."),
    layers: Optional[str] = typer.Option(None, help="Score these intermediate layers instead of the final features, "
                                         "e.g. stage2,stage3,stage4 (images) or layer2,layer4,layer6 (text)."),
    image_sizes: Optional[str] = typer.Option(None, help="Images: score each candidate at these input sizes, e.g. 96,128."),
    sample: int = typer.Option(1000, min=10, help="Training examples to encode (stratified sample)."),
    task: Optional[str] = typer.Option(None, help="image-classification or text-classification (default: detected)."),
    seed: int = typer.Option(0),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Also write the ranking as JSON."),
    as_json: bool = typer.Option(False, "--json", help="Print the ranking as JSON."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Rank pretrained backbones on your data by transferability, before any training."""
    from .selection import SCORES
    from .selection.rank_backbones import DEFAULT_METRIC, ENSEMBLE, auto_metric, default_candidates, rank_backbones
    from .tasks.registry import TASKS, detect_task

    task = task or detect_task(data)[0]
    chosen_by_default = metric is None
    metric = metric or DEFAULT_METRIC
    if metric == "all":  # every score (and the ensemble when it is the default), the default first
        metrics = SCORES.names() + ([ENSEMBLE] if DEFAULT_METRIC == ENSEMBLE else [])
        metrics.sort(key=lambda m: m != DEFAULT_METRIC)
    else:
        metrics = [m.strip() for m in metric.split(",")]
    for name in metrics:
        if name != ENSEMBLE:
            SCORES.entry(name)  # unknown names fail before the data are read
    source = TASKS.get(task).ranking_source_of(data, seed=seed)
    names = [c.strip() for c in candidates.split(",") if c.strip()] if candidates else default_candidates(source.modality)
    ranking = rank_backbones(
        source, names, metrics=metrics, sample_size=sample, seed=seed, progress=not quiet,
        layers=layers.split(",") if layers else None,
        image_sizes=[int(v) for v in image_sizes.split(",")] if image_sizes else None)
    result = ranking.to_dict()
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2))
    if as_json:
        print(json.dumps(result, indent=2))
        return
    from ._format import column_format

    metrics = list(ranking.rows[0].scores) if ranking.rows else metrics  # an ensemble adds its members
    formats = {m: column_format([row.scores[m] for row in ranking.rows]) for m in metrics}
    _print_table(PlainTable(
        columns=("rank", "candidate", *metrics, "time"), right=("rank", *metrics, "time"), optional=("time",),
        title=f"{counted(len(ranking.rows), 'candidate')} on {counted(ranking.sample['examples'], 'training example')} "
              f"({ranking.seconds:.0f} s), ordered by {ranking.metric}",
        rows=[(str(i), row.candidate, *("n/a" if row.scores[m] is None else format(row.scores[m], formats[m])
                                        for m in metrics), f"{row.seconds:.0f} s")
              for i, row in enumerate(ranking.rows, 1)]))
    if any(row.scores.get(m) is None for row in ranking.rows for m in metrics):
        console.print("n/a: LEEP and NCE need the source classifier's predictions (packaged ImageNet backbones and "
                      "classification runs have one; text encoders and cut layers do not); imagenet_top1 needs a "
                      "registered image backbone.")
    if chosen_by_default:
        console.print(f"ordered by {escape(auto_metric().evidence())}", highlight=False, soft_wrap=True)
    console.print(f"best: [bold]{escape(ranking.best.candidate)}[/] — fit it with --backbone {escape(ranking.best.backbone)}, "
                  "or let `fit --backbone auto` rank and choose.")


# ------------------------------------------------------------------ lr-find (issue 14)
def _fit_hint(data: str, task: str | None, option: list[str], given: dict[str, Any], lr: float) -> str:
    """The `fit` command with the same data and options, at learning rate `lr`."""
    import shlex

    parts = ["transferkit", "fit", shlex.quote(data), *(["--task", task] if task else [])]
    for item in option:
        parts += ["--option", shlex.quote(item)]
    for name, value in given.items():
        flag = "--" + name.replace("_", "-")
        if name == "lr" or value is None:
            continue
        parts += [flag if value else f"--no-{flag[2:]}"] if isinstance(value, bool) else [flag, shlex.quote(str(value))]
    return " ".join([*parts, "--lr", f"{lr:.2g}", "--out", "RUN"])


@app.command("lr-find", cls=_EstimatorOptionsCommand)
@_declared_without
def lr_find(
    ctx: typer.Context,
    data: str = typer.Argument(..., help="Training data, as for `fit` (image folder, text table, time-series CSV)."),
    task: Optional[str] = typer.Option(None, help="image-classification, text-classification or forecast "
                                       "(default: detected from the data)."),
    option: list[str] = typer.Option([], "--option", help="Strategy knob KEY=VALUE, repeatable (e.g. "
                                     "layer_decay=0.7)."),
    min_lr: float = typer.Option(MIN_LR, "--min-lr", help="Learning rate of the first step.",
                                 rich_help_panel="Range test"),
    max_lr: float = typer.Option(MAX_LR, "--max-lr", help="Learning rate of the last step (the test stops earlier "
                                 "when the loss diverges).", rich_help_panel="Range test"),
    steps: int = typer.Option(STEPS, "--steps", help="Training batches; the LR grows exponentially over them.",
                              rich_help_panel="Range test"),
    plot: Optional[Path] = typer.Option(Path("lr_find.png"), "--out", "-o", metavar="PLOT.png",
                                        help="Where to write the plot of loss against learning rate.",
                                        rich_help_panel="Range test"),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON (learning rates, losses, "
                                 "suggestion)."),
    quiet: bool = QUIET_OPTION,
    **params: Any,
) -> None:
    """Learning-rate range test: a few training steps at growing learning rates; suggests a --lr for `fit`.

    The model fine-tuning would train (strategy fine-tune, full, or auto's fine-tuning) trains while the top
    layer group's LR grows from --min-lr to --max-lr (lower groups and the head keep their ratios to it);
    the suggestion is where the loss falls fastest. Nothing is saved but the plot.
    """
    from .reporting.plots import lr_find_png
    from .strategies.lr_finder import check_range
    from .tasks import TASKS, detect_task

    check_range(min_lr, max_lr, steps)  # before the data are read
    if plot is not None:
        _check_output_file(plot.expanduser(), "--out")
    _check_environment()
    detected = task
    if task is None:
        task, why = detect_task(data)
        if not (quiet or as_json):
            console.print(f"[bold]task: {escape(task)}[/] — {escape(why)} (override with --task)", highlight=False)
    cls = TASKS.get(task)
    given = {name: value for name, value in params.items()  # as `fit`: the rest are the task's defaults
             if getattr(ctx.get_parameter_source(name), "name", "DEFAULT") not in ("DEFAULT", "DEFAULT_MAP")}
    foreign = sorted(k for k, v in given.items() if k not in set(cls._get_param_names()) and v is not None)
    if foreign:
        raise TransferkitError(f"{task} does not take {', '.join('--' + k.replace('_', '-') for k in foreign)}.")
    est = cls(progress=not (quiet or as_json), strategy_options=parse_options(option), **given)
    result = est.lr_find(data, min_lr=min_lr, max_lr=max_lr, steps=steps)
    written = None
    if plot is not None:
        png = lr_find_png(result.lrs, result.losses, result.suggestion, result.default_lr,
                          title=f"Learning-rate range test: {result.strategy}, {counted(result.steps_run, 'step')}")
        if png is not None:
            plot.expanduser().parent.mkdir(parents=True, exist_ok=True)
            plot.expanduser().write_bytes(png)
            written = plot
    hint = _fit_hint(data, detected, option, given, result.suggestion) if result.suggestion else None
    if as_json:
        print(json.dumps({"task": task, **result.to_dict(), "plot": str(written) if written else None, "fit": hint}))
        return
    ran = (f"{counted(result.steps_run, 'step')} from {result.min_lr:.2g} to {result.lrs[-1]:.2g}"
           + (" (stopped early: the loss diverged)" if result.stopped_early else "") + f", {result.seconds:.0f} s")
    source = "--lr" if "lr" in given else f"{result.strategy}'s default"
    current = (f"current learning rate: [bold]{result.default_lr:.2g}[/] ({source}, top layer group; the head at "
               f"{result.head_lr_ratio:g}×, lower groups at decreasing shares)")
    if result.suggestion is None:
        err_console.print(f"[yellow]warning:[/] no suggestion: too few finite losses ({ran}); raise --steps or widen "
                          "--min-lr/--max-lr.")
        console.print(current)
    else:
        console.print(f"suggested learning rate: [bold]{result.suggestion:.2g}[/] (steepest descent of the loss; {ran})")
        console.print(current)
        console.print(f"use it: {escape(hint)}", soft_wrap=True)
    if written:
        console.print(Text(f"plot: {written}"), soft_wrap=True)


@app.command()
def runs(
    folder: Path = typer.Argument(Path("runs"), help="Folder holding run directories (searched a few levels deep), "
                                  "or one run directory."),
    task: Optional[str] = typer.Option(None, help="Only runs of this task (see `transferkit list tasks`)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON list of runs."),
) -> None:
    """List the runs under a folder: task, backbone, strategy, metrics and what they were measured on, date, status."""
    from .reporting.runs import by_task, find_runs, runs_tables

    found = find_runs(folder)
    if task is not None:
        from .tasks import TASKS

        TASKS.entry(task)  # an unknown name: one line with the close matches
        found = by_task(found).get(task, [])
    if as_json:
        print(json.dumps([r.to_dict() for r in found], indent=2, ensure_ascii=False, default=str))
        return
    if not found:
        console.print(Text(f"no runs under {folder}{f' for task {task}' if task else ''}; `transferkit fit DATA --out "
                           f"{folder}/NAME` writes one."), soft_wrap=True)
        return
    for table in runs_tables(found, folder):
        _print_table(table)


@app.command()
def compare(
    run_a: Path = typer.Argument(..., help="A run directory."),
    run_b: Path = typer.Argument(..., help="Another run directory."),
    as_json: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
) -> None:
    """Two runs side by side: metrics (difference, its 95% noise band, which is better) and the settings that differ."""
    from .reporting.runs import compare_runs, comparison_notes, comparison_tables

    comparison = compare_runs(run_a, run_b)
    if as_json:
        print(json.dumps(comparison.to_dict(), indent=2, ensure_ascii=False, default=str))
        return
    for table in comparison_tables(comparison):
        _print_table(table)
    for line in comparison_notes(comparison):
        console.print(Text(line), soft_wrap=_fits_terminal() is None)


class CacheAction(str, Enum):
    info = "info"
    clear = "clear"


@app.command("cache")
def cache_(action: CacheAction = typer.Argument(CacheAction.info, help="info (what is cached) or clear (delete it)"),
           as_json: bool = typer.Option(False, "--json", help="Print the information as JSON.")) -> None:
    """The on-disk feature cache (TRANSFERKIT_CACHE, default ~/.cache/transferkit/features): image
    features of frozen backbones, reused by later linear probes and rankings of the same files."""
    from .models.feature_cache import cache_info, cache_root, clear_cache

    root = cache_root()
    if root is None:
        console.print("the feature cache is off (TRANSFERKIT_CACHE=off)", highlight=False)
        return
    if action == CacheAction.clear:
        freed = clear_cache(root)
        console.print(f"cleared {escape(str(root))}: {freed / 1e6:.1f} MB freed", highlight=False, soft_wrap=True)
        return
    info = cache_info(root)
    if as_json:
        print(json.dumps(info, indent=2))
        return
    if not info["marked"] and Path(info["root"]).exists():
        err_console.print(f"[yellow]warning:[/] {escape(info['root'])} is not a transferkit feature cache (no "
                          "CACHEDIR.TAG mark); transferkit neither caches into it nor clears it.", soft_wrap=True)
    rows = [(m["key"][:12], escape(m["module"] or f"? ({m['problem']})"), str(m["rows"]), f"{m['bytes'] / 1e6:.1f} MB",
             "yes" if m["hflip"] else "no") for m in info["models"]]
    _print_table((PlainTable(columns=("key", "backbone", "images", "size", "flip"), rows=rows,
                                         title=f"feature cache {info['root']} ({info['bytes'] / 1e6:.1f} MB)",
                                         right=("images", "size"))))


class ListWhat(str, Enum):
    backbones = "backbones"
    strategies = "strategies"
    tasks = "tasks"
    scores = "scores"


@app.command("list")
def list_(what: ListWhat = typer.Argument(..., help="backbones, strategies, tasks or scores"),
          as_json: bool = typer.Option(False, "--json", help="Print the list as JSON.")) -> None:
    """List registered backbones, strategies, tasks or transferability scores."""
    # Registries hold names and descriptions only: listing imports no torch (see _registry.declare).
    from .backbones import BACKBONES
    from .selection import SCORES
    from .strategies import STRATEGIES
    from .tasks import TASKS

    if what is ListWhat.backbones:
        columns = ("name", "reads", "description", "offline")
        rows = [(e.name, e.info.modality, e.description,
                 "yes" if e.info.available() else f"pip install {e.info.pypi}") for e in BACKBONES.entries()]
    elif what is ListWhat.scores:
        columns = ("name", "description", "needs", "paper")
        rows = [(e.name, e.description, e.info.needs, e.info.paper) for e in SCORES.entries()]
    else:
        columns = ("name", "description")
        rows = [(e.name, e.description) for e in (STRATEGIES if what is ListWhat.strategies else TASKS).entries()]
    if as_json:
        print(json.dumps([dict(zip(columns, row)) for row in rows], indent=2, ensure_ascii=False))
        return
    _print_table(PlainTable(columns=columns, rows=rows, optional=("paper", "reads")))
    if what is ListWhat.backbones:
        console.print("Also: any timm (images) or transformers (text) model name (hub weights, needs network), "
                      "or a run directory of `transferkit fit`.", highlight=False)


@app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", "-o", help="Run directory to write."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
    onnx_twin: bool = ONNX_TWIN_OPTION,
) -> None:
    """Fine-tune the default offline backbone on the flowers sample shipped with transferkit."""
    from .rundir import prepare_out

    console.print(Text(f"demo: 5 flower classes × 40 images (96 px) from {DEMO_DATA}"), soft_wrap=True)
    with prepare_out(out, DEMO_DATA, overwrite=True):
        run_fit(DEMO_DATA, out, task="image-classification", quiet=quiet, strategy="auto", test_fraction=0.25,
                val_fraction=0.15, onnx_twin=onnx_twin)


def _click_exceptions():
    """The exceptions module of the click that typer raises from: its bundled copy (typer ≥ 0.2x,
    `typer._click`) or, for older typer, the click package."""
    try:
        from typer._click import exceptions
    except ImportError:
        from click import exceptions
    return exceptions


def _param_label(param) -> str:
    """`--epochs` for an option (its long name), `DATA` for an argument."""
    opts = [o for o in getattr(param, "opts", []) if o.startswith("-")]
    if opts:
        return max(opts, key=len)
    return str(getattr(param, "metavar", None) or getattr(param, "name", "") or "").upper()


def usage_error_line(exc) -> str:
    """One line for any click/typer usage error: which command and flag, what is wrong, and the fix."""
    errors = _click_exceptions()
    ctx = getattr(exc, "ctx", None)
    command = ctx.command_path if ctx is not None else "transferkit"
    param = getattr(exc, "param", None)
    if isinstance(exc, errors.NoSuchOption):
        params = ctx.command.params if ctx is not None else []
        known = [o for p in params for o in [*getattr(p, "opts", []), *getattr(p, "secondary_opts", [])] if o.startswith("--")]
        # a prefix of an option (--epoch) means that option; only otherwise the closest spellings
        close = [o for o in dict.fromkeys(known) if o.startswith(exc.option_name)][:2] or \
            difflib.get_close_matches(exc.option_name, known, n=2, cutoff=0.75)
        message = f"unknown option {exc.option_name}" + (f"; did you mean {' or '.join(close)}?" if close else "")
    elif isinstance(exc, errors.MissingParameter) and param is not None:
        kind = "option" if getattr(param, "param_type_name", "") == "option" else "argument"
        what = " ".join((getattr(param, "help", None) or "").replace("\\[", "[").split())  # help is rich-escaped
        message = f"missing {kind} {_param_label(param)}" + (f": {what[:1].lower()}{what[1:]}" if what else "")
    elif isinstance(exc, errors.BadParameter) and param is not None:
        reason = exc.message.removeprefix("Value error, ")
        message = f"invalid value for {_param_label(param)}: {reason[:1].lower()}{reason[1:]}"
    else:
        message = exc.format_message()
        message = message[:1].lower() + message[1:]
    return " ".join(f"{message.rstrip('.')} (see `{command} --help`)".split())


def main() -> None:
    """Entry point: user errors print one line and exit with status 2, without a traceback."""
    errors = _click_exceptions()
    aborts = tuple({typer.Abort, getattr(errors, "Abort", typer.Abort)})
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _configure_logging()
    try:
        # typer returns the exit code (130 for Ctrl-C) instead of exiting, and raises usage errors
        code = app(standalone_mode=False, prog_name="transferkit")
    except TransferkitError as exc:
        err_console.print(Text.assemble(("error:", "bold red"), " ", str(exc)), soft_wrap=True, highlight=False)
        sys.exit(2)
    except aborts:
        sys.exit(130)
    except errors.NoArgsIsHelpError as exc:  # bare `transferkit`: the help is the answer
        exc.show()
        sys.exit(2)
    except errors.ClickException as exc:  # every usage mistake: one line, exit 2
        err_console.print(Text.assemble(("error:", "bold red"), " ", usage_error_line(exc)), soft_wrap=True, highlight=False)
        sys.exit(2)
    if isinstance(code, int) and code:
        sys.exit(code)


if __name__ == "__main__":
    main()
