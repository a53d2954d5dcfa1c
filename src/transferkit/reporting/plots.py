"""Matplotlib figures for the run report, returned as PNG bytes."""

from __future__ import annotations

import io
import math
from typing import Any, Sequence

import matplotlib

# Reports are rendered on headless machines (CI, remote GPU boxes); Agg needs no display.
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from .._format import finite_number  # noqa: E402

_DPI = 100


def _to_png(fig: Figure) -> bytes:
    """Serialise ``fig`` to PNG and close it so repeated reports do not leak figures."""
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=_DPI, bbox_inches="tight")
    finally:
        plt.close(fig)
    return buf.getvalue()


def _series(history: Sequence[dict], xkey: str, ykey: str) -> tuple[list[float], list[float]]:
    """Paired (x, y) points where both are present and finite."""
    xs: list[float] = []
    ys: list[float] = []
    for row in history:
        x, y = finite_number(row.get(xkey)), finite_number(row.get(ykey))
        if x is not None and y is not None:
            xs.append(x)
            ys.append(y)
    return xs, ys


def confusion_matrix_png(matrix: Sequence[Sequence[int]], classes: Sequence[str]) -> bytes:
    """Confusion matrix heat map: rows = true class, cols = predicted.

    Colours are normalised per row (i.e. recall per class) so that small classes
    stay readable next to large ones; the cells are annotated with raw counts.
    """
    cm = np.asarray(matrix, dtype=float)
    if cm.ndim != 2 or cm.size == 0:
        cm = np.zeros((max(len(classes), 1), max(len(classes), 1)))
    n_rows, n_cols = cm.shape
    labels = [str(c) for c in classes]
    # Tolerate a class list that does not match the matrix rather than failing the whole report.
    row_labels = (labels + [str(i) for i in range(len(labels), n_rows)])[:n_rows]
    col_labels = (labels + [str(i) for i in range(len(labels), n_cols)])[:n_cols]

    row_sums = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, row_sums, out=np.zeros_like(cm), where=row_sums > 0)

    side = min(max(3.5, 0.55 * max(n_rows, n_cols) + 2.0), 14.0)
    fig, ax = plt.subplots(figsize=(side + 1.0, side))
    im = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class")

    ax.set_xticks(range(n_cols))
    ax.set_yticks(range(n_rows))
    ax.set_xticklabels(col_labels, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticklabels(row_labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")

    # Annotating hundreds of cells is unreadable; beyond that the colours carry the information.
    if n_rows * n_cols <= 900:
        fontsize = 9 if max(n_rows, n_cols) <= 12 else 6
        for i in range(n_rows):
            for j in range(n_cols):
                colour = "white" if norm[i, j] > 0.5 else "black"
                ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center",
                        color=colour, fontsize=fontsize)
    fig.tight_layout()
    return _to_png(fig)


def learning_curves_png(history: Sequence[dict]) -> bytes | None:
    """Learning curves from per-epoch history, or a C-sweep plot for linear probes.

    Returns None when there is nothing plottable (empty history, all values missing).
    """
    if not history:
        return None
    has_epoch = any(finite_number(r.get("epoch")) is not None for r in history)
    has_c = any(finite_number(r.get("C")) is not None for r in history)
    if not has_epoch and has_c:
        return _sweep_png(history)
    if not has_epoch:
        # Rows without an explicit epoch are still ordered; number them so they can be drawn.
        history = [{**r, "epoch": i + 1} for i, r in enumerate(history)]

    train = _series(history, "epoch", "train_loss")
    val = _series(history, "epoch", "val_loss")
    acc = _series(history, "epoch", "val_accuracy")
    lr = _series(history, "epoch", "lr")

    panels = [p for p in ("loss", "acc", "lr") if {
        "loss": bool(train[0] or val[0]), "acc": bool(acc[0]), "lr": bool(lr[0])}[p]]
    if not panels:
        return None

    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.3), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        if panel == "loss":
            if train[0]:
                ax.plot(*train, marker="o", ms=3, label="train loss")
            if val[0]:
                ax.plot(*val, marker="o", ms=3, label="val loss")
            ax.set_ylabel("loss")
            ax.set_title("Loss")
            ax.legend(frameon=False)
        elif panel == "acc":
            ax.plot(*acc, marker="o", ms=3, color="tab:green")
            ax.set_ylabel("validation accuracy")
            ax.set_title("Validation accuracy")
        else:
            ax.plot(*lr, marker="o", ms=3, color="tab:purple")
            ax.set_ylabel("learning rate")
            ax.set_title("Learning rate")
            if min(lr[1]) > 0 and max(lr[1]) / min(lr[1]) > 20:
                ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    _mark_stage_changes(axes[0], history)
    fig.tight_layout()
    return _to_png(fig)


