"""`transferkit fit` options come from the task estimators: their signatures, docstrings and value
rules, declared once on the estimator: one parameter list."""
from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.markup import escape
import typer.main

from transferkit._registry import Registry
from transferkit.cli import app
from transferkit.cli.options import SET_BY_CLI
from transferkit.tasks import TASKS, TransferEstimator
from transferkit.tasks.params import Interval, OneOf, ParameterError, check_params, parameter_doc, parameter_docs

from tests.helpers import run_main


def fit_options() -> dict[str, object]:
    """The `fit` command's parameters by name, built now from the registered tasks."""
    return {p.name: p for p in typer.main.get_command(app).commands["fit"].params}


def test_every_estimator_parameter_is_a_fit_option_with_its_docstring_help():
    options = fit_options()
    for name in TASKS.names():
        cls = TASKS.get(name)
        for param in cls._get_param_names():
            assert parameter_doc(cls, param), f"neither {cls.__name__} nor a base class documents {param}"
            if param in SET_BY_CLI:
                assert param not in options
                continue
            option = options[param]
            assert f"--{param.replace('_', '-')}" in option.opts + option.secondary_opts
            first = next(TASKS.get(n) for n in TASKS.names() if param in TASKS.get(n)._get_param_names())
            # as written, markup-escaped so rich prints it as written (`transferkit[ray]` keeps its brackets)
            assert option.help == escape(parameter_doc(first, param))


def test_a_parameter_every_task_shares_is_documented_once_on_the_base_class():
    from transferkit.tasks.base import TransferEstimator

    shared = set.intersection(*(set(TASKS.get(n)._get_param_names()) for n in TASKS.names()))
    assert shared <= set(parameter_docs(TransferEstimator.__doc__))
    for name in TASKS.names():
        cls = TASKS.get(name)
        repeated = shared & set(parameter_docs(cls.__doc__))
        assert not repeated, f"{cls.__name__} documents {sorted(repeated)} again"


def test_flags_of_before_the_generated_options_still_parse():
    options = fit_options()
    assert "--workers" in options["num_workers"].opts
    assert "--no-baseline" in options["baseline"].secondary_opts and "--no-tta" in options["tta"].secondary_opts
    assert "--label-names" in options["label_names"].opts
    assert options["image_size"].rich_help_panel == "Images" and options["epochs"].rich_help_panel is None


class EchoTask(TransferEstimator):
    """A task declared only in this test.

    Parameters
    ----------
    echo_count : int, default=3
        How many times to echo each
        input.
    loud : bool, default=False
        Echo in capitals.
    run_dir : str or None, default=None
        Set by the CLI.
    progress : bool, default=True
        Set by the CLI.
    """

    task = "echo"
    modality = "text"
    param_constraints = {"echo_count": Interval(1, 5)}
    option_panel = "Echo"

    def __init__(self, echo_count: int = 3, loud: bool = False, run_dir: str | None = None,
                 progress: bool = True) -> None:
        self.echo_count = echo_count
        self.loud = loud
        self.run_dir = run_dir
        self.progress = progress


@pytest.fixture
def with_echo_task(monkeypatch):
    """The packaged tasks plus EchoTask, registered for this test only."""
    tasks = Registry("task")
    for name in TASKS.names():
        tasks.register(name)(TASKS.get(name))
    tasks.register("echo")(EchoTask)
    monkeypatch.setattr("transferkit.tasks.TASKS", tasks)


def test_a_parameter_added_to_an_estimator_signature_shows_in_fit_help(monkeypatch, capsys, with_echo_task):
    monkeypatch.setenv("COLUMNS", "200")
    options = fit_options()
    assert options["echo_count"].help == "How many times to echo each input."
    assert options["echo_count"].rich_help_panel == "Echo" and options["echo_count"].default == 3
    assert "--no-loud" in options["loud"].secondary_opts
    code, out, _ = run_main(monkeypatch, capsys, "fit", "--help")
    assert code == 0
    assert re.search(r"--echo-count .*How many times to echo each input\.", out), out
    assert "Echo in capitals." in out and "Echo" in out
    code, _, err = run_main(monkeypatch, capsys, "fit", "data", "--out", "run", "--echo-count", "9")
    assert code == 2 and "invalid value for --echo-count: must be between 1 and 5, not 9" in err


def _bad_value(rule):
    if isinstance(rule, OneOf):
        return "no-such-choice"
    return rule.low - 1 if rule.low is not None else rule.high + 1


@pytest.mark.parametrize("task, param", [(task, param) for task in TASKS.names()
                                         for param in TASKS.get(task).param_constraints])
