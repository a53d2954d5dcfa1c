"""Large data: peak memory and throughput of streaming feature extraction and prediction on 50,000 images.

Generates N images (default 50,000) at 64 px from flowers5 into /tmp (outside the repository):
each of the 4,317 photos is decoded once, shrunk to 72 px, then cut into deterministic variants
(a crop offset, a brightness step and the image's number written into its corner pixel, so that
every file's bytes, hence its content hash, differ), saved as JPEG in the five class folders. A
5,000-image folder holds hard links to the first 5,000 of them.

Each measurement runs in a fresh process on one thread; peak RSS is that process's `ru_maxrss`
(from `os.wait4`), throughput is images per second of the measured loop (or of the whole command
for `predict`; the 5k-to-50k difference then removes start-up). Phases:

- probe: `ImageClassifier(strategy="linear-probe")` on flowers5 at 64 px fitted twice with an
  empty feature cache: the second fit reads the features from the cache instead of the backbone.
  The second run is the model `predict` uses.
- extract cold / warm / warm-verify: `iter_features` (the MNIST CNN, 64 px, no flip) over the
  folder as `predict` scans it, with an empty cache, then the filled one (stat index: unchanged
  files are not reread), then TRANSFERKIT_CACHE_VERIFY=1 (every file's bytes hashed again).
- rank twice: `transferkit rank flowers5` (two candidates at 64 px, 1,000 images) with an empty
  cache, then again: the second ranking reads the features from the cache.
- predict: `transferkit predict RUN FOLDER --output preds.csv` (rows counted).

Peak RSS at 5k and at 50k images in one run: a ratio near 1 shows the memory is bounded (not
proportional to the number of images). Writes benchmarks/results/large_data.json (after each
phase, so an interrupted run keeps what it measured) with the machine's load average.

    python benchmarks/large_data.py [--n 50000] [--small 5000] [--work /tmp/transferkit_large_data]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
DEFAULT_DATA = Path(os.environ.get("TRANSFERKIT_SHARED", HERE.parent.parent / "shared")) / "datasets" / "flowers5"
RESULTS = HERE / "results" / "large_data.json"
#: The MNIST CNN is the smallest installed backbone: on 2 shared cores EfficientNet-Lite0 at 64 px
#: manages about 70 images/s on one thread (50k images: 12 min per pass), the MNIST CNN about 780.
BACKBONE, SIDE = "mnist_cnn", 64


# ------------------------------------------------------------------------------------------ data
def generate(source: Path, out: Path, n: int, side: int = SIDE) -> list[Path]:
    """`n` distinct JPEGs of `side` px in class folders under `out` (reused if already complete)."""
    from PIL import Image

    marker = out / f".complete-{n}-{side}"
    files_list = out / ".files"
    if marker.exists():
        return [out / line for line in files_list.read_text().splitlines()]
    sources = sorted((p.parent.name, p) for p in source.rglob("*.jpg"))
    if not sources:
        raise SystemExit(f"{source}: no .jpg photos; pass the flowers5 folder with --data")
    print(f"decoding {len(sources)} photos of {source}", flush=True)
    base = []
    for label, path in sources:
        with Image.open(path) as im:
            im.draft("RGB", (side * 2, side * 2))
            im = im.convert("RGB")
            scale = (side + 8) / min(im.size)
            im = im.resize((max(side + 8, round(im.width * scale)), max(side + 8, round(im.height * scale))),
                           Image.BILINEAR)
            left, top = (im.width - side - 8) // 2, (im.height - side - 8) // 2
            base.append((label, path.stem, np.asarray(im.crop((left, top, left + side + 8, top + side + 8)))))
    names = []
    start = time.perf_counter()
    for j in range(n):
        label, stem, pixels = base[j % len(base)]
        variant = j // len(base)
        rng = np.random.default_rng(j)
        dx, dy = rng.integers(0, 9, 2)
        crop = pixels[dy:dy + side, dx:dx + side].astype(np.int16) + (variant % 7 - 3) * 2
        crop[0, 0] = (j & 255, (j >> 8) & 255, (j >> 16) & 255)  # the image's number: every file differs
        folder = out / label
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{label}/{stem}_{variant:03d}.jpg"
        Image.fromarray(crop.clip(0, 255).astype(np.uint8)).save(out / name, quality=90)
        names.append(name)
        if (j + 1) % 10000 == 0:
            print(f"  {j + 1} images ({time.perf_counter() - start:.0f} s)", flush=True)
    files_list.write_text("\n".join(names))
    marker.touch()
    return [out / name for name in names]


def linked_subset(files: list[Path], root: Path, out: Path, n: int) -> Path:
    """A folder of hard links to the first `n` of `files` (same bytes, no copy)."""
    marker = out / f".complete-{n}"
    if not marker.exists():
        for f in files[:n]:
            target = out / f.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                os.link(f, target)
        marker.touch()
    return out


# --------------------------------------------------------------------------------------- children
def child_extract(folder: Path, cache: Path, name: str) -> dict:
    """Stream features of every image in `folder` (as `predict` scans it), discarding them."""
    import torch

    torch.set_num_threads(1)
    import psutil

    from transferkit.backbones import create_backbone
    from transferkit.data import ImageDataset, eval_transform
    from transferkit.models.features import iter_features
    from transferkit.tasks.image_classification import expand_image_paths

    backbone = create_backbone(name)
    paths = expand_image_paths([folder])
    dataset = ImageDataset(paths, None, eval_transform(backbone.preprocessing, SIDE), cache_side=SIDE, cache_bytes=0)
    loaded_mb = psutil.Process().memory_info().rss / 2**20
    stats: dict = {}
    start = time.perf_counter()
    count, checksum = 0, 0.0
    for indices, feats, _ in iter_features(backbone.model, dataset, batch_size=64, hflip=False, progress=False,
                                           cache=cache, stats=stats):
        count += len(indices)
        checksum += float(feats.sum(dtype=np.float64))
    seconds = time.perf_counter() - start
    return {"images": count, "seconds": round(seconds, 2), "images_per_s": round(count / seconds, 1),
            "cached": stats["cached"], "computed": stats["computed"], "checksum": checksum,
            "rss_after_loading_mb": round(loaded_mb, 1)}


def child_probe(data: Path, cache: Path, run: Path, name: str) -> dict:
    """Fit the linear probe twice on the same data: the second fit's features come from the cache."""
    import torch

    torch.set_num_threads(1)
    from transferkit import ImageClassifier

    out = {}
    for attempt in ("first", "second"):
        est = ImageClassifier(backbone=name, strategy="linear-probe", image_size=SIDE, tta=False, baseline=False,
                              memory=0, progress=False)
        start = time.perf_counter()
        est.fit(data)
        seconds = time.perf_counter() - start
        metrics = est.evaluate()
        out[attempt] = {"fit_seconds": round(seconds, 2), "test_accuracy": round(float(metrics["accuracy"]), 4)}
    est.save(run)
    out["speedup"] = round(out["first"]["fit_seconds"] / out["second"]["fit_seconds"], 2)
    return out


