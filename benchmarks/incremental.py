"""Class-incremental benchmark: flowers5 trained on some classes, then extended with the rest.

Scenarios (each a fresh parent fit, then `extend(new, compare=True)`):
  4+1        trained on four classes, extended with the fifth: one run per held-out class (5 runs)
  3+1+1      trained on three classes, extended twice (daisy, dandelion, rose → + sunflower → + tulip)

Each class's images are split once (seed 0: 70 % train, 10 % validation, 20 % test, at most
--per-class images per class), and every model is scored on the same test images: old-class
accuracy before and after extending (forgetting = points lost), accuracy on the new class's test
images and on all of them. Every extension is compared with naive fine-tuning on the new data only
and with retraining on all the data (the upper bound), which `extend(compare=True)` measures.

Goals: old-class accuracy drops ≤ 2 points, the new class reaches ≥ 90 % of the joint
retrain's accuracy on it, in a fraction of the retrain's time. A fifth class costs the old ones
accuracy even when everything is retrained (more classes to confuse them with), so the summary also
gives the retrain's own drop and the extension's drop beyond it ("excess").

    python benchmarks/incremental.py --resummarise FILE   # recompute a results file's summary

    python benchmarks/incremental.py [--strategies linear-probe,prototypes,fine-tune,fine-tune:train-backbone]
                                     [--per-class 200]
                                     [--image-size 128] [--epochs 3] [--out FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("TRANSFERKIT_SHARED", HERE.parent.parent / "shared")) / "datasets" / "flowers5"
CLASSES = ("daisy", "dandelion", "rose", "sunflower", "tulip")
SPLITS = (("train", 0.7), ("val", 0.1), ("test", 0.2))
GOALS = {"max_forgetting": 0.02, "min_new_vs_joint": 0.9}


def split_class(cls: str, per_class: int) -> dict[str, list[Path]]:
    """One class's images, shuffled with seed 0 and cut into train/val/test (the same for every run)."""
    files = sorted(p for p in (DATA / cls).iterdir() if p.is_file())
    random.Random(0).shuffle(files)
    files = files[:per_class]
    out, start = {}, 0
    for i, (name, fraction) in enumerate(SPLITS):
        end = len(files) if i == len(SPLITS) - 1 else start + round(fraction * len(files))
        out[name] = files[start:end]
        start = end
    return out


def folder(root: Path, classes: list[str], per_class: int) -> Path:
    """root/{train,val,test}/<class>/ of symlinks to the fixed splits of `classes`."""
    for cls in classes:
        for split, files in split_class(cls, per_class).items():
            (root / split / cls).mkdir(parents=True, exist_ok=True)
            for f in files:
                link = root / split / cls / f.name
                if not link.exists():
                    link.symlink_to(f.resolve())
    return root


