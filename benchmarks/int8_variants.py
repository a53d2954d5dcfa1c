"""What each int8 variant costs on the default runs, on held-out examples: accuracy (counts), size, latency.

  image   the default image run: `ImageClassifier()` on 300 flowers5 images (60 per class, seeded);
          below 400 images it is a cross-validated linear probe, so the run holds no held-out images:
          500 other flowers5 images (100 per class) score every variant instead
  text    the default text run: `TextClassifier()` on amazon.txt (1,000 review sentences), scored on
          the run's own test split; `transferkit export --quantize int8` runs first, as a user runs it

Variants (static QDQ for images, dynamic for text; 7-bit weights): all layers int8; the head in
float; the head and the first (stem) layer in float (images), the first and last matrix products or
blocks (text); 256 calibration images instead of 64 (images). Latency: p50 of 30 calls at batch 1 on
2 threads (a shared machine: compare within one run only). Writes benchmarks/results/int8_variants.json
(the task's entry).

    python benchmarks/int8_variants.py image|text [--work DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("TRANSFERKIT_SHARED", HERE.parent.parent / "shared")) / "datasets"
RESULTS = HERE / "results" / "int8_variants.json"


def _latency(session, feed) -> float:
    for _ in range(3):
        session.run(None, feed)
    times = []
    for _ in range(30):
        start = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - start)
    return round(1000 * statistics.median(times), 2)


def _with_metadata(path: Path, fp32: Path) -> None:
    import onnx

    from transferkit.runtime.predictor import METADATA_KEY

    meta = {p.key: p.value for p in onnx.load(str(fp32), load_external_data=False).metadata_props}
    model = onnx.load(str(path))
    model.metadata_props.add(key=METADATA_KEY, value=meta[METADATA_KEY])
    onnx.save(model, str(path))


def image(work: Path) -> dict:
    from transferkit import ImageClassifier
    from transferkit.export import export_run
    from transferkit.export.onnx_export import SPECS
    from transferkit.export.quantize import Variant, _load, _weighted_nodes, prepare, quantize_static_qdq
    from transferkit.runtime import OnnxPredictor
    from transferkit.tasks import load_run

    rng, held = random.Random(0), []
    flowers = DATA / "flowers5"
    for name in sorted(p.name for p in flowers.iterdir() if p.is_dir()):
        files = sorted((flowers / name).glob("*.jpg"))
        rng.shuffle(files)
        folder = work / "data" / name
        folder.mkdir(parents=True, exist_ok=True)
        for f in files[:60]:
            (folder / f.name).exists() or (folder / f.name).symlink_to(f)
        held += [(str(f), name) for f in files[60:160]]
    run = work / "run"
    if not (run / "config.json").is_file():
        est = ImageClassifier(progress=False, memory=0, baseline=False, seed=0)
        est.fit(work / "data")
        est.evaluate()
        est.save(run)
    fp32 = work / "model.onnx"
    export_run(run, out=fp32)
    est = load_run(run)
    paths = [p for p, _ in held]
    labels = np.array([list(est.classes_).index(c) for _, c in held])

    def measure(path: Path, **extra) -> dict:
        model = OnnxPredictor.load(path, threads=2)
        right = int((model.predict_proba(paths).argmax(1) == labels).sum())
        return {**extra, "correct": right, "n": len(labels), "size_mb": round(path.stat().st_size / 1e6, 3),
                "latency_ms_p50": _latency(model.session, model._feeds(paths[:1]))}

    rows = [measure(fp32, variant="fp32")]
    spec = SPECS[est.task](est, run, None)
    prepared = prepare(fp32, work / "prepared.onnx")
    weighted = [n.name for n in _weighted_nodes(_load(prepared).graph)]
    head, stem = weighted[-1], weighted[0]
    for name, exclude, calibration in (("all layers int8", [], 64), ("head in float", [head], 64),
                                       ("head + stem in float", [head, stem], 64),
                                       ("all layers int8, 256 calibration images", [], 256),
                                       ("head + stem in float, 256 calibration images", [head, stem], 256)):
        out = work / f"variant{len(rows)}.onnx"
        quantize_static_qdq(prepared, out, spec.calibration(calibration), Variant(name, exclude))
        _with_metadata(out, fp32)
        row = measure(out, variant=name, excluded=exclude, calibration_images=calibration)
        row["points_lost"] = round(100 * (rows[0]["correct"] - row["correct"]) / len(labels), 2)
        rows.append(row)
        print(row, flush=True)
    return {"run": {"train_images": 300, "strategy": est.strategy_, "backbone": est.backbone_info_.get("name"),
                    "image_size": est.image_size_}, "scored_on": f"{len(labels)} held-out flowers5 images", "rows": rows}


def text(work: Path) -> dict:
    from transferkit import TextClassifier
    from transferkit.export import export_run
    from transferkit.export.onnx_export import SPECS
    from transferkit.export.quantize import Variant, _load, _weighted_nodes, prepare, quantize_dynamic_int8
    from transferkit.runtime import OnnxPredictor
    from transferkit.tasks import load_run

    run = work / "run"
    if not (run / "config.json").is_file():
        est = TextClassifier(progress=False, memory=0, baseline=False, seed=0)
        est.fit(DATA / "sentiment" / "reviews" / "amazon.txt")
        est.evaluate()
        est.save(run)
    fp32 = work / "model.onnx"
    exported = export_run(run, quantize="int8", out=fp32)
    est = load_run(run)
    spec = SPECS[est.task](est, run, None)
    items, targets = spec.split("test")

    def measure(path: Path, **extra) -> dict:
        model = OnnxPredictor.load(path, threads=2)
        right = int((spec.onnx_outputs(model, items)[0].argmax(1) == np.asarray(targets)).sum())
        return {**extra, "correct": right, "n": len(targets), "size_mb": round(path.stat().st_size / 1e6, 3),
                "latency_ms_p50": _latency(model.session, spec.feeds(model, items[:1]))}

    rows = [measure(fp32, variant="fp32")]
    prepared = prepare(fp32, work / "prepared.onnx")
    weighted = [n.name for n in _weighted_nodes(_load(prepared).graph)]
    last = [w for w in weighted if "layer.5" in w]
    first = [w for w in weighted if "layer.0" in w]
    for name, exclude in (("all layers int8", []), ("head in float", weighted[-1:]),
                          ("head + first and last matrix products in float", [weighted[0], *weighted[-2:]]),
                          ("head + last block in float", [*last, weighted[-1]]),
                          ("head + first and last blocks in float", [*first, *last, weighted[-1]])):
        out = work / f"variant{len(rows)}.onnx"
        quantize_dynamic_int8(prepared, out, Variant(name, list(dict.fromkeys(exclude))))
        _with_metadata(out, fp32)
        row = measure(out, variant=name, excluded=len(set(exclude)))
        row["points_lost"] = round(100 * (rows[0]["correct"] - row["correct"]) / len(targets), 2)
        rows.append(row)
        print(row, flush=True)
    return {"run": {"data": "amazon.txt", "strategy": est.strategy_}, "scored_on": f"{len(targets)} test sentences",
            "export": [{k: e.get(k) for k in ("precision", "status", "reason", "variant", "loss", "variants")}
                       for e in exported.exports], "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", choices=("image", "text"))
    parser.add_argument("--work", type=Path, default=HERE.parent / ".bench_data" / "int8_variants")
    args = parser.parse_args()
    work = args.work / args.task
    work.mkdir(parents=True, exist_ok=True)
    result = {"image": image, "text": text}[args.task](work)
    saved = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    saved[args.task] = {"command": f"python benchmarks/int8_variants.py {args.task}", **result}
    RESULTS.write_text(json.dumps(saved, indent=1))


if __name__ == "__main__":
    main()
