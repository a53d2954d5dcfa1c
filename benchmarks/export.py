"""Edge export benchmark: PyTorch eager vs ONNX fp32 vs ONNX int8 on flowers5.

The image run is fitted once (cached in /.bench_data/export/run; `--run RUN` uses another): the
default backbone (EfficientNet-Lite0) fine-tuned at 128 px, as benchmarks/flowers5.py does (the
strategy `auto` picks for 4,317 images, at 128 px instead of the native 224 to keep the fit on a
CPU short: 4 epochs, about 11 minutes on 2 busy cores, once; later runs reuse the cache and take
about 3 minutes), stratified split with seed 0 (863 test images), no from-scratch control. `transferkit export RUN --quantize int8` then writes the fp32 and int8 files (its verdict
is reported as is; it chooses its int8 variant on the validation split), and every int8 variant
it measured is measured again here on the test split, with for reference what it did not need:
8-bit weights (the int16 saturation of x86 CPUs without VNNI) and the layers measured most
sensitive kept in float.

For each model: file size (MB), latency p50/p95 at batch 1 and throughput at batch 32 on 2
threads (the same preprocessed test images for all), and flowers5 test accuracy (PyTorch: the
estimator's `evaluate`; ONNX: `transferkit.runtime` from the image files). Every model computes
the same thing: normalisation, flip average (the run predicts with it) and softmax; PyTorch eager
runs the export's own wrapper module. Ratios are printed against the issue's goals: int8 ≥ 3.5×
smaller than fp32, faster than eager, ≤ 1 point of accuracy lost. Writes benchmarks/results/export.json.

    python benchmarks/export.py [--data ../shared/datasets/flowers5] [--run RUN] [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = Path(os.environ.get("TRANSFERKIT_SHARED", HERE.parent.parent / "shared")) / "datasets" / "flowers5"
CACHE = HERE.parent / ".bench_data" / "export"
GOALS = {"int8_size_ratio_at_least": 3.5, "int8_faster_than_eager": True, "points_lost_at_most": 1.0}


def fit_run(data: Path, run: Path) -> Path:
    """The benchmark's image run (fitted once, then reused from `run`)."""
    from transferkit import ImageClassifier

    if (run / "config.json").is_file():
        return run
    start = time.perf_counter()
    est = ImageClassifier(strategy="fine-tune", image_size=128, baseline=False, progress=False, memory=0, seed=0)
    est.fit(data)
    est.evaluate()
    est.save(run)
    print(f"fitted {run} in {time.perf_counter() - start:.0f} s")
    return run


def timed(call, batch: np.ndarray, repeats: int) -> list[float]:
    call(batch)  # warm-up: first-call allocations and kernel selection
    call(batch)
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        call(batch)
        out.append(time.perf_counter() - start)
    return out


def speed(call, images: np.ndarray) -> dict:
    """Latency p50/p95 (ms) at batch 1 over 100 calls, throughput (images/s) at batch 32 over 10 calls."""
    single = sorted(timed(call, images[:1], 100))
    many = timed(call, images[:32], 10)
    return {"latency_ms_p50": 1000 * statistics.median(single), "latency_ms_p95": 1000 * single[int(0.95 * len(single)) - 1],
            "throughput_batch32_per_s": 32 / statistics.median(many)}


