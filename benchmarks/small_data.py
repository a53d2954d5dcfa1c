"""Small-data benchmark: the default (`strategy="auto"`) against linear-probe and fine-tune on flowers5.

Training folders hold the first N images per class (sorted file names), N = 30, 100, 300; each
method gets the same folder, as a user would pass it to `fit` (it splits or cross-validates it
itself). Every model is scored on the same 200 other flowers: files 301-340 (sorted) of each class,
disjoint from every training subset. The default runs with its control (the transfer check is part
of `fit`), so its wall time includes the control, reported separately too (with CPU time and load
averages, since a shared machine inflates wall time); linear-probe and
fine-tune run without one unless --baseline-for-all (their accuracy does not depend on it).

Goal: the default on <= 1,000 images finishes in <= 180 s on 2 cores and is no worse
than the better of linear-probe and fine-tune. Writes benchmarks/results/small_data.json; runs
already in that file are kept (--methods / --sizes pick what to rerun).

    OMP_NUM_THREADS=2 python benchmarks/small_data.py [--sizes 30,100,300] [--methods auto,linear-probe,fine-tune]
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
import warnings
from pathlib import Path

import torch

from transferkit import ImageClassifier

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "datasets" / "flowers5"
GOAL_SECONDS = 180.0
EVAL_FILES = slice(300, 340)  # files 301-340 of each class, sorted


def link_subset(src: Path, dst: Path, files: slice) -> Path:
    """`dst/<class>/` with symlinks to `files` of each class of `src` (sorted by name)."""
    for folder in sorted(p for p in src.iterdir() if p.is_dir() and not p.name.startswith(".")):
        out = dst / folder.name
        out.mkdir(parents=True, exist_ok=True)
        for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))[files]:
            (out / path.name).symlink_to(path.resolve())
    return dst


def run(method: str, train: Path, evaluation: Path, image_size: int | None, baseline: bool) -> dict:
    clf = ImageClassifier(strategy=method, image_size=image_size, progress=False, baseline=baseline)
    start, cpu = time.perf_counter(), time.process_time()
    clf.fit(train)
    fit_seconds, fit_cpu = time.perf_counter() - start, time.process_time() - cpu
    metrics = clf.evaluate(evaluation)
    own = clf.evaluate()  # the run's own estimate (held-out split or cross-validation)
    return {
        "accuracy": metrics["accuracy"],
        "macro_f1": metrics["macro_f1"],
        "n_eval": metrics["n"],
        "fit_seconds": fit_seconds,
        # CPU time of all threads: on a shared machine wall time inflates, this does not (with 2 threads
        # on 2 idle cores, wall time is about half of it)
        "fit_cpu_seconds": fit_cpu,
        "control_seconds": clf.timings_.get("from-scratch control"),
        "control": clf.control_,
        "own_estimate": {"accuracy": own["accuracy"], "n": own["n"], "estimate": own.get("estimate", "held-out test split"),
                         "transfer": own.get("transfer")},
        "strategy_used": clf.strategy_,
        "decisions": clf.decisions_,
        "timings": clf.timings_,
        "settings": {k: v for k, v in clf.strategy_settings_.items() if k not in ("groups", "group_lrs")},
        "load_average_after": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--sizes", default="30,100,300", help="images per class in the training folder")
    parser.add_argument("--methods", default="auto,linear-probe,fine-tune")
    parser.add_argument("--image-size", type=int, default=None, help="default: the library's own choice")
    parser.add_argument("--baseline-for-all", action="store_true", help="also run the controls of linear-probe/fine-tune")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "small_data.json")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)

    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    results.update({"data": str(args.data), "eval_set": "files 301-340 (sorted) of each class",
                    "threads": torch.get_num_threads(), "goal_seconds": GOAL_SECONDS})
    results.setdefault("runs", {})
    with tempfile.TemporaryDirectory(prefix="small-data-") as tmp:
        evaluation = link_subset(args.data, Path(tmp) / "eval", EVAL_FILES)
        for size in [int(s) for s in args.sizes.split(",")]:
            train = link_subset(args.data, Path(tmp) / f"train{size}", slice(0, size))
            for method in args.methods.split(","):
                load_before = os.getloadavg()
                row = run(method, train, evaluation, args.image_size, baseline=method == "auto" or args.baseline_for_all)
                row["load_average_before"] = load_before
                results["runs"].setdefault(str(size), {})[method] = row
                print(f"{size:4d}/class {method:13s} acc {row['accuracy']:.3f}  fit {row['fit_seconds']:6.0f} s "
                      f"(control {row['control_seconds'] or 0:.0f} s)  used {row['strategy_used']}  "
                      f"load {load_before[0]:.1f}", flush=True)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(results, indent=2, default=str))
    summary = {}
    for size, runs in results["runs"].items():
        if "auto" not in runs:
            continue
        auto = runs["auto"]
        others = [runs[m]["accuracy"] for m in ("linear-probe", "fine-tune") if m in runs]
        summary[size] = {
            "default_time_over_goal": auto["fit_seconds"] / GOAL_SECONDS,
            "default_control_seconds": auto["control_seconds"],
            "default_minus_best_other": auto["accuracy"] - max(others) if others else None,
        }
        print(f"{size:>4s}/class: default {auto['fit_seconds']:.0f} s = {summary[size]['default_time_over_goal']:.2f} × "
              f"the {GOAL_SECONDS:.0f} s goal (control {auto['control_seconds'] or 0:.0f} s); accuracy "
              f"{auto['accuracy']:.3f}, minus max(lp, ft) = "
              + (f"{summary[size]['default_minus_best_other']:+.3f}" if others else "n/a"))
    results["summary"] = summary
    args.out.write_text(json.dumps(results, indent=2, default=str))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
