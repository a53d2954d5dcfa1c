"""How fast is the first minute? (issue 9) Wall and CPU time of CLI commands, each in a fresh process.

Measures `transferkit --help`, `list backbones`, `list strategies` and a one-image `predict`
(against a tiny run fitted first, outside the timing: the shipped demo flowers, linear probe, no
control), plus two floors: `import torch`, which any command that runs a model pays, and
`import torch, timm, sklearn.base`, which `predict` on an image run pays before it reads a file. Each
command runs `--repeat` times; the median is reported with its ratio to the goal (< 1 meets it).
CPU time (user + system of the child) is printed too: on a shared, loaded machine wall time
inflates, CPU time much less.

    python benchmarks/startup.py [--repeat 3] [--run DIR]   # → benchmarks/results/startup.json

Goals (issue 9, 2 CPU cores): `--help` and `list` under 1 s, one-image `predict` under 3 s.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEMO = HERE.parent / "src" / "transferkit" / "data" / "demo" / "flowers"
CLI = [sys.executable, "-m", "transferkit.cli"]
GOALS = {"--help": 1.0, "list backbones": 1.0, "list strategies": 1.0, "predict (one image)": 3.0}


def timed(command: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child) for one run of `command`; it must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def fit_tiny_run(out: Path) -> None:
    """A linear probe on the demo flowers (no control): a real run directory to predict with."""
    subprocess.run([*CLI, "fit", str(DEMO), "--out", str(out), "--strategy", "linear-probe", "--no-baseline",
                    "--quiet", "--overwrite"], check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--run", type=Path, help="an existing image run to predict with (default: fit one)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "startup.json")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="transferkit-startup-") as tmp:
        run = args.run
        if run is None:
            run = Path(tmp) / "run"
            print(f"fitting a tiny run on {DEMO} (not timed) ...", flush=True)
            fit_tiny_run(run)
        image = next(p for p in sorted(DEMO.rglob("*.jpg")))
        commands = {
            "--help": [*CLI, "--help"],
            "list backbones": [*CLI, "list", "backbones"],
            "list strategies": [*CLI, "list", "strategies"],
            "predict (one image)": [*CLI, "predict", str(run), str(image)],
            "floor: import torch": [sys.executable, "-c", "import torch"],
            # what predict cannot avoid: torch, timm (which imports torchvision and torch._dynamo) to
            # rebuild the architecture, and scikit-learn's BaseEstimator under every estimator
            "floor: torch, timm, sklearn.base": [sys.executable, "-c", "import torch, timm, sklearn.base"],
        }
        results = {}
        for name, command in commands.items():
            runs = [timed(command) for _ in range(args.repeat)]
            wall = statistics.median(w for w, _ in runs)
            cpu = statistics.median(c for _, c in runs)
            goal = GOALS.get(name)
            results[name] = {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
                             "runs": [[round(w, 3), round(c, 3)] for w, c in runs],
                             **({"goal_s": goal, "ratio_to_goal": round(wall / goal, 2)} if goal else {})}

    print(f"\n{'command':34s} {'wall (median)':>14s} {'CPU':>8s} {'goal':>6s} {'wall/goal':>10s}")
    for name, r in results.items():
        goal = f"{r['goal_s']:.0f} s" if "goal_s" in r else ""
        ratio = f"{r['ratio_to_goal']:.2f}" if "ratio_to_goal" in r else ""
        print(f"{name:34s} {r['wall_s']:>12.2f} s {r['cpu_s']:>6.2f} s {goal:>6s} {ratio:>10s}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    record = {
        "command": "python benchmarks/startup.py " + " ".join(sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "load_1min_at_end": load, "python": platform.python_version(),
                    "platform": platform.platform()},
        "repeat": args.repeat,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"\nload average at the end: {load}; written to {args.out}")


if __name__ == "__main__":
    main()
