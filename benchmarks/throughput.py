"""Throughput benchmark: transferkit's fine-tuning and prediction paths against a plain PyTorch loop.

The same model (EfficientNet-Lite0 + a linear head), the same images (a class-balanced slice of
flowers5, split by transferkit with seed 0), the same `ImageDataset` and transforms (no
augmentation; decoded images cached across epochs as the estimator caches them), the same batch
size, optimiser work (AdamW on every parameter, one-cycle schedule, gradient clipping at 1.0,
label-smoothed cross-entropy, batch-norm statistics frozen: what strategy `full` does) and the same
precision, channels_last and compilation. Each row runs both in one process, one after the other.

- training images/s: training images per second of an epoch (its training steps and its
  validation pass, in both loops), median over the epochs after the first (the first decodes the
  images and, with compile, compiles); the whole run's wall time is recorded too.
- inference images/s: `ImageClassifier.predict_proba` on the test images (no flip averaging)
  against a DataLoader + forward + softmax loop over the same images, batch 64, float32 (the
  estimator predicts in float32), each from a fresh dataset (JPEG decoding included), best of 2.

Each row repeats the pair (`--repeats`, default 2), alternating which loop goes first, and reports
medians and the ratio of each pair: the cores may be shared, and only ratios measured side by
side are compared. On a CPU (one thread) images per CPU-second are reported too: the process's
CPU time counts its own work only, while wall time also counts the neighbours' load (the
estimator's epochs are timed by instrumenting its history callback with `time.process_time`).

On a CPU (the default: 64 px, 60 images per class, 1 thread) one row: precision 32, compile off.
On a CUDA GPU (unchanged command; 224 px, all of flowers5 by default) rows bf16-mixed +
channels_last with compile off and on, and 32 (all channels_last). Writes benchmarks/results/throughput.json
(device, threads, load average before and after).

    python benchmarks/throughput.py [--data ../shared/datasets/flowers5] [--per-class 60] [--size 64]
        [--epochs 3] [--batch 32] [--threads 1] [--workers 0] [--compile] [--repeats 2]
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import tempfile
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = Path(os.environ.get("TRANSFERKIT_SHARED", HERE.parent.parent / "shared")) / "datasets" / "flowers5"
BACKBONE = "efficientnet_lite0"


def data_slice(data: Path, per_class: int | None, out: Path) -> Path:
    """The first `per_class` images of each class folder, linked into `out` (all with None)."""
    if per_class is None:
        return data
    for folder in sorted(p for p in data.iterdir() if p.is_dir()):
        target = out / folder.name
        target.mkdir(parents=True, exist_ok=True)
        for image in sorted(folder.iterdir())[:per_class]:
            (target / image.name).symlink_to(image.resolve())
    return out


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def transferkit_run(data: Path, args, precision: str, compiled: bool) -> dict:
    """Fine-tune with the estimator (strategy full, fixed epochs, no early stop) and predict."""
    from transferkit import ImageClassifier
    from transferkit.strategies import training

    cpu_seconds: list[float] = []

    class CpuTimed(training.HistoryRecorder):
        """The estimator's history, plus the process CPU time of each epoch (same span as its seconds)."""

        def on_train_epoch_start(self, trainer, pl_module) -> None:
            super().on_train_epoch_start(trainer, pl_module)
            self._cpu_start = time.process_time()

        def on_train_epoch_end(self, trainer, pl_module) -> None:
            super().on_train_epoch_end(trainer, pl_module)
            cpu_seconds.append(time.process_time() - self._cpu_start)

    recorder, training.HistoryRecorder = training.HistoryRecorder, CpuTimed  # instrumentation only
    est = ImageClassifier(backbone=BACKBONE, strategy="full", epochs=args.epochs, batch_size=args.batch,
                          image_size=args.size, augment="none", tta=False, baseline=False, memory=0, progress=False,
                          num_workers=args.workers, seed=0, precision=precision, compile=compiled,
                          val_fraction=0.1, test_fraction=0.2)
    try:
        est.fit(data)
    finally:
        training.HistoryRecorder = recorder
    history = est.history_
    assert len(history) == args.epochs, "the benchmark needs every epoch run (no early stop)"
    n_train = len(est.data_.train.paths)
    steps = n_train // args.batch if n_train > args.batch else 1
    trained = steps * args.batch if n_train > args.batch else n_train
    epoch_seconds = [row["seconds"] for row in history]
    test = list(est.data_.test.paths)
    predict, predict_cpu = [], []
    for _ in range(2):
        start, cpu = time.perf_counter(), time.process_time()
        est.predict_proba(test)
        predict.append(time.perf_counter() - start)
        predict_cpu.append(time.process_time() - cpu)
    return {"images_trained_per_epoch": trained, "epoch_seconds": epoch_seconds, "epoch_cpu_seconds": cpu_seconds,
            "predict_cpu_seconds": predict_cpu,
            "run_seconds": est.timings_["fine-tuning"], "predict_seconds": predict, "test_images": len(test),
            "compute": est.compute_, "split": est.data_, "preprocessing": est.preprocessing_}


