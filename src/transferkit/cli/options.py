"""Signature → options: the command-line options read from what the task estimators and the `adapt`
strategy declare once (cached), the options commands share, and what the command line set
(`given_params`)."""
from __future__ import annotations

import inspect
import json
import os
import typing
from enum import Enum
from pathlib import Path
from typing import Any, Optional

import typer
import typer.main
from rich.markup import escape
from typer.core import TyperCommand

from ..errors import TransferkitError
from ..safe_json import JsonProblem, parse_json, schema_problem


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
    from ..tasks import TASKS
    from ..tasks.params import constraint_to_json, parameter_doc

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

    from ..strategies.adapt import ENCODERS, NO_ADAPTATION, AdaptOptions
    from ..strategies.adaptation import METHODS

    defaults = {f.name: f.default for f in dataclasses.fields(AdaptOptions)}
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

    from .. import __version__
    from ..tasks import TASKS

    package = Path(__file__).resolve().parent.parent  # the transferkit package
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
    from ..tasks.params import Interval, constraint_from_json

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
        from ..strategies import STRATEGIES
        from ..tasks import TASKS

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


def given_params(ctx: typer.Context, params: dict[str, Any]) -> dict[str, Any]:
    """Only what the command line set (ParameterSource COMMANDLINE or ENVIRONMENT): the rest are the
    detected task's own defaults, and an option that task does not take is refused only when given."""
    return {name: value for name, value in params.items()
            if getattr(ctx.get_parameter_source(name), "name", "DEFAULT") not in ("DEFAULT", "DEFAULT_MAP")}


def taken_params(task: str, cls: type, params: dict[str, Any]) -> dict[str, Any]:
    """The `params` the task's estimator `cls` takes; one it does not take, given a value, is refused
    (one line naming its flag)."""
    accepted = set(cls._get_param_names())
    foreign = sorted(k for k, v in params.items() if k not in accepted and v is not None)
    if foreign:
        raise TransferkitError(f"{task} does not take {', '.join('--' + k.replace('_', '-') for k in foreign)}.")
    return {k: v for k, v in params.items() if k in accepted}


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
