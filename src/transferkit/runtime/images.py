"""Images as an exported model reads them: decoded with Pillow, resized and centre-cropped with numpy.

The steps repeat the estimator's evaluation pipeline exactly (`data.images.open_rgb` with the
run's input size as `max_side`, then timm's eval transform with `crop_pct=1.0`: torchvision's
`Resize(size)` of the shorter side with the run's interpolation, `CenterCrop(size)` and
`ToTensor`), so that the same file gives the same pixels on a device without torch; the
normalisation is inside the exported graph. tests/runtime/test_images.py holds the two pipelines
to the same pixels.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Sequence

import numpy as np

from ..errors import DataError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
#: Pillow's resampling filter for each interpolation name timm records (torchvision maps them the same way)
_FILTERS = {"nearest": 0, "bilinear": 2, "bicubic": 3, "lanczos": 1, "box": 4, "hamming": 5}


def expand_image_paths(items: Iterable[str | Path]) -> list[Path]:
    """Files as given, folders expanded to the image files inside (sorted, hidden files skipped);
    a missing path raises one line."""
    out: list[Path] = []
    for item in items:
        path = Path(item).expanduser()
        if path.is_dir():
            found = sorted(f for f in path.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS
                           and not any(part.startswith((".", "__")) for part in f.relative_to(path).parts))
            if not found:
                raise DataError(f"{path}: folder has no image files (extensions {', '.join(sorted(IMAGE_EXTENSIONS))}).")
            out.extend(found)
        elif path.exists():
            out.append(path)
        else:
            raise DataError(f"{path}: no such file or folder; check the path.")
    return out


def open_rgb(path: str | Path | BinaryIO, max_side: int | None = None):
    """The image at `path` (or in an open binary file, e.g. an upload; its `name` names it in
    errors) decoded as RGB, upright, optionally shrunk so its shorter side is near `max_side`
    (`to_rgb`); JPEGs are drafted near `max_side`, which keeps decoding of large photos cheap. A
    file that is no readable image raises one line naming it. Training, `predict` and exported
    models all decode images here, so the same file gives the same pixels everywhere."""
    from PIL import Image, UnidentifiedImageError

    source = path if hasattr(path, "read") else Path(path)
    path = Path(getattr(path, "name", None) or "upload") if hasattr(path, "read") else source
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(source)
            if max_side and image.format == "JPEG":
                image.draft("RGB", (max_side, max_side))
            image.load()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found; check the path.") from None
    except PermissionError:
        raise DataError(f"{path}: permission denied; make the file readable (chmod +r).") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, expected an image file.") from None
    except UnidentifiedImageError:
        raise DataError(f"{path}: not a readable image; convert it to JPEG/PNG or remove it.") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise DataError(f"{path}: corrupt or truncated image ({exc}); re-export or remove it.") from None
    return to_rgb(image, max_side)


def to_rgb(image, max_side: int | None = None):
    """A decoded image upright (EXIF orientation), as RGB (transparency on white, 16-bit scaled
    to 8), shrunk with bicubic filtering when its shorter side exceeds twice `max_side`.

    Phones store photos as the sensor saw them and tag how to turn them; any mode (CMYK, L, P,
    RGBA, I;16) is converted, and transparent pixels are composited on white, not turned black."""
    from PIL import Image, ImageOps

    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # a malformed EXIF block must not lose a decodable image: keep it as stored
        pass
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    elif image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype="float32")
        image = Image.fromarray((array / (float(array.max()) or 1.0) * 255).astype("uint8"), mode="L")
    image = image.convert("RGB")
    if max_side and min(image.size) > 2 * max_side:
        scale = max_side * 1.5 / min(image.size)
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.BICUBIC)
    return image


def image_pixels(image, size: int, interpolation: str = "bicubic") -> np.ndarray:
    """An RGB image as the graph's input: the shorter side resized to `size`, the centre
    `size`×`size` cropped, float32 in [0, 1], channels first (3, size, size)."""
    width, height = image.size
    short, long = (width, height) if width <= height else (height, width)
    if short != size:  # torchvision: the long side is int(size * long / short)
        new_long = int(size * long / short)
        new = (size, new_long) if width <= height else (new_long, size)
        image = image.resize(new, _FILTERS.get(interpolation, 3))
    width, height = image.size
    top, left = int(round((height - size) / 2.0)), int(round((width - size) / 2.0))
    array = np.asarray(image, dtype=np.uint8)  # both sides are at least `size` after the resize
    crop = array[top:top + size, left:left + size]
    return (crop.astype(np.float32) / 255.0).transpose(2, 0, 1).copy()


def image_batch(items: Sequence[Any], size: int, interpolation: str = "bicubic") -> np.ndarray:
    """Paths or PIL images as one float32 batch (N, 3, size, size) in [0, 1]."""
    from PIL import Image

    arrays = []
    for item in items:
        image = to_rgb(item, max_side=size) if isinstance(item, Image.Image) else open_rgb(item, max_side=size)
        arrays.append(image_pixels(image, size, interpolation))
    return np.stack(arrays) if arrays else np.zeros((0, 3, size, size), np.float32)
