"""Reading image files safely: every failure becomes a DataError that names the file and the fix.

The decoder is the ONNX runtime's (`runtime.images`, which imports no torch), so training,
`predict` and exported models read the same file as the same pixels."""
from __future__ import annotations

from pathlib import Path

from ..runtime.images import IMAGE_EXTENSIONS, open_rgb, to_rgb  # noqa: F401  (re-exported)


# files and folders that operating systems and archivers leave next to the data: never classes or images
JUNK_NAMES = frozenset({"thumbs.db", "ehthumbs.db", "desktop.ini", "__macosx", "$recycle.bin"})


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def is_junk(path: Path) -> bool:
    """Hidden or system litter: names starting with '.' (.DS_Store, ._x.jpg AppleDouble files,
    .git) or '__' (__MACOSX), and Windows' Thumbs.db / desktop.ini."""
    name = path.name
    return name.startswith((".", "__")) or name.lower() in JUNK_NAMES
