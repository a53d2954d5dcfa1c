"""SST-2 benchmark for text classification with the default offline encoder (all-MiniLM-L6-v2).

Accuracy on the GLUE dev set (872 sentences; the test labels are hidden) for:
  lp        linear-probe on the full train set (60,614 phrases; 10 % of train held out to pick C)
  ft        the `auto` strategy (fine-tune) on a seeded random subset of train (--ft-size phrases,
            10 % of it held out for early stopping), so it runs in under 30 minutes on a CPU
  fewshot   K = 8, 16, 64 examples per class, 5 seeds each: `auto` (SetFit for K ≤ 16, fine-tune
            above) and linear-probe on the same K, mean ± std
Results merge into benchmarks/results/sst2.json (parts not re-run are kept).

    python benchmarks/sst2.py [--parts lp,ft,fewshot] [--ft-size 8000] [--shots 8,16,64] [--seeds 5]
                              [--strategies auto,linear-probe,setfit]
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

import torch

from transferkit import TextClassifier

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "datasets" / "sentiment" / "sst2"


def fit_and_score(data, **params) -> dict:
    start = time.perf_counter()
    clf = TextClassifier(progress=False, **params).fit(data)
    fit_seconds = time.perf_counter() - start
    metrics = clf.evaluate()
    return {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"], "strategy": clf.strategy_,
            "transfer": metrics.get("transfer"),
            "train_size": len(clf.data_.train), "val_size": len(clf.data_.val), "fit_seconds": fit_seconds,
            "timings": clf.timings_, "settings": {k: v for k, v in clf.strategy_settings_.items() if k != "head_fit"},
            "history": clf.history_}


def subset_folder(data: Path, size: int, seed: int, folder: Path) -> Path:
    """train.tsv with `size` phrases drawn uniformly (seeded) from SST-2 train, plus the dev set."""
    lines = (data / "train.tsv").read_text(encoding="utf-8").splitlines()
    header, rows = lines[0], lines[1:]
    random.Random(seed).shuffle(rows)
    (folder / "train.tsv").write_text("\n".join([header, *rows[:size]]) + "\n", encoding="utf-8")
    (folder / "dev.tsv").write_text((data / "dev.tsv").read_text(encoding="utf-8"), encoding="utf-8")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--parts", default="lp,ft,fewshot")
    parser.add_argument("--ft-size", type=int, default=8000)
    parser.add_argument("--ft-epochs", type=int, default=None, help="default: the fine-tune rule")
    parser.add_argument("--ft-lr", type=float, default=None, help="default: the text default (1e-4)")
    parser.add_argument("--shots", default="8,16,64")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--strategies", default="auto,linear-probe", help="few-shot strategies to compare")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "sst2.json")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    # parallel runs write other keys: merge with what is on disk when saving, not only at start
    results.update({"data": str(args.data), "backbone": "all-minilm-l6-v2", "threads": torch.get_num_threads(),
                    "metric": "accuracy on SST-2 dev (872)"})
    parts = args.parts.split(",")

    def save() -> None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        on_disk = json.loads(args.out.read_text()) if args.out.is_file() else {}
        args.out.write_text(json.dumps({**on_disk, **results}, indent=2, default=str))

    if "lp" in parts:
        run = fit_and_score(args.data, strategy="linear-probe", batch_size=128)
        results["linear_probe_full"] = run
        print(f"linear-probe, full train ({run['train_size']}): acc {run['accuracy']:.3f}  "
              f"fit {run['fit_seconds']:.0f} s", flush=True)
        save()
    if "ft" in parts:
        with tempfile.TemporaryDirectory() as tmp:
            folder = subset_folder(args.data, args.ft_size, 0, Path(tmp))
            run = fit_and_score(folder, strategy="auto", epochs=args.ft_epochs, lr=args.ft_lr)
        run["subset"] = f"{args.ft_size} phrases drawn uniformly from train (seed 0), 10 % of them for validation"
        results[f"fine_tune_{args.ft_size}" + (f"_lr{args.ft_lr:g}" if args.ft_lr else "")] = run
        print(f"{run['strategy']} on {args.ft_size} phrases: acc {run['accuracy']:.3f}  fit {run['fit_seconds']:.0f} s",
              flush=True)
        save()
    if "fewshot" in parts:
        fewshot = results.setdefault("few_shot", {})
        for k in map(int, args.shots.split(",")):
            rows = {strategy: [] for strategy in args.strategies.split(",")}
            for seed in range(args.seeds):
                for strategy in rows:
                    run = fit_and_score(args.data, strategy=strategy, shots_per_class=k, seed=seed, batch_size=16)
                    rows[strategy].append(run)
                    print(f"K={k:3d} seed {seed} {strategy:12s} ({run['strategy']}): acc {run['accuracy']:.3f}  "
                          f"fit {run['fit_seconds']:.0f} s", flush=True)
            fewshot.setdefault(str(k), {}).update({
                strategy: {"used": runs[0]["strategy"],
                           "mean": statistics.mean(r["accuracy"] for r in runs),
                           "std": statistics.stdev(r["accuracy"] for r in runs) if len(runs) > 1 else 0.0,
                           "accuracies": [r["accuracy"] for r in runs],
                           "mean_fit_seconds": statistics.mean(r["fit_seconds"] for r in runs)}
                for strategy, runs in rows.items()})
            save()
    print("\nSST-2 dev accuracy")
    for key, run in results.items():
        if isinstance(run, dict) and "accuracy" in run:
            print(f"  {key:24s} {run['accuracy']:.3f}  ({run['strategy']}, {run['train_size']} train, {run['fit_seconds']:.0f} s)")
    for k, by_strategy in results.get("few_shot", {}).items():
        for strategy, s in by_strategy.items():
            print(f"  K={k:<3s} {strategy:12s} {s['mean']:.3f} ± {s['std']:.3f}  ({s['used']}, {s['mean_fit_seconds']:.0f} s)")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
