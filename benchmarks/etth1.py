"""ETTh1 forecasting benchmark, every model trained through the package API (`Forecaster`).

Standard long-horizon protocol (Informer/PatchTST): ETT split 12/4/4 months, lookback 336,
horizon 96, standardised with training statistics, MSE/MAE on that scale over every test window.
Backbone `patchtst-small` (the authors' ETTh1 config, d_model 16); package defaults otherwise.

    (a) multivariate (7 series) from scratch; its report gives the baselines (seasonal naive,
        naive last value, DLinear reading each window relative to its last value)
    (b) univariate OT from scratch
    (c) transfer inside ETTh1: pretrain on rows [0, 5760) (first 8 months; the package splits that
        table 70/10/20 itself), then train on the most recent 10 % of the 12-month training segment
        (864 rows; statistics of the whole segment) and score on the standard test windows:
        (c0) pretrained model, no adaptation; (c1) auto (fine-tune, head carried over, pretrained
        weights kept if fine-tuning does not lower the validation MSE); (c2) linear probe;
        (c3) from scratch; plus the baselines fit on the same 10 %.

Prints a table and writes benchmarks/results/etth1.json (--quick: a smoke test, 1 epoch and
lookback 96, written to the temp folder). About 15 minutes on one CPU thread:

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python benchmarks/etth1.py [--quick] [--runs a,b,c]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from transferkit import Forecaster, load_run
from transferkit.data.timeseries import WindowDataset, load_series_csv
from transferkit.tasks.forecast_metrics import forecast_metrics

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = Path("/work/shared/datasets/timeseries/ETTh1.csv")
HORIZON, PRETRAIN_ROWS = 96, 5760  # 8 months of 30 days
ANCHORS = {
    "closed-form ridge linear map, multivariate (mse, mae)": [0.370, 0.392],
    "closed-form ridge linear map, OT only (mse, mae)": [0.058, 0.180],
    "published PatchTST/64 multivariate (mse, mae)": [0.370, 0.400],
    "published DLinear multivariate mse (range)": [0.375, 0.386],
}


def fit(label: str, data, **params) -> tuple[Forecaster, float]:
    """A Forecaster fit on `data`, and the wall-clock seconds of `fit` (baselines included)."""
    print(f"{label} ...", flush=True)
    start = time.perf_counter()
    model = Forecaster(progress=False, **params).fit(data)
    return model, time.perf_counter() - start


def record(model: Forecaster, seconds: float, metrics: dict | None = None) -> dict:
    """The run's test metrics (its own evaluate() unless given) and what the package decided."""
    metrics = metrics or model.evaluate()
    return {"mse": metrics["mse"], "mae": metrics["mae"], "mase": metrics["mase"], "fit_seconds": seconds,
            "strategy_": model.strategy_, "notes_": model.notes_, "history_length": len(model.history_),
            "timings_": model.timings_, "split": model.split_["description"],
            "decisions_": [list(d) for d in model.decisions_], "baselines": metrics.get("baselines"),
            "gain_over_best_baseline": metrics.get("gain_over_best_baseline"),
            "baseline_check": metrics.get("baseline_check"), "transfer": metrics.get("transfer"),
            "per_channel": metrics["per_channel"]}


def unadapted(pretrained_dir: Path, reference: Forecaster) -> dict:
    """(c0) The pretrained run scored on `reference`'s test windows and scale: its forecasts are
    made on its own scale (statistics of its pretraining rows), de-standardised with those, then
    re-standardised with the reference's 12-month statistics."""
    run = load_run(pretrained_dir)
    table = reference.data_.table
    values = run.scaler_.transform(table.values[:, [table.columns.index(c) for c in run.channels_]])
    windows = WindowDataset(values, run.lookback_, run.horizon_, *reference.split_["test"])
    pred = reference.scaler_.transform(run.scaler_.inverse_transform(run._forecast(windows)))
    true = reference.windows_["test"].arrays()[1].numpy()
    train = reference.data_.values[slice(*reference.split_["train"])]
    return forecast_metrics(pred, true, train, reference.season_, reference.channels_)


