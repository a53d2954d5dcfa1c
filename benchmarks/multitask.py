"""Multi-task heads: one two-head model against two single-task models on review sentences.

The data are the UCI sentiment sentences of Amazon and Yelp (../shared/datasets/sentiment/reviews,
1,000 each, "sentence<TAB>label"), combined into one table with two label columns: sentiment
(negative/positive) and domain (amazon/yelp). For each seed the table is split once (stratified by
the sentiment × domain combination: test 20 %, validation 10 % of the rest), and on that same split:
  two-head     TextClassifier(label_columns=["sentiment", "domain"]): one encoder, a head per column
  single       two TextClassifiers, one per label column, each with its own copy of the encoder
Reported: test accuracy and macro-F1 of each head, parameters (stored and trained), fit time, and
predict throughput on the test texts (texts/s; one `predict` call gives both heads of the two-head
model, the two single models are called one after the other), measured in the same process,
alternating, best of --repeats. No from-scratch control (`baseline=False`): it is not compared here.

    python benchmarks/multitask.py [--strategies linear-probe] [--seeds 0,1,2] [--epochs 2]
                                   [--task-weights none,uncertainty] [--repeats 3]

With fine-tune, --task-weights lists the two-head model's loss weightings to run ("none": every
head 1; "uncertainty": learned, Kendall et al. 2018; or "sentiment=1,domain=0.5"); a probe fits
each head on its own, so weights do not apply to it. Results: benchmarks/results/multitask.json.
"""
from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
import warnings
from pathlib import Path

import torch

from transferkit import TextClassifier
from transferkit.data.multitask import load_multitask_text
from transferkit.data.text import TextSamples, TextTableData

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "datasets" / "sentiment" / "reviews"
HEADS = ("sentiment", "domain")


def combined_table(data: Path, out: Path) -> Path:
    """amazon.txt and yelp.txt as one TSV: sentence, sentiment (negative/positive), domain (amazon/yelp)."""
    rows = ["sentence\tsentiment\tdomain"]
    for site in ("amazon", "yelp"):
        for line in (data / f"{site}.txt").read_text(encoding="utf-8").splitlines():
            if line.strip():
                text, label = line.rsplit("\t", 1)
                rows.append(f"{text.strip()}\t{'positive' if label.strip() == '1' else 'negative'}\t{site}")
    out.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return out


def single_task(data, head: str) -> TextTableData:
    """The two-head data set's split, labelled by one head only (the same texts in every split)."""
    def samples(s):
        return TextSamples(list(s.texts), list(s.targets[head]))

    return TextTableData(root=data.root, classes=data.heads[head], train=samples(data.train), val=samples(data.val),
                         test=samples(data.test), split={**data.split, "description": data.split["description"]
                                                         + f"; label column {head!r} only"},
                         columns={"text": data.columns["text"], "label": head})


def parameters(model: torch.nn.Module) -> dict[str, int]:
    return {"stored": sum(p.numel() for p in model.parameters()),
            "heads": sum(p.numel() for p in model.heads.parameters())}


