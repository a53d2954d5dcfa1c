"""Every `--json` command writes one style: `json.dumps(indent=2, ensure_ascii=False)` as plain text on
stdout, which `json.loads` reads whole, in a terminal as through a pipe."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from transferkit.testing import make_image_folder
from tests.helpers import run_cli


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Coloured squares and two runs fitted on them: linear probes on the MNIST CNN (tiny) at 32 px."""
    from transferkit import ImageClassifier
    from transferkit.backbones import offline_backbones

    if "mnist_cnn" not in offline_backbones():
        pytest.skip("mnist_cnn weights not installed")
    root = tmp_path_factory.mktemp("json")
    data = make_image_folder(root / "colours", per_class=8, size=32)
    est = ImageClassifier(backbone="mnist_cnn", strategy="linear-probe", image_size=32, baseline=False,
                          progress=False, memory=0, tta=False)
    est.fit(data)
    return {"data": data, "a": est.save(root / "runs" / "a"), "b": est.save(root / "runs" / "b"), "root": root}


def _commands(r: dict[str, Path]) -> dict[str, list]:
    return {
        "list backbones": ["list", "backbones"],
        "list strategies": ["list", "strategies"],
        "list tasks": ["list", "tasks"],
        "list scores": ["list", "scores"],
        "cache": ["cache", "info"],
        "runs": ["runs", r["root"] / "runs"],
        "runs (none)": ["runs", r["root"] / "colours"],
        "compare": ["compare", r["a"], r["b"]],
        "evaluate": ["evaluate", r["a"], r["data"]],
        "predict": ["predict", r["a"], r["data"], "--top-k", "2"],
        "rank": ["rank", r["data"], "--candidates", "mnist_cnn", "--metric", "knn", "--sample", "12", "--quiet"],
        "lr-find": ["lr-find", r["data"], "--backbone", "mnist_cnn", "--image-size", "32", "--batch-size", "8",
                    "--steps", "10", "--out", r["root"] / "lr.png"],
    }


@pytest.mark.parametrize("name", list(_commands({k: Path(k) for k in ("data", "a", "b", "root")})))
def test_each_json_command_prints_one_json_document(name, runs, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("TRANSFERKIT_CACHE", str(tmp_path / "features"))
    code, out, err = run_cli(monkeypatch, capsys, *_commands(runs)[name], "--json")
    assert code == 0, err
    parsed = json.loads(out)
    assert parsed is not None
    assert out == json.dumps(parsed, indent=2, ensure_ascii=False) + "\n"  # the one style, whole


def test_json_is_never_highlighted_even_in_a_terminal(runs, monkeypatch, capsys):
    """`evaluate --json` went through rich's print_json: in a terminal, colour codes in the JSON."""
    from rich.console import Console

    from transferkit.cli import use

    monkeypatch.setattr(use, "console", Console(force_terminal=True, color_system="truecolor"))
    code, out, err = run_cli(monkeypatch, capsys, "evaluate", runs["a"], runs["data"], "--json")
    assert code == 0, err
    assert "\x1b" not in out and json.loads(out)["n"]


def test_a_json_list_keeps_non_ascii_text_as_is():
    result = subprocess.run([sys.executable, "-m", "transferkit.cli", "list", "tasks", "--json"], capture_output=True,
                            text=True, timeout=120, env={**os.environ, "FORCE_COLOR": "1"})
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout and "\\u" not in result.stdout
    assert {row["name"] for row in json.loads(result.stdout)} >= {"image-classification", "forecast"}


@pytest.mark.parametrize("action, setting", [("info", "off"), ("clear", "off"), ("clear", "features")])
def test_cache_answers_in_json_when_off_and_when_clearing(action, setting, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("TRANSFERKIT_CACHE", setting if setting == "off" else str(tmp_path / setting))
    code, out, err = run_cli(monkeypatch, capsys, "cache", action, "--json")
    assert code == 0, err
    assert out == json.dumps(json.loads(out), indent=2, ensure_ascii=False) + "\n"
