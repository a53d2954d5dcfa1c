"""Runs the server tests share: one tiny real run per task, fitted once per session (seconds each)."""
from __future__ import annotations

import contextlib
import io
import time
from pathlib import Path
from typing import Iterator

import pytest
from PIL import Image

from ..conftest import COLOURS, make_image_folder
from ..tasks.test_forecaster import series_csv
from ..tasks.test_text_classifier import sentiment_table

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


def image_bytes(colour: str = "red", size: int = 48, fmt: str = "JPEG") -> bytes:
    """An image of one of the colour classes, encoded."""
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), COLOURS[colour]).save(buffer, fmt)
    return buffer.getvalue()


def wait_ready(client, seconds: float = 120) -> None:
    """Poll GET /ready until the model is loaded and warm (the app loads it in the background)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        response = client.get("/ready")
        if response.status_code == 200:
            return
        assert response.status_code == 503 and response.json()["status"] == "loading", response.text
        time.sleep(0.05)
    raise AssertionError(f"the model was not ready within {seconds} s")


@contextlib.contextmanager
def ready_client(app) -> Iterator:
    """A TestClient of `app` (its lifespan started) once the model is ready."""
    from fastapi.testclient import TestClient

    with TestClient(app) as client:
        wait_ready(client)
        yield client
