"""Hyper-parameter search benchmark: the defaults against `search=20` at equal and at 3× wall time.

For each data set, on one fixed split:
  defaults   the estimator with its default params (strategy auto, default LR and epochs...)
  search ×k  the same estimator with search=20 and search_seconds = k × the defaults' fit time
             (k = 1 and 3): the study stops starting trials when the budget is spent, then the
             final model is fitted with the best trial's params (that refit is not in the budget,
             so the search's total fit time is reported too)
Every run is scored once on the same test split; the search saw only train and validation.

Data sets (sized so the whole benchmark finishes in about 45 minutes on shared CPU cores):
  flowers5  --per-class images per class (seeded sample), at --image-size px, split 60/20/20
            (validation 20 %: the search scores on it, so it must not be tiny)
  sst2      --sst2-size phrases (seeded sample) of SST-2 train; the GLUE dev set (872) is the test split;
            --sst2-epochs fixes the epochs of both runs (a CPU fine-tunes MiniLM at ~25 phrases/s, and the
            default rule trains ~12,000 phrases whatever the size), so the search tunes the rest

    python benchmarks/search.py [--datasets flowers5,sst2] [--per-class 120] [--image-size 64]
                                [--sst2-size 1000] [--sst2-epochs 2] [--trials 20] [--factors 1,3]

Writes benchmarks/results/search.json (with the machine's load average: the cores are shared, so
compare the ratios within one run).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import random
import tempfile
import time
import warnings
from pathlib import Path

import torch

from transferkit import ImageClassifier, TextClassifier

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "datasets"


def flowers_subset(root: Path, per_class: int, seed: int, folder: Path) -> Path:
    """A class-folder tree of symbolic links to `per_class` seeded-random images of each class."""
    for cls in sorted(p for p in root.iterdir() if p.is_dir()):
        files = sorted(f for f in cls.iterdir() if f.is_file())
        random.Random(seed).shuffle(files)
        (folder / cls.name).mkdir(parents=True)
        for f in files[:per_class]:
            (folder / cls.name / f.name).symlink_to(f.resolve())
    return folder


def sst2_subset(root: Path, size: int, seed: int, folder: Path) -> Path:
    """train.tsv with `size` seeded-random phrases of SST-2 train, and the dev set (the test split)."""
    lines = (root / "train.tsv").read_text(encoding="utf-8").splitlines()
    header, rows = lines[0], lines[1:]
    random.Random(seed).shuffle(rows)
    folder.mkdir(parents=True)
    (folder / "train.tsv").write_text("\n".join([header, *rows[:size]]) + "\n", encoding="utf-8")
    (folder / "dev.tsv").write_text((root / "dev.tsv").read_text(encoding="utf-8"), encoding="utf-8")
    return folder


def run(cls: type, data: Path, **params) -> dict:
    start = time.perf_counter()
    est = cls(progress=False, baseline=False, **params).fit(data)
    seconds = time.perf_counter() - start
    metrics = est.evaluate()
    out = {"test_accuracy": metrics["accuracy"], "test_macro_f1": metrics["macro_f1"], "fit_seconds": seconds,
           "strategy": est.strategy_, "settings": {k: v for k, v in est.strategy_settings_.items()
                                                   if isinstance(v, (int, float, str, bool))},
           "sizes": {s: len(getattr(est.data_, s)) for s in ("train", "val", "test")}}
    study = getattr(est, "search_", None)
    if study:
        out["search"] = {k: study[k] for k in ("completed", "pruned", "failed", "seconds", "best", "best_params",
                                                "default_value", "gain", "importances", "timeout")}
        out["search"]["trials"] = [{k: t[k] for k in ("number", "params", "value", "state", "seconds", "used")}
                                   for t in study["trials"]]
        out["search_seconds"] = study["seconds"]
        out["final_fit_seconds"] = seconds - study["seconds"]
    return out


def benchmark(name: str, cls: type, data: Path, params: dict, trials: int, factors: list[float], log) -> dict:
    result = {"params": params, "runs": {}}
    defaults = run(cls, data, **params)
    result["runs"]["defaults"] = defaults
    log(f"{name} defaults: test accuracy {defaults['test_accuracy']:.4f} in {defaults['fit_seconds']:.0f} s "
        f"({defaults['strategy']})")
    for factor in factors:
        budget = factor * defaults["fit_seconds"]
        searched = run(cls, data, search=trials, search_seconds=budget, **params)
        searched["budget_seconds"] = budget
        searched["time_ratio_to_defaults"] = searched["fit_seconds"] / defaults["fit_seconds"]
        searched["test_accuracy_gain"] = searched["test_accuracy"] - defaults["test_accuracy"]
        result["runs"][f"search_{factor:g}x"] = searched
        s = searched["search"]
        log(f"{name} search at {factor:g}x ({budget:.0f} s budget): {s['completed']} completed, {s['pruned']} pruned; "
            f"best {'defaults' if s['best']['defaults'] else s['best']['params']} val {s['best']['value']:.4f} "
            f"(defaults {s['default_value']:.4f}); test accuracy {searched['test_accuracy']:.4f} "
            f"({searched['test_accuracy_gain']:+.4f}) in {searched['fit_seconds']:.0f} s "
            f"({searched['time_ratio_to_defaults']:.2f}x the defaults' time)")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="flowers5,sst2")
    parser.add_argument("--per-class", type=int, default=120)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--sst2-size", type=int, default=1000)
    parser.add_argument("--sst2-epochs", type=int, default=2, help="fixed for both (0: the default rule)")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--factors", default="1,3")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "search.json")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    torch.set_num_threads(1)
    factors = [float(f) for f in args.factors.split(",")]
    results = {"trials": args.trials, "factors": factors, "threads": torch.get_num_threads(),
               "load_average_start": os.getloadavg(), "cpus": os.cpu_count(), "datasets": {},
               "note": "CPU only, 1 thread, cores shared with other jobs: compare ratios within this file. "
                       "search_seconds bounds the study; the final refit with the best params comes on top."}

    if args.out.is_file():  # data sets not rerun keep their results
        previous = json.loads(args.out.read_text()).get("datasets", {})
        results["datasets"].update({k: v for k, v in previous.items() if k not in args.datasets.split(",")})

    def log(line: str) -> None:
        print(line, flush=True)

    def save() -> None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({**results, "load_average_end": os.getloadavg()}, indent=1, default=str))

    with tempfile.TemporaryDirectory() as tmp:
        for name in args.datasets.split(","):
            if name == "flowers5":
                data = flowers_subset(SHARED / "flowers5", args.per_class, args.seed, Path(tmp) / "flowers5")
                params = {"image_size": args.image_size, "val_fraction": 0.2, "test_fraction": 0.2, "seed": args.seed}
                cls, what = ImageClassifier, f"flowers5, {args.per_class} images per class, {args.image_size} px"
            elif name == "sst2":
                data = sst2_subset(SHARED / "sentiment" / "sst2", args.sst2_size, args.seed, Path(tmp) / "sst2")
                params = {"seed": args.seed, **({"epochs": args.sst2_epochs} if args.sst2_epochs else {})}
                cls, what = TextClassifier, (f"SST-2, {args.sst2_size} train phrases (10 % validation), dev as test"
                                             + (f", epochs fixed at {args.sst2_epochs} for defaults and search "
                                                "(so the search tunes the rest)" if args.sst2_epochs else ""))
            else:
                raise SystemExit(f"unknown data set {name!r}: flowers5 or sst2")
            results["datasets"][name] = {"data": what, **benchmark(name, cls, data, params, args.trials, factors, log)}
            save()
    save()
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