def measured(argv: list[str], env: dict) -> tuple[dict | None, float, float, int]:
    """Run a command; (its last stdout line as JSON if any, wall s, peak RSS MiB of that process, exit code)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    lines = [line for line in out.splitlines() if line.startswith("{")]
    return (json.loads(lines[-1]) if lines else None), wall, usage.ru_maxrss / 1024, proc.returncode


def rank_twice(data: Path, work: Path, env: dict, result: dict) -> None:
    """`transferkit rank` on flowers5 twice with an empty feature cache: the second ranking reads
    the candidates' features from the cache."""
    cache = work / "cache-rank"
    subprocess.run(["rm", "-rf", str(cache)], check=True)
    entry = {"command": f"transferkit rank {data.name} --candidates mnist_cnn,efficientnet_lite0 --image-sizes 64 "
                        "--sample 1000"}
    for attempt in ("first", "second"):
        _, wall, rss, code = measured([sys.executable, "-m", "transferkit.cli", "rank", str(data), "--candidates",
                                       "mnist_cnn,efficientnet_lite0", "--image-sizes", "64", "--sample", "1000",
                                       "--quiet"], {**env, "TRANSFERKIT_CACHE": str(cache)})
        entry[attempt] = {"wall_seconds": round(wall, 1), "peak_rss_mb": round(rss, 1), "exit": code}
    entry["speedup"] = round(entry["first"]["wall_seconds"] / entry["second"]["wall_seconds"], 2)
    result["phases"]["rank_twice"] = entry
    print("rank:", entry, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--small", type=int, default=5_000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/transferkit_large_data"))
    parser.add_argument("--probe-data", type=Path, help="Data of the linear probe fitted twice (default: --data).")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--backbone", default=BACKBONE)
    parser.add_argument("--rank-only", action="store_true", help="Only add the rank-twice phase to --out.")
    parser.add_argument("--child", choices=("extract", "probe"))
    parser.add_argument("--folder", type=Path)
    parser.add_argument("--cache", type=Path)
    parser.add_argument("--run", type=Path)
    args = parser.parse_args()
    if args.child == "extract":
        print(json.dumps(child_extract(args.folder, args.cache, args.backbone)))
        return
    if args.child == "probe":
        print(json.dumps(child_probe(args.data, args.cache, args.run, args.backbone)))
        return
    if args.rank_only:  # add the ranking measurement to an existing result file
        result = json.loads(args.out.read_text())
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(SRC)}
        rank_twice(args.data, args.work, env, result)
        result["machine"]["load_average_rank"] = [round(x, 2) for x in os.getloadavg()]
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        return

    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(SRC),
           "TOKENIZERS_PARALLELISM": "false"}
    work = args.work
    result: dict = {
        "what": "streaming feature extraction (on-disk feature cache cold, warm, warm re-hashing every file) and "
                "`transferkit predict --output` over generated 64 px images; each phase a fresh process on 1 thread",
        "backbone": args.backbone, "image_size": SIDE, "threads": 1, "images": {"large": args.n, "small": args.small},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_average_start":
                    [round(x, 2) for x in os.getloadavg()]},
        "phases": {},
    }

    def save() -> None:
        result["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")

    start = time.perf_counter()
    files = generate(args.data, work / f"images{args.n}", args.n)
    folders = {"large": work / f"images{args.n}", "small": linked_subset(files, work / f"images{args.n}",
                                                                         work / f"images{args.small}", args.small)}
    result["generation_seconds"] = round(time.perf_counter() - start, 1)
    me = [sys.executable, str(Path(__file__).resolve()), "--backbone", args.backbone]

    # a linear probe fitted twice: the second one reads its features from the cache
    probe_cache, run = work / "cache-probe", work / "run"
    subprocess.run(["rm", "-rf", str(probe_cache), str(run)], check=True)
    report, wall, rss, code = measured([*me, "--child", "probe", "--data", str(args.probe_data or args.data),
                                        "--cache", str(probe_cache),
                                        "--run", str(run)], {**env, "TRANSFERKIT_CACHE": str(probe_cache)})
    result["phases"]["probe_fit_twice"] = {**(report or {}), "wall_seconds": round(wall, 1), "exit": code}
    print("probe:", result["phases"]["probe_fit_twice"], flush=True)
    save()

    rank_twice(args.data, work, env, result)
    save()

    for size in ("small", "large"):
        cache = work / f"cache-{size}"
        subprocess.run(["rm", "-rf", str(cache)], check=True)
        for phase, extra in (("extract_cold", {}), ("extract_warm", {}),
                             ("extract_warm_verify", {"TRANSFERKIT_CACHE_VERIFY": "1"})):
            report, wall, rss, code = measured([*me, "--child", "extract", "--folder", str(folders[size]),
                                                "--cache", str(cache)], {**env, **extra})
            entry = {**(report or {}), "peak_rss_mb": round(rss, 1), "wall_seconds": round(wall, 1), "exit": code}
            result["phases"].setdefault(phase, {})[size] = entry
            print(f"{phase} {size}:", entry, flush=True)
            save()
        out = work / f"predictions-{size}.csv"
        _, wall, rss, code = measured([sys.executable, "-m", "transferkit.cli", "predict", str(run),
                                       str(folders[size]), "--output", str(out)], env)
        rows = sum(1 for _ in open(out)) - 1 if out.exists() else 0
        count = args.n if size == "large" else args.small
        entry = {"images": count, "rows_written": rows, "wall_seconds": round(wall, 1),
                 "images_per_s_including_startup": round(count / wall, 1), "peak_rss_mb": round(rss, 1), "exit": code}
        result["phases"].setdefault("predict", {})[size] = entry
        print(f"predict {size}:", entry, flush=True)
        save()

    ratios = {}
    for phase, sizes in result["phases"].items():
        if "small" in sizes and "large" in sizes:
            s, big = sizes["small"], sizes["large"]
            ratios[phase] = {"peak_rss_large_over_small": round(big["peak_rss_mb"] / s["peak_rss_mb"], 3),
                             "images_large_over_small": round(args.n / args.small, 1)}
    p = result["phases"]
    ratios["predict"]["images_per_s_without_startup"] = round(
        (args.n - args.small) / (p["predict"]["large"]["wall_seconds"] - p["predict"]["small"]["wall_seconds"]), 1)
    ratios["warm_over_cold_throughput_large"] = round(
        p["extract_warm"]["large"]["images_per_s"] / p["extract_cold"]["large"]["images_per_s"], 1)
    ratios["warm_verify_over_cold_throughput_large"] = round(
        p["extract_warm_verify"]["large"]["images_per_s"] / p["extract_cold"]["large"]["images_per_s"], 1)
    result["ratios"] = ratios
    result["total_seconds"] = round(time.perf_counter() - start, 1)
    save()
    print(json.dumps(ratios, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