def _mark_stage_changes(axes: Sequence[Any], history: Sequence[dict]) -> None:
    """Draw a dashed line where the set of trainable groups changes (gradual unfreezing)."""
    prev = None
    changes: list[float] = []
    for row in history:
        groups = row.get("trainable_groups")
        epoch = finite_number(row.get("epoch"))
        if groups is None or epoch is None:
            continue
        key = repr(groups)
        if prev is not None and key != prev:
            changes.append(epoch)
        prev = key
    for ax in axes:
        for x in changes:
            ax.axvline(x, color="grey", ls="--", lw=0.8)


def sweep_choice(history: Sequence[dict]) -> tuple[float, str] | None:
    """The C a linear probe used and the criterion that chose it, as the report should mark it.

    The row marked `chosen` by the probe; for runs recorded before that marker, the lowest
    log-loss, which is the criterion the probe has always used (not the highest accuracy).
    """
    rows = [r for r in history if finite_number(r.get("C")) is not None]
    chosen = [r for r in rows if finite_number(r.get("chosen")) == 1]
    if not chosen:
        chosen = sorted((r for r in rows if finite_number(r.get("val_loss")) is not None),
                        key=lambda r: finite_number(r["val_loss"]))[:1]
    if not chosen:
        return None
    cross_validated = any("cross-validation" in str(r.get("validation") or "") for r in rows)
    return float(chosen[0]["C"]), f"lowest {'cross-validated' if cross_validated else 'validation'} log-loss"


def _sweep_png(history: Sequence[dict]) -> bytes | None:
    """The probe's criterion (log-loss) against C (log x-axis) with the C it chose circled, and
    validation accuracy on a second axis for reference."""
    losses = sorted((x, y) for x, y in zip(*_series(history, "C", "val_loss")) if x > 0)
    accs = sorted((x, y) for x, y in zip(*_series(history, "C", "val_accuracy")) if x > 0)
    if not losses and not accs:
        return None
    choice = sweep_choice(history)
    cross_validated = choice is not None and "cross-validated" in choice[1]
    where = "cross-validated" if cross_validated else "validation"
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    main, label, colour = (losses, f"{where} log-loss", "tab:blue") if losses else (accs, f"{where} accuracy", "tab:green")
    ax.plot(*zip(*main), marker="o", ms=4, color=colour, label=label)
    ax.set_ylabel(label)
    if choice is not None:
        c, criterion = choice
        y = dict(main).get(c)
        if y is not None:
            ax.scatter([c], [y], s=90, facecolors="none", edgecolors="tab:red", zorder=3,
                       label=f"chosen C = {c:g} ({criterion})")
    if losses and accs:
        twin = ax.twinx()
        twin.plot(*zip(*accs), marker=".", ls="--", color="tab:green", alpha=0.7)
        twin.set_ylabel(f"{where} accuracy (dashed)", color="tab:green")
    ax.set_xscale("log")
    ax.set_xlabel("C (inverse regularisation strength)")
    ax.set_title("Linear-probe regularisation sweep")
    ax.legend(frameon=False, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2))  # below: curves stay clear
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return _to_png(fig)


