"""Do transferability scores pick the backbone that fine-tunes best? (issue 5 validation)

For each target task built from the shared data, every candidate is scored without training
(`rank_backbones`, all registered scores) and then fine-tuned with one fixed recipe; per task and
score we report the weighted Kendall τ between score and fine-tuned test accuracy (scipy's
weightedtau, as in You et al. 2021) and whether the top-scored candidate is the best (top-1 hit).

Image tasks: flowers5 (5 classes, 60 training photos per class), flowers5 roses vs tulips (40 per
class), scikit-learn's 8×8 digits upscaled to 32 px (10 classes, 30 per class). Candidates: every
installed image backbone (EfficientNet-Lite0/1/2, MobileNetV2 at 64 and 128 px input; the MNIST
CNN at its 28 px). Text tasks: SST-2 (1,000 training phrases, dev as test) and Yelp review
sentences (UCI); candidates: all-MiniLM-L6-v2 cut after layers 2 and 4, and whole.
Fine-tuning: `fine-tune` strategy, 4 epochs (images) / 3 epochs (text), no from-scratch control.

    python benchmarks/selection.py [--quick] [--tasks flowers5,roses-tulips,digits,sst2,yelp]
"""
from __future__ import annotations

import argparse
import json
import logging
import random
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from transferkit import ImageClassifier, TextClassifier
from transferkit.selection import SCORES, top1_hit, weighted_kendall_tau
from transferkit.selection.rank_backbones import rank_backbones

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "datasets"
IMAGE_CANDIDATES = [(name, size) for name in ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2",
                                              "mobilenetv2_100") for size in (64, 128)] + [("mnist_cnn", 28)]
TEXT_CANDIDATES = ["all-minilm-l6-v2@layer2", "all-minilm-l6-v2@layer4", "all-minilm-l6-v2"]


def image_task(name: str, root: Path, per_class: int, test_per_class: int, classes=None) -> Path:
    """train/ and test/ folders of symlinks: `per_class` training and `test_per_class` test images."""
    rng = random.Random(0)
    for label in sorted(classes or [p.name for p in SOURCE_IMAGES.iterdir() if p.is_dir()]):
        files = sorted((SOURCE_IMAGES / label).glob("*.jpg"))
        rng.shuffle(files)
        for split, chosen in (("train", files[:per_class]), ("test", files[per_class:per_class + test_per_class])):
            folder = root / name / split / label
            folder.mkdir(parents=True, exist_ok=True)
            for f in chosen:
                (folder / f.name).symlink_to(f)
    return root / name


def digits_task(root: Path, per_class: int) -> Path:
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(0)
    for label in range(10):
        idx = rng.permutation(np.flatnonzero(digits.target == label))
        for split, chosen in (("train", idx[:per_class]), ("test", idx[per_class:per_class + 60])):
            folder = root / "digits" / split / str(label)
            folder.mkdir(parents=True, exist_ok=True)
            for i in chosen:
                pixels = (digits.images[i] / 16 * 255).astype("uint8")
                Image.fromarray(pixels).resize((32, 32), Image.NEAREST).save(folder / f"{i}.png")
    return root / "digits"


def text_task(root: Path, name: str, source: Path, size: int, dev: Path | None) -> Path:
    lines = source.read_text(encoding="utf-8").splitlines()
    header, rows = (lines[0], lines[1:]) if dev else ("sentence\tlabel", lines)
    random.Random(0).shuffle(rows)
    folder = root / name
    folder.mkdir(parents=True)
    if dev:  # SST-2: `size` training phrases, the dev set as test
        (folder / "train.tsv").write_text("\n".join([header, *rows[:size]]) + "\n", encoding="utf-8")
        (folder / "dev.tsv").write_text(dev.read_text(encoding="utf-8"), encoding="utf-8")
    else:  # a single file: keep the 0/1 sentiment rows (the copy also holds a few stray rows labelled 2)
        rows = [r for r in rows if r.rsplit("\t", 1)[-1].strip() in ("0", "1")]
        (folder / "train.tsv").write_text("\n".join([header, *rows[:size]]) + "\n", encoding="utf-8")
        (folder / "test.tsv").write_text("\n".join([header, *rows[size:]]) + "\n", encoding="utf-8")
    return folder


