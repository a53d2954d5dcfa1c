"""Learning-rate range test on flowers5: the suggested LR against fine-tuning's default, and (with --fit)
whether fine-tuning at the suggestion does better on the test split than at the default.

Same split as benchmarks/flowers5.py (stratified, seed 0: test 20 %, validation 10 % of the rest),
default backbone at 128 px, strategy fine-tune, one thread. Writes benchmarks/results/lr_find.json
after each stage (the range test takes a few minutes on one core, each fit about ten).

    python benchmarks/lr_find.py [--data ../shared/datasets/flowers5] [--steps 100] [--fit]
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import time
import warnings
from pathlib import Path

import torch

from transferkit import ImageClassifier
from transferkit.data import load_image_folder

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "datasets" / "flowers5"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--fit", action="store_true", help="also fine-tune at the default LR and at the suggestion")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "lr_find.json")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    torch.set_num_threads(1)  # the cores are shared; figures are compared within this run

    data = load_image_folder(args.data, val_fraction=0.1, test_fraction=0.2, seed=0)
    params = {"backbone": args.backbone, "strategy": "fine-tune", "image_size": args.image_size, "progress": False}
    results = {"data": str(args.data), "split": data.split["description"], "params": {**params, "progress": None},
               "sizes": {s: len(getattr(data, s)) for s in ("train", "val", "test")}, "threads": 1,
               "load_average_start": os.getloadavg(), "cpu_count": os.cpu_count()}

    def write() -> None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1, default=float))

    start = time.process_time()
    test = ImageClassifier(**params).lr_find(data, steps=args.steps)
    results["range_test"] = {**test.to_dict(), "cpu_seconds": time.process_time() - start,
                             "load_average_after": os.getloadavg()}
    print(f"range test: suggestion {test.suggestion:.3g}, default {test.default_lr:.3g} "
          f"({test.suggestion / test.default_lr:.2f}x), {test.steps_run} steps, {test.seconds:.0f} s wall, "
          f"{results['range_test']['cpu_seconds']:.0f} s CPU", flush=True)
    write()
    if not args.fit or test.suggestion is None:
        return
    results["fits"] = {}
    for label, lr in (("suggested", test.suggestion), ("default", None)):
        start, cpu = time.perf_counter(), time.process_time()
        clf = ImageClassifier(**params, lr=lr, baseline=False).fit(data)
        metrics = clf.evaluate()
        results["fits"][label] = {
            "lr": clf.strategy_settings_["lr"], "test_accuracy": metrics["accuracy"],
            "test_macro_f1": metrics["macro_f1"],
            "fit_seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu,
            "epochs_run": clf.strategy_settings_.get("epochs_run"), "load_average_after": os.getloadavg(),
            "history": clf.history_,
        }
        print(f"fit at {label} lr {results['fits'][label]['lr']:.3g}: test accuracy {metrics['accuracy']:.3f}, "
              f"{results['fits'][label]['fit_seconds']:.0f} s", flush=True)
        write()
    fits = results["fits"]
    results["accuracy_gain_of_suggestion"] = fits["suggested"]["test_accuracy"] - fits["default"]["test_accuracy"]
    write()


if __name__ == "__main__":
    main()
