"""The command line is a package of small modules, reached the three ways it always was: the
`transferkit` script, `python -m transferkit` and `python -m transferkit.cli` (as torchrun starts it)."""
from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CLI = REPO / "src" / "transferkit" / "cli"
COMMANDS = ["fit", "adapt", "extend", "evaluate", "predict", "serve", "export", "rank", "lr-find", "runs", "compare",
            "cache", "list", "demo"]


@pytest.mark.parametrize("module", ["transferkit", "transferkit.cli"])
def test_python_m_runs_the_command_line(module):
    result = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "COLUMNS": "120"})
    assert result.returncode == 0, result.stderr
    listed = [line.split()[1] for line in result.stdout.splitlines()
              if line.startswith("│ ") and len(line.split()) > 1 and line.split()[1] in COMMANDS]
    assert listed == COMMANDS  # every command, in the order they always had


def test_the_console_script_names_main():
    from importlib import import_module

    from transferkit.cli import main

    target = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]["transferkit"]
    module, _, name = target.partition(":")
    assert getattr(import_module(module), name) is main


def test_no_module_of_the_command_line_grows_past_450_lines():
    sizes = {path.name: len(path.read_text().splitlines()) for path in CLI.glob("*.py")}
    assert sizes and max(sizes.values()) <= 450, sizes
