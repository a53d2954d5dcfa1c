"""How fast is the first minute? Wall time, CPU time and peak memory of CLI commands, each in a fresh process.

Measures `transferkit --help`, `list backbones`, `list strategies`, a one-image `predict` on a run
directory answered by its ONNX twin (the default) and by PyTorch (`--engine torch`, what a run
without a twin costs), and `serve` until /ready answers 200 (model loaded and warmed up), both
engines. The run is fitted first (the shipped demo flowers, linear probe, no control) twice, with
and without the twin, timed once each: the difference is what the twin adds to a fit, and its size
is compared with the weights'. Floors: `import torch` and `import torch, timm, sklearn.base`, which
the PyTorch path pays before it reads a file. Each command runs `--repeat` times; the median is
reported with its ratio to the goal (< 1 meets it) and the spread (min-max) of the repeats. Peak
memory is the child's maximum resident set (wait4's ru_maxrss; for serve, VmHWM of the server).

    python benchmarks/startup.py [--repeat 3] [--run DIR]   # → benchmarks/results/startup.json

Goals (2 CPU cores): `--help` and `list` under 1 s; one-image `predict` on a run under 1 s and
`serve` ready under 3 s (through the run's ONNX twin).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEMO = HERE.parent / "src" / "transferkit" / "data" / "demo" / "flowers"
CLI = [sys.executable, "-m", "transferkit.cli"]
PREDICT_TWIN, PREDICT_TORCH = "predict one image: run, ONNX twin", "predict one image: run, --engine torch"
SERVE_TWIN, SERVE_TORCH = "serve ready: run, ONNX twin", "serve ready: run, --engine torch"
GOALS = {"--help": 1.0, "list backbones": 1.0, "list strategies": 1.0, PREDICT_TWIN: 1.0, SERVE_TWIN: 3.0}


def timed(command: list[str]) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak RSS in MB) of one run of `command`, which must succeed."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        child = subprocess.Popen(command, stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)  # this child's own rusage (RUSAGE_CHILDREN mixes them all)
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            err.seek(0)
            raise SystemExit(f"{' '.join(command)} failed ({child.returncode}):\n{err.read().decode()[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def serve_ready(command: list[str], timeout: float = 120.0) -> tuple[float, float, float]:
    """(seconds until GET /ready answers 200, CPU seconds by then, peak RSS in MB) of `serve` started
    by `command` on a free port; the server is stopped afterwards."""
    start = time.perf_counter()
    child = subprocess.Popen([*command, "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()  # "serving RUN (task, engine) at http://127.0.0.1:PORT/ ..."
        if "http://" not in line:
            raise SystemExit(f"{' '.join(command)} did not start: {line}{child.stderr.read()[-2000:]}")
        url = line.split("http://", 1)[1].split("/", 1)[0]
        while time.perf_counter() - start < timeout:
            try:
                with urllib.request.urlopen(f"http://{url}/ready", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.02)
        wall = time.perf_counter() - start
        status = Path(f"/proc/{child.pid}/status").read_text()
        peak = int(next(x for x in status.splitlines() if x.startswith("VmHWM:")).split()[1]) / 1024
        stat = Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
    finally:
        child.terminate()
        child.wait(timeout=30)
    return wall, cpu, peak


def fit_tiny_run(out: Path, twin: bool) -> float:
    """A linear probe on the demo flowers (no control): a real run directory; returns its wall seconds."""
    start = time.perf_counter()
    subprocess.run([*CLI, "fit", str(DEMO), "--out", str(out), "--strategy", "linear-probe", "--no-baseline",
                    "--quiet", "--overwrite", "--onnx-twin" if twin else "--no-onnx-twin"], check=True,
                   capture_output=True, env={k: v for k, v in os.environ.items() if k != "TRANSFERKIT_ONNX_TWIN"})
    return time.perf_counter() - start


def summary(runs: list[tuple[float, float, float]], goal: float | None) -> dict:
    walls = [w for w, _, _ in runs]
    wall = statistics.median(walls)
    return {"wall_s": round(wall, 3), "wall_min_max_s": [round(min(walls), 3), round(max(walls), 3)],
            "cpu_s": round(statistics.median(c for _, c, _ in runs), 3),
            "peak_rss_mb": round(max(m for _, _, m in runs), 1),
            "runs": [[round(w, 3), round(c, 3), round(m, 1)] for w, c, m in runs],
            **({"goal_s": goal, "ratio_to_goal": round(wall / goal, 2)} if goal else {})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--run", type=Path, help="an existing image run with its ONNX twin (default: fit one, and "
                                                 "time the fit with and without the twin)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "startup.json")
    args = parser.parse_args()

    fit: dict = {}
    with tempfile.TemporaryDirectory(prefix="transferkit-startup-") as tmp:
        run = args.run
        if run is None:
            run = Path(tmp) / "run"
            print(f"fitting a tiny run on {DEMO} without and with its ONNX twin (timed once each) ...", flush=True)
            plain = fit_tiny_run(Path(tmp) / "plain", twin=False)
            twinned = fit_tiny_run(run, twin=True)
            entry = json.loads((run / "exports.json").read_text())["exports"][-1]
            fit = {"fit_without_twin_s": round(plain, 2), "fit_with_twin_s": round(twinned, 2),
                   "twin_export_s": entry["seconds"], "twin_parity": entry["parity"],
                   "twin_mb": round((run / "model.onnx").stat().st_size / 1e6, 1),
                   "weights_mb": round((run / "model.safetensors").stat().st_size / 1e6, 1),
                   "run_dir_mb_without_twin": round(sum(p.stat().st_size for p in (Path(tmp) / "plain").iterdir()
                                                        if p.is_file()) / 1e6, 1)}
            shutil.rmtree(Path(tmp) / "plain")
        image = next(p for p in sorted(DEMO.rglob("*.jpg")))
        commands = {
            "--help": [*CLI, "--help"],
            "list backbones": [*CLI, "list", "backbones"],
            "list strategies": [*CLI, "list", "strategies"],
            PREDICT_TWIN: [*CLI, "predict", str(run), str(image)],
            PREDICT_TORCH: [*CLI, "predict", str(run), str(image), "--engine", "torch"],
            "floor: import torch": [sys.executable, "-c", "import torch"],
            # what the PyTorch path cannot avoid: torch, timm (which imports torchvision and torch._dynamo)
            # to rebuild the architecture, and scikit-learn's BaseEstimator under every estimator
            "floor: torch, timm, sklearn.base": [sys.executable, "-c", "import torch, timm, sklearn.base"],
        }
        results = {}
        for name, command in commands.items():
            results[name] = summary([timed(command) for _ in range(args.repeat)], GOALS.get(name))
        for name, extra in ((SERVE_TWIN, []), (SERVE_TORCH, ["--engine", "torch"])):
            runs = [serve_ready([*CLI, "serve", str(run), *extra]) for _ in range(args.repeat)]
            results[name] = summary(runs, GOALS.get(name))

    print(f"\n{'command':40s} {'wall (median)':>14s} {'min-max':>13s} {'CPU':>8s} {'peak RSS':>9s} {'goal':>6s} "
          f"{'wall/goal':>10s}")
    for name, r in results.items():
        goal = f"{r['goal_s']:.0f} s" if "goal_s" in r else ""
        ratio = f"{r['ratio_to_goal']:.2f}" if "ratio_to_goal" in r else ""
        spread = "{:.2f}-{:.2f}".format(*r["wall_min_max_s"])
        print(f"{name:40s} {r['wall_s']:>12.2f} s {spread:>13s} {r['cpu_s']:>6.2f} s {r['peak_rss_mb']:>6.0f} MB "
              f"{goal:>6s} {ratio:>10s}")
    ratios = {"predict: torch / twin (wall)": results[PREDICT_TORCH]["wall_s"] / results[PREDICT_TWIN]["wall_s"],
              "predict: torch / twin (peak RSS)": results[PREDICT_TORCH]["peak_rss_mb"] / results[PREDICT_TWIN]["peak_rss_mb"],
              "serve ready: torch / twin (wall)": results[SERVE_TORCH]["wall_s"] / results[SERVE_TWIN]["wall_s"],
              "serve: torch / twin (peak RSS)": results[SERVE_TORCH]["peak_rss_mb"] / results[SERVE_TWIN]["peak_rss_mb"]}
    print("\n" + "\n".join(f"{k}: {v:.1f}x" for k, v in ratios.items()))
    if fit:
        print(f"\nthe twin adds {fit['fit_with_twin_s'] - fit['fit_without_twin_s']:+.1f} s to the fit "
              f"({fit['fit_without_twin_s']:.1f} → {fit['fit_with_twin_s']:.1f} s, one fit each; the export itself "
              f"{fit['twin_export_s']:.1f} s) and {fit['twin_mb']:.1f} MB to the run (weights {fit['weights_mb']:.1f} MB,"
              f" run without the twin {fit['run_dir_mb_without_twin']:.1f} MB); parity max |Δ| "
              f"{fit['twin_parity']['max_abs_diff']:.1e} on {fit['twin_parity']['samples']} "
              f"{fit['twin_parity']['split']} examples")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    record = {
        "command": "python benchmarks/startup.py " + " ".join(sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "load_1min_at_end": load, "python": platform.python_version(),
                    "platform": platform.platform()},
        "repeat": args.repeat,
        "runs": "[wall s, CPU s, peak RSS MB] per repeat",
        "results": results,
        "ratios": {k: round(v, 2) for k, v in ratios.items()},
        "fit": fit,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"\nload average at the end: {load}; written to {args.out}")


if __name__ == "__main__":
    main()
