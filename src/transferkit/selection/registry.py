"""The score registry, dispatch by required input, and a scikit-learn style scorer."""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

from .._registry import Info, Registry
from ..errors import DataError

#: What a score can read: the backbone's features, or the pretrained source classifier's
#: class probabilities on the target data (`compute_score` passes one of them), or only the
#: backbone itself (the data-free baselines: "the larger model wins").
SCORE_INPUTS = ("features", "source_probs", "backbone")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ScoreInfo(Info):
    """What the registry knows about a transferability score before importing it."""

    needs: str  # the model output it reads: one of SCORE_INPUTS
    regression: bool = False  # also defined for real-valued targets (not only class labels)
    paper: str = ""  # the citation shown by `transferkit list scores`

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.needs not in SCORE_INPUTS:
            raise ValueError(f"ScoreInfo.needs = {self.needs!r}: use one of {', '.join(SCORE_INPUTS)}")


#: score(features or source_probs, labels, **options) -> float; a "backbone" score:
#: score(backbone, image_size=None, **options) -> float, or None where it does not apply
ScoreFunction = Callable[..., Any]

SCORES: Registry[ScoreFunction, ScoreInfo] = Registry("score", info=ScoreInfo)


def register_score(name: str, info: ScoreInfo) -> Callable[[ScoreFunction], ScoreFunction]:
    """Decorator registering a score function (for scores defined outside transferkit):
    `@register_score("my-score", ScoreInfo(needs="features"))`."""
    return SCORES.register(name, info)


# The packaged scores, declared: numpy/scikit-learn load with the first score computed, not with
# `transferkit list`.
SCORES.declare("logme", f"{__package__}.scores:logme", ScoreInfo(
    description="Bayesian linear-model evidence of the labels given the features", needs="features",
    regression=True, paper="You et al., LogME, ICML 2021"))
SCORES.declare("hscore", f"{__package__}.scores:hscore", ScoreInfo(
    description="between-class share of feature covariance (Ledoit-Wolf shrunk)", needs="features",
    paper="Bao et al., ICIP 2019; shrinkage: Ibrahim et al., ECML-PKDD 2022"))
SCORES.declare("knn", f"{__package__}.scores:knn_accuracy", ScoreInfo(
    description="cross-validated k-NN accuracy (cosine, standardised features)", needs="features",
    paper="k-NN evaluation, e.g. Kornblith et al., CVPR 2019"))
SCORES.declare("linear", f"{__package__}.scores:linear_probe_accuracy", ScoreInfo(
    description="cross-validated logistic-regression accuracy", needs="features",
    paper="linear evaluation, e.g. Kornblith et al., CVPR 2019"))
SCORES.declare("leep", f"{__package__}.scores:leep", ScoreInfo(
    description="log-likelihood of labels under the source head's expected empirical predictor",
    needs="source_probs", paper="Nguyen et al., LEEP, ICML 2020"))
SCORES.declare("nce", f"{__package__}.scores:nce", ScoreInfo(
    description="negative conditional entropy of labels given the source head's argmax", needs="source_probs",
    paper="Tran et al., ICCV 2019"))
# Baselines (no data read): a score that cannot beat them is not worth its compute.
SCORES.declare("params", f"{__package__}.baselines:parameter_count", ScoreInfo(
    description="baseline: parameter count, the larger model wins (ties: larger input)", needs="backbone",
    paper="baseline: \"bigger is better\" (Kornblith et al., CVPR 2019 test it for ImageNet models)"))
SCORES.declare("imagenet_top1", f"{__package__}.baselines:imagenet_top1", ScoreInfo(
    description="baseline: published ImageNet top-1 of the weights (ties: larger input)", needs="backbone",
    paper="baseline: Kornblith et al., \"Do Better ImageNet Models Transfer Better?\", CVPR 2019"))


def compute_score(name: str, features: Any = None, labels: Any = None, source_probs: Any = None,
                  backbone: Any = None, image_size: int | None = None, **options: Any) -> float | None:
    """Score `name` on the input it needs (its `ScoreInfo.needs`); `options` go to the score function.

    A "backbone" score (a baseline) reads only `backbone` (and the `image_size` it is scored at) and
    returns None where it does not apply (e.g. ImageNet top-1 of a text encoder)."""
    entry = SCORES.entry(name)
    if entry.info.needs == "backbone":
        if backbone is None:
            raise DataError(f"score {name!r} is a baseline that reads the backbone itself; pass backbone=.")
        value = entry.obj(backbone, image_size=image_size, **options)
        return None if value is None else float(value)
    if labels is None:
        raise DataError(f"score {name!r} needs the target labels.")
    needs = entry.info.needs
    if needs == "source_probs":
        if source_probs is None:
            raise DataError(
                f"score {name!r} needs source_probs, the pretrained source classifier's class probabilities "
                "(N, Z) on the target data; a backbone without its source head cannot be scored by LEEP or "
                "NCE. Use a feature-based score instead (logme, hscore, knn, linear)."
            )
        return float(entry.obj(source_probs, labels, **options))
    if features is None:
        raise DataError(f"score {name!r} needs features, the backbone's (N, D) outputs on the target data.")
    return float(entry.obj(features, labels, **options))


class TransferabilityScorer:
    """Scores how well a pretrained model should transfer to labelled data; nothing is learned.

    >>> TransferabilityScorer("logme").score(features, labels)  # doctest: +SKIP
    """

    def __init__(self, metric: str = "logme", **options: Any) -> None:
        self.metric = metric
        self.options = options

    @property
    def needs(self) -> str:
        """"features" or "source_probs": which model output `score` requires."""
        return SCORES.entry(self.metric).info.needs

    def score(self, features: Any, labels: Any, source_probs: Any = None) -> float:
        return compute_score(self.metric, features=features, labels=labels, source_probs=source_probs,
                             **self.options)

    def __repr__(self) -> str:
        opts = "".join(f", {k}={v!r}" for k, v in self.options.items())
        return f"TransferabilityScorer(metric={self.metric!r}{opts})"
