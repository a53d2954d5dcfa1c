"""The runtime's image decoding gives the pixels of the estimator's eval pipeline (Pillow + torchvision), exactly."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from transferkit.runtime.images import image_batch


def _eval_pixels(path, size: int, interpolation: str) -> np.ndarray:
    """The estimator's pixels before normalisation: `open_rgb` + timm's eval transform without Normalize."""
    from transferkit.data.images import open_rgb
    from transferkit.data.transforms import Preprocessing, eval_transform

    transform = eval_transform(Preprocessing(interpolation=interpolation), size)
    return np.stack([_compose(transform.transforms[:-1])(open_rgb(p, max_side=size)).numpy() for p in path])


def _compose(steps):
    def run(image):
        for step in steps:
            image = step(image)
        return image
    return run


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """A large landscape JPEG (drafted and pre-shrunk), a portrait PNG with transparency, a small
    grayscale GIF and an odd-sized RGB JPEG."""
    rng = np.random.default_rng(0)
    folder = tmp_path_factory.mktemp("images")
    smooth = lambda h, w: (np.add.outer(np.linspace(0, 200, h), np.linspace(0, 55, w))[..., None]  # noqa: E731
                           + rng.normal(0, 20, (h, w, 3))).clip(0, 255).astype("uint8")
    paths = [folder / "large.jpg", folder / "alpha.png", folder / "gray.gif", folder / "odd.jpg"]
    Image.fromarray(smooth(700, 1000)).save(paths[0], quality=90)
    rgba = np.concatenate([smooth(90, 61), rng.integers(0, 255, (90, 61, 1), dtype=np.uint8)], axis=2)
    Image.fromarray(rgba, "RGBA").save(paths[1])
    Image.fromarray(smooth(50, 70)[..., 0]).convert("L").save(paths[2])
    Image.fromarray(smooth(77, 129)).save(paths[3])
    return paths


@pytest.mark.parametrize("size,interpolation", [(64, "bicubic"), (96, "bilinear"), (224, "bicubic")])
def test_runtime_pixels_equal_the_estimators(images, size, interpolation):
    ours = image_batch(images, size, interpolation)
    assert ours.shape == (len(images), 3, size, size) and ours.dtype == np.float32
    assert np.array_equal(ours, _eval_pixels(images, size, interpolation))


def test_pil_images_decode_as_files_do(images):
    with Image.open(images[1]) as opened:
        opened.load()
        assert np.array_equal(image_batch([opened], 64), image_batch([images[1]], 64))
