"""How the adaptation criterion (DEV score) ranks the candidates against their real target error,
from the runs the domain adaptation benchmark recorded (no training: it reads results files).

For each recorded (pair, seed): Spearman's rank correlation between the candidates' criterion and
their real target error (1 - target accuracy; target labels were used only to score), whether the
candidate the criterion kept was the best on the target, and how many times the criterion's value
lies below the real target error (the reason the report calls it a relative score, not an estimate).
Writes benchmarks/results/domain_adaptation_criterion.json.

    python benchmarks/tools/criterion_ranking.py [RESULTS.json ...]
"""
from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

from scipy.stats import spearmanr

RESULTS = Path(__file__).resolve().parents[1] / "results"
DEFAULT = ["domain_adaptation.json", "domain_adaptation_h200.json", "domain_adaptation_flowers.json"]


def ranking(run: dict) -> dict:
    methods = list(run["criteria"])
    criterion = [run["criteria"][m]["criterion"] for m in methods]
    error = [1 - run["accuracy"][m] for m in methods]
    best = min(error)
    return {"pair": run["pair"], "seed": run["seed"], "candidates": len(methods),
            "spearman": round(float(spearmanr(criterion, error)[0]), 3), "kept": run["chosen"],
            "kept_is_best": 1 - run["accuracy"][run["chosen"]] <= best,
            "best_on_target": [m for m, e in zip(methods, error) if e <= best],
            "error_over_criterion": [round(min(e / max(c, 1e-9) for c, e in zip(criterion, error)), 1),
                                     round(max(e / max(c, 1e-9) for c, e in zip(criterion, error)), 1)]}


def main(files: list[str]) -> None:
    out = {"command": "python benchmarks/tools/criterion_ranking.py " + " ".join(files), "files": {}}
    for name in files:
        runs = [ranking(r) for r in json.loads((RESULTS / name).read_text()).get("runs", [])]
        by_pair: dict[str, list[dict]] = {}
        for r in runs:
            by_pair.setdefault(r["pair"], []).append(r)
        out["files"][name] = {
            "runs": runs,
            "per_pair": {pair: {"seeds": len(rs), "spearman_mean": round(statistics.mean(r["spearman"] for r in rs), 3),
                                "spearman_runs": [r["spearman"] for r in rs],
                                "kept_best_on_target": sum(r["kept_is_best"] for r in rs)}
                         for pair, rs in by_pair.items()}}
        for pair, s in out["files"][name]["per_pair"].items():
            print(f"{name} {pair}: Spearman {s['spearman_runs']} (mean {s['spearman_mean']:+.2f}); kept the best on "
                  f"the target in {s['kept_best_on_target']} of {s['seeds']}")
    (RESULTS / "domain_adaptation_criterion.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:] or DEFAULT)
