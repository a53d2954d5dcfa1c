"""flowers5 benchmark: linear-probe and fine-tune with the default backbone on a fixed split.

Split: stratified 80/20 train/test with seed 0 (validation for early stopping is 10 % of the
train part). Prints a table and writes benchmarks/results/flowers5.json. Not a test: it takes
about 15 minutes on 2 CPU cores.

    python benchmarks/flowers5.py [--data ../shared/datasets/flowers5] [--strategies linear-probe,fine-tune]
                                  [--set fine-tune:epochs=4 ...]
"""
from __future__ import annotations

import argparse
import json
import logging
import time
import warnings
from pathlib import Path

import torch

from transferkit import ImageClassifier
from transferkit.data import load_image_folder

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "datasets" / "flowers5"


def parse_overrides(items: list[str]) -> dict[str, dict]:
    """`strategy:key=value` pairs → {strategy: {key: value}} with numbers parsed."""
    out: dict[str, dict] = {}
    for item in items:
        strategy, assignment = item.split(":", 1)
        key, value = assignment.split("=", 1)
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        out.setdefault(strategy, {})[key] = parsed
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--strategies", default="linear-probe,fine-tune")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--set", action="append", default=[], help="strategy:param=value override")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "flowers5.json")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    overrides = parse_overrides(args.set)

    data = load_image_folder(args.data, val_fraction=0.1, test_fraction=0.2, seed=0)
    results = {"data": str(args.data), "split": data.split["description"], "backbone": args.backbone,
               "image_size": args.image_size, "threads": torch.get_num_threads(),
               "sizes": {s: len(getattr(data, s)) for s in ("train", "val", "test")}, "runs": {}}
    for strategy in args.strategies.split(","):
        params = {"backbone": args.backbone, "strategy": strategy, "image_size": args.image_size,
                  "progress": False, **overrides.get(strategy, {})}
        start = time.perf_counter()
        clf = ImageClassifier(**params).fit(data)
        fit_seconds = time.perf_counter() - start
        start = time.perf_counter()
        metrics = clf.evaluate()
        eval_seconds = time.perf_counter() - start
        run = {
            "params": {k: v for k, v in params.items() if k != "progress"},
            "test_accuracy": metrics["accuracy"],
            "test_macro_f1": metrics["macro_f1"],
            "fit_seconds": fit_seconds,
            "train_images_per_second": len(data.train) * max(1, len(clf.history_) if strategy != "linear-probe" else 1) / fit_seconds,
            "predict_images_per_second": metrics["n"] / eval_seconds,
            "timings": clf.timings_,
            "settings": clf.strategy_settings_,
            "history": clf.history_,
        }
        results["runs"][strategy] = run
        print(f"{strategy:14s} acc {run['test_accuracy']:.3f}  macro-F1 {run['test_macro_f1']:.3f}  "
              f"fit {fit_seconds:6.0f} s  predict {run['predict_images_per_second']:.0f} img/s", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str))
    print(f"\n{'strategy':14s} {'accuracy':>9s} {'macro-F1':>9s} {'fit s':>7s} {'img/s':>7s}")
    for name, run in results["runs"].items():
        print(f"{name:14s} {run['test_accuracy']:9.3f} {run['test_macro_f1']:9.3f} {run['fit_seconds']:7.0f} "
              f"{run['train_images_per_second']:7.1f}")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
