"""Rank candidate backbones (or layers of one) on the user's data before any training.

Each candidate encodes a stratified sample of the training split once; the transferability
scores then need only those features (and, for LEEP/NCE, the source classifier's predictions).
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch
from torch import nn

from ..errors import TransferkitError

#: The pseudo-score "ensemble": each candidate's mean rank (1 = lowest) under these scores, which
#: every candidate of either modality has; higher is better, as for the scores.
ENSEMBLE = "ensemble"
ENSEMBLE_MEMBERS = ("knn", "linear", "logme")


@dataclass(frozen=True)
class AutoMetric:
    """The score `backbone="auto"` (and `transferkit rank`) ranks by, with the benchmark figure that
    chose it: `benchmarks/selection.py --update-auto` writes `auto_metric.json` from its results."""

    metric: str
    mean_weighted_tau: float
    ci95: tuple[float, float] | None  # None: measured without an interval
    tasks: list[str]
    top1_hits: str
    source: str

    def evidence(self) -> str:
        """One line for the decision and the report: which score, and the measurement behind it."""
        name = _DESCRIBED.get(self.metric, self.metric)
        ci = f" [95 % CI {self.ci95[0]:.2f}, {self.ci95[1]:.2f}]" if self.ci95 else ""
        return (f"{name}: mean weighted τ {self.mean_weighted_tau:.2f}{ci} on {len(self.tasks)} tasks "
                f"({', '.join(self.tasks)}), top-1 hits {self.top1_hits}, the best-measured score in {self.source}")


_DESCRIBED = {"knn": "k-NN accuracy", "linear": "linear-probe accuracy", "logme": "LogME", "hscore": "H-score",
              ENSEMBLE: "mean rank of " + ", ".join(ENSEMBLE_MEMBERS)}


@lru_cache(maxsize=1)
def auto_metric() -> AutoMetric:
    """The packaged choice (selection/auto_metric.json), read once."""
    from importlib.resources import files

    data = json.loads(files(__package__).joinpath("auto_metric.json").read_text(encoding="utf-8"))
    return AutoMetric(data["metric"], float(data["mean_weighted_tau"]),
                      tuple(data["ci95"]) if data.get("ci95") else None, list(data["tasks"]),
                      str(data["top1_hits"]), str(data["source"]))


#: The default score of `rank_backbones`, `transferkit rank` and `backbone="auto"`: the one that
#: ranked fine-tuned accuracy best on the selection benchmark (see `auto_metric()`), not assumed.
DEFAULT_METRIC = auto_metric().metric


@dataclass
class CandidateScore:
    """One candidate's scores (None where a score does not apply, e.g. LEEP without a source head)."""

    candidate: str
    backbone: str
    layer: str | None
    image_size: int | None
    num_features: int
    scores: dict[str, float | None]
    seconds: float
    note: str = ""


@dataclass
class Ranking:
    """Candidates sorted by `metric` (best first), with how the sample was drawn and the time spent."""

    metric: str
    rows: list[CandidateScore]
    sample: dict[str, Any]
    seconds: float

    @property
    def best(self) -> CandidateScore:
        return self.rows[0]

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "sample": self.sample, "seconds": self.seconds,
                "rows": [asdict(r) for r in self.rows]}


#: `encode(backbone, indices, size)`: (dataset of those training examples as `backbone` reads them,
#: collate function or None, the input size used or None)
Encoder = Callable[[Any, Sequence[int], Optional[int]], tuple[Any, Optional[Callable], Optional[int]]]


@dataclass
class RankingSource:
    """A task's training data as ranking needs it, built by the task estimator (see its
    `ranking_source` hook): selection never reads or detects task data itself.

    `labels` are the integer class labels of the training split, `classes` their names; `encode`
    turns the examples at given indices into a dataset (and collate function) for a backbone, at
    a requested input size where `sized` says the inputs have one (images), else ignoring it.
    """

    task: str
    modality: str
    labels: Sequence[int]
    classes: Sequence[str]
    encode: Encoder
    sized: bool = False


