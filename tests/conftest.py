"""Shared fixtures: small synthetic image folders and the shared real data sets (skipped when absent)."""
from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a hub, online or not
# every CLI fit would also export and check its ONNX twin (seconds each): tests that need one ask with --onnx-twin
os.environ.setdefault("TRANSFERKIT_ONNX_TWIN", "0")
# the CLI caches its generated `fit` options under XDG_CACHE_HOME: tests keep theirs out of ~/.cache
if "XDG_CACHE_HOME" not in os.environ:
    import tempfile

    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="transferkit-test-cache-")
REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TRANSFERKIT_SHARED", REPO.parent / "shared")) / "datasets"
COLOURS = {"red": (200, 40, 40), "green": (40, 170, 60), "blue": (40, 60, 200)}


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")


def make_image_folder(root: Path, per_class: int = 12, classes=("red", "green", "blue"), size: int = 40,
                      seed: int = 0) -> Path:
    """Class = dominant colour, with noise and a random grey square: easy, but not trivially constant."""
    rng = np.random.default_rng(seed)
    for name in classes:
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            base = np.array(COLOURS[name], dtype=np.float32)
            pixels = base + rng.normal(0, 25, (size, size, 3))
            x, y = rng.integers(0, size // 2, 2)
            pixels[y:y + size // 3, x:x + size // 3] = rng.integers(60, 200)
            Image.fromarray(pixels.clip(0, 255).astype("uint8")).save(folder / f"{name}_{i:02d}.jpg")
    return root


@pytest.fixture
def colour_folder(tmp_path: Path) -> Path:
    return make_image_folder(tmp_path / "colours")


@pytest.fixture(scope="session")
def colour_folder_session(tmp_path_factory) -> Path:
    return make_image_folder(tmp_path_factory.mktemp("data") / "colours", per_class=15)


def shared_dataset(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data set {path} is absent (only on the project's machines)")
    return path


@pytest.fixture
def flowers5() -> Path:
    return shared_dataset("flowers5")
