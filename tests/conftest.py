"""Shared fixtures: small synthetic image folders and the shared real data sets (skipped when absent)."""
from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a hub, online or not
# every CLI fit would also export and check its ONNX twin (seconds each): tests that need one ask with --onnx-twin
os.environ.setdefault("TRANSFERKIT_ONNX_TWIN", "0")
# the CLI caches its generated `fit` options under XDG_CACHE_HOME: tests keep theirs out of ~/.cache
if "XDG_CACHE_HOME" not in os.environ:
    import tempfile

    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="transferkit-test-cache-")

from tests.helpers import shared_dataset  # noqa: E402  (after the environment above)
from transferkit.testing import make_image_folder  # noqa: E402


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")


@pytest.fixture
def colour_folder(tmp_path: Path) -> Path:
    return make_image_folder(tmp_path / "colours")


@pytest.fixture(scope="session")
def colour_folder_session(tmp_path_factory) -> Path:
    return make_image_folder(tmp_path_factory.mktemp("data") / "colours", per_class=15)


@pytest.fixture
def flowers5() -> Path:
    return shared_dataset("flowers5")