class StageFeatures(nn.Module):
    """Globally pooled features of one intermediate stage of a timm model (`forward_intermediates`)."""

    def __init__(self, model: nn.Module, index: int) -> None:
        super().__init__()
        self.model, self.index = model, int(index)
        self.num_features = int(model.feature_info[index]["num_chs"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (out,) = self.model.forward_intermediates(x, indices=[self.index], intermediates_only=True)
        return out.mean(dim=(2, 3))


class LayerFeatures(nn.Module):
    """Mean-pooled hidden states of one transformer layer of a `TextEncoder` (0 = embeddings)."""

    def __init__(self, encoder: nn.Module, index: int) -> None:
        super().__init__()
        self.encoder, self.index = encoder, int(index)
        self.num_features = encoder.num_features

    def forward(self, batch) -> torch.Tensor:
        mask = batch["attention_mask"]
        inputs = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
        hidden = self.encoder.transformer(**inputs, output_hidden_states=True).hidden_states[self.index]
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1).clamp_min(1e-9)


def available_layers(backbone) -> list[str]:
    """Names of the intermediate layers a backbone exposes for ranking (`stageK` / `layerK`)."""
    model = backbone.model
    if backbone.modality == "image" and hasattr(model, "forward_intermediates"):
        return [f"stage{i}" for i in range(len(model.feature_info))]
    if backbone.modality == "text":
        return [f"layer{i}" for i in range(int(model.transformer.config.num_hidden_layers) + 1)]
    return []


def with_layer(backbone, layer: str | None):
    """The backbone's feature extractor cut at `layer` (None: its normal pooled output)."""
    if layer is None:
        return backbone.model
    names = available_layers(backbone)
    if layer not in names:
        raise TransferkitError(f"{backbone.name} has no layer {layer!r}; it exposes: {', '.join(names) or 'none'}.")
    index = int(layer.lstrip("stagelayer"))
    return StageFeatures(backbone.model, index) if backbone.modality == "image" else LayerFeatures(backbone.model, index)


def _source_head(name: str, backbone) -> nn.Module | None:
    """The classifier the backbone was trained with (its source task), when one is available:
    a registered backbone's `source_head` (ImageNet, MNIST), or the head of a classification run."""
    from ..backbones import load_source_head
    from ..backbones.run_dir import is_run_dir

    if is_run_dir(Path(name)):
        return _run_classifier(Path(name))
    try:
        return load_source_head(name)
    except FileNotFoundError:  # weights not installed: the hub fallback has no packaged head
        return None


def _run_classifier(path: Path) -> nn.Module | None:
    """A run's default head when it is a linear classifier over the run's `classes` (one output per
    class), read from config.json and model.safetensors alone; None for any other head."""
    from ..models import DEFAULT_HEAD
    from ..rundir import read_config, read_head_weights

    config = read_config(path, {})
    classes = config.get("classes") or []
    head = read_head_weights(path, DEFAULT_HEAD, config)
    weight = head.get("weight")
    if (not classes or weight is None or weight.ndim != 2 or weight.shape[0] != len(classes)
            or set(head) - {"weight", "bias"}):
        return None
    linear = nn.Linear(weight.shape[1], weight.shape[0], bias="bias" in head)
    linear.load_state_dict(head)
    return linear.eval()


def default_candidates(modality: str) -> list[str]:
    """The registered backbones for `modality` whose weights are installed (no network needed)."""
    from ..backbones import offline_backbones

    return offline_backbones(modality)


def _sample(labels: Sequence[int], size: int, seed: int) -> list[int]:
    from ..data.splits import stratified_carve

    if len(labels) <= size:
        return list(range(len(labels)))
    _, chosen = stratified_carve(labels, size / len(labels), int(max(labels)) + 1, seed)
    return chosen


@torch.inference_mode()
def _encode(module: nn.Module, head: nn.Module | None, dataset, collate, progress: bool, description: str):
    """Features and labels of `dataset`, and the source head's probabilities on those features."""
    from ..models.features import extract_features

    features, labels = extract_features(module, dataset, batch_size=64, hflip=False, progress=progress,
                                        description=description, collate_fn=collate)
    probs = None
    if head is not None:
        head = head.eval()
        device = next(head.parameters()).device
        probs = torch.softmax(head(torch.from_numpy(features).to(device)), dim=1).cpu().numpy()
    return features, probs, labels


def rank_backbones(
    source: RankingSource, candidates: Sequence[str], metrics: Sequence[str] = (DEFAULT_METRIC,),
    layers: Sequence[str] | None = None, image_sizes: Sequence[int] | None = None, sample_size: int = 1000,
    seed: int = 0, progress: bool = True,
) -> Ranking:
    """Score every candidate (× layer × image size) on a stratified sample of the training split.

    `source` is the task's training data (`ImageClassifier.ranking_source_of(path)`, or a fitted
    estimator's `ranking_source()`); `metrics` are registered score names (`transferkit list
    scores`) or "ensemble" (mean rank of `ENSEMBLE_MEMBERS`), the first one orders the ranking. `image_sizes` apply where the inputs have a size.
    """
    from ..backbones import create_backbone
    from . import SCORES, compute_score

    start = time.perf_counter()
    metrics = list(metrics)
    for name in metrics:
        if name != ENSEMBLE:
            SCORES.entry(name)  # unknown names fail before any slow work
    # the ensemble's members are scored too (and shown), after the scores asked for
    scored = [m for m in metrics if m != ENSEMBLE]
    if ENSEMBLE in metrics:
        scored += [m for m in ENSEMBLE_MEMBERS if m not in scored]
    labels_all = list(source.labels)
    chosen = _sample(labels_all, sample_size, seed)
    rows = []
    for name in candidates:
        backbone = create_backbone(name, modality=source.modality)
        head = _source_head(name, backbone)
        for layer in layers or [None]:
            module = with_layer(backbone, layer)
            for size in (image_sizes or [None]) if source.sized else [None]:
                t0 = time.perf_counter()
                dataset, collate, used_size = source.encode(backbone, chosen, size)
                label = name + (f"@{layer}" if layer else "") + (f" {used_size}px" if size else "")
                features, probs, labels = _encode(module, head if layer is None else None, dataset, collate,
                                                  progress, label)
                scores = {}
                for metric in scored:
                    needs = SCORES.entry(metric).info.needs
                    if needs == "source_probs" and probs is None:
                        scores[metric] = None
                        continue
                    if needs == "backbone":  # a data-free baseline (None where it does not apply)
                        scores[metric] = compute_score(metric, backbone=backbone, image_size=used_size)
                        continue
                    scores[metric] = float(compute_score(metric, features=features, labels=labels, source_probs=probs))
                note = "" if probs is not None else "no source classifier: LEEP/NCE do not apply"
                rows.append(CandidateScore(label, name, layer, used_size, int(features.shape[1]), scores,
                                           time.perf_counter() - t0, note))
    if ENSEMBLE in metrics:
        for row, rank in zip(rows, mean_rank([[r.scores[m] for r in rows] for m in ENSEMBLE_MEMBERS])):
            row.scores = {ENSEMBLE: rank, **row.scores}
    key = metrics[0]
    rows.sort(key=lambda r: (r.scores[key] is None, -(r.scores[key] or 0.0)))
    if rows and rows[0].scores[key] is None:
        raise TransferkitError(f"no candidate could be scored with {key} (it needs a source classifier or an "
                               f"ImageNet model); use {DEFAULT_METRIC}.")
    sample = {"task": source.task, "examples": len(chosen), "of": len(labels_all), "classes": list(source.classes),
              "seed": seed}
    return Ranking(key, rows, sample, time.perf_counter() - start)


def mean_rank(columns: Sequence[Sequence[float]]) -> list[float]:
    """Each candidate's mean rank over several scores (one column per score, one value per candidate;
    1 = lowest, ties share their average rank), so a higher mean rank is better, as for the scores."""
    import numpy as np
    from scipy.stats import rankdata

    if not columns:
        return []
    return [float(v) for v in np.mean([rankdata(np.asarray(c, dtype=np.float64)) for c in columns], axis=0)]