def evaluate_task(task: str, data: Path, candidates, modality: str, epochs: int, sample: int) -> dict:
    metrics = SCORES.names()
    cls = ImageClassifier if modality == "image" else TextClassifier
    rows = []
    for candidate in candidates:
        name, size = candidate if isinstance(candidate, tuple) else (candidate, None)
        t0 = time.perf_counter()
        # the data are read inside the timing, as the `rank` command reads them
        ranking = rank_backbones(cls.ranking_source_of(data), [name], metrics=metrics, image_sizes=[size] if size else None,
                                 sample_size=sample, progress=False)
        scored = time.perf_counter() - t0
        params = dict(backbone=name, strategy="fine-tune", epochs=epochs, baseline=False, progress=False)
        if size:
            params["image_size"] = size
        t0 = time.perf_counter()
        accuracy = cls(**params).fit(data).evaluate()["accuracy"]
        row = {"candidate": f"{name}" + (f" {size}px" if size else ""), "scores": ranking.rows[0].scores,
               "accuracy": accuracy, "score_seconds": scored, "fine_tune_seconds": time.perf_counter() - t0}
        rows.append(row)
        print(f"  {task:13s} {row['candidate']:28s} acc {accuracy:.3f}  " + "  ".join(
            f"{m} {v:.3f}" for m, v in row["scores"].items() if v is not None), flush=True)
    summary = {}
    accuracies = [r["accuracy"] for r in rows]
    for m in metrics:
        pairs = [(r["scores"][m], r["accuracy"]) for r in rows if r["scores"].get(m) is not None]
        if len(pairs) >= 2:
            s, a = zip(*pairs)
            summary[m] = {"weighted_tau": weighted_kendall_tau(s, a), "top1_hit": bool(top1_hit(s, a)),
                          "candidates": len(pairs)}
    best = max(rows, key=lambda r: r["accuracy"])
    return {"rows": rows, "scores": summary, "best": best["candidate"], "accuracy_range": [min(accuracies), max(accuracies)]}


def main() -> None:
    global SOURCE_IMAGES
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default="flowers5,roses-tulips,digits,sst2,yelp")
    parser.add_argument("--quick", action="store_true", help="tiny tasks and 1 epoch: a smoke test")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "selection.json")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    SOURCE_IMAGES = SHARED / "flowers5"
    q = args.quick
    results = {"command": "python benchmarks/selection.py" + (" --quick" if q else ""), "threads": torch.get_num_threads(),
               "tasks": {}}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        builders = {
            "flowers5": lambda: ("image", image_task("flowers5", root, 8 if q else 60, 10 if q else 100)),
            "roses-tulips": lambda: ("image", image_task("roses-tulips", root, 8 if q else 40, 10 if q else 100,
                                                         ["rose", "tulip"])),
            "digits": lambda: ("image", digits_task(root, 6 if q else 30)),
            "sst2": lambda: ("text", text_task(root, "sst2", SHARED / "sentiment/sst2/train.tsv", 100 if q else 1000,
                                               SHARED / "sentiment/sst2/dev.tsv")),
            "yelp": lambda: ("text", text_task(root, "yelp", SHARED / "sentiment/reviews/yelp.txt", 100 if q else 600, None)),
        }
        for task in args.tasks.split(","):
            modality, data = builders[task]()
            candidates = (IMAGE_CANDIDATES[:3] if q else IMAGE_CANDIDATES) if modality == "image" else TEXT_CANDIDATES
            epochs = 1 if q else (4 if modality == "image" else 3)
            results["tasks"][task] = evaluate_task(task, data, candidates, modality, epochs, 1000)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=2, default=float))
    results["seconds"] = time.perf_counter() - start
    mean = {}
    for m in SCORES.names():
        taus = [t["scores"][m]["weighted_tau"] for t in results["tasks"].values() if m in t["scores"]
                and np.isfinite(t["scores"][m]["weighted_tau"])]
        hits = [t["scores"][m]["top1_hit"] for t in results["tasks"].values() if m in t["scores"]]
        if taus:
            mean[m] = {"mean_weighted_tau": statistics.mean(taus), "top1_hits": f"{sum(hits)}/{len(hits)}",
                       "tasks": len(taus)}
    results["summary"] = mean
    args.out.write_text(json.dumps(results, indent=2, default=float))
    print(f"\n{'score':8s} " + " ".join(f"{t:>13s}" for t in results["tasks"]) + f" {'mean τ':>8s} {'top-1':>6s}")
    for m, s in mean.items():
        cells = [f"{results['tasks'][t]['scores'][m]['weighted_tau']:13.2f}" if m in results["tasks"][t]["scores"]
                 else f"{'n/a':>13s}" for t in results["tasks"]]
        print(f"{m:8s} " + " ".join(cells) + f" {s['mean_weighted_tau']:8.2f} {s['top1_hits']:>6s}")
    print("anchor (You et al. 2021, 10 ImageNet models × 8 data sets, mean weighted τ): "
          "LogME 0.67, H-score 0.67, NCE 0.50, LEEP 0.29")
    print(f"written to {args.out} ({results['seconds']:.0f} s)")


SOURCE_IMAGES = SHARED / "flowers5"

if __name__ == "__main__":
    main()
