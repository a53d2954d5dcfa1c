"""The learning-rate range test from Python (`estimator.lr_find`) and the command line (`transferkit lr-find`)."""
from __future__ import annotations

import math
import re

import pytest
from PIL import Image

from transferkit.tasks import TASKS

from tests.helpers import assert_one_usage_line, run_main, run_subprocess


@pytest.fixture(scope="module")
def colours(tmp_path_factory):
    from transferkit.testing import make_image_folder

    return make_image_folder(tmp_path_factory.mktemp("lr-find") / "colours", per_class=12)


def test_lr_find_suggests_a_finite_lr_inside_the_range_and_keeps_no_model(colours):
    # strategy auto: the range test sweeps the fine-tuning it would run
    est = TASKS.get("image-classification")(image_size=32, batch_size=8, progress=False)
    result = est.lr_find(colours, min_lr=1e-6, max_lr=1.0, steps=25)
    assert result.strategy == "fine-tune" and result.default_lr == pytest.approx(3e-4)
    assert result.suggestion is not None and math.isfinite(result.suggestion)
    assert 1e-6 <= result.suggestion <= 1.0
    assert 2 <= result.steps_run <= 25 and len(result.losses) == result.steps_run
    finite = [v for v in result.losses if math.isfinite(v)]
    assert max(finite) - min(finite) > 0.05  # the loss responds to the learning rate
    assert result.lrs == sorted(result.lrs) and result.lrs[0] == pytest.approx(1e-6)
    assert result.to_dict()["steps_run"] == result.steps_run
    assert not hasattr(est, "model_")  # a range test fits nothing


@pytest.mark.parametrize("args, flag", [(["--min-lr", "1e-2", "--max-lr", "1e-3"], "--max-lr"),
                                        (["--min-lr", "1e-3", "--max-lr", "1e-3"], "--max-lr"),
                                        (["--min-lr", "0"], "--min-lr"), (["--steps", "2"], "--steps")])
def test_a_range_that_cannot_be_swept_is_one_line_exit_2(monkeypatch, capsys, colours, args, flag):
    code, _, err = run_main(monkeypatch, capsys, "lr-find", colours, *args)
    assert_one_usage_line(code, err, flag)


@pytest.mark.parametrize("task", [[], ["--task", "image-classification"]])
def test_a_missing_data_path_is_one_line_exit_2(monkeypatch, capsys, tmp_path, task):
    code, _, err = run_main(monkeypatch, capsys, "lr-find", tmp_path / "no-such-folder", *task)
    assert_one_usage_line(code, err, "no-such-folder")


def test_a_strategy_without_a_learning_rate_schedule_is_refused_in_one_line(monkeypatch, capsys, colours):
    code, _, err = run_main(monkeypatch, capsys, "lr-find", colours, "--strategy", "linear-probe", "--image-size", "32")
    assert_one_usage_line(code, err, "--strategy fine-tune")


# after the in-process commands above, which cache the generated options this process reads
def test_the_command_prints_the_suggestion_and_how_to_use_it_and_writes_the_plot(colours, tmp_path):
    plot = tmp_path / "plots" / "lr.png"
    run = run_subprocess("lr-find", colours, "--image-size", "32", "--batch-size", "8", "--steps", "20", "--quiet",
                         "--out", plot, timeout=300)
    assert run.returncode == 0, run.stderr
    out = " ".join(run.stdout.split())  # rich wraps long lines
    suggested = re.search(r"suggested learning rate: (\S+)", out)
    assert suggested, out
    lr = float(suggested.group(1))
    assert 1e-7 <= lr <= 1.0
    assert "current learning rate: 0.0003" in out
    hint = re.search(r"use it: (transferkit fit .*--out RUN)", out)
    assert hint, out
    assert hint.group(1).startswith(f"transferkit fit {colours} ") and hint.group(1).endswith(
        f" --lr {suggested.group(1)} --out RUN")
    assert "--image-size 32" in hint.group(1) and "--batch-size 8" in hint.group(1)  # the same options as this test
    with Image.open(plot) as image:
        assert image.format == "PNG" and image.size[0] > 300 and image.size[1] > 200
        assert len(image.convert("L").getcolors(maxcolors=100_000) or []) > 20  # drawn, not blank


