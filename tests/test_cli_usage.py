"""CLI usage mistakes are one line and exit 2, whatever click typer raises them from; the CLI starts
without importing torch; and the small labelling helpers of the terminal output."""
from __future__ import annotations

import enum
import re
import subprocess
import sys
import types
import typing

import pytest
import typer.main

from tests.helpers import assert_one_usage_line, run_main, run_subprocess
from transferkit.cli import app


# The mistakes a new user made, each as a real process: exit status and stderr as seen.
@pytest.mark.parametrize("args, mentions", [
    (["list"], "WHAT"),
    (["list", "backbone"], "WHAT"),
    (["fitt"], "'fit'"),
    (["fit"], "DATA"),
    (["fit", "data", "--out", "run", "--epoch", "1"], "did you mean --epochs"),
    (["fit", "data", "--out", "run", "--epochs", "0"], "--epochs"),
    (["fit", "data", "--out", "run", "--epochs", "abc"], "--epochs"),
    (["fit", "data", "--out", "run", "--horizon", "0"], "--horizon"),
    (["fit", "data", "--out", "run", "--val-fraction", "0.9"], "--val-fraction"),
    (["fit", "data"], "--out"),
    (["fit", "data", "--out"], "--out"),
    (["predict"], "RUN_DIR"),
])
def test_usage_mistakes_are_one_line_exit_2(args, mentions, tmp_path):
    result = run_subprocess(*args)
    assert_one_usage_line(result.returncode, result.stderr, mentions)
    assert not (tmp_path / "run").exists()


def _commands():
    return typer.main.get_command(app).commands


def _value_type(param):
    """The parameter's type, `int` for `Optional[int]`."""
    annotation = param.type_descriptor.annotation
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    return args[0] if typing.get_origin(annotation) in (typing.Union, types.UnionType) and args else annotation


def _valid_args(command) -> list[str]:
    """Placeholder values for a command's required parameters (the parse fails before they are used)."""
    args = []
    for param in command.params:
        if not param.required:
            continue
        value_type = _value_type(param)
        is_enum = isinstance(value_type, type) and issubclass(value_type, enum.Enum)
        value = next(iter(value_type)).value if is_enum else "x"
        args += [value] if param.param_type_name == "argument" else [param.opts[0], value]
    return args


def _typed_options():
    """(command, option) for every option that parses a number or a choice: all can be given bad text."""
    for name, command in _commands().items():
        for param in command.params:
            value_type = _value_type(param)
            if param.param_type_name == "option" and not param.is_flag and (
                    value_type in (int, float) or (isinstance(value_type, type) and issubclass(value_type, enum.Enum))):
                yield name, max(param.opts, key=len)


# The whole class, generated from the commands the CLI has: a new option is covered the day it is added.
@pytest.mark.parametrize("command, option", list(_typed_options()))
def test_every_bad_option_value_is_one_line_exit_2(monkeypatch, capsys, command, option):
    code, _, err = run_main(monkeypatch, capsys, command, *_valid_args(_commands()[command]), option, "not-a-value")
    assert_one_usage_line(code, err, option)


@pytest.mark.parametrize("command", list(_commands()))
def test_every_unknown_option_and_missing_parameter_is_one_line_exit_2(monkeypatch, capsys, command):
    code, _, err = run_main(monkeypatch, capsys, command, *_valid_args(_commands()[command]), "--no-such-flag")
    assert_one_usage_line(code, err, "--no-such-flag")
    required = [p for p in _commands()[command].params if p.required]
    if required:
        code, _, err = run_main(monkeypatch, capsys, command)
        assert_one_usage_line(code, err, "missing")


@pytest.mark.parametrize("args", [["--help"], *([name, "--help"] for name in _commands())])
def test_help_still_exits_0(monkeypatch, capsys, args):
    code, out, _ = run_main(monkeypatch, capsys, *args)
    assert code == 0 and "Usage" in out


