"""Domain adaptation benchmark: `adapt` (method auto) against source-only and an oracle, ≥ 3 seeds.

Pairs (source → target; target labels are used only to score):
  amazon-yelp, yelp-amazon    the review sentences of ../shared/datasets/sentiment/reviews (1,000 each)
  sst2-amazon, sst2-yelp      SST-2 movie phrases (a seeded sample of --sst2-size from train.tsv) → reviews
  flowers-shift               flowers5, split in two disjoint halves by a fixed seed: the source half
                              as photographed, the target half through a SYNTHETIC shift (grayscale,
                              Gaussian blur, contrast halved): the shift is made here, not found in nature

Each (pair, seed) is one `fit(source, unlabeled=target, target_labels=target)` with method auto,
which trains every candidate on the same split, so one fit gives the rows: source-only (the
logistic probe a plain fit ships), none (the bottleneck without an adaptation loss), each method,
and auto (what the criterion kept). The oracle is the same logistic probe trained on the target's
own labels, scored out of fold (5-fold cross-validation over all target examples). Accuracy is on
every target example. Results: benchmarks/results/domain_adaptation.json (mean ± std per row).

    python benchmarks/domain_adaptation.py [--pairs amazon-yelp,...] [--seeds 0,1,2] [--jobs 1]
                                           [--epochs N] [--criterion dev] [--out FILE]
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
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("TRANSFERKIT_SHARED", HERE.parent.parent / "shared")) / "datasets"
PAIRS = ("amazon-yelp", "yelp-amazon", "sst2-amazon", "sst2-yelp", "flowers-shift")
REVIEWS = {"amazon": "amazon.txt", "yelp": "yelp.txt"}
#: published anchors, for scale (other data, other backbones)
ANCHORS = {"Office-31, ResNet-50 (TLlib)": {"source-only": 79.5, "dann": 86.1, "cdan": 87.7, "mcc": 89.6},
           "Amazon reviews (Blitzer), 12 pairs": {"dann": 76.3}}


def sst2_sample(size: int, folder: Path) -> Path:
    """A seeded sample of SST-2 train (seed 0 whatever the run's seed: the source data stay fixed)."""
    lines = (DATA / "sentiment" / "sst2" / "train.tsv").read_text(encoding="utf-8").splitlines()
    header, rows = lines[0], lines[1:]
    random.Random(0).shuffle(rows)
    path = folder / f"sst2_{size}.tsv"
    path.write_text("\n".join([header, *rows[:size]]) + "\n", encoding="utf-8")
    return path


def shifted_flowers(folder: Path) -> tuple[Path, Path]:
    """(source folder, target folder): flowers5's images split into two disjoint halves per class
    (seed 0), the target half grayscale, blurred (radius 1.5) and at half contrast."""
    from PIL import Image, ImageEnhance, ImageFilter, ImageOps

    source, target = folder / "flowers_source", folder / "flowers_target"
    if target.is_dir():
        return source, target
    for cls in sorted(p for p in (DATA / "flowers5").iterdir() if p.is_dir()):
        files = sorted(cls.iterdir())
        random.Random(0).shuffle(files)
        half = len(files) // 2
        (source / cls.name).mkdir(parents=True)
        (target / cls.name).mkdir(parents=True)
        for f in files[:half]:
            (source / cls.name / f.name).symlink_to(f.resolve())
        for f in files[half:]:
            image = ImageOps.grayscale(Image.open(f).convert("RGB")).filter(ImageFilter.GaussianBlur(1.5))
            ImageEnhance.Contrast(image.convert("RGB")).enhance(0.5).save(target / cls.name / (f.stem + ".png"))
    return source, target


def run_one(pair: str, seed: int, epochs: int | None, criterion: str, sst2_size: int, work: str,
            encoder: str = "frozen", method: str = "auto") -> dict:
    """One fit of `pair` with `seed`: every candidate's target accuracy, auto's choice, the oracle."""
    import numpy as np
    import torch

    torch.set_num_threads(int(os.environ.get("TK_THREADS", "1")))
    from transferkit import ImageClassifier, TextClassifier
    from transferkit.models.features import extract_features
    from transferkit.strategies.linear_probe import cross_validated_head

    work = Path(work)
    source_name, target_name = pair.split("-")
    options = {"method": method, "criterion": criterion, "encoder": encoder}
    common = dict(strategy="adapt", strategy_options=options, epochs=epochs, seed=seed, baseline=False, progress=False)
    if pair == "flowers-shift":
        source, target = shifted_flowers(work)
        est = ImageClassifier(**common)
    else:
        source = sst2_sample(sst2_size, work) if source_name == "sst2" else DATA / "sentiment" / "reviews" / REVIEWS[source_name]
        target = DATA / "sentiment" / "reviews" / REVIEWS[target_name]
        est = TextClassifier(**common)
    start = time.perf_counter()
    est.fit(source, unlabeled=target, target_labels=target)
    seconds = time.perf_counter() - start
    s = est.strategy_settings_
    rows = {r["method"]: r["target_accuracy"] for r in s["candidates"]}
    if method == "auto":
        rows["auto"] = next(r["target_accuracy"] for r in s["candidates"] if r["chosen"])
    # oracle: the same probe on the target's own labels, every example scored out of fold
    from torch.utils.data import Dataset

    from transferkit.data import TextDataset

    inputs, labels, _ = est._labelled(target)  # images: a dataset already; texts: a list
    dataset = inputs if isinstance(inputs, Dataset) else TextDataset(inputs, labels)
    collate = est._collator() if hasattr(est, "_collator") else None
    # the pretrained encoder, not the run's (which the fine-tune encoder trained on the source)
    from transferkit.backbones import create_backbone

    encoder = create_backbone(est.backbone_info_["name"], modality=est.modality).model
    x, y = extract_features(encoder, dataset, hflip=False, progress=False, collate_fn=collate)
    _, _, _, oof = cross_validated_head(x, y, len(est.classes_), seed)
    rows["oracle"] = float((oof.argmax(1) == y).mean())
    return {"pair": pair, "seed": seed, "accuracy": rows, "chosen": s["chosen_method"], "reason": s["reason"],
            "a_distance_before": (s.get("a_distance_before") or {}).get("a_distance"),
            "a_distance_after": (s.get("a_distance_after") or {}).get("a_distance"),
            "epochs": s["epochs"], "fit_seconds": seconds, "source_examples": len(est.data_.train),
            "target_examples": s["target_examples"],
            "criteria": {r["method"]: {"criterion": r["criterion"], "epoch": r["epoch"],
                                       "source_val_accuracy": r["source_val_accuracy"]} for r in s["candidates"]}}


def summarise(runs: list[dict]) -> dict:
    out = {}
    for pair in dict.fromkeys(r["pair"] for r in runs):
        mine = [r for r in runs if r["pair"] == pair]
        table = {}
        for row in mine[0]["accuracy"]:
            values = [r["accuracy"][row] for r in mine]
            table[row] = {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                          "runs": values}
        base = table["source-only"]["mean"]
        best = max((m for m in table if m not in ("source-only", "none", "auto", "oracle")), key=lambda m: table[m]["mean"])
        out[pair] = {"rows": table, "best_method": best, "best_gain_points": 100 * (table[best]["mean"] - base),
                     "chose": [r["chosen"] for r in mine],
                     "a_distance_before": statistics.mean(r["a_distance_before"] for r in mine if r["a_distance_before"] is not None),
                     "fit_seconds_mean": statistics.mean(r["fit_seconds"] for r in mine)}
        if "auto" in table:
            out[pair].update(auto_gain_points=100 * (table["auto"]["mean"] - base),
                             auto_within_one_std=table["auto"]["mean"] >= base - table["source-only"]["std"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", default=",".join(PAIRS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--jobs", type=int, default=1, help="fits run in parallel (one thread each)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per method (default: the strategy's)")
    parser.add_argument("--criterion", default="dev")
    parser.add_argument("--sst2-size", type=int, default=2000)
    parser.add_argument("--method", default="auto", help="auto (every method; the kept one is the auto row) or one "
                                                          "method (source-only, none and it)")
    parser.add_argument("--encoder", default="frozen", help="frozen (features once) or fine-tune (each candidate "
                                                             "fine-tunes its own encoder copy)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "domain_adaptation.json")
    parser.add_argument("--log", type=Path, default=None, help="also append each finished fit as a JSON line here")
    args = parser.parse_args()
    pairs = [p for p in args.pairs.split(",") if p]
    unknown = sorted(set(pairs) - set(PAIRS))
    if unknown:
        sys.exit(f"unknown pair(s) {unknown}; choose from {', '.join(PAIRS)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    jobs = [(p, s) for p in pairs for s in seeds]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tk-da-") as work:
        if "flowers-shift" in pairs:
            shifted_flowers(Path(work))  # once, before the workers start
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            futures = [pool.submit(run_one, p, s, args.epochs, args.criterion, args.sst2_size, work, args.encoder, args.method) for p, s in jobs]
            runs = []
            for f in futures:
                runs.append(f.result())
                r = runs[-1]
                if args.log:
                    with args.log.open("a") as fh:
                        fh.write(json.dumps(r, default=float) + "\n")
                print(f"{r['pair']} seed {r['seed']}: " + ", ".join(f"{k} {v:.3f}" for k, v in r["accuracy"].items())
                      + f" (auto kept {r['chosen']}; {r['fit_seconds']:.0f} s)", flush=True)
    summary = summarise(runs)
    print(f"\n{'pair':15s} " + " ".join(f"{m:>14s}" for m in next(iter(summary.values()))["rows"]))
    for pair, s in summary.items():
        print(f"{pair:15s} " + " ".join(f"{v['mean']:.3f}±{v['std']:.3f}".rjust(14) for v in s["rows"].values()))
    for pair, s in summary.items():
        auto = f"; auto {s['auto_gain_points']:+.1f} (within one std of source-only or better: " \
               f"{s['auto_within_one_std']})" if "auto_gain_points" in s else ""
        print(f"{pair}: best {s['best_method']} {s['best_gain_points']:+.1f} points over source-only{auto}; "
              f"kept {s['chose']}")
    result = {"command": "python benchmarks/domain_adaptation.py " + " ".join(sys.argv[1:]),
              "seeds": seeds, "epochs": args.epochs, "criterion": args.criterion, "sst2_size": args.sst2_size,
              "encoder": args.encoder, "method": args.method,
              "wall_seconds": time.perf_counter() - start, "summary": summary, "runs": runs, "anchors": ANCHORS,
              "note": "flowers-shift's target is a synthetic shift (grayscale + blur + half contrast) of the held-out "
                      "half of flowers5; target labels are used only to score"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=float))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