def test_estimator_rejects_an_out_of_range_value_with_the_cli_message(monkeypatch, capsys, tmp_path, task, param):
    cls = TASKS.get(task)
    value = _bad_value(cls.param_constraints[param])
    flag = max(fit_options()[param].opts, key=len)
    code, _, err = run_main(monkeypatch, capsys, "fit", tmp_path, "--out", tmp_path / "run", f"{flag}={value}")
    reason = re.search(rf"invalid value for {flag}: (.*) \(see `transferkit fit --help`\)", err)
    assert code == 2 and reason, err
    with pytest.raises(ParameterError) as raised:
        cls(**{param: value}).fit(tmp_path / "never-read")  # rejected before the data are read
    assert str(raised.value) == f"{param} {reason[1]}."


def test_value_rules_pass_none_and_name_the_first_broken_parameter():
    rules = {"epochs": Interval(1), "augment": OneOf(("none", "light"))}
    check_params({"epochs": None, "augment": "light"}, rules)
    with pytest.raises(ParameterError, match=r"^augment must be one of none, light, not 'heavy'\.$"):
        check_params({"epochs": 2, "augment": "heavy"}, rules)
    assert Interval(0.01, 0.5).describe() == "0.01<=x<=0.5" and Interval(2).describe() == "x>=2"


def test_a_time_cap_must_be_positive_but_may_be_tiny():
    """--max-seconds -5 used to be accepted and silently ignored; a microsecond cap is a real one."""
    positive = Interval(0, above_low=True)
    assert positive.describe() == "x>0" and Interval(0, 1, above_low=True).describe() == "0<x<=1"
    assert positive.problem(0) == "must be more than 0, not 0" and positive.problem(1e-6) is None
    assert TransferEstimator.param_constraints["max_seconds"] == positive


def test_parameter_docs_reads_numpydoc_and_stops_at_the_next_section():
    doc = """Title.

    Parameters
    ----------
    a, b : int
        Shared text
        on two lines.
    flag : bool

    Returns
    -------
    out : str
        Not a parameter.
    """
    assert parameter_docs(doc) == {"a": "Shared text on two lines.", "b": "Shared text on two lines.", "flag": ""}
    assert parameter_docs(inspect.cleandoc("No sections here.")) == {}


def _fit_help_imports(cache: Path) -> str:
    """The heavy libraries a fresh `transferkit fit --help` imports, with `cache` as XDG_CACHE_HOME."""
    code = ("import sys\nfrom transferkit.cli import main\nsys.argv = ['transferkit', 'fit', '--help']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('heavy:', *(m for m in ('torch', 'sklearn', 'lightning') if m in sys.modules))")
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr
    assert "--image-size" in result.stdout
    return result.stdout.strip().splitlines()[-1]


def test_fit_help_reads_the_estimators_once_then_answers_from_the_cache(tmp_path):
    """Building the options imports the estimators (torch, scikit-learn: seconds); a later `fit
    --help` or mistyped option must not pay that again, and a damaged cache is rebuilt."""
    assert _fit_help_imports(tmp_path) == "heavy: torch sklearn"
    (cached,) = (tmp_path / "transferkit").glob("fit-options-*.json")
    assert _fit_help_imports(tmp_path) == "heavy:"
    cached.write_text("{not json")
    assert _fit_help_imports(tmp_path) == "heavy: torch sklearn"
    assert json.loads(cached.read_text())[0]["name"]


def test_strategy_options_are_checked_against_the_strategy_that_will_run():
    """The strategy that adapts is found by the registry's `unlabelled` trait, not by its name; left to
    choose (none named, or the default) a plain fit checks nothing yet: the strategy it picks does."""
    from transferkit.cli.train import _check_strategy_options
    from transferkit.errors import TransferkitError

    _check_strategy_options("auto", False, {"no_such_knob": 1}, default="auto")
    _check_strategy_options(None, False, {"no_such_knob": 1}, default="auto")
    for named in (None, "auto", "adapt"):
        with pytest.raises(TransferkitError, match="no_such_knob for strategy 'adapt'"):
            _check_strategy_options(named, True, {"no_such_knob": 1}, default="auto")
    with pytest.raises(TransferkitError, match="trade_off for strategy 'linear-probe'"):
        _check_strategy_options("linear-probe", True, {"trade_off": 1}, default="auto")
    _check_strategy_options("adapt", True, {"trade_off": 0.5}, default="auto")


def test_adapting_checks_the_adapting_strategys_options_before_the_run_folder_is_made(tmp_path, monkeypatch, capsys):
    from transferkit.testing import make_image_folder

    data = make_image_folder(tmp_path / "colours", per_class=2, size=16)
    code, _, err = run_main(monkeypatch, capsys, "fit", data, "--adapt-to", data, "--out", tmp_path / "run",
                            "--option", "no_such_knob=1")
    assert code == 2 and "no_such_knob for strategy 'adapt'" in err, err
    assert not (tmp_path / "run").exists()