HEAVY = ("torch", "lightning", "timm", "transformers", "sklearn", "pandas", "matplotlib")


@pytest.mark.parametrize("argv", [None, ["--help"], ["list", "backbones"], ["list", "strategies"], ["list", "tasks"],
                                  ["list", "scores"]])
def test_cli_start_up_imports_no_heavy_library(argv):
    """What makes `--help` and `list` slow: importing torch & co. at start-up (once 14 s)."""
    run = "" if argv is None else (f"sys.argv = ['transferkit', *{argv!r}]\n"
                                   "try:\n    main()\nexcept SystemExit:\n    pass\n")
    code = ("import sys\nfrom transferkit.cli import main\n" + run +
            f"print('heavy:', *(m for m in {HEAVY!r} if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "heavy:", f"imported at start-up: {result.stdout.strip()}"


# ----------------------------------------------------------------- wording and counts
def test_counted_uses_the_singular_for_one():
    from transferkit._format import counted

    assert counted(1, "epoch") == "1 epoch"
    assert counted(2, "epoch") == "2 epochs" and counted(0, "example") == "0 examples"
    assert counted(1, "class", "classes") == "1 class" and counted(3, "class", "classes") == "3 classes"


def test_report_timings_total_is_the_sum_of_its_stages_once():
    """A 22.7 s fit was shown as 29.5 s: "total fit" was added to the stages it sums."""
    from transferkit.reporting.html import _timings, timing_parts

    timings = {"data scan": 1.0, "head fit": 2.0, "backbone, diagnostics and other": 0.5, "total fit": 3.5,
               "from-scratch control": 4.0}
    parts, total = timing_parts(timings)
    assert "total fit" not in parts and total == 7.5
    assert ">total fit<" not in _timings(timings)


def test_unknown_strategy_points_to_list_strategies():
    from transferkit.errors import UnknownNameError
    from transferkit.strategies import create_strategy

    with pytest.raises(UnknownNameError, match=r"`transferkit list strategies`") as info:
        create_strategy("fine_tune")
    assert "strategys" not in str(info.value)


def test_fit_prints_its_plan_first_and_evaluate_names_the_data(tmp_path):
    """One real CLI fit: the plan is printed before training, the run's timings add up, and
    `evaluate` on another folder says whose accuracy it is."""
    import json

    from transferkit.testing import make_image_folder

    data = make_image_folder(tmp_path / "data", per_class=6, size=32)
    other = make_image_folder(tmp_path / "other", per_class=2, size=32, seed=1)
    result = run_subprocess("fit", data, "--out", tmp_path / "run", "--strategy", "linear-probe", "--image-size",
                            "32", "--no-baseline", timeout=600)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    # the metrics title ends the plan: a held-out test split, or (small data) a cross-validated estimate
    plan = out[out.index("plan"):re.search(r"(test split|cross-validation) \(", out).start()]
    for line in ("task: image-classification", "backbone: efficientnet_lite0", "strategy: linear-probe",
                 "epochs: none", "input size: 32 px", "split", "from-scratch control: no"):
        assert line in plan, line
    timings = json.loads((tmp_path / "run" / "config.json").read_text())["run"]["timings"]
    stages = sum(v for k, v in timings.items() if not k.startswith("total") and k != "from-scratch control")
    assert stages == pytest.approx(timings["total fit"], abs=0.05)
    image = next((other / "red").iterdir())
    code = (f"import sys\nsys.argv = ['transferkit', 'predict', {str(tmp_path / 'run')!r}, {str(image)!r}]\n"
            "from transferkit.cli import main\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('loaded:', *(m for m in ('lightning', 'transformers', 'matplotlib') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.stdout.strip().splitlines()[-1] == "loaded:", result.stdout + result.stderr  # predict stays light
    result = run_subprocess("evaluate", tmp_path / "run", other)
    assert result.returncode == 0, result.stderr
    assert f"accuracy on {other} " in result.stdout and "test accuracy" not in result.stdout
