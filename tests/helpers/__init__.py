"""What several test modules share: where the shared data sets are, how the CLI is run in-process and
as a process, and the small synthetic tables and series. Test modules import helpers from here (or
from `transferkit.testing`, for the data makers the contract checks use), never from each other.

Heavier helpers live beside this module: `tests.helpers.serving` (the server runner), and
`tests.helpers.training` and `tests.helpers.features` (torch modules and data sets).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from transferkit.cli import main

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("TRANSFERKIT_SHARED", REPO.parent / "shared")) / "datasets"


def shared_dataset(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data set {path} is absent (only on the project's machines)")
    return path


# ------------------------------------------------------------------------------------ the CLI
def run_cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["transferkit", *map(str, args)])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code or 0
    out, err = capsys.readouterr()
    return code, out, err


def run_main(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["transferkit", *map(str, args)])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out, err = capsys.readouterr()
    return code, out, err


def run_subprocess(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "60"}  # a narrow terminal must not wrap the one error line
    return subprocess.run([sys.executable, "-m", "transferkit.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=env)


def cli_process(*args: object, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python -m transferkit.cli ARGS` on one thread, 100 columns wide."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "100"}
    return subprocess.run([sys.executable, "-m", "transferkit.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env)


def assert_one_usage_line(code: int, err: str, mentions: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert mentions in lines[0], err


# ------------------------------------------------------------------------------------ texts
GOOD = ["wonderful", "excellent", "delightful", "great", "superb", "lovely", "fantastic", "brilliant"]
BAD = ["awful", "terrible", "dreadful", "horrible", "boring", "disappointing", "poor", "bad"]
NOUNS = ["film", "meal", "service", "hotel", "book", "show"]
FOOD, GADGETS = ["meal", "soup", "pizza", "dessert"], ["phone", "charger", "cable", "headset"]
#: the quick settings of the multi-task tests
MULTITASK_FAST = dict(batch_size=8, progress=False, val_fraction=0.2, test_fraction=0.25, baseline=False)


def sentiment_table(path, per_class=24):
    rows = []
    for i in range(per_class):
        noun = NOUNS[i % len(NOUNS)]
        rows.append((f"the {noun} was {GOOD[i % len(GOOD)]}", "positive"))
        rows.append((f"the {noun} was {BAD[i % len(BAD)]}", "negative"))
    path.write_text("review\tsentiment\n" + "".join(f"{t}\t{y}\n" for t, y in rows))
    return path


def two_label_table(path, rows=48):
    """Reviews with a sentiment (the adjective) and a domain (the noun): two independent labels."""
    lines = ["review,sentiment,domain"]
    for i in range(rows):
        food, positive = i % 2 == 1, (i // 2) % 2 == 0
        noun = (FOOD if food else GADGETS)[(i // 4) % 4]
        word = (GOOD if positive else BAD)[i % 8]
        lines.append(f"the {noun} was {word},{'positive' if positive else 'negative'},{'food' if food else 'gadgets'}")
    path.write_text("\n".join(lines) + "\n")
    return path


# ------------------------------------------------------------------------------------ series
def series_csv(path, rows=900, seed=0, phase=0.0, level=10.0):
    """Hourly daily-seasonal series with a slow drift and noise; two channels."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    t = np.arange(rows)
    daily = np.sin(2 * np.pi * t / 24 + phase)
    drift = np.cumsum(rng.normal(0, 0.05, rows))
    frame = pd.DataFrame({
        "date": pd.date_range("2020-01-01", periods=rows, freq="h").strftime("%Y-%m-%d %H:%M:%S"),
        "load": level + 2 * daily + drift + rng.normal(0, 0.2, rows),
        "temp": 20 + 5 * np.roll(daily, 3) + rng.normal(0, 0.3, rows),
    })
    frame.to_csv(path, index=False)
    return path