def forecast_png(
    windows: Sequence[tuple[Any, Any, Any, dict[str, Any]]],
    channel_name: str,
    max_history: int | None = None,
) -> bytes | None:
    """A few test windows of one channel: lookback tail, actual future, forecast and baselines.

    Each window is `(history, truth, prediction, baselines)` with 1-D arrays (baselines maps a
    name to its forecast). The x-axis counts steps from the forecast origin (history < 0), so
    windows of any frequency read the same. Returns None when there is nothing to draw.
    """
    windows = [w for w in windows if len(w[1])]
    if not windows:
        return None
    n = len(windows)
    cols = min(n, 2)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.0 * cols, 2.8 * rows), squeeze=False)
    for k, (history, truth, prediction, baselines) in enumerate(windows):
        ax = axes[k // cols][k % cols]
        history = np.asarray(history, dtype=float).ravel()
        horizon = len(truth)
        # the whole lookback (e.g. 336 steps) would squeeze the forecast; 2 horizons of context suffice
        tail = history[-(max_history or 2 * horizon):]
        past = np.arange(-len(tail), 0)
        future = np.arange(horizon)
        ax.plot(past, tail, color="0.45", lw=1.0, label="history")
        ax.plot(future, np.asarray(truth, dtype=float).ravel(), color="black", lw=1.2, label="actual")
        for name, values in (baselines or {}).items():
            ax.plot(future, np.asarray(values, dtype=float).ravel(), lw=0.9, ls="--", label=name)
        ax.plot(future, np.asarray(prediction, dtype=float).ravel(), color="tab:red", lw=1.4, label="forecast")
        ax.axvline(0, color="grey", ls=":", lw=0.8)
        ax.set_title(f"{channel_name}: test window {k + 1}", fontsize=10)
        ax.set_xlabel("steps from forecast origin")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))  # steps are whole: no 1.5
        ax.grid(alpha=0.3)
        if k == 0:
            ax.legend(frameon=False, fontsize=8)
    for k in range(n, rows * cols):
        axes[k // cols][k % cols].axis("off")
    fig.tight_layout()
    return _to_png(fig)


def ranking_png(rows: Sequence[dict], metric: str) -> bytes | None:
    """Horizontal bars of one transferability score per candidate, best on top."""
    points = [(r["candidate"], finite_number((r.get("scores") or {}).get(metric))) for r in rows]
    points = [(name, v) for name, v in points if v is not None]
    if not points:
        return None
    names, values = zip(*points)
    fig, ax = plt.subplots(figsize=(7.0, 0.45 * len(points) + 1.2))
    y = np.arange(len(points))[::-1]
    colours = ["tab:green"] + ["tab:blue"] * (len(points) - 1)
    low, high = min(values), max(values)
    pad = 0.15 * ((high - low) or abs(high) or 1.0)
    # bars start at a common left edge, so a longer bar always means a higher score, also when
    # scores are negative (LogME, LEEP, NCE usually are)
    base = min(0.0, low - pad) if low >= 0 else low - pad
    ax.barh(y, np.asarray(values) - base, left=base, color=colours)
    ax.set_yticks(y, names)
    ax.set_xlabel(f"{metric} (higher transfers better)")
    ax.set_xlim(base, high + pad)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return _to_png(fig)


#: Source and target colours of the domain-adaptation figures.
DOMAIN_COLOURS = {"source": "tab:blue", "target": "tab:orange"}


def domain_projection_png(panels: Sequence[tuple[str, dict]]) -> bytes | None:
    """Source vs target points of a 2-D projection, one panel per `(title, {"source": [[x, y], ...],
    "target": [...]})` (e.g. before and after adaptation). Each panel keeps its own axes: the
    projections are of different feature spaces. Returns None when no panel has points."""
    panels = [(title, {d: np.asarray(points.get(d) or [], dtype=float).reshape(-1, 2) for d in DOMAIN_COLOURS})
              for title, points in panels if points]
    panels = [(title, points) for title, points in panels if any(len(p) for p in points.values())]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.0), squeeze=False)
    for ax, (title, points) in zip(axes[0], panels):
        for domain, xy in points.items():
            if len(xy):
                ax.scatter(xy[:, 0], xy[:, 1], s=9, alpha=0.55, color=DOMAIN_COLOURS[domain], linewidths=0,
                           label=f"{domain} ({len(xy)})")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("PC 1")
        ax.set_ylabel("PC 2")
        ax.grid(alpha=0.3)
        ax.legend(frameon=False, fontsize=8, markerscale=2)
    fig.tight_layout()
    return _to_png(fig)


