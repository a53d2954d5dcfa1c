"""Reading image files safely: every failure becomes a DataError that names the file and the fix."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import BinaryIO

from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import DataError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})


# files and folders that operating systems and archivers leave next to the data: never classes or images
JUNK_NAMES = frozenset({"thumbs.db", "ehthumbs.db", "desktop.ini", "__macosx", "$recycle.bin"})


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def is_junk(path: Path) -> bool:
    """Hidden or system litter: names starting with '.' (.DS_Store, ._x.jpg AppleDouble files,
    .git) or '__' (__MACOSX), and Windows' Thumbs.db / desktop.ini."""
    name = path.name
    return name.startswith((".", "__")) or name.lower() in JUNK_NAMES


def open_rgb(path: str | Path | BinaryIO, max_side: int | None = None) -> Image.Image:
    """The image at `path` (or in an open binary file, e.g. an upload; its `name` names it in
    errors) decoded as RGB, upright, optionally shrunk so its shorter side is near `max_side`.

    The EXIF orientation is applied: phones store photos as the sensor saw them and tag how to
    turn them. Any mode (CMYK, L, P, RGBA, I;16) is converted; transparency is composited on white
    so transparent pixels do not turn black. Shrinking early keeps decoding of large photos cheap.
    """
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
        raise DataError(
            f"{path}: not a readable image; convert it to JPEG/PNG or remove it."
        ) from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise DataError(f"{path}: corrupt or truncated image ({exc}); re-export or remove it.") from None
    return to_rgb(image, max_side)


def to_rgb(image: Image.Image, max_side: int | None = None) -> Image.Image:
    """A decoded image as `open_rgb` returns it: upright (EXIF orientation applied), RGB, shrunk so
    its shorter side is near `max_side` when it is over twice that."""
    try:
        ImageOps.exif_transpose(image, in_place=True)
    except Exception:  # a malformed EXIF block must not lose a decodable image: keep it as stored
        pass
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    elif image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit grayscale: scale to 8 bits instead of clipping everything to white
        import numpy as np

        array = np.asarray(image, dtype="float32")
        high = float(array.max()) or 1.0
        image = Image.fromarray((array / high * 255).astype("uint8"), mode="L")
    image = image.convert("RGB")
    if max_side and min(image.size) > 2 * max_side:
        scale = max_side * 1.5 / min(image.size)
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.BICUBIC)
    return image
