"""The `transferkit` command line: fit, adapt, extend, evaluate, predict, serve, export, rank, lr-find,
runs, compare, cache, list, demo.

This module holds the app, the consoles, the one-line usage errors and `main`; the commands live in
modules by purpose (`train`, `use`, `choose`, `browse`), imported below to register on `app`."""
from __future__ import annotations

import difflib
import logging
import os
import sys

import typer
from rich.console import Console
from rich.text import Text

from ..errors import TransferkitError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Transfer learning from pretrained models, with every decision explained.")
console = Console()
err_console = Console(stderr=True)


def _configure_logging() -> None:
    """transferkit's own log warnings as `warning: ...` lines (Lightning is quieted where training runs)."""
    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")


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


# The command modules register on `app` when imported, in the order `--help` lists them.
from . import train  # noqa: E402,F401
from . import use  # noqa: E402,F401
from . import choose  # noqa: E402,F401
from . import browse  # noqa: E402,F401
