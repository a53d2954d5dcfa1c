"""Runs the server tests share: one tiny real run per task, fitted once per session (seconds each)."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import sentiment_table, series_csv
from transferkit.testing import make_image_folder

FAST_IMAGE = dict(strategy="linear-probe", image_size=32, batch_size=8, baseline=False, progress=False)


@pytest.fixture(scope="session")
def image_data(tmp_path_factory) -> Path:
    return make_image_folder(tmp_path_factory.mktemp("serve-images") / "colours", per_class=8)


@pytest.fixture(scope="session")
def image_run(image_data, tmp_path_factory) -> Path:
    """A colour classifier (red/green/blue): linear probe on 32-px images, saved with its report."""
    from transferkit import ImageClassifier
    from transferkit.reporting import write_run_report

    run = tmp_path_factory.mktemp("serve-runs") / "colours-run"
    est = ImageClassifier(**FAST_IMAGE).fit(image_data)
    est.evaluate()
    est.save(run)
    write_run_report(run)
    return run


@pytest.fixture(scope="session")
def text_run(tmp_path_factory) -> Path:
    from transferkit import TextClassifier

    root = tmp_path_factory.mktemp("serve-text")
    est = TextClassifier(strategy="linear-probe", batch_size=8, val_fraction=0.2, test_fraction=0.25, baseline=False,
                         progress=False).fit(sentiment_table(root / "reviews.tsv", per_class=8))
    est.evaluate()
    return est.save(root / "reviews-run")


@pytest.fixture(scope="session")
def history_csv(tmp_path_factory) -> Path:
    """Hourly history with columns date, load, temp (the forecast run reads load)."""
    return series_csv(tmp_path_factory.mktemp("serve-series") / "load.csv", rows=400)


@pytest.fixture(scope="session")
def forecast_run(history_csv, tmp_path_factory) -> Path:
    from transferkit import Forecaster

    est = Forecaster(lookback=48, horizon=12, epochs=1, target="load", baseline=False, progress=False).fit(history_csv)
    est.evaluate()
    return est.save(tmp_path_factory.mktemp("serve-forecast") / "load-run")