def onnx_accuracy(path: Path, paths: list, labels: np.ndarray, threads: int) -> float:
    from transferkit.runtime import OnnxPredictor

    model = OnnxPredictor.load(path, threads=threads)
    return float((model.predict_proba(paths).argmax(1) == labels).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--run", type=Path, default=CACHE / "run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "export.json")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    import onnxruntime as ort
    import torch

    from transferkit.export import export_run
    from transferkit.export.graphs import ImageGraph, merged_copy, static_same_padding
    from transferkit.export.onnx_export import CALIBRATION_SAMPLES, EXPORTS_FILE, _ImageExport, _write_metadata
    from transferkit.export.quantize import (Variant, first_variant, layer_sensitivity, prepare, quantize_static_qdq,
                                             sensitivity_variants)
    from transferkit.runtime import OnnxPredictor
    from transferkit.runtime.images import image_batch
    from transferkit.tasks import load_run
    from transferkit.tasks.growth import recorded_splits

    torch.set_num_threads(args.threads)
    run = fit_run(args.data, args.run)
    est = load_run(run)
    splits = recorded_splits(est)
    index = {c: i for i, c in enumerate(est.classes_)}
    test_paths, test_labels = splits["test"][0], np.array([index[c] for c in splits["test"][1]])
    size, pre = est.image_size_, est.preprocessing_
    images = image_batch(test_paths[:32], size, pre.interpolation)

    start = time.perf_counter()
    result = export_run(run, quantize="int8", max_drop=0.01, threads=args.threads)
    export_seconds = time.perf_counter() - start
    records = {e["precision"]: e for e in result.exports}
    fp32_path = run / "model.onnx"

    def session(path: Path):
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = args.threads, 1
        s = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return lambda x: s.run(None, {"pixels": x})

    eager_module = ImageGraph(static_same_padding(merged_copy(est.model_), torch.zeros(1, 3, size, size)),
                              pre.mean, pre.std, est.tta).eval()

    def eager(x: np.ndarray):
        with torch.inference_mode():
            return eager_module(torch.from_numpy(x))

    models = {"pytorch eager": {"size_mb": (run / "model.safetensors").stat().st_size / 1e6,
                                "accuracy": float(est.metrics_["accuracy"]), **speed(eager, images)}}
    models["onnx fp32"] = {"size_mb": fp32_path.stat().st_size / 1e6, "accuracy": records["fp32"]["score"]["value"],
                           **speed(session(fp32_path), images)}

    # every int8 variant the export measured (chosen on the validation split; figures here on test),
    # then for reference what it did not need: full 8-bit weights (saturating int16 sums on x86 CPUs
    # without VNNI) and the layers measured most sensitive kept in float
    kept = records["int8"]
    feeds = _ImageExport(est, run, None).calibration(CALIBRATION_SAMPLES)  # what the export calibrated on
    meta = OnnxPredictor.load(fp32_path).meta
    test_images = image_batch(test_paths, size, pre.interpolation)
    variants = []

    def measure(name: str, path: Path, **extra) -> dict:
        s = session(path)
        proba = np.concatenate([s(test_images[i:i + 64])[0] for i in range(0, len(test_images), 64)])
        return {"variant": name, **extra, "size_mb": path.stat().st_size / 1e6,
                "accuracy": float((proba.argmax(1) == test_labels).mean()), **speed(s, images)}

    with tempfile.TemporaryDirectory() as scratch:
        prepared = prepare(fp32_path, Path(scratch) / "prepared.onnx")
        for n, tried in enumerate(kept["variants"]):
            variant = Variant(tried["variant"], tried.get("excluded", []))
            path = quantize_static_qdq(prepared, Path(scratch) / f"int8-{n}.onnx", feeds, variant)
            variants.append(measure(variant.name, path, source="export", excluded_nodes=len(variant.exclude),
                                    val_accuracy=tried.get("score"), kept=variant.name == kept.get("variant")
                                    and kept["status"] == "ok"))
        path = quantize_static_qdq(prepared, Path(scratch) / "int8-8bit.onnx", feeds, first_variant(),
                                   reduce_range=False)
        variants.append(measure("all layers int8, 8-bit weights (reduce_range off)", path, source="reference",
                                excluded_nodes=0, kept=False))
        base = quantize_static_qdq(prepared, Path(scratch) / "int8-base.onnx", feeds, first_variant())
        ranking = layer_sensitivity(prepared, base, feeds[:4], threads=args.threads)
        for n, variant in enumerate(sensitivity_variants(ranking)):
            if any(v["variant"] == variant.name for v in variants):
                continue
            path = quantize_static_qdq(prepared, Path(scratch) / f"int8-s{n}.onnx", feeds, variant)
            variants.append(measure(variant.name, path, source="reference", excluded_nodes=len(variant.exclude),
                                    kept=False))
    int8_path = run / "model.int8.onnx"
    if kept["status"] == "ok":
        models["onnx int8"] = {"size_mb": int8_path.stat().st_size / 1e6, "accuracy": kept["score"]["value"],
                               "variant": kept["variant"], **speed(session(int8_path), images)}
    else:  # refused: the first variant's figures, marked as not kept
        models["onnx int8"] = {**{k: v for k, v in variants[0].items() if k != "excluded_nodes"}, "kept": False}

    int8, fp32, torch_eager = models["onnx int8"], models["onnx fp32"], models["pytorch eager"]
    ratios = {
        "int8_size_ratio_vs_fp32": fp32["size_mb"] / int8["size_mb"],
        "int8_speedup_vs_eager_batch1_p50": torch_eager["latency_ms_p50"] / int8["latency_ms_p50"],
        "int8_speedup_vs_eager_batch32": int8["throughput_batch32_per_s"] / torch_eager["throughput_batch32_per_s"],
        "fp32_speedup_vs_eager_batch1_p50": torch_eager["latency_ms_p50"] / fp32["latency_ms_p50"],
        "int8_points_lost_vs_fp32": 100 * (fp32["accuracy"] - int8["accuracy"]),
        "fp32_points_lost_vs_eager": 100 * (torch_eager["accuracy"] - fp32["accuracy"]),
    }
    met = {"int8 ≥ 3.5× smaller than fp32": ratios["int8_size_ratio_vs_fp32"] >= GOALS["int8_size_ratio_at_least"],
           "int8 faster than eager (batch 1 p50 and batch 32)": ratios["int8_speedup_vs_eager_batch1_p50"] > 1
           and ratios["int8_speedup_vs_eager_batch32"] > 1,
           "≤ 1 point lost": ratios["int8_points_lost_vs_fp32"] <= GOALS["points_lost_at_most"]}

    print(f"{'model':<16}{'MB':>8}{'p50 ms':>9}{'p95 ms':>9}{'img/s@32':>10}{'accuracy':>10}")
    for name, m in models.items():
        print(f"{name:<16}{m['size_mb']:>8.2f}{m['latency_ms_p50']:>9.2f}{m['latency_ms_p95']:>9.2f}"
              f"{m['throughput_batch32_per_s']:>10.1f}{100 * m['accuracy']:>9.1f}%")
    print("int8 variants (test accuracy; the export chose on validation):")
    for v in variants:
        print(f"  {v['variant']:<52}{v['source']:>10}{' kept' if v['kept'] else '':>6}{v['size_mb']:>7.2f} MB "
              f"{v['latency_ms_p50']:>7.2f} ms {100 * v['accuracy']:>6.1f}%")
    print(f"export verdict: int8 {kept['status']}" + (f" ({kept['variant']})" if kept["status"] == "ok" else
                                                     f": {kept.get('reason')}"))
    for name, value in ratios.items():
        print(f"  {name}: {value:.2f}")
    for goal, ok in met.items():
        print(f"  goal {goal}: {'met' if ok else 'NOT met'}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "data": str(args.data), "run": {"strategy": est.strategy_, "backbone": est.backbone_info_["name"],
                                        "image_size": size, "tta": est.tta, "test_images": len(test_paths),
                                        "test_accuracy": est.metrics_["accuracy"]},
        "threads": args.threads, "load_average": os.getloadavg(), "onnxruntime": ort.__version__,
        "torch": torch.__version__, "export_seconds": export_seconds, "models": models, "int8_variants": variants,
        "layer_sensitivity": [r.record() for r in ranking[:12]],
        "export_verdict": {k: kept.get(k) for k in ("status", "variant", "reason", "loss", "max_drop")},
        "exports_json": json.loads((run / EXPORTS_FILE).read_text()), "ratios": ratios, "goals": GOALS,
        "goals_met": met}, indent=2, default=float))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
