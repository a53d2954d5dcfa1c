"""Small fitted runs to export: an image run with given train/val/test folders (so the test split is
held out), a text run on the offline MiniLM encoder, a forecast run on an hourly series."""
from __future__ import annotations

from pathlib import Path

import pytest

from transferkit.testing import make_image_folder, tiny_series, tiny_texts
from transferkit.backbones import offline_backbones


def _require(backbone: str) -> None:
    if backbone not in offline_backbones():
        pytest.skip(f"{backbone}: weights not installed offline")


@pytest.fixture(scope="session")
def image_run(tmp_path_factory) -> Path:
    """A linear probe on EfficientNet-Lite0 at 64 px over coloured squares, with a held-out test folder."""
    from transferkit import ImageClassifier

    _require("efficientnet_lite0")
    root = tmp_path_factory.mktemp("images") / "colours"
    for split, count, seed in (("train", 10, 0), ("val", 3, 1), ("test", 4, 2)):
        make_image_folder(root / split, per_class=count, size=48, seed=seed)
    est = ImageClassifier(strategy="linear-probe", image_size=64, baseline=False, progress=False, memory=0)
    est.fit(root)
    est.evaluate()
    return est.save(tmp_path_factory.mktemp("runs") / "image")


@pytest.fixture(scope="session")
def text_run(tmp_path_factory) -> Path:
    """One epoch of fine-tuning all-MiniLM-L6-v2 on two sentiment classes (texts cut at 32 tokens)."""
    from transferkit import TextClassifier

    _require("all-minilm-l6-v2")
    data = tiny_texts(tmp_path_factory.mktemp("texts") / "reviews")
    est = TextClassifier(epochs=1, max_length=32, baseline=False, progress=False, memory=0)
    est.fit(data.fit_on)
    est.evaluate()
    return est.save(tmp_path_factory.mktemp("runs") / "text")


@pytest.fixture(scope="session")
def forecast_run(tmp_path_factory) -> tuple[Path, Path]:
    """(run, its series CSV): PatchTST-small trained one epoch on an hourly two-channel series."""
    from transferkit import Forecaster

    data = tiny_series(tmp_path_factory.mktemp("series") / "hourly")
    est = Forecaster(horizon=12, lookback=48, epochs=1, baseline=False, progress=False)
    est.fit(data.fit_on)
    est.evaluate()
    return est.save(tmp_path_factory.mktemp("runs") / "forecast"), data.fit_on
