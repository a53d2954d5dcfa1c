"""Exports as the command line reports them: one line per exports.json entry (no rich, no torch)."""
from __future__ import annotations

from .._format import counted


def describe_export(entry: dict) -> str:
    """One exports.json entry as the line `transferkit export` prints: precision, file, size,
    parity with PyTorch, score, and for int8 the variants tried and the verdict."""
    def scored(score: dict | None) -> str:
        if not score:
            return ""
        value = score["value"]
        shown = f"{value:.4f}" if score["metric"] == "mse" else f"{100 * value:.1f} %"
        split = "training example" if score["split"] == "train" else score["split"] + " example"
        seen = " (not held-out: the model trained on them)" if score["split"] == "train" else ""
        return f"; {score['metric']} {shown} on {counted(score['samples'], split)}{seen}"

    def agreement(parity: dict | None) -> str:
        if not parity:
            return ""
        extra = f", top-1 agreement {100 * parity['top1_agreement']:.1f} %" if "top1_agreement" in parity else \
            f", relative error {parity.get('relative_error', 0):.1e}"
        return f"; vs PyTorch max |Δ| {parity['max_abs_diff']:.1e}{extra}"

    if entry["precision"] == "fp32":
        return (f"fp32 {entry['path']}: {entry['size_mb']:.1f} MB{agreement(entry['parity'])}{scored(entry['score'])}"
                + (", flip average in the graph" if entry.get("tta") else ""))

    def lost(v: dict) -> str:
        return f", {v['examples_lost']} of {v['examples']} examples lost" if "examples_lost" in v else ""

    tried = "; ".join(f"{v['variant']}: " + (v["error"] if "error" in v else
                      f"{v['score']:.4f} on {v.get('split', 'held-out')}{lost(v)} "
                      f"({'passes' if v['within_max_drop'] else 'over'} --max-drop on {v.get('split', 'held-out')})")
                      for v in entry["variants"])
    if entry["status"] != "ok":
        return f"int8 refused (tried {tried})"
    return (f"int8 {entry['path']}: {entry['size_mb']:.1f} MB ({entry['variant']}){agreement(entry['parity'])}"
            f"{scored(entry['score'])}; {'loses' if entry['loss'] >= 0 else 'gains'} {abs(100 * entry['loss']):.1f} "
            f"{'% MSE' if entry['score']['metric'] == 'mse' else 'accuracy points'}{lost(entry)}, within --max-drop "
            f"{entry['max_drop']:g}: kept")