def best_seconds(call, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


def fit_singles(data, common: dict) -> tuple[dict, dict]:
    """One single-task model per head on `data`'s split, and the fit time of each."""
    singles, seconds = {}, {}
    for head in HEADS:
        start = time.perf_counter()
        singles[head] = TextClassifier(**common).fit(single_task(data, head))
        seconds[head] = time.perf_counter() - start
    return singles, seconds


def run_seed(table: Path, seed: int, strategy: str, weights: str | None, epochs: int | None, repeats: int,
             batch_size: int, cache: dict) -> dict:
    """Both set-ups on one seed's split; the single-task models are fitted once per (strategy, seed)
    and reused by every loss weighting of the two-head model (`cache`)."""
    data = load_multitask_text(table, "sentence", list(HEADS), val_fraction=0.1, test_fraction=0.2, seed=seed)
    common = dict(strategy=strategy, seed=seed, epochs=epochs, batch_size=batch_size, progress=False, baseline=False)
    start = time.perf_counter()
    two = TextClassifier(label_columns=list(HEADS), task_weights=weights, **common).fit(data)
    two_seconds = time.perf_counter() - start
    metrics = two.evaluate()
    if (strategy, seed) not in cache:
        cache[(strategy, seed)] = fit_singles(data, common)
    singles, single_seconds = cache[(strategy, seed)]
    single_metrics = {head: clf.evaluate() for head, clf in singles.items()}

    texts = list(data.test.texts)
    for clf in (two, *singles.values()):  # warm-up: first-call costs (allocations, tokenizer caches)
        clf.predict(texts[:64])
    two_times, single_times = [], []
    for _ in range(repeats):  # alternating, so a slow spell of the machine hits both
        two_times.append(best_seconds(lambda: two.predict(texts), 1))
        single_times.append(best_seconds(lambda: [clf.predict(texts) for clf in singles.values()], 1))
    same_split = all(single_metrics[h]["n"] == metrics["heads"][h]["n"] for h in HEADS)
    two_params = parameters(two.model_)
    single_params = {h: parameters(clf.model_) for h, clf in singles.items()}
    return {
        "seed": seed, "split": {s: len(getattr(data, s)) for s in ("train", "val", "test")}, "same_split": same_split,
        "two_head": {
            "strategy": two.strategy_, "task_weights": weights,
            "accuracy": {h: metrics["heads"][h]["accuracy"] for h in HEADS},
            "macro_f1": {h: metrics["heads"][h]["macro_f1"] for h in HEADS},
            "fit_seconds": two_seconds, "parameters": two_params,
            "learned_loss_weights": two.strategy_settings_.get("learned_loss_weights"),
            "predict_seconds": min(two_times), "texts_per_second": len(texts) / min(two_times),
        },
        "single": {
            "strategy": {h: clf.strategy_ for h, clf in singles.items()},
            "accuracy": {h: single_metrics[h]["accuracy"] for h in HEADS},
            "macro_f1": {h: single_metrics[h]["macro_f1"] for h in HEADS},
            "fit_seconds": sum(single_seconds.values()), "fit_seconds_each": single_seconds,
            "parameters": {"stored": sum(p["stored"] for p in single_params.values()),
                           "heads": sum(p["heads"] for p in single_params.values())},
            "predict_seconds": min(single_times), "texts_per_second": len(texts) / min(single_times),
        },
    }


def summarise(runs: list[dict]) -> dict:
    def mean(values):
        values = list(values)
        return {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                "values": values}

    out = {}
    for model in ("two_head", "single"):
        out[model] = {
            "accuracy": {h: mean(r[model]["accuracy"][h] for r in runs) for h in HEADS},
            "macro_f1": {h: mean(r[model]["macro_f1"][h] for r in runs) for h in HEADS},
            "parameters": runs[0][model]["parameters"],
            "fit_seconds": mean(r[model]["fit_seconds"] for r in runs),
            "texts_per_second": mean(r[model]["texts_per_second"] for r in runs),
        }
    two, single = out["two_head"], out["single"]
    out["two_head_vs_single"] = {
        "accuracy_points": {h: 100 * (two["accuracy"][h]["mean"] - single["accuracy"][h]["mean"]) for h in HEADS},
        "parameter_ratio": two["parameters"]["stored"] / single["parameters"]["stored"],
        "throughput_ratio": two["texts_per_second"]["mean"] / single["texts_per_second"]["mean"],
        "fit_time_ratio": two["fit_seconds"]["mean"] / single["fit_seconds"]["mean"],
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--strategies", default="linear-probe")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=None, help="fine-tune epochs (default: the fine-tune rule)")
    parser.add_argument("--task-weights", default="none", help="two-head loss weightings for fine-tune, comma-separated "
                        "(none, uncertainty); one weighting with '=' pairs must be given alone")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "multitask.json")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    seeds = [int(s) for s in args.seeds.split(",")]
    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    results.update({"data": "amazon.txt + yelp.txt (UCI sentiment sentences), 2,000 sentences; heads: sentiment "
                            "(negative/positive) and domain (amazon/yelp)",
                    "backbone": "all-minilm-l6-v2", "threads": torch.get_num_threads(),
                    "split": "per seed: stratified by sentiment × domain, test 20 %, validation 10 % of the rest; "
                             "the single-task models use the same split",
                    "latency": "predict on the seed's test texts, best of "
                               f"{args.repeats} alternating runs; two-head: one call, single: both models in turn"})
    runs_out = results.setdefault("runs", {})

    def save() -> None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2, default=str))

    import tempfile

    cache: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        table = combined_table(args.data, Path(tmp) / "reviews.tsv")
        for strategy in args.strategies.split(","):
            weightings = [None] if strategy == "linear-probe" else \
                [None if w == "none" else w for w in args.task_weights.split(",")] if "=" not in args.task_weights \
                else [args.task_weights]
            for weights in weightings:
                key = strategy + (f" ({weights})" if weights else "")
                runs = []
                for seed in seeds:
                    run = run_seed(table, seed, strategy, weights, args.epochs, args.repeats, args.batch_size, cache)
                    runs.append(run)
                    two, single = run["two_head"], run["single"]
                    print(f"{key:28s} seed {seed}: two-head acc " + ", ".join(f"{h} {two['accuracy'][h]:.3f}" for h in HEADS)
                          + " | single " + ", ".join(f"{h} {single['accuracy'][h]:.3f}" for h in HEADS)
                          + f" | {two['texts_per_second']:.0f} vs {single['texts_per_second']:.0f} texts/s"
                          + f" | fit {two['fit_seconds']:.0f} vs {single['fit_seconds']:.0f} s", flush=True)
                runs_out[key] = {"seeds": seeds, "epochs": args.epochs if strategy != "linear-probe" else None,
                                 "command": "python benchmarks/multitask.py --strategies " + strategy
                                 + f" --seeds {args.seeds}" + (f" --epochs {args.epochs}" if args.epochs else "")
                                 + (f" --task-weights {args.task_weights}" if strategy != "linear-probe" else ""),
                                 "runs": runs, "summary": summarise(runs)}
                save()

    print("\ntwo-head vs two single-task models (mean over seeds)")
    for key, entry in runs_out.items():
        s = entry["summary"]
        ratio = s["two_head_vs_single"]
        print(f"  {key} (seeds {', '.join(map(str, entry['seeds']))})")
        for h in HEADS:
            print(f"    {h:10s} accuracy two-head {s['two_head']['accuracy'][h]['mean']:.3f} ± "
                  f"{s['two_head']['accuracy'][h]['std']:.3f}   single {s['single']['accuracy'][h]['mean']:.3f} ± "
                  f"{s['single']['accuracy'][h]['std']:.3f}   ({ratio['accuracy_points'][h]:+.1f} points)")
        print(f"    parameters {s['two_head']['parameters']['stored']:,} vs {s['single']['parameters']['stored']:,} "
              f"(×{ratio['parameter_ratio']:.2f});  predict {s['two_head']['texts_per_second']['mean']:.0f} vs "
              f"{s['single']['texts_per_second']['mean']:.0f} texts/s (×{ratio['throughput_ratio']:.2f});  "
              f"fit time ×{ratio['fit_time_ratio']:.2f}")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
