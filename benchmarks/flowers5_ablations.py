"""What each choice of the default fine-tune recipe buys on flowers5 (same split as flowers5.py).

Each variant changes one knob of the default; every run is evaluated with and without the
flip test-time augmentation, so TTA is measured on every variant for free. Writes
benchmarks/results/flowers5_ablations.json. About 6 minutes per variant on 2 CPU cores.

    python benchmarks/flowers5_ablations.py [--variants default,no-warmup,...] [--epochs 4]
"""
from __future__ import annotations

import argparse
import json
import logging
import time
import warnings
from pathlib import Path

from transferkit import ImageClassifier
from transferkit.data import load_image_folder

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "datasets" / "flowers5"

#: variant → (ImageClassifier params, strategy options) changed from the default recipe
VARIANTS: dict[str, tuple[dict, dict]] = {
    "default": ({}, {}),
    "head-warmup": ({}, {"head_warmup": True}),
    "no-discriminative-lr": ({}, {"layer_decay": 1.0}),
    "no-gradual-unfreeze": ({}, {"start_groups": 1000, "unfreeze_epochs": 0}),
    "bn-stats-train": ({}, {"freeze_bn_stats": False}),
    "augment-none": ({"augment": "none"}, {}),
    "augment-strong": ({"augment": "strong"}, {}),
    "lr-1e-3": ({"lr": 1e-3}, {}),
    "160px": ({"image_size": 160}, {}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--epochs", type=int, default=None, help="default: the recipe's own rule")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "flowers5_ablations.json")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)

    data = load_image_folder(args.data, val_fraction=0.1, test_fraction=0.2, seed=0)
    results = json.loads(args.out.read_text()) if args.out.is_file() else {"runs": {}}
    results.update({"data": str(args.data), "split": data.split["description"]})
    for name in args.variants.split(","):
        params, options = VARIANTS[name]
        params = {"strategy": "fine-tune", "image_size": 128, "epochs": args.epochs, "progress": False,
                  **params, "strategy_options": options}
        start = time.perf_counter()
        clf = ImageClassifier(**params).fit(data)
        seconds = time.perf_counter() - start
        with_tta = clf.evaluate()["accuracy"]
        clf.tta = False
        without_tta = clf.evaluate()["accuracy"]
        elapsed = sum(v for k, v in clf.timings_.items() if k.startswith("head warm-up"))
        curve = []
        for row in clf.history_:
            elapsed += row["seconds"]
            curve.append({"epoch": row["epoch"], "seconds": round(elapsed), "val_accuracy": row["val_accuracy"]})
        results["runs"][name] = {
            "params": {k: v for k, v in params.items() if k != "progress"},
            "test_accuracy_tta": with_tta, "test_accuracy_no_tta": without_tta,
            "fit_seconds": seconds, "epochs_run": len(clf.history_), "curve": curve,
        }
        print(f"{name:22s} acc {with_tta:.3f} (no TTA {without_tta:.3f})  fit {seconds:5.0f} s", flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
    print(f"\n{'variant':22s} {'acc+TTA':>8s} {'acc':>8s} {'fit s':>7s}")
    for name, run in results["runs"].items():
        print(f"{name:22s} {run['test_accuracy_tta']:8.3f} {run['test_accuracy_no_tta']:8.3f} {run['fit_seconds']:7.0f}")


if __name__ == "__main__":
    main()
