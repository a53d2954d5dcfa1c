"""Rebuild the demo sample shipped in the package: 40 images per class of flowers5, shrunk to 96 px.

Run once by a maintainer: python benchmarks/tools/make_demo_data.py ../shared/datasets/flowers5
"""
import random
import sys
from pathlib import Path

from PIL import Image

PER_CLASS, SIDE, SEED = 40, 96, 0


def main(source: Path, target: Path) -> None:
    rng = random.Random(SEED)
    for class_dir in sorted(p for p in source.iterdir() if p.is_dir()):
        files = sorted(class_dir.glob("*.jpg"))
        out = target / class_dir.name
        out.mkdir(parents=True, exist_ok=True)
        for i, path in enumerate(rng.sample(files, PER_CLASS)):
            image = Image.open(path).convert("RGB")
            image.thumbnail((SIDE, SIDE), Image.BICUBIC)
            image.save(out / f"{class_dir.name}_{i:02d}.jpg", quality=85)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(__file__).resolve().parents[2] / "src/transferkit/data/demo/flowers")