def plain_run(split, preprocessing, args, precision: str, compiled: bool, channels_last: bool) -> dict:
    """The same work as a hand-written PyTorch loop."""
    import torch
    import torch.nn.functional as F
    from torch import nn
    from torch.utils.data import DataLoader

    from transferkit.backbones import create_backbone
    from transferkit.data.datasets import ImageDataset
    from transferkit.data.transforms import eval_transform

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    backbone = create_backbone(BACKBONE, modality="image")
    model = nn.Sequential(backbone.model, nn.Linear(backbone.num_features, len(split.classes))).to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    transform = eval_transform(preprocessing, args.size)
    cuda = device.type == "cuda"

    def loader(samples, shuffle: bool, batch: int):
        dataset = ImageDataset(samples.paths, samples.labels, transform, cache_side=args.size)
        return DataLoader(dataset, batch_size=batch, shuffle=shuffle, drop_last=shuffle and len(dataset) > batch,
                          num_workers=args.workers, persistent_workers=args.workers > 0, pin_memory=cuda,
                          generator=torch.Generator().manual_seed(0) if shuffle else None)

    train, val = loader(split.train, True, args.batch), loader(split.val, False, args.batch)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.05)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-4, total_steps=args.epochs * len(train),
                                                   pct_start=0.1)
    forward = torch.compile(model) if compiled else model
    dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(precision)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "16-mixed")
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]

    def batch_to(x, y):
        x = x.to(device, non_blocking=True)
        return (x.contiguous(memory_format=torch.channels_last) if channels_last else x), y.to(device, non_blocking=True)

    epoch_seconds, epoch_cpu = [], []
    for _ in range(args.epochs):
        sync(device)
        start, cpu = time.perf_counter(), time.process_time()
        model.train()
        for m in norms:  # pretrained running statistics stay, as transferkit's freeze_bn_stats keeps them
            m.eval()
        for x, y in train:
            x, y = batch_to(x, y)
            with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                loss = F.cross_entropy(forward(x), y, label_smoothing=0.1)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            scaler.step(optimizer)
            scaler.update()
            schedule.step()
        model.eval()
        with torch.inference_mode(), torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            total = sum(float(F.cross_entropy(forward(x), y, reduction="sum")) for x, y in map(lambda b: batch_to(*b), val))
        assert total == total  # a NaN would mean the loop did not train
        sync(device)
        epoch_seconds.append(time.perf_counter() - start)
        epoch_cpu.append(time.process_time() - cpu)
    predict, predict_cpu = [], []
    for _ in range(2):  # as `predict_proba`: float32, eager, a fresh dataset (decoding included), batch 64
        sync(device)
        start, cpu = time.perf_counter(), time.process_time()
        with torch.inference_mode():
            out = [torch.softmax(model(batch_to(x, y)[0]).float(), 1).cpu() for x, y in loader(split.test, False, 64)]
        sync(device)
        predict.append(time.perf_counter() - start)
        predict_cpu.append(time.process_time() - cpu)
        assert sum(len(o) for o in out) == len(split.test.paths)
    return {"epoch_seconds": epoch_seconds, "predict_seconds": predict, "epoch_cpu_seconds": epoch_cpu,
            "predict_cpu_seconds": predict_cpu}