def transfer_runs(data: Path, common: dict) -> dict[str, dict]:
    """(c): pretrain on the first 8 months, then adapt on 10 % of the training year (c0-c3)."""
    runs: dict[str, dict] = {}
    table = load_series_csv(data)
    first_months = dataclasses.replace(table, values=table.values[:PRETRAIN_ROWS], times=table.times[:PRETRAIN_ROWS])
    pre, pre_seconds = fit(f"(c) pretraining on rows [0, {PRETRAIN_ROWS})", first_months, **common)
    with tempfile.TemporaryDirectory() as tmp:
        pre_dir = pre.save(Path(tmp) / "pretrained")
        transfer = {k: v for k, v in common.items() if k != "backbone"}
        c1, s1 = fit("(c1) auto from the pretrained run, 10 %", data, backbone=str(pre_dir),
                     train_fraction=0.1, **transfer)
        c2, s2 = fit("(c2) linear probe from the pretrained run, 10 %", data, backbone=str(pre_dir),
                     strategy="linear-probe", train_fraction=0.1, **transfer)
        c0 = unadapted(pre_dir, c1)
    c3, s3 = fit("(c3) from scratch, 10 %", data, train_fraction=0.1, **common)
    runs["(c0) pretrained on 8 months, no adaptation"] = {
        **record(pre, pre_seconds, c0),
        "meaning": "the pretraining run itself (fit_seconds, history and notes are the pretraining's), scored "
                   "on the standard test windows on the 12-month training scale of c1-c3"}
    runs["(c1) pretrained + auto (fine-tune), 10 %"] = record(c1, s1)
    runs["(c2) pretrained + linear probe, 10 %"] = record(c2, s2)
    runs["(c3) from scratch, 10 %"] = record(c3, s3)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--backbone", default="patchtst-small")
    parser.add_argument("--quick", action="store_true", help="smoke test: 1 epoch per run, lookback 96")
    parser.add_argument("--runs", default="a,b,c", help="which of the runs (a), (b), (c) to do, e.g. --runs b "
                        "(default all; a subset writes benchmarks/results/etth1_<runs>.json)")
    parser.add_argument("--out", type=Path, default=None, help="default benchmarks/results/etth1.json")
    args = parser.parse_args()
    chosen = {r.strip() for r in args.runs.split(",") if r.strip()}
    if not chosen or chosen - {"a", "b", "c"}:
        parser.error(f"--runs {args.runs!r}: a comma-separated subset of a, b, c")
    torch.set_num_threads(1)  # shared 2-core machine; timings are single-threaded
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # no per-fit banner
    name = "etth1" if chosen == {"a", "b", "c"} else "etth1_" + "".join(sorted(chosen))
    out = args.out or (Path(tempfile.gettempdir()) / f"{name}_quick.json" if args.quick
                       else HERE / "results" / f"{name}.json")
    common = dict(backbone=args.backbone, horizon=HORIZON, lookback=96 if args.quick else 336,
                  epochs=1 if args.quick else None)
    started = time.perf_counter()
    runs: dict[str, dict] = {}

    if "a" in chosen:
        a, seconds = fit("(a) multivariate from scratch", args.data, **common)
        runs["(a) multivariate, from scratch"] = record(a, seconds)
    if "b" in chosen:
        b, seconds = fit("(b) OT only from scratch", args.data, target="OT", **common)
        runs["(b) OT only, from scratch"] = record(b, seconds)
    if "c" in chosen:
        runs.update(transfer_runs(args.data, common))
    total = time.perf_counter() - started

    rows = []
    for name, run in runs.items():
        rows.append((name, run["mse"], run["mae"], run["mase"], f"{run['fit_seconds']:.0f}"))
        if name[:3] in ("(a)", "(b)", "(c3"):
            rows += [(f"    baseline: {k}", m["mse"], m["mae"], m["mase"], "-") for k, m in run["baselines"].items()]
    print(f"\n{'run':<52}{'MSE':>8}{'MAE':>8}{'MASE':>8}{'fit s':>8}")
    for name, mse, mae, mase, secs in rows:
        print(f"{name:<52}{mse:>8.4f}{mae:>8.4f}{mase:>8.3f}{secs:>8}")
    print("anchors: " + "; ".join(f"{k} {v[0]:.3f}/{v[1]:.3f}" for k, v in ANCHORS.items()))
    print(f"total {total / 60:.1f} min")

    env = " ".join(f"{k}={os.environ[k]}" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ)
    results = {
        "command": f"{env} python {' '.join(sys.argv)}".strip(), "data": str(args.data),
        "backbone": args.backbone, "lookback": common["lookback"], "horizon": HORIZON, "quick": args.quick,
        "threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine(),
        "total_seconds": total, "pretrain_rows": [0, PRETRAIN_ROWS], "train_fraction_c": 0.1,
        "metrics": "MSE/MAE on the standardised scale (training-segment statistics), MASE against the "
                   "in-sample seasonal-naive error of each run's training rows; all (c) runs on the same scale",
        "anchors": ANCHORS, "runs": runs,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=float))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