def _f(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _pts(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:+.1f} pts"


def run_scenario(steps: list[list[str]], label: str, args, work: Path) -> dict:
    """One scenario with one strategy (`label`: a strategy name, ":train-backbone" to fine-tune the
    whole model when extending instead of refitting the head on stored features)."""
    from transferkit import ImageClassifier

    strategy, _, mode = label.partition(":")
    name = "+".join(str(len(s)) for s in steps)
    base = work / f"{strategy}{mode}_{'_'.join(steps[0])}_{len(steps)}"
    params = dict(strategy=strategy, image_size=args.image_size, tta=False, baseline=False, progress=False,
                  seed=0, memory=args.memory, memory_selection=args.selection)
    if strategy not in ("linear-probe", "prototypes"):
        params["epochs"] = args.epochs
    start = time.perf_counter()
    est = ImageClassifier(**params).fit(folder(base / "step0", steps[0], args.per_class))
    fit_seconds = time.perf_counter() - start
    rows = []
    for number, new in enumerate(steps[1:], 1):
        est.extend(folder(base / f"step{number}", new, args.per_class), compare=True,
                   train_backbone=mode == "train-backbone")
        step = est.lineage_[-1]
        m, c = step["metrics"], step["comparison"]
        joint, naive = c["joint"], c["naive"]
        rows.append({
            "added": step["added"], "old_classes": step["old_classes"],
            "extend": m, "naive": naive, "joint": joint,
            "new_vs_joint": m["new_accuracy"] / joint["new_accuracy"] if joint.get("new_accuracy") else None,
            "extend_seconds": step["seconds"], "joint_seconds": joint.get("seconds"),
            "time_ratio": step["seconds"] / joint["seconds"] if joint.get("seconds") else None,
        })
        print(f"  {label:12s} {name:6s} +{','.join(step['added']):10s} old {_f(m.get('old_accuracy_before'))} → "
              f"{_f(m.get('old_accuracy_after'))} (forgetting {_pts(m.get('forgetting'))}, naive "
              f"{_pts(naive.get('forgetting'))}); new {_f(m.get('new_accuracy'))} vs joint {_f(joint.get('new_accuracy'))} "
              f"(ratio {_f(rows[-1]['new_vs_joint'], 2)}); all {_f(m.get('all_accuracy'))} vs joint "
              f"{_f(joint.get('all_accuracy'))}; {step['seconds']:.0f} s vs retrain {joint.get('seconds', 0):.0f} s",
              flush=True)
    return {"scenario": name, "strategy": label, "classes": steps, "parent_fit_seconds": fit_seconds,
            "steps": rows}


def summarise(results: list[dict]) -> dict:
    out = {}
    for strategy in sorted({r["strategy"] for r in results}):
        steps = [s for r in results if r["strategy"] == strategy for s in r["steps"]]
        forgetting = [s["extend"]["forgetting"] for s in steps]
        ratio = [s["new_vs_joint"] for s in steps if s["new_vs_joint"] is not None]
        out[strategy] = {
            "steps": len(steps),
            "forgetting_mean": statistics.mean(forgetting), "forgetting_max": max(forgetting),
            "naive_forgetting_mean": statistics.mean(s["naive"]["forgetting"] for s in steps),
            # adding a class costs old classes accuracy even when retraining on everything: the yardstick
            "joint_forgetting_mean": statistics.mean(s["joint"]["forgetting"] for s in steps),
            "excess_forgetting_mean": statistics.mean(s["extend"]["forgetting"] - s["joint"]["forgetting"]
                                                      for s in steps),
            "new_vs_joint_mean": statistics.mean(ratio) if ratio else None, "new_vs_joint_min": min(ratio, default=None),
            "all_accuracy_mean": statistics.mean(s["extend"]["all_accuracy"] for s in steps),
            "joint_all_accuracy_mean": statistics.mean(s["joint"]["all_accuracy"] for s in steps),
            "time_ratio_mean": statistics.mean(s["time_ratio"] for s in steps),
            "goal_forgetting_met": max(forgetting) <= GOALS["max_forgetting"],
            "goal_new_class_met": bool(ratio) and min(ratio) >= GOALS["min_new_vs_joint"],
        }
    return out


def write(args, results: list[dict], started: float) -> None:
    import torch

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "benchmark": "class-incremental flowers5", "goals": GOALS, "seed": 0,
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else f"cpu ({os.cpu_count()} cores)",
        "seconds": time.perf_counter() - started, "summary": summarise(results), "runs": results}, indent=1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--strategies", default="linear-probe,prototypes")
    parser.add_argument("--scenarios", default="4+1,3+1+1")
    parser.add_argument("--per-class", type=int, default=200)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3, help="fine-tuned strategies: epochs of the parent fit")
    parser.add_argument("--memory", type=int, default=100, help="exemplars kept per class")
    parser.add_argument("--selection", default="random", choices=("random", "herding"), help="how exemplars are chosen")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "incremental.json")
    parser.add_argument("--resummarise", type=Path, help="recompute the summary of a results file and exit")
    args = parser.parse_args(argv)
    if args.resummarise:
        data = json.loads(args.resummarise.read_text())
        data["summary"] = summarise(data["runs"])
        args.resummarise.write_text(json.dumps(data, indent=1))
        print(json.dumps(data["summary"], indent=1))
        return 0
    if not DATA.is_dir():
        print(f"flowers5 not found at {DATA}", file=sys.stderr)
        return 1
    scenarios = []
    for name in args.scenarios.split(","):
        if name == "4+1":
            scenarios += [[[c for c in CLASSES if c != held], [held]] for held in CLASSES]
        elif name == "3+1+1":
            scenarios.append([list(CLASSES[:3]), [CLASSES[3]], [CLASSES[4]]])
        else:
            parser.error(f"unknown scenario {name!r}")
    results = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for strategy in args.strategies.split(","):
            for steps in scenarios:
                results.append(run_scenario(steps, strategy, args, Path(tmp)))
                write(args, results, started)  # after each scenario: a cut-off run keeps what it measured
    for strategy, s in summarise(results).items():
        print(f"{strategy}: forgetting mean {_pts(s['forgetting_mean'])} (max {_pts(s['forgetting_max'])}; retrain on "
              f"all {_pts(s['joint_forgetting_mean'])}; naive {_pts(s['naive_forgetting_mean'])}); new class / joint {_f(s['new_vs_joint_mean'], 2)} (min "
              f"{_f(s['new_vs_joint_min'], 2)}); all-class accuracy {_f(s['all_accuracy_mean'])} vs joint "
              f"{_f(s['joint_all_accuracy_mean'])}; extend time / retrain time {_f(s['time_ratio_mean'], 2)}")
    print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