def steady(seconds: list[float]) -> float:
    """Median epoch time after the first (decoding, compilation)."""
    return statistics.median(seconds[1:] if len(seconds) > 1 else seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--per-class", type=int, default=None, help="images per class (default: 60 on CPU, all on GPU)")
    parser.add_argument("--size", type=int, default=None, help="image side in px (default: 64 on CPU, 224 on GPU)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=None, help="batch size (default: 32 on CPU, 64 on GPU)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workers", type=int, default=None, help="loader workers (default: 0 on CPU, 4 on GPU)")
    parser.add_argument("--compile", action="store_true", help="on a CPU, add a compile-on row (slow to compile)")
    parser.add_argument("--repeats", type=int, default=2, help="pairs of runs per row, alternating which goes first")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "throughput.json")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    cuda = torch.cuda.is_available()
    args.per_class = args.per_class if args.per_class is not None else (None if cuda else 60)
    args.size = args.size or (224 if cuda else 64)
    args.batch = args.batch or (64 if cuda else 32)
    args.workers = args.workers if args.workers is not None else (4 if cuda else 0)
    if cuda:
        bf16 = "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
        rows = [("32", False), (bf16, False), (bf16, True)]
        device = torch.cuda.get_device_name(0)
    else:
        rows = [("32", False)] + ([("32", True)] if args.compile else [])
        device = f"CPU ({platform.processor() or platform.machine()}), {args.threads} thread(s)"
    load_before = os.getloadavg()
    results = []
    with tempfile.TemporaryDirectory(prefix="throughput-") as tmp:
        data = data_slice(args.data, args.per_class, Path(tmp) / "flowers")
        for precision, compiled in rows:
            pairs, first = [], None
            for repeat in range(args.repeats):
                # the two loops alternate which goes first, so a load that rises or falls during a
                # pair does not always favour the same one (the plain loop reuses the estimator's split)
                if repeat % 2 == 0:
                    ours = transferkit_run(data, args, precision, compiled)
                    first = first or ours
                    plain = plain_run(first["split"], first["preprocessing"], args, precision, compiled,
                                      first["compute"]["channels_last"])
                else:
                    plain = plain_run(first["split"], first["preprocessing"], args, precision, compiled,
                                      first["compute"]["channels_last"])
                    ours = transferkit_run(data, args, precision, compiled)
                pairs.append((ours, plain))
            channels_last = bool(first["compute"]["channels_last"])
            for ours, _ in pairs:  # not JSON
                ours.pop("split", None), ours.pop("preprocessing", None)
            n = pairs[0][0]["images_trained_per_epoch"]
            tests = pairs[0][0]["test_images"]
            train = [(n / steady(o["epoch_seconds"]), n / steady(p["epoch_seconds"])) for o, p in pairs]
            infer = [(tests / min(o["predict_seconds"]), tests / min(p["predict_seconds"])) for o, p in pairs]

            def summary(values):
                ours_, plain_ = statistics.median(v[0] for v in values), statistics.median(v[1] for v in values)
                return {"transferkit": round(ours_, 2), "plain_pytorch": round(plain_, 2),
                        "ratio": round(statistics.median(o / p for o, p in values), 3),
                        "ratio_per_repeat": [round(o / p, 3) for o, p in values]}

            row = {"precision": precision, "compile": compiled, "channels_last": channels_last,
                   "train_images_per_s": summary(train), "inference_images_per_s": summary(infer),
                   "repeats": [{"transferkit": o, "plain_pytorch": p} for o, p in pairs]}
            if not cuda:  # one thread on shared cores: CPU time measures the work, wall time the neighbours too
                row["train_images_per_cpu_s"] = summary(
                    [(n / steady(o["epoch_cpu_seconds"]), n / steady(p["epoch_cpu_seconds"])) for o, p in pairs])
                row["inference_images_per_cpu_s"] = summary(
                    [(tests / min(o["predict_cpu_seconds"]), tests / min(p["predict_cpu_seconds"])) for o, p in pairs])
            results.append(row)
            train_ours, train_plain = row["train_images_per_s"]["transferkit"], row["train_images_per_s"]["plain_pytorch"]
            infer_ours, infer_plain = (row["inference_images_per_s"]["transferkit"],
                                       row["inference_images_per_s"]["plain_pytorch"])
            print(f"{precision:>10} compile={'on ' if compiled else 'off'} channels_last={channels_last!s:5} | "
                  f"train {train_ours:7.1f} vs {train_plain:7.1f} img/s (x{row['train_images_per_s']['ratio']:.2f}) | "
                  f"inference {infer_ours:7.1f} vs {infer_plain:7.1f} img/s "
                  f"(x{row['inference_images_per_s']['ratio']:.2f}); medians of {args.repeats} alternating pairs",
                  flush=True)
            if not cuda:
                t, i = row["train_images_per_cpu_s"], row["inference_images_per_cpu_s"]
                print(f"{'per CPU-second':>40} | train {t['transferkit']:7.1f} vs {t['plain_pytorch']:7.1f} img/s "
                      f"(x{t['ratio']:.2f}) | inference {i['transferkit']:7.1f} vs {i['plain_pytorch']:7.1f} img/s "
                      f"(x{i['ratio']:.2f})", flush=True)
    report = {
        "benchmark": "throughput: transferkit fine-tune (strategy full) and predict vs a plain PyTorch loop",
        "device": device, "torch": torch.__version__, "threads": args.threads,
        "load_average_before": load_before, "load_average_after": os.getloadavg(), "cpu_count": os.cpu_count(),
        "config": {"backbone": BACKBONE, "data": str(args.data), "per_class": args.per_class, "image_size": args.size,
                   "epochs": args.epochs, "batch_size": args.batch, "workers": args.workers, "repeats": args.repeats},
        "rows": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, default=str))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
