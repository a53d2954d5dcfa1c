"""Load on `transferkit serve` (loopback only, bounded in time and count): throughput, p50/p99
latency and errors for 1, 8 and 32 concurrent clients posting one flowers5 photo each.

Configurations, each its own server process on 127.0.0.1 (all started first, then each level
measured on each configuration in turn, so load from elsewhere falls on all alike):
  torch            a run directory, micro-batching on (the defaults: up to 32 images a call, 5 ms wait)
  torch-unbatched  the same run with --batch-size 1 (one model call per image): what batching buys
  onnx             an exported model (--onnx PATH, or --export: `transferkit export RUN` first);
                   skipped without one

The run is --run, or a linear probe fitted here on 40 flowers5 images per class (the estimator's
defaults otherwise). Clients are asyncio tasks over httpx, each sending its next request when its
last one is answered, for --seconds per level or --max-requests in all, whichever comes first.
The model calls and items per call come from the server's GET /stats. Ratios (batched/unbatched
throughput) are measured in this one run, on this machine. Results: benchmarks/results/serve_load.json.

    python benchmarks/serve_load.py [--run RUN] [--onnx PATH | --export] [--clients 1,8,32]
                                    [--seconds 15] [--max-requests 3000] [--out FILE]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("TRANSFERKIT_SHARED", HERE.parent.parent / "shared")) / "datasets"


def fit_run(folder: Path) -> Path:
    """A linear probe on the first 40 flowers5 images of each class (the estimator's defaults)."""
    from transferkit import ImageClassifier
    from transferkit.reporting import write_run_report

    subset = folder / "flowers40"
    for cls in sorted(p for p in (DATA / "flowers5").iterdir() if p.is_dir()):
        (subset / cls.name).mkdir(parents=True)
        for image in sorted(cls.iterdir())[:40]:
            os.symlink(image, subset / cls.name / image.name)
    run = folder / "flowers40-run"
    est = ImageClassifier(strategy="linear-probe", baseline=False, progress=False).fit(subset)
    est.evaluate()
    est.save(run)
    write_run_report(run)
    return run


def sample_images(count: int = 64) -> list[tuple[str, bytes]]:
    """`count` flowers5 photos (seeded, from images the run did not train on: 41st and later)."""
    files = [f for cls in sorted(p for p in (DATA / "flowers5").iterdir() if p.is_dir())
             for f in sorted(cls.iterdir())[40:]]
    random.Random(0).shuffle(files)
    return [(f.name, f.read_bytes()) for f in files[:count]]


class Server:
    """`transferkit serve SOURCE --port 0 ARGS` in a subprocess, its URL read from its first line."""

    def __init__(self, source: Path, *args: str) -> None:
        command = [sys.executable, "-m", "transferkit.cli", "serve", str(source), "--host", "127.0.0.1", "--port", "0",
                   *args]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        if "http://" not in line:
            raise SystemExit(f"the server did not start: {line}{self.process.stderr.read()}")
        self.url = "http://" + line.split("http://", 1)[1].split("/", 1)[0]

    def wait_ready(self, seconds: float = 300) -> None:
        import httpx

        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"the server exited: {self.process.stderr.read()}")
            try:
                if httpx.get(f"{self.url}/ready", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"the server was not ready within {seconds} s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


async def load_level(url: str, images: list[tuple[str, bytes]], clients: int, seconds: float, max_requests: int) -> dict:
    """`clients` closed-loop clients for `seconds` (or `max_requests` in all): latencies and errors."""
    import httpx

    latencies: list[float] = []
    errors: dict[str, int] = {}
    sent = 0
    stop_at = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:
        async def client(n: int) -> None:
            nonlocal sent
            i = n
            while time.perf_counter() < stop_at and sent < max_requests:
                sent += 1
                name, data = images[i % len(images)]
                i += clients
                start = time.perf_counter()
                try:
                    response = await http.post("/predict", files={"file": (name, data, "image/jpeg")})
                    ok = response.status_code == 200
                    key = None if ok else str(response.status_code)
                except httpx.HTTPError as exc:
                    ok, key = False, type(exc).__name__
                if ok:
                    latencies.append(time.perf_counter() - start)
                else:
                    errors[key] = errors.get(key, 0) + 1

        before = (await http.get("/stats")).json()
        began = time.perf_counter()
        await asyncio.gather(*(client(n) for n in range(clients)))
        elapsed = time.perf_counter() - began
        after = (await http.get("/stats")).json()
    calls = after["model_calls"] - before["model_calls"]
    items = after["items"] - before["items"]
    return {
        "clients": clients, "seconds": round(elapsed, 2), "requests": len(latencies) + sum(errors.values()),
        "ok": len(latencies), "errors": sum(errors.values()), "error_kinds": errors,
        "throughput_rps": round(len(latencies) / elapsed, 2),
        "latency_ms": {"p50": round(1000 * percentile(latencies, 50), 1) if latencies else None,
                       "p99": round(1000 * percentile(latencies, 99), 1) if latencies else None,
                       "mean": round(1000 * statistics.fmean(latencies), 1) if latencies else None},
        "model_calls": calls, "images_per_call": round(items / calls, 2) if calls else None,
    }


def bench(configs: list[tuple[str, Path, list[str]]], images, levels: list[int], seconds: float,
          max_requests: int) -> list[dict]:
    """Every configuration's server started (and warmed) first, then the levels measured in turn,
    each level on every configuration one after the other: load from other processes on the
    machine then falls on all of them alike instead of on whichever ran last."""
    servers = {}
    try:
        results = {}
        for name, source, args in configs:
            started = time.perf_counter()
            servers[name] = Server(source, *args)
            servers[name].wait_ready()
            results[name] = {"name": name, "source": str(source), "server_args": args,
                             "ready_s": round(time.perf_counter() - started, 1), "levels": []}
            asyncio.run(load_level(servers[name].url, images, 1, 2.0, 20))  # warm the connection path; not counted
        for clients in levels:
            for name, server in servers.items():
                row = asyncio.run(load_level(server.url, images, clients, seconds, max_requests))
                results[name]["levels"].append(row)
                print(f"{name:16s} {clients:3d} clients: {row['throughput_rps']:7.1f} req/s, p50 "
                      f"{row['latency_ms']['p50']} ms, p99 {row['latency_ms']['p99']} ms, errors {row['errors']}, "
                      f"{row['images_per_call']} images per model call", flush=True)
        return list(results.values())
    finally:
        for server in servers.values():
            server.stop()


def export_onnx(run: Path, folder: Path) -> Path | None:
    """`transferkit export RUN --format onnx`, when this checkout has the command; else None."""
    out = folder / "model.onnx"
    done = subprocess.run([sys.executable, "-m", "transferkit.cli", "export", str(run), "--format", "onnx", "--out",
                           str(out)], capture_output=True, text=True)
    if done.returncode != 0 or not out.is_file():
        print(f"no ONNX backend: `transferkit export` failed or is missing here ({done.stderr.strip()[-200:]})")
        return None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="run directory to serve (default: fit a small flowers5 probe)")
    parser.add_argument("--onnx", type=Path, help="also serve this exported .onnx file")
    parser.add_argument("--export", action="store_true", help="export the run with `transferkit export` and serve it")
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--seconds", type=float, default=15.0, help="per level (the bound in time)")
    parser.add_argument("--max-requests", type=int, default=3000, help="per level (the bound in count)")
    parser.add_argument("--no-unbatched", action="store_true", help="skip the --batch-size 1 comparison")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "serve_load.json")
    args = parser.parse_args()
    levels = [int(c) for c in args.clients.split(",")]
    load_at_start = os.getloadavg()[0]  # other processes on the cores skew every figure: recorded
    with tempfile.TemporaryDirectory(prefix="serve-load-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        run = args.run or fit_run(folder)
        fit_s = time.perf_counter() - started if args.run is None else None
        onnx = args.onnx or (export_onnx(run, folder) if args.export else None)
        images = sample_images()
        configs = [("torch", run, [])]
        if not args.no_unbatched:
            configs.append(("torch-unbatched", run, ["--batch-size", "1"]))
        if onnx:
            configs.append(("onnx", onnx, []))
        results = bench(configs, images, levels, args.seconds, args.max_requests)
        config = json.loads((run / "config.json").read_text())
    by_name = {r["name"]: {row["clients"]: row for row in r["levels"]} for r in results}
    ratios = {}
    for other in ("torch-unbatched", "onnx"):
        if other in by_name:
            ratios[f"torch/{other} throughput"] = {
                str(c): round(by_name["torch"][c]["throughput_rps"] / by_name[other][c]["throughput_rps"], 2)
                for c in levels if by_name[other][c]["throughput_rps"]}
    summary = {
        "benchmark": "serve_load", "command": " ".join(["python", "benchmarks/serve_load.py", *sys.argv[1:]]),
        "machine": {"cpus": os.cpu_count(), "load_avg_1m_at_start": round(load_at_start, 2),
                    "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
                    "python": platform.python_version(), "platform": platform.platform()},
        "model": {"run": run.name if args.run else "linear probe on 40 flowers5 images per class (fitted here)",
                  "backbone": config["backbone"]["name"], "image_size": config.get("image_size"),
                  "fit_s": round(fit_s, 1) if fit_s else None},
        "images": f"{len(images)} flowers5 JPEGs not trained on, one per request",
        "bounds": {"seconds_per_level": args.seconds, "max_requests_per_level": args.max_requests},
        "results": results, "ratios": ratios,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    for name, values in ratios.items():
        print(f"{name}: " + ", ".join(f"{c} clients ×{v}" for c, v in values.items()))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