def criterion_curves_png(curves: dict[str, Sequence[dict]], key: str, label: str,
                         chosen: dict[str, float | None], kept: str | None = None,
                         reference: tuple[str, float] | None = None) -> bytes | None:
    """One line per candidate of `key` against epoch (`curves`: name → per-epoch rows), each
    candidate's chosen epoch circled, the kept candidate drawn thicker, and an optional horizontal
    `reference` (name, value) for a candidate without epochs. None when nothing is plottable."""
    series = {name: _series(rows, "epoch", key) for name, rows in curves.items()}
    series = {name: xy for name, xy in series.items() if xy[0]}
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for name, (xs, ys) in series.items():
        thick = name == kept
        line, = ax.plot(xs, ys, marker="o", ms=3, lw=2.4 if thick else 1.1, alpha=1.0 if thick else 0.8,
                        label=f"{name} (kept)" if thick else name, zorder=3 if thick else 2)
        epoch = finite_number(chosen.get(name))
        if epoch is not None and epoch in xs:
            ax.scatter([epoch], [ys[xs.index(epoch)]], s=70, facecolors="none", edgecolors=line.get_color(),
                       linewidths=1.5, zorder=4)
    if reference is not None and finite_number(reference[1]) is not None:
        ax.axhline(reference[1], color="0.35", ls="--", lw=1.0, label=reference[0])
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_ylabel(label)
    ax.grid(alpha=0.3)
    # outside the axes: six candidates' labels would cover the curves
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return _to_png(fig)


def search_png(trials: Sequence[dict], importances: dict | None, default_value: Any, direction: str,
               metric: str) -> bytes | None:
    """A hyper-parameter study: each trial's validation score (pruned trials at their last
    reported value, hollow), the best so far and the defaults' score; beside it, the parameter
    importances as bars, when there are any. None when no trial has a value."""
    points = [(t["number"], finite_number(t.get("value")), t.get("state")) for t in trials]
    points = [(n, v, s) for n, v, s in points if v is not None]
    if not points:
        return None
    ranked = sorted((importances or {}).items(), key=lambda kv: kv[1])
    fig, axes = plt.subplots(1, 2 if ranked else 1, figsize=(11.0 if ranked else 6.5, 3.6), squeeze=False)
    ax = axes[0][0]
    done = [(n, v) for n, v, s in points if s == "complete"]
    pruned = [(n, v) for n, v, s in points if s != "complete"]
    if done:
        ax.scatter(*zip(*done), color="tab:blue", label="completed", zorder=3)
        best, steps = None, []
        for n, v in done:
            better = best is None or (v > best if direction == "maximize" else v < best)
            best = v if better else best
            steps.append((n, best))
        ax.step(*zip(*steps), where="post", color="tab:green", label="best so far")
    if pruned:
        ax.scatter(*zip(*pruned), facecolors="none", edgecolors="tab:red", label="pruned (last epoch)", zorder=3)
    default = finite_number(default_value)
    if default is not None:
        ax.axhline(default, color="grey", linestyle="--", label="defaults (trial 0)")
    ax.set_xlabel("trial")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    if ranked:
        bar = axes[0][1]
        names, values = zip(*ranked)
        bar.barh(range(len(names)), values, color="tab:purple")
        bar.set_yticks(range(len(names)), names)
        bar.set_xlabel("importance (fANOVA, sums to 1)")
        bar.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return _to_png(fig)


def lr_find_png(lrs: Sequence[float], losses: Sequence[float], suggestion: float | None, default_lr: float | None,
                title: str = "Learning-rate range test") -> bytes | None:
    """Smoothed training loss against the learning rate (log x-axis) of a range test, the suggested LR
    circled and a line at the LR training uses without --lr; None when no point is finite."""
    points = [(x, y) for x, y in zip(lrs, losses)
              if finite_number(x) is not None and finite_number(y) is not None and x > 0]
    if not points:
        return None
    fig, ax = plt.subplots(figsize=(5.6, 3.6))
    ax.plot(*zip(*points), color="tab:blue", lw=1.5, label="training loss (smoothed)")
    if suggestion is not None:
        y = min(points, key=lambda p: abs(math.log(p[0] / suggestion)))[1]
        ax.scatter([suggestion], [y], s=90, facecolors="none", edgecolors="tab:red", lw=2, zorder=3,
                   label=f"suggested: {suggestion:.2g} (steepest descent)")
        ax.axvline(suggestion, color="tab:red", ls=":", lw=1)
    if default_lr is not None:
        ax.axvline(default_lr, color="grey", ls="--", lw=1.2, label=f"current: {default_lr:.2g}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate of the top layer group (other groups and the head keep their ratio)")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend(frameon=False, fontsize=8)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return _to_png(fig)
